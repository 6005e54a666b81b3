package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Revocations in bulk

// roomForRevocations returns ErrTooManyRevocations unless the account, less its leaving
// revocations, has room for adding more; it returns ErrNotFound for a gone account.
func (s *sqliteStore) roomForRevocations(ctx context.Context, tx *sql.Tx, accountID int64, leaving, adding int) error {
	if err := sqliteAccountExists(ctx, tx, accountID); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM revocations WHERE account_id = ?`, accountID).Scan(&n); err != nil {
		return err
	}
	if n-leaving+adding > s.revocationBound() {
		return ErrTooManyRevocations
	}
	return nil
}

// sqliteInsertRevocations adds rs, of source sourceID (0: none), in statements of insertBatch
// rows, and returns their ids.
func sqliteInsertRevocations(ctx context.Context, tx *sql.Tx, accountID, sourceID int64, rs []storedRevocation, at time.Time) ([]int64, error) {
	var source *int64
	if sourceID != 0 {
		source = &sourceID
	}
	created := sqliteTime(at)
	ids := make([]int64, 0, len(rs))
	for len(rs) > 0 {
		batch := rs[:min(len(rs), insertBatch)]
		rs = rs[len(batch):]
		args := make([]any, 0, len(batch)*10)
		for _, r := range batch {
			args = append(args, accountID, string(r.Kind), r.Value, r.CAFingerprint, string(r.Origin), source,
				r.rangeKey, r.rangeLo, r.rangeHi, created)
		}
		rows, err := tx.QueryContext(ctx,
			`INSERT INTO revocations (account_id, kind, value, ca_fingerprint, origin, source_id, range_key, range_lo, range_hi, created_at)
			 VALUES `+strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?), ", len(batch)), ", ")+` RETURNING id`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

func (s *sqliteStore) ImportRevocations(ctx context.Context, accountID int64, rs []NewRevocation) (int, error) {
	checked, err := checkRevocations(rs)
	if err != nil {
		return 0, fmt.Errorf("import revocations: %w", err)
	}
	var added int
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		have, err := sqliteRevocationIdentities(ctx, tx, accountID)
		if err != nil {
			return err
		}
		fresh := newRevocations(checked, have)
		if err := s.roomForRevocations(ctx, tx, accountID, 0, len(fresh)); err != nil {
			return err
		}
		_, err = sqliteInsertRevocations(ctx, tx, accountID, 0, fresh, now())
		added = len(fresh)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("import revocations into account %d: %w", accountID, sqliteErr(err))
	}
	return added, nil
}

// sqliteRevocationIdentities returns what identifies each revocation the account has that no
// KRL source owns: a source's come and go with its refreshes, so an import that repeats one of
// them must still add its own.
func sqliteRevocationIdentities(ctx context.Context, tx *sql.Tx, accountID int64) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT kind, value, ca_fingerprint FROM revocations WHERE account_id = ? AND source_id IS NULL`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var r NewRevocation
		if err := rows.Scan(&r.Kind, &r.Value, &r.CAFingerprint); err != nil {
			return nil, err
		}
		have[revocationIdentity(r)] = true
	}
	return have, rows.Err()
}

// newRevocations returns the revocations of rs that are not in have, each once.
func newRevocations(rs []storedRevocation, have map[string]bool) []storedRevocation {
	var out []storedRevocation
	for _, r := range rs {
		id := revocationIdentity(r.NewRevocation)
		if !have[id] {
			have[id] = true
			out = append(out, r)
		}
	}
	return out
}

// dedupe returns rs with repeats left out.
func dedupe(rs []storedRevocation) []storedRevocation { return newRevocations(rs, map[string]bool{}) }

func (s *sqliteStore) ListRevocationsPage(ctx context.Context, accountID, afterID int64, limit int) ([]Revocation, int, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT `+sqliteRevocationColumns+` FROM revocations WHERE account_id = ? AND id > ? ORDER BY id LIMIT ?`,
		accountID, afterID, max(limit, 1))
	if err != nil {
		return nil, 0, fmt.Errorf("list revocations of account %d: %w", accountID, err)
	}
	list, err := collectSQLite(rows, scanSQLiteRevocation)
	if err != nil {
		return nil, 0, fmt.Errorf("list revocations of account %d: %w", accountID, err)
	}
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM revocations WHERE account_id = ?`, accountID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count revocations of account %d: %w", accountID, err)
	}
	return list, total, nil
}

// KRL sources

const sqliteSourceColumns = `id, account_id, url, ca_fingerprint, every_seconds, next_fetch_at, lease_until, fetched_at,
	content_sha256, entries, last_error, last_error_at, failures, created_at`

func scanSQLiteSource(row interface{ Scan(...any) error }) (KRLSource, error) {
	var (
		src                      KRLSource
		every                    int64
		next, lease, lastErrorAt sql.NullString
		fetched, created         string
	)
	err := row.Scan(&src.ID, &src.AccountID, &src.URL, &src.CAFingerprint, &every, &next, &lease, &fetched,
		&src.ContentHash, &src.Entries, &src.LastError, &lastErrorAt, &src.Failures, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return KRLSource{}, ErrNotFound
	}
	if err != nil {
		return KRLSource{}, err
	}
	src.Every = time.Duration(every) * time.Second
	if src.NextFetchAt, err = parseSQLiteTimePtr(next); err != nil {
		return KRLSource{}, err
	}
	if src.LeaseUntil, err = parseSQLiteTimePtr(lease); err != nil {
		return KRLSource{}, err
	}
	if src.LastErrorAt, err = parseSQLiteTimePtr(lastErrorAt); err != nil {
		return KRLSource{}, err
	}
	if src.FetchedAt, err = parseSQLiteTime(fetched); err != nil {
		return KRLSource{}, err
	}
	src.CreatedAt, err = parseSQLiteTime(created)
	return src, err
}

// nextFetch is when a source fetched at at is due again; nil when it is not scheduled.
func nextFetch(every time.Duration, at time.Time) *time.Time {
	if every <= 0 {
		return nil
	}
	t := storedTime(at.Add(every))
	return &t
}

func sqliteTimePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := sqliteTime(*t)
	return &s
}

func (s *sqliteStore) SetKRLSource(ctx context.Context, accountID int64, src NewKRLSource, hash string, rs []NewRevocation, at time.Time) (KRLSource, error) {
	if err := checkSource(src); err != nil {
		return KRLSource{}, err
	}
	checked, err := checkRevocations(rs)
	if err != nil {
		return KRLSource{}, fmt.Errorf("set KRL source %q: %w", src.URL, err)
	}
	checked = dedupe(checked)
	var out KRLSource
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if err := sqliteAccountExists(ctx, tx, accountID); err != nil {
			return err
		}
		var id int64
		var entries int
		err := tx.QueryRowContext(ctx, `SELECT id, entries FROM krl_sources WHERE account_id = ? AND url = ?`, accountID, src.URL).Scan(&id, &entries)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM krl_sources WHERE account_id = ?`, accountID).Scan(&n); err != nil {
				return err
			}
			if n >= MaxKRLSources {
				return ErrTooManySources
			}
			err = tx.QueryRowContext(ctx,
				`INSERT INTO krl_sources (account_id, url, fetched_at, created_at) VALUES (?, ?, ?, ?) RETURNING id`,
				accountID, src.URL, sqliteTime(at), sqliteTime(at)).Scan(&id)
			if err != nil {
				return err
			}
		case err != nil:
			return err
		}
		if err := s.replaceSourceEntries(ctx, tx, accountID, id, entries, checked, at); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx,
			`UPDATE krl_sources SET ca_fingerprint = ?, every_seconds = ?, next_fetch_at = ?, lease_until = NULL,
			     fetched_at = ?, content_sha256 = ?, last_error = '', last_error_at = NULL, failures = 0
			 WHERE id = ?`,
			src.CAFingerprint, int64(src.Every/time.Second), sqliteTimePtr(nextFetch(src.Every, at)), sqliteTime(at), hash, id)
		if err != nil {
			return err
		}
		out, err = scanSQLiteSource(tx.QueryRowContext(ctx, `SELECT `+sqliteSourceColumns+` FROM krl_sources WHERE id = ?`, id))
		return err
	})
	if err != nil {
		return KRLSource{}, fmt.Errorf("set KRL source %q of account %d: %w", src.URL, accountID, sqliteErr(err))
	}
	return out, nil
}

// replaceSourceEntries replaces the revocations of source id, which has entries now.
func (s *sqliteStore) replaceSourceEntries(ctx context.Context, tx *sql.Tx, accountID, id int64, entries int, rs []storedRevocation, at time.Time) error {
	if err := s.roomForRevocations(ctx, tx, accountID, entries, len(rs)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM revocations WHERE source_id = ?`, id); err != nil {
		return err
	}
	if _, err := sqliteInsertRevocations(ctx, tx, accountID, id, rs, at); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE krl_sources SET entries = ? WHERE id = ?`, len(rs), id)
	return err
}

func (s *sqliteStore) ListKRLSources(ctx context.Context, accountID int64) ([]KRLSource, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+sqliteSourceColumns+` FROM krl_sources WHERE account_id = ? ORDER BY id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list KRL sources of account %d: %w", accountID, err)
	}
	list, err := collectSQLite(rows, scanSQLiteSource)
	if err != nil {
		return nil, fmt.Errorf("list KRL sources of account %d: %w", accountID, err)
	}
	return list, nil
}

func (s *sqliteStore) RemoveKRLSource(ctx context.Context, accountID, id int64) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM krl_sources WHERE id = ? AND account_id = ?`, id, accountID)
	if err == nil {
		err = sqliteAffected(res)
	}
	if err != nil {
		return fmt.Errorf("remove KRL source %d of account %d: %w", id, accountID, err)
	}
	return nil
}

func (s *sqliteStore) ClaimDueKRLSource(ctx context.Context, now, leaseUntil time.Time) (KRLSource, error) {
	var src KRLSource
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		src, err = scanSQLiteSource(tx.QueryRowContext(ctx,
			`SELECT `+sqliteSourceColumns+` FROM krl_sources s
			 WHERE next_fetch_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
			   AND NOT EXISTS (SELECT 1 FROM krl_sources held
			                   WHERE held.account_id = s.account_id AND held.lease_until > ?)
			 ORDER BY next_fetch_at, id LIMIT 1`, sqliteTime(now), sqliteTime(now), sqliteTime(now)))
		if err != nil {
			return err
		}
		lease := storedTime(leaseUntil)
		src.LeaseUntil = &lease
		_, err = tx.ExecContext(ctx, `UPDATE krl_sources SET lease_until = ? WHERE id = ?`, sqliteTime(lease), src.ID)
		return err
	})
	if err != nil {
		return KRLSource{}, fmt.Errorf("claim a due KRL source: %w", err)
	}
	return src, nil
}

func (s *sqliteStore) FinishKRLFetch(ctx context.Context, id int64, lease time.Time, f KRLFetch) error {
	var checked []storedRevocation
	if f.Entries != nil {
		var err error
		if checked, err = checkRevocations(f.Entries); err != nil {
			return fmt.Errorf("finish the fetch of KRL source %d: %w", id, err)
		}
		checked = dedupe(checked)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var (
			accountID int64
			entries   int
			every     int64
			failures  int
		)
		err := tx.QueryRowContext(ctx, `SELECT account_id, entries, every_seconds, failures FROM krl_sources WHERE id = ? AND lease_until = ?`,
			id, sqliteTime(lease)).Scan(&accountID, &entries, &every, &failures)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrLeaseLost
		}
		if err != nil {
			return err
		}
		next := sqliteTimePtr(nextFetch(time.Duration(every)*time.Second, f.At))
		if f.Err != "" {
			retry := sqliteTimePtr(nextFetch(retryAfter(time.Duration(every)*time.Second, failures+1), f.At))
			_, err := tx.ExecContext(ctx,
				`UPDATE krl_sources SET lease_until = NULL, next_fetch_at = ?, last_error = ?, last_error_at = ?, failures = failures + 1 WHERE id = ?`,
				retry, f.Err, sqliteTime(f.At), id)
			return err
		}
		if f.Entries != nil {
			if err := s.replaceSourceEntries(ctx, tx, accountID, id, entries, checked, f.At); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx,
			`UPDATE krl_sources SET lease_until = NULL, next_fetch_at = ?, fetched_at = ?, content_sha256 = ?,
			     last_error = '', last_error_at = NULL, failures = 0
			 WHERE id = ?`,
			next, sqliteTime(f.At), f.ContentHash, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("finish the fetch of KRL source %d: %w", id, err)
	}
	return nil
}

// Principal map

const sqliteMappingColumns = `id, account_id, principal, services, from_patterns, ca_fingerprint, created_at, updated_at`

func scanSQLiteMapping(row interface{ Scan(...any) error }) (PrincipalMapping, error) {
	var (
		m                PrincipalMapping
		services, from   string
		created, updated string
	)
	err := row.Scan(&m.ID, &m.AccountID, &m.Principal, &services, &from, &m.CAFingerprint, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return PrincipalMapping{}, ErrNotFound
	}
	if err != nil {
		return PrincipalMapping{}, err
	}
	m.Services, m.From = splitList(services), splitList(from)
	if m.CreatedAt, err = parseSQLiteTime(created); err != nil {
		return PrincipalMapping{}, err
	}
	m.UpdatedAt, err = parseSQLiteTime(updated)
	return m, err
}

func (s *sqliteStore) SetPrincipalMapping(ctx context.Context, accountID int64, nm NewPrincipalMapping) (PrincipalMapping, bool, error) {
	if err := checkMapping(nm); err != nil {
		return PrincipalMapping{}, false, fmt.Errorf("map principal: %w", err)
	}
	var (
		m       PrincipalMapping
		created bool
	)
	at := sqliteTime(now())
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := sqliteAccountExists(ctx, tx, accountID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx,
			`UPDATE principal_map SET services = ?, from_patterns = ?, ca_fingerprint = ?, updated_at = ?
			 WHERE account_id = ? AND principal = ?`,
			joinList(nm.Services), joinList(nm.From), nm.CAFingerprint, at, accountID, nm.Principal)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return err
			}
			var count int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM principal_map WHERE account_id = ?`, accountID).Scan(&count); err != nil {
				return err
			}
			if count >= MaxPrincipalMappings {
				return ErrTooManyMappings
			}
			_, err = tx.ExecContext(ctx,
				`INSERT INTO principal_map (account_id, principal, services, from_patterns, ca_fingerprint, created_at, updated_at)
				 VALUES (?, ?, ?, ?, ?, ?, ?)`,
				accountID, nm.Principal, joinList(nm.Services), joinList(nm.From), nm.CAFingerprint, at, at)
			if err != nil {
				return err
			}
			// Mapping a new principal gives more, but a login's trust cache (auth) holds the
			// mappings it read under the account's access version: raise it, in this
			// transaction, so that the very next login reads the map again.
			if _, err := tx.ExecContext(ctx, `UPDATE access_versions SET version = version + 1 WHERE account_id = ?`, accountID); err != nil {
				return err
			}
			created = true
		}
		m, err = scanSQLiteMapping(tx.QueryRowContext(ctx,
			`SELECT `+sqliteMappingColumns+` FROM principal_map WHERE account_id = ? AND principal = ?`, accountID, nm.Principal))
		return err
	})
	if err != nil {
		return PrincipalMapping{}, false, fmt.Errorf("map principal %q in account %d: %w", nm.Principal, accountID, sqliteErr(err))
	}
	return m, created, nil
}

func (s *sqliteStore) ListPrincipalMappings(ctx context.Context, accountID int64) ([]PrincipalMapping, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT `+sqliteMappingColumns+` FROM principal_map WHERE account_id = ? ORDER BY principal`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list the principal map of account %d: %w", accountID, err)
	}
	list, err := collectSQLite(rows, scanSQLiteMapping)
	if err != nil {
		return nil, fmt.Errorf("list the principal map of account %d: %w", accountID, err)
	}
	return list, nil
}

func (s *sqliteStore) RemovePrincipalMapping(ctx context.Context, accountID int64, principal string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM principal_map WHERE account_id = ? AND principal = ?`, accountID, principal)
	if err == nil {
		err = sqliteAffected(res)
	}
	if err != nil {
		return fmt.Errorf("unmap principal %q in account %d: %w", principal, accountID, err)
	}
	return nil
}

// preparedPrincipalLookups is the most principals a lookup may have for its statement to be
// kept prepared, which bounds the statements kept to this many.
const preparedPrincipalLookups = 16

func (s *sqliteStore) PrincipalMappings(ctx context.Context, accountID int64, principals []string) ([]PrincipalMapping, error) {
	look := lookupPrincipals(principals)
	if len(look) == 0 {
		return []PrincipalMapping{}, nil
	}
	query := `SELECT ` + sqliteMappingColumns + ` FROM principal_map WHERE account_id = ? AND principal IN (` +
		placeholders(len(look)) + `) ORDER BY principal`
	args := append([]any{accountID}, look...)
	var (
		rows *sql.Rows
		err  error
	)
	if len(look) <= preparedPrincipalLookups {
		// One statement text per count of principals: the usual few are prepared once.
		var stmt *sql.Stmt
		stmt, err = s.readStatement(ctx, query)
		if err != nil {
			return nil, fmt.Errorf("look up principals in account %d: %w", accountID, err)
		}
		rows, err = stmt.QueryContext(ctx, args...)
	} else {
		rows, err = s.r.QueryContext(ctx, query, args...)
	}
	if err != nil {
		return nil, fmt.Errorf("look up principals in account %d: %w", accountID, err)
	}
	list, err := collectSQLite(rows, scanSQLiteMapping)
	if err != nil {
		return nil, fmt.Errorf("look up principals in account %d: %w", accountID, err)
	}
	return list, nil
}
