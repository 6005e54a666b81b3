package db

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// postgresStore is the Postgres store on a pgx pool. Certificate serials travel as decimal text
// into a NUMERIC(20, 0) column, which holds the whole uint64 range.
type postgresStore struct {
	pool *pgxpool.Pool

	maxRevocations int // 0: MaxRevocations (tests set less)
}

// Constraint names, as the migration declares them.
const (
	pgAccountsName    = "accounts_name_key"
	pgKeysFingerprint = "keys_fingerprint_key"
	pgKeysName        = "keys_account_id_name_key"
	pgUniqueViolated  = "23505"
	pgForeignKey      = "23503"
)

// postgresErr maps constraint violations and missing rows to the package's errors.
func postgresErr(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		return err
	}
	switch e.Code {
	case pgUniqueViolated:
		switch e.ConstraintName {
		case pgAccountsName:
			return ErrAccountTaken
		case pgKeysFingerprint:
			return ErrKeyTaken
		case pgKeysName, pgPendingName:
			return ErrNameTaken
		case pgPendingCode:
			return ErrCodeTaken
		case pgPendingFingerprint:
			return ErrPendingTaken
		}
	case pgForeignKey:
		return fmt.Errorf("account: %w", ErrNotFound)
	}
	return err
}

func (s *postgresStore) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

func (s *postgresStore) Close() error {
	s.pool.Close()
	return nil
}

// Accounts

func (s *postgresStore) CreateAccount(ctx context.Context, name string, first NewKey) (Account, Key, error) {
	if err := checkFirstKey(name, first); err != nil {
		return Account{}, Key{}, err
	}
	var (
		a Account
		k Key
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		a, k, err = postgresCreateAccount(ctx, tx, name, first, now())
		return err
	})
	if err != nil {
		return Account{}, Key{}, fmt.Errorf("create account %q: %w", name, err)
	}
	return a, k, nil
}

func (s *postgresStore) AccountByName(ctx context.Context, name string) (Account, error) {
	a, err := scanPostgresAccount(s.pool.QueryRow(ctx,
		`SELECT id, name, created_at FROM accounts WHERE name = $1`, name))
	if err != nil {
		return Account{}, fmt.Errorf("account %q: %w", name, postgresErr(err))
	}
	return a, nil
}

func (s *postgresStore) AccountByID(ctx context.Context, id int64) (Account, error) {
	a, err := scanPostgresAccount(s.pool.QueryRow(ctx,
		`SELECT id, name, created_at FROM accounts WHERE id = $1`, id))
	if err != nil {
		return Account{}, fmt.Errorf("account %d: %w", id, postgresErr(err))
	}
	return a, nil
}

func (s *postgresStore) AccountNames(ctx context.Context, ids []int64) (map[int64]string, error) {
	names := map[int64]string{}
	if len(ids) == 0 {
		return names, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, name FROM accounts WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("account names: %w", postgresErr(err))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id   int64
			name string
		)
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("account names: %w", postgresErr(err))
		}
		names[id] = name
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("account names: %w", postgresErr(err))
	}
	return names, nil
}

func (s *postgresStore) ListAccounts(ctx context.Context) ([]Account, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, name, created_at FROM accounts ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	list, err := collectPostgres(rows, scanPostgresAccount)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return list, nil
}

func scanPostgresAccount(row pgx.Row) (Account, error) {
	var a Account
	if err := row.Scan(&a.ID, &a.Name, &a.CreatedAt); err != nil {
		return Account{}, err
	}
	a.CreatedAt = a.CreatedAt.UTC()
	return a, nil
}

// Keys

const postgresKeyColumns = `id, account_id, name, kind, algorithm, fingerprint, public_key, options, created_at, last_used_at`

func postgresInsertKey(ctx context.Context, tx pgx.Tx, accountID int64, nk NewKey) (Key, error) {
	k := Key{AccountID: accountID, NewKey: nk, CreatedAt: now()}
	err := tx.QueryRow(ctx,
		`INSERT INTO keys (account_id, name, kind, algorithm, fingerprint, public_key, options, created_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		accountID, nk.Name, string(nk.Kind), nk.Algorithm, nk.Fingerprint, nk.PublicKey, nk.Options,
		k.CreatedAt).Scan(&k.ID)
	if err != nil {
		return Key{}, postgresErr(err)
	}
	return k, nil
}

func (s *postgresStore) AddKey(ctx context.Context, accountID int64, nk NewKey) (Key, error) {
	if err := checkKey(nk); err != nil {
		return Key{}, fmt.Errorf("add key %q: %w", nk.Name, err)
	}
	var k Key
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := postgresLockAccount(ctx, tx, accountID); err != nil {
			return err
		}
		if err := postgresNameFree(ctx, tx, accountID, nk.Name, now()); err != nil {
			return err
		}
		var err error
		k, err = postgresInsertKey(ctx, tx, accountID, nk)
		return err
	})
	if err != nil {
		return Key{}, fmt.Errorf("add key %q: %w", nk.Name, err)
	}
	return k, nil
}

func (s *postgresStore) ListKeys(ctx context.Context, accountID int64) ([]Key, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT `+postgresKeyColumns+` FROM keys WHERE account_id = $1 ORDER BY id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list keys of account %d: %w", accountID, err)
	}
	list, err := collectPostgres(rows, scanPostgresKey)
	if err != nil {
		return nil, fmt.Errorf("list keys of account %d: %w", accountID, err)
	}
	return list, nil
}

func (s *postgresStore) KeyByFingerprint(ctx context.Context, fingerprint string) (Key, error) {
	k, err := scanPostgresKey(s.pool.QueryRow(ctx,
		`SELECT `+postgresKeyColumns+` FROM keys WHERE fingerprint = $1`, fingerprint))
	if err != nil {
		return Key{}, fmt.Errorf("key %s: %w", fingerprint, postgresErr(err))
	}
	return k, nil
}

func (s *postgresStore) RemoveKey(ctx context.Context, accountID, keyID int64) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Locking the account row serialises removals within the account, so two concurrent
		// removals cannot each see the other's key as the remaining login key.
		var id int64
		err := tx.QueryRow(ctx, `SELECT id FROM accounts WHERE id = $1 FOR UPDATE`, accountID).Scan(&id)
		if err != nil {
			return postgresErr(err)
		}
		var kind string
		err = tx.QueryRow(ctx,
			`SELECT kind FROM keys WHERE id = $1 AND account_id = $2`, keyID, accountID).Scan(&kind)
		if err != nil {
			return postgresErr(err)
		}
		if KeyKind(kind) == KindLogin {
			var logins int
			err := tx.QueryRow(ctx,
				`SELECT count(*) FROM keys WHERE account_id = $1 AND kind = 'login'`, accountID).Scan(&logins)
			if err != nil {
				return err
			}
			if logins <= 1 {
				return ErrLastLoginKey
			}
		}
		_, err = tx.Exec(ctx, `DELETE FROM keys WHERE id = $1`, keyID)
		return err
	})
	if err != nil {
		return fmt.Errorf("remove key %d of account %d: %w", keyID, accountID, err)
	}
	return nil
}

func (s *postgresStore) TouchKey(ctx context.Context, keyID int64, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE keys SET last_used_at = $1 WHERE id = $2`, storedTime(at), keyID)
	if err == nil && tag.RowsAffected() == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("touch key %d: %w", keyID, err)
	}
	return nil
}

func scanPostgresKey(row pgx.Row) (Key, error) {
	var (
		k    Key
		kind string
	)
	err := row.Scan(&k.ID, &k.AccountID, &k.Name, &kind, &k.Algorithm, &k.Fingerprint, &k.PublicKey,
		&k.Options, &k.CreatedAt, &k.LastUsedAt)
	if err != nil {
		return Key{}, err
	}
	k.Kind = KeyKind(kind)
	k.CreatedAt = k.CreatedAt.UTC()
	if k.LastUsedAt != nil {
		t := k.LastUsedAt.UTC()
		k.LastUsedAt = &t
	}
	return k, nil
}

// Revocations

const postgresRevocationColumns = `id, account_id, kind, value, ca_fingerprint, origin, source_id, created_at`

func (s *postgresStore) AddRevocation(ctx context.Context, accountID int64, nr NewRevocation) (Revocation, error) {
	sr, err := checkStoredRevocation(nr)
	if err != nil {
		return Revocation{}, fmt.Errorf("add revocation of %s %q: %w", nr.Kind, nr.Value, err)
	}
	r := Revocation{AccountID: accountID, NewRevocation: sr.NewRevocation, CreatedAt: now()}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.roomForRevocations(ctx, tx, accountID, 0, 1); err != nil {
			return err
		}
		ids, err := postgresInsertRevocations(ctx, tx, accountID, 0, []storedRevocation{sr}, r.CreatedAt)
		if err == nil {
			r.ID = ids[0]
		}
		return err
	})
	if err != nil {
		return Revocation{}, fmt.Errorf("add revocation of %s %q: %w", nr.Kind, nr.Value, postgresErr(err))
	}
	return r, nil
}

func (s *postgresStore) ListRevocations(ctx context.Context, accountID int64) ([]Revocation, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT `+postgresRevocationColumns+` FROM revocations WHERE account_id = $1 ORDER BY id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list revocations of account %d: %w", accountID, err)
	}
	list, err := collectPostgres(rows, scanPostgresRevocation)
	if err != nil {
		return nil, fmt.Errorf("list revocations of account %d: %w", accountID, err)
	}
	return list, nil
}

func (s *postgresStore) RemoveRevocation(ctx context.Context, accountID, id int64) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var sourceID *int64
		err := tx.QueryRow(ctx, `DELETE FROM revocations WHERE id = $1 AND account_id = $2 RETURNING source_id`,
			id, accountID).Scan(&sourceID)
		if err != nil || sourceID == nil {
			return postgresErr(err)
		}
		_, err = tx.Exec(ctx, `UPDATE krl_sources SET entries = entries - 1 WHERE id = $1`, *sourceID)
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
func (s *postgresStore) FindRevocation(ctx context.Context, accountID int64, c CertRef) (Revocation, error) {
	r, err := scanPostgresRevocation(s.pool.QueryRow(ctx, postgresFindRevocation, postgresFindRevocationArgs(accountID, c)...))
	if err != nil {
		return Revocation{}, fmt.Errorf("find revocation of certificate %q (serial %d) in account %d: %w",
			c.KeyID, c.Serial, accountID, postgresErr(err))
	}
	return r, nil
}

// postgresFindRevocation is FindRevocation's query: one indexed lookup per kind.
const postgresFindRevocation = `SELECT ` + postgresRevocationColumns + ` FROM (
	    SELECT * FROM revocations WHERE account_id = $1 AND kind = 'serial' AND value = $2 AND ca_fingerprint IN ('', $3)
	    UNION ALL
	    SELECT * FROM revocations WHERE account_id = $1 AND kind = 'key_id' AND value = $4 AND ca_fingerprint IN ('', $3)
	    UNION ALL
	    SELECT * FROM revocations WHERE account_id = $1 AND kind IN ('key', 'key_hash') AND value IN ($5, $6, $3, $7)
	    UNION ALL
	    SELECT * FROM revocations WHERE account_id = $1 AND range_key = ANY($8::text[])
	        AND range_lo <= $9 AND range_hi >= $9 AND ca_fingerprint IN ('', $3)) AS found
	ORDER BY origin = 'krl', id LIMIT 1`

func postgresFindRevocationArgs(accountID int64, c CertRef) []any {
	return []any{accountID, strconv.FormatUint(c.Serial, 10), c.CAFingerprint, c.KeyID, c.KeyFingerprint, c.KeySHA1, c.CASHA1,
		rangeKeysOf(c.Serial), ordered(c.Serial)}
}

func scanPostgresRevocation(row pgx.Row) (Revocation, error) {
	var (
		r        Revocation
		kind     string
		origin   string
		sourceID *int64
	)
	if err := row.Scan(&r.ID, &r.AccountID, &kind, &r.Value, &r.CAFingerprint, &origin, &sourceID, &r.CreatedAt); err != nil {
		return Revocation{}, err
	}
	r.Kind, r.Origin = RevocationKind(kind), RevocationOrigin(origin)
	if sourceID != nil {
		r.SourceID = *sourceID
	}
	r.CreatedAt = r.CreatedAt.UTC()
	return r, nil
}

// Access log

func (s *postgresStore) AppendAccess(ctx context.Context, e AccessEntry) error {
	if e.Time.IsZero() {
		e.Time = now()
	}
	var accountID *int64
	if e.AccountID != 0 {
		accountID = &e.AccountID
	}
	_, err := s.pool.Exec(ctx,
		`INSERT INTO access_log (time, account_id, account, service, method, identity, serial,
		     key_fingerprint, ca_fingerprint, remote_addr, outcome, reason, count)
		 VALUES ($1, $2, $3, $4, $5, $6, $7::text::numeric, $8, $9, $10, $11, $12, $13)`,
		storedTime(e.Time), accountID, e.Account, e.Service, e.Method, e.Identity, formatSerial(e.Serial),
		e.KeyFingerprint, e.CAFingerprint, e.RemoteAddr, e.Outcome, e.Reason, entryCount(e))
	if err != nil {
		return fmt.Errorf("append access of %q to %q: %w", e.Identity, e.Service, postgresErr(err))
	}
	return nil
}

func (s *postgresStore) ListAccess(ctx context.Context, accountID int64, service string, limit int) ([]AccessEntry, error) {
	where := `($1 = '' OR service = $1) AND account_id IS NULL`
	args := []any{service, accessLimit(limit)}
	if accountID != 0 {
		where = `($1 = '' OR service = $1) AND account_id = $3`
		args = append(args, accountID)
	}
	rows, err := s.pool.Query(ctx,
		`SELECT id, time, account_id, account, service, method, identity, serial::text,
		     key_fingerprint, ca_fingerprint, remote_addr, outcome, reason, count
		 FROM access_log
		 WHERE `+where+`
		 ORDER BY time DESC, id DESC LIMIT $2`, args...)
	if err != nil {
		return nil, fmt.Errorf("list access of account %d: %w", accountID, err)
	}
	list, err := collectPostgres(rows, scanPostgresAccess)
	if err != nil {
		return nil, fmt.Errorf("list access of account %d: %w", accountID, err)
	}
	return list, nil
}

func scanPostgresAccess(row pgx.Row) (AccessEntry, error) {
	var (
		e         AccessEntry
		accountID *int64
		serial    *string
	)
	err := row.Scan(&e.ID, &e.Time, &accountID, &e.Account, &e.Service, &e.Method, &e.Identity, &serial,
		&e.KeyFingerprint, &e.CAFingerprint, &e.RemoteAddr, &e.Outcome, &e.Reason, &e.Count)
	if err != nil {
		return AccessEntry{}, err
	}
	e.Time = e.Time.UTC()
	if accountID != nil {
		e.AccountID = *accountID
	}
	if e.Serial, err = parseSerial(serial); err != nil {
		return AccessEntry{}, err
	}
	return e, nil
}

func (s *postgresStore) PruneAccess(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM access_log WHERE time < $1`, storedTime(before))
	if err != nil {
		return 0, fmt.Errorf("prune access log before %s: %w", before.UTC().Format(time.RFC3339), err)
	}
	return tag.RowsAffected(), nil
}

func collectPostgres[T any](rows pgx.Rows, scan func(pgx.Row) (T, error)) ([]T, error) {
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) { return scan(row) })
	if list == nil && err == nil {
		list = []T{}
	}
	return list, err
}
