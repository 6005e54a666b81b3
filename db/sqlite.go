package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteStore is the embedded store. Writes and transactions go through w, a pool of one
// connection whose transactions begin IMMEDIATE, so writers queue in Go and never meet
// "database is locked"; reads go through r, which WAL lets run beside the writer.
type sqliteStore struct {
	w *sql.DB
	r *sql.DB

	maxRevocations int // 0: MaxRevocations (tests set less)

	// prepared holds the read statements that every connection runs (key lookup, revocation
	// check, account by id), prepared once on the read pool: parsing their text costs more than
	// running them (FindRevocation's has 130 serial range buckets).
	stmtMu   sync.Mutex
	prepared map[string]*sql.Stmt
	closed   bool // Close ran: a statement prepared meanwhile is closed, not kept

	// afterPrepare, when set (tests), runs between preparing a statement and keeping it.
	afterPrepare func()

	// betweenRevocationQueries, when set (tests), runs between FindRevocation's two queries.
	betweenRevocationQueries func()
}

// sqliteTimeLayout is fixed width, so that text order is time order in SQL comparisons.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

func sqliteTime(t time.Time) string { return storedTime(t).Format(sqliteTimeLayout) }

func parseSQLiteTime(s string) (time.Time, error) {
	t, err := time.Parse(sqliteTimeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}

func parseSQLiteTimePtr(s sql.NullString) (*time.Time, error) {
	if !s.Valid {
		return nil, nil
	}
	t, err := parseSQLiteTime(s.String)
	return &t, err
}

// sqliteErr maps constraint violations to the package's errors.
func sqliteErr(err error) error {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		msg := e.Error()
		switch {
		case strings.Contains(msg, "pending_keys.code"):
			return ErrCodeTaken
		case strings.Contains(msg, "pending_keys.account_id, pending_keys.fingerprint"):
			return ErrPendingTaken
		case strings.Contains(msg, "pending_keys.account_id, pending_keys.name"):
			return ErrNameTaken
		case strings.Contains(msg, "accounts.name"):
			return ErrAccountTaken
		case strings.Contains(msg, "keys.fingerprint"):
			return ErrKeyTaken
		case strings.Contains(msg, "keys.account_id, keys.name"):
			return ErrNameTaken
		}
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return fmt.Errorf("account: %w", ErrNotFound)
	}
	return err
}

func (s *sqliteStore) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	return nil
}

func (s *sqliteStore) Close() error {
	var errs []error
	s.stmtMu.Lock()
	for _, stmt := range s.prepared {
		errs = append(errs, stmt.Close())
	}
	s.prepared = nil
	s.closed = true
	s.stmtMu.Unlock()
	return errors.Join(append(errs, s.r.Close(), s.w.Close())...)
}

// errStoreClosed is what using a store after its Close gets.
var errStoreClosed = errors.New("the store is closed")

// readStatement returns query prepared on the read pool, preparing it the first time (and again
// after a failure). Only a fixed set of query texts comes here, so the cache stays small.
func (s *sqliteStore) readStatement(ctx context.Context, query string) (*sql.Stmt, error) {
	return s.statement(ctx, s.r, query, query)
}

// writeStatement returns query prepared on the write connection (there is one), preparing it
// the first time: for the statements every connection's access-log entry runs. A transaction
// uses it through tx.StmtContext, on the same connection, without preparing it again.
func (s *sqliteStore) writeStatement(ctx context.Context, query string) (*sql.Stmt, error) {
	return s.statement(ctx, s.w, "write:"+query, query)
}

// statement returns the statement kept under key, or prepares query on pool and keeps it. It
// never waits for a connection while holding stmtMu: preparing takes a connection of the pool,
// and a caller holding one (in a transaction) that waited for stmtMu would keep it from the
// caller holding stmtMu, for ever. Two first uses may both prepare; one statement is kept.
func (s *sqliteStore) statement(ctx context.Context, pool *sql.DB, key, query string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	stmt, ok := s.prepared[key]
	s.stmtMu.Unlock()
	if ok {
		return stmt, nil
	}
	stmt, err := pool.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if s.afterPrepare != nil {
		s.afterPrepare()
	}
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if s.closed {
		stmt.Close()
		return nil, errStoreClosed
	}
	if kept, ok := s.prepared[key]; ok {
		stmt.Close()
		return kept, nil
	}
	if s.prepared == nil {
		s.prepared = map[string]*sql.Stmt{}
	}
	s.prepared[key] = stmt
	return stmt, nil
}

// inTx runs fn in a write transaction and commits it if fn returns nil.
func (s *sqliteStore) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Accounts

func (s *sqliteStore) CreateAccount(ctx context.Context, name string, first NewKey) (Account, Key, error) {
	if err := checkFirstKey(name, first); err != nil {
		return Account{}, Key{}, err
	}
	var (
		a Account
		k Key
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		a, k, err = sqliteCreateAccount(ctx, tx, name, first, now())
		return err
	})
	if err != nil {
		return Account{}, Key{}, fmt.Errorf("create account %q: %w", name, err)
	}
	return a, k, nil
}

func (s *sqliteStore) AccountByName(ctx context.Context, name string) (Account, error) {
	a, err := scanSQLiteAccount(s.r.QueryRowContext(ctx,
		`SELECT id, name, created_at FROM accounts WHERE name = ?`, name))
	if err != nil {
		return Account{}, fmt.Errorf("account %q: %w", name, err)
	}
	return a, nil
}

func (s *sqliteStore) AccountByID(ctx context.Context, id int64) (Account, error) {
	stmt, err := s.readStatement(ctx, `SELECT id, name, created_at FROM accounts WHERE id = ?`)
	if err != nil {
		return Account{}, fmt.Errorf("account %d: %w", id, err)
	}
	a, err := scanSQLiteAccount(stmt.QueryRowContext(ctx, id))
	if err != nil {
		return Account{}, fmt.Errorf("account %d: %w", id, err)
	}
	return a, nil
}

func (s *sqliteStore) AccountNames(ctx context.Context, ids []int64) (map[int64]string, error) {
	names := map[int64]string{}
	for chunk := range slices.Chunk(ids, 500) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := s.r.QueryContext(ctx, `SELECT id, name FROM accounts WHERE id IN (?`+strings.Repeat(", ?", len(chunk)-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("account names: %w", err)
		}
		for rows.Next() {
			var (
				id   int64
				name string
			)
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return nil, fmt.Errorf("account names: %w", err)
			}
			names[id] = name
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("account names: %w", err)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("account names: %w", err)
		}
	}
	return names, nil
}

func (s *sqliteStore) ListAccounts(ctx context.Context) ([]Account, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, name, created_at FROM accounts ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	list, err := collectSQLite(rows, scanSQLiteAccount)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return list, nil
}

func scanSQLiteAccount(row interface{ Scan(...any) error }) (Account, error) {
	var (
		a       Account
		created string
	)
	if err := row.Scan(&a.ID, &a.Name, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Account{}, ErrNotFound
		}
		return Account{}, err
	}
	var err error
	a.CreatedAt, err = parseSQLiteTime(created)
	return a, err
}

// Keys

const sqliteKeyColumns = `id, account_id, name, kind, algorithm, fingerprint, public_key, options, created_at, last_used_at`

func sqliteInsertKey(ctx context.Context, tx *sql.Tx, accountID int64, nk NewKey) (Key, error) {
	k := Key{AccountID: accountID, NewKey: nk, CreatedAt: now()}
	err := tx.QueryRowContext(ctx,
		`INSERT INTO keys (account_id, name, kind, algorithm, fingerprint, public_key, options, created_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		accountID, nk.Name, string(nk.Kind), nk.Algorithm, nk.Fingerprint, nk.PublicKey, nk.Options,
		sqliteTime(k.CreatedAt)).Scan(&k.ID)
	if err != nil {
		return Key{}, sqliteErr(err)
	}
	return k, nil
}

func (s *sqliteStore) AddKey(ctx context.Context, accountID int64, nk NewKey) (Key, error) {
	if err := checkKey(nk); err != nil {
		return Key{}, fmt.Errorf("add key %q: %w", nk.Name, err)
	}
	var k Key
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := sqliteNameFree(ctx, tx, accountID, nk.Name, now()); err != nil {
			return err
		}
		var err error
		k, err = sqliteInsertKey(ctx, tx, accountID, nk)
		return err
	})
	if err != nil {
		return Key{}, fmt.Errorf("add key %q: %w", nk.Name, err)
	}
	return k, nil
}

func (s *sqliteStore) ListKeys(ctx context.Context, accountID int64) ([]Key, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT `+sqliteKeyColumns+` FROM keys WHERE account_id = ? ORDER BY id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list keys of account %d: %w", accountID, err)
	}
	list, err := collectSQLite(rows, scanSQLiteKey)
	if err != nil {
		return nil, fmt.Errorf("list keys of account %d: %w", accountID, err)
	}
	return list, nil
}

const sqliteKeyByFingerprint = `SELECT ` + sqliteKeyColumns + ` FROM keys WHERE fingerprint = ?`

func (s *sqliteStore) KeyByFingerprint(ctx context.Context, fingerprint string) (Key, error) {
	stmt, err := s.readStatement(ctx, sqliteKeyByFingerprint)
	if err != nil {
		return Key{}, fmt.Errorf("key %s: %w", fingerprint, err)
	}
	k, err := scanSQLiteKey(stmt.QueryRowContext(ctx, fingerprint))
	if err != nil {
		return Key{}, fmt.Errorf("key %s: %w", fingerprint, err)
	}
	return k, nil
}

func (s *sqliteStore) RemoveKey(ctx context.Context, accountID, keyID int64) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var kind string
		err := tx.QueryRowContext(ctx,
			`SELECT kind FROM keys WHERE id = ? AND account_id = ?`, keyID, accountID).Scan(&kind)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if KeyKind(kind) == KindLogin {
			var logins int
			err := tx.QueryRowContext(ctx,
				`SELECT count(*) FROM keys WHERE account_id = ? AND kind = 'login'`, accountID).Scan(&logins)
			if err != nil {
				return err
			}
			if logins <= 1 {
				return ErrLastLoginKey
			}
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM keys WHERE id = ?`, keyID)
		return err
	})
	if err != nil {
		return fmt.Errorf("remove key %d of account %d: %w", keyID, accountID, err)
	}
	return nil
}

func (s *sqliteStore) TouchKey(ctx context.Context, keyID int64, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE keys SET last_used_at = ? WHERE id = ?`, sqliteTime(at), keyID)
	if err == nil {
		err = sqliteAffected(res)
	}
	if err != nil {
		return fmt.Errorf("touch key %d: %w", keyID, err)
	}
	return nil
}

func scanSQLiteKey(row interface{ Scan(...any) error }) (Key, error) {
	var (
		k        Key
		kind     string
		created  string
		lastUsed sql.NullString
	)
	err := row.Scan(&k.ID, &k.AccountID, &k.Name, &kind, &k.Algorithm, &k.Fingerprint, &k.PublicKey,
		&k.Options, &created, &lastUsed)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Key{}, ErrNotFound
		}
		return Key{}, err
	}
	k.Kind = KeyKind(kind)
	if k.CreatedAt, err = parseSQLiteTime(created); err != nil {
		return Key{}, err
	}
	if k.LastUsedAt, err = parseSQLiteTimePtr(lastUsed); err != nil {
		return Key{}, err
	}
	return k, nil
}

// Revocations

const sqliteRevocationColumns = `id, account_id, kind, value, ca_fingerprint, origin, source_id, created_at`

func (s *sqliteStore) AddRevocation(ctx context.Context, accountID int64, nr NewRevocation) (Revocation, error) {
	sr, err := checkStoredRevocation(nr)
	if err != nil {
		return Revocation{}, fmt.Errorf("add revocation of %s %q: %w", nr.Kind, nr.Value, err)
	}
	r := Revocation{AccountID: accountID, NewRevocation: sr.NewRevocation, CreatedAt: now()}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.roomForRevocations(ctx, tx, accountID, 0, 1); err != nil {
			return err
		}
		ids, err := sqliteInsertRevocations(ctx, tx, accountID, 0, []storedRevocation{sr}, r.CreatedAt)
		if err == nil {
			r.ID = ids[0]
		}
		return err
	})
	if err != nil {
		return Revocation{}, fmt.Errorf("add revocation of %s %q: %w", nr.Kind, nr.Value, sqliteErr(err))
	}
	return r, nil
}

func (s *sqliteStore) ListRevocations(ctx context.Context, accountID int64) ([]Revocation, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT `+sqliteRevocationColumns+` FROM revocations WHERE account_id = ? ORDER BY id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list revocations of account %d: %w", accountID, err)
	}
	list, err := collectSQLite(rows, scanSQLiteRevocation)
	if err != nil {
		return nil, fmt.Errorf("list revocations of account %d: %w", accountID, err)
	}
	return list, nil
}

func (s *sqliteStore) RemoveRevocation(ctx context.Context, accountID, id int64) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var sourceID sql.NullInt64
		err := tx.QueryRowContext(ctx, `DELETE FROM revocations WHERE id = ? AND account_id = ? RETURNING source_id`,
			id, accountID).Scan(&sourceID)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil || !sourceID.Valid {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE krl_sources SET entries = entries - 1 WHERE id = ?`, sourceID.Int64)
		return err
	})
	if err != nil {
		return fmt.Errorf("remove revocation %d of account %d: %w", id, accountID, err)
	}
	return nil
}

// FindRevocation looks each kind up through its own index: serials and key IDs by value,
// keys and key hashes by the certificate's and its CA's fingerprints, serial ranges by the 130
// buckets that can hold the serial (db/trust.go).
func (s *sqliteStore) FindRevocation(ctx context.Context, accountID int64, c CertRef) (Revocation, error) {
	fail := func(what string, err error) (Revocation, error) {
		return Revocation{}, fmt.Errorf("find revocation of certificate %q (serial %d) in account %d: %s%w",
			c.KeyID, c.Serial, accountID, what, err)
	}
	// Most accounts have no serial ranges; their check skips the 130 bucket probes. Both
	// queries read one snapshot (a read transaction): a KRL source's refresh that turns the
	// serials revoking this certificate into a range (or back) between them must not make the
	// certificate look unrevoked. A range added since is one the login raced and won, as if it
	// came first; live access ends the connection it admitted.
	//
	// The statements are prepared before the transaction takes its connection: preparing one
	// needs a connection of the read pool too, and read transactions each waiting for a
	// statement that waits for their connections would wait for ever.
	has, err := s.readStatement(ctx, sqliteHasSerialRanges)
	if err != nil {
		return fail("preparing the query: ", err)
	}
	point, err := s.readStatement(ctx, sqliteFindPointRevocation)
	if err != nil {
		return fail("preparing the query: ", err)
	}
	inRanges, err := s.readStatement(ctx, sqliteFindRevocation)
	if err != nil {
		return fail("preparing the query: ", err)
	}
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return fail("", err)
	}
	defer tx.Rollback()
	var ranges bool
	if err := tx.StmtContext(ctx, has).QueryRowContext(ctx, accountID).Scan(&ranges); err != nil {
		return fail("", err)
	}
	if s.betweenRevocationQueries != nil {
		s.betweenRevocationQueries()
	}
	stmt, args := point, sqliteFindPointArgs(accountID, c)
	if ranges {
		stmt, args = inRanges, sqliteFindRevocationArgs(accountID, c)
	}
	r, err := scanSQLiteRevocation(tx.StmtContext(ctx, stmt).QueryRowContext(ctx, args...))
	if err != nil {
		return fail("", err)
	}
	return r, nil
}

// sqliteHasSerialRanges tells whether an account has any serial-range revocation.
const sqliteHasSerialRanges = `SELECT EXISTS (SELECT 1 FROM revocations WHERE account_id = ? AND range_key IS NOT NULL)`

// sqliteFindPointRevocation looks up revocations by serial, key ID and key: one indexed
// lookup per kind.
const sqliteFindPointRevocation = `SELECT ` + sqliteRevocationColumns + ` FROM (
	    SELECT * FROM revocations WHERE account_id = ? AND kind = 'serial' AND value = ? AND ca_fingerprint IN ('', ?)
	    UNION ALL
	    SELECT * FROM revocations WHERE account_id = ? AND kind = 'key_id' AND value = ? AND ca_fingerprint IN ('', ?)
	    UNION ALL
	    SELECT * FROM revocations WHERE account_id = ? AND kind IN ('key', 'key_hash') AND value IN (?, ?, ?, ?))
	ORDER BY origin = 'krl', id LIMIT 1`

// sqliteFindRevocation is FindRevocation's query for an account with serial ranges: the point
// lookups and the bucket probes of the ranges.
var sqliteFindRevocation = `SELECT ` + sqliteRevocationColumns + ` FROM (
	    SELECT * FROM revocations WHERE account_id = ? AND kind = 'serial' AND value = ? AND ca_fingerprint IN ('', ?)
	    UNION ALL
	    SELECT * FROM revocations WHERE account_id = ? AND kind = 'key_id' AND value = ? AND ca_fingerprint IN ('', ?)
	    UNION ALL
	    SELECT * FROM revocations WHERE account_id = ? AND kind IN ('key', 'key_hash') AND value IN (?, ?, ?, ?)
	    UNION ALL
	    SELECT * FROM revocations WHERE account_id = ? AND range_key IN (` + placeholders(rangeKeyCount) + `)
	        AND range_lo <= ? AND range_hi >= ? AND ca_fingerprint IN ('', ?))
	ORDER BY origin = 'krl', id LIMIT 1`

func sqliteFindPointArgs(accountID int64, c CertRef) []any {
	return []any{
		accountID, strconv.FormatUint(c.Serial, 10), c.CAFingerprint,
		accountID, c.KeyID, c.CAFingerprint,
		accountID, c.KeyFingerprint, c.KeySHA1, c.CAFingerprint, c.CASHA1,
	}
}

func sqliteFindRevocationArgs(accountID int64, c CertRef) []any {
	args := append(sqliteFindPointArgs(accountID, c), accountID)
	for _, k := range rangeKeysOf(c.Serial) {
		args = append(args, k)
	}
	return append(args, ordered(c.Serial), ordered(c.Serial), c.CAFingerprint)
}

// placeholders returns n comma-separated question marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func scanSQLiteRevocation(row interface{ Scan(...any) error }) (Revocation, error) {
	var (
		r        Revocation
		kind     string
		origin   string
		sourceID sql.NullInt64
		created  string
	)
	if err := row.Scan(&r.ID, &r.AccountID, &kind, &r.Value, &r.CAFingerprint, &origin, &sourceID, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Revocation{}, ErrNotFound
		}
		return Revocation{}, err
	}
	r.Kind, r.Origin, r.SourceID = RevocationKind(kind), RevocationOrigin(origin), sourceID.Int64
	var err error
	r.CreatedAt, err = parseSQLiteTime(created)
	return r, err
}

// Access log

func (s *sqliteStore) AppendAccess(ctx context.Context, e AccessEntry) error {
	if e.Time.IsZero() {
		e.Time = now()
	}
	var accountID *int64
	if e.AccountID != 0 {
		accountID = &e.AccountID
	}
	_, err := s.w.ExecContext(ctx,
		`INSERT INTO access_log (time, account_id, account, service, method, identity, serial,
		     key_fingerprint, ca_fingerprint, remote_addr, outcome, reason, count)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sqliteTime(e.Time), accountID, e.Account, e.Service, e.Method, e.Identity, formatSerial(e.Serial),
		e.KeyFingerprint, e.CAFingerprint, e.RemoteAddr, e.Outcome, e.Reason, entryCount(e))
	if err != nil {
		return fmt.Errorf("append access of %q to %q: %w", e.Identity, e.Service, sqliteErr(err))
	}
	return nil
}

func (s *sqliteStore) ListAccess(ctx context.Context, accountID int64, service string, limit int) ([]AccessEntry, error) {
	where := `account_id IS NULL`
	var args []any
	if accountID != 0 {
		where, args = `account_id = ?`, []any{accountID}
	}
	args = append(args, service, service, accessLimit(limit))
	rows, err := s.r.QueryContext(ctx,
		`SELECT id, time, account_id, account, service, method, identity, serial,
		     key_fingerprint, ca_fingerprint, remote_addr, outcome, reason, count
		 FROM access_log
		 WHERE `+where+` AND (? = '' OR service = ?)
		 ORDER BY time DESC, id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("list access of account %d: %w", accountID, err)
	}
	list, err := collectSQLite(rows, scanSQLiteAccess)
	if err != nil {
		return nil, fmt.Errorf("list access of account %d: %w", accountID, err)
	}
	return list, nil
}

func scanSQLiteAccess(row interface{ Scan(...any) error }) (AccessEntry, error) {
	var (
		e         AccessEntry
		at        string
		accountID sql.NullInt64
		serial    sql.NullString
	)
	err := row.Scan(&e.ID, &at, &accountID, &e.Account, &e.Service, &e.Method, &e.Identity, &serial,
		&e.KeyFingerprint, &e.CAFingerprint, &e.RemoteAddr, &e.Outcome, &e.Reason, &e.Count)
	if err != nil {
		return AccessEntry{}, err
	}
	e.AccountID = accountID.Int64
	if e.Time, err = parseSQLiteTime(at); err != nil {
		return AccessEntry{}, err
	}
	if serial.Valid {
		if e.Serial, err = parseSerial(&serial.String); err != nil {
			return AccessEntry{}, err
		}
	}
	return e, nil
}

func (s *sqliteStore) PruneAccess(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM access_log WHERE time < ?`, sqliteTime(before))
	if err != nil {
		return 0, fmt.Errorf("prune access log before %s: %w", before.UTC().Format(time.RFC3339), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune access log before %s: %w", before.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}

func sqliteAffected(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

func collectSQLite[T any](rows *sql.Rows, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	defer rows.Close()
	list := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		list = append(list, v)
	}
	return list, rows.Err()
}
