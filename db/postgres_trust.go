package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Revocations in bulk

// roomForRevocations locks the account (serialising every change to its revocations)
// and returns ErrTooManyRevocations unless, less its leaving revocations, it has room for
// adding more; ErrNotFound for a gone account.
func (s *postgresStore) roomForRevocations(ctx context.Context, tx pgx.Tx, accountID int64, leaving, adding int) error {
	if err := postgresLockAccount(ctx, tx, accountID); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM revocations WHERE account_id = $1`, accountID).Scan(&n); err != nil {
		return err
	}
	if n-leaving+adding > s.revocationBound() {
		return ErrTooManyRevocations
	}
	return nil
}

// postgresInsertRevocations adds rs, of source sourceID (0: none), in statements of insertBatch
// rows, and returns their ids.
func postgresInsertRevocations(ctx context.Context, tx pgx.Tx, accountID, sourceID int64, rs []storedRevocation, at time.Time) ([]int64, error) {
	var source *int64
	if sourceID != 0 {
		source = &sourceID
	}
	at = storedTime(at)
	ids := make([]int64, 0, len(rs))
	for len(rs) > 0 {
		batch := rs[:min(len(rs), insertBatch)]
		rs = rs[len(batch):]
		// One array per column: a statement's text and plan do not depend on the batch's size.
		var (
			kinds, values, cas, origins, keys []string
			keySet                            []bool
			los, his                          []int64
		)
		for _, r := range batch {
			kinds = append(kinds, string(r.Kind))
			values = append(values, r.Value)
			cas = append(cas, r.CAFingerprint)
			origins = append(origins, string(r.Origin))
			if r.rangeKey != nil {
				keys, keySet, los, his = append(keys, *r.rangeKey), append(keySet, true), append(los, *r.rangeLo), append(his, *r.rangeHi)
			} else {
				keys, keySet, los, his = append(keys, ""), append(keySet, false), append(los, 0), append(his, 0)
			}
		}
		rows, err := tx.Query(ctx,
			`INSERT INTO revocations (account_id, kind, value, ca_fingerprint, origin, source_id, range_key, range_lo, range_hi, created_at)
			 SELECT $1, k, v, c, o, $2, CASE WHEN ks THEN rk END, CASE WHEN ks THEN lo END, CASE WHEN ks THEN hi END, $3
			 FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bool[], $10::bigint[], $11::bigint[])
			     WITH ORDINALITY AS t (k, v, c, o, rk, ks, lo, hi, n)
			 ORDER BY n
			 RETURNING id`,
			accountID, source, at, kinds, values, cas, origins, keys, keySet, los, his)
		if err != nil {
			return nil, err
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return nil, err
		}
		ids = append(ids, got...)
	}
	return ids, nil
}

func (s *postgresStore) ImportRevocations(ctx context.Context, accountID int64, rs []NewRevocation) (int, error) {
	checked, err := checkRevocations(rs)
	if err != nil {
		return 0, fmt.Errorf("import revocations: %w", err)
	}
	var added int
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := postgresLockAccount(ctx, tx, accountID); err != nil {
			return err
		}
		have, err := postgresRevocationIdentities(ctx, tx, accountID)
		if err != nil {
			return err
		}
		fresh := newRevocations(checked, have)
		if err := s.roomForRevocations(ctx, tx, accountID, 0, len(fresh)); err != nil {
			return err
		}
		_, err = postgresInsertRevocations(ctx, tx, accountID, 0, fresh, now())
		added = len(fresh)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("import revocations into account %d: %w", accountID, postgresErr(err))
	}
	return added, nil
}

func postgresRevocationIdentities(ctx context.Context, tx pgx.Tx, accountID int64) (map[string]bool, error) {
	rows, err := tx.Query(ctx, `SELECT kind, value, ca_fingerprint FROM revocations WHERE account_id = $1 AND source_id IS NULL`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var r NewRevocation
		var kind string
		if err := rows.Scan(&kind, &r.Value, &r.CAFingerprint); err != nil {
			return nil, err
		}
		r.Kind = RevocationKind(kind)
		have[revocationIdentity(r)] = true
	}
	return have, rows.Err()
}

func (s *postgresStore) ListRevocationsPage(ctx context.Context, accountID, afterID int64, limit int) ([]Revocation, int, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT `+postgresRevocationColumns+` FROM revocations WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
		accountID, afterID, max(limit, 1))
	if err != nil {
		return nil, 0, fmt.Errorf("list revocations of account %d: %w", accountID, err)
	}
	list, err := collectPostgres(rows, scanPostgresRevocation)
	if err != nil {
		return nil, 0, fmt.Errorf("list revocations of account %d: %w", accountID, err)
	}
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM revocations WHERE account_id = $1`, accountID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count revocations of account %d: %w", accountID, err)
	}
	return list, total, nil
}

// KRL sources

const postgresSourceColumns = `id, account_id, url, ca_fingerprint, every_seconds, next_fetch_at, lease_until, fetched_at,
	content_sha256, entries, last_error, last_error_at, failures, created_at`

func scanPostgresSource(row pgx.Row) (KRLSource, error) {
	var (
		src   KRLSource
		every int64
	)
	err := row.Scan(&src.ID, &src.AccountID, &src.URL, &src.CAFingerprint, &every, &src.NextFetchAt, &src.LeaseUntil,
		&src.FetchedAt, &src.ContentHash, &src.Entries, &src.LastError, &src.LastErrorAt, &src.Failures, &src.CreatedAt)
	if err != nil {
		return KRLSource{}, err
	}
	src.Every = time.Duration(every) * time.Second
	src.FetchedAt, src.CreatedAt = src.FetchedAt.UTC(), src.CreatedAt.UTC()
	for _, t := range []**time.Time{&src.NextFetchAt, &src.LeaseUntil, &src.LastErrorAt} {
		if *t != nil {
			u := (*t).UTC()
			*t = &u
		}
	}
	return src, nil
}

func (s *postgresStore) SetKRLSource(ctx context.Context, accountID int64, src NewKRLSource, hash string, rs []NewRevocation, at time.Time) (KRLSource, error) {
	if err := checkSource(src); err != nil {
		return KRLSource{}, err
	}
	checked, err := checkRevocations(rs)
	if err != nil {
		return KRLSource{}, fmt.Errorf("set KRL source %q: %w", src.URL, err)
	}
	checked = dedupe(checked)
	at = storedTime(at)
	var out KRLSource
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := postgresLockAccount(ctx, tx, accountID); err != nil {
			return err
		}
		var id int64
		var entries int
		err := tx.QueryRow(ctx, `SELECT id, entries FROM krl_sources WHERE account_id = $1 AND url = $2`, accountID, src.URL).Scan(&id, &entries)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM krl_sources WHERE account_id = $1`, accountID).Scan(&n); err != nil {
				return err
			}
			if n >= MaxKRLSources {
				return ErrTooManySources
			}
			err = tx.QueryRow(ctx,
				`INSERT INTO krl_sources (account_id, url, fetched_at, created_at) VALUES ($1, $2, $3, $3) RETURNING id`,
				accountID, src.URL, at).Scan(&id)
			if err != nil {
				return err
			}
		case err != nil:
			return err
		}
		if err := s.replaceSourceEntries(ctx, tx, accountID, id, entries, checked, at); err != nil {
			return err
		}
		_, err = tx.Exec(ctx,
			`UPDATE krl_sources SET ca_fingerprint = $1, every_seconds = $2, next_fetch_at = $3, lease_until = NULL,
			     fetched_at = $4, content_sha256 = $5, last_error = '', last_error_at = NULL, failures = 0
			 WHERE id = $6`,
			src.CAFingerprint, int64(src.Every/time.Second), nextFetch(src.Every, at), at, hash, id)
		if err != nil {
			return err
		}
		out, err = scanPostgresSource(tx.QueryRow(ctx, `SELECT `+postgresSourceColumns+` FROM krl_sources WHERE id = $1`, id))
		return err
	})
	if err != nil {
		return KRLSource{}, fmt.Errorf("set KRL source %q of account %d: %w", src.URL, accountID, postgresErr(err))
	}
	return out, nil
}

// replaceSourceEntries replaces the revocations of source id, which has entries now.
func (s *postgresStore) replaceSourceEntries(ctx context.Context, tx pgx.Tx, accountID, id int64, entries int, rs []storedRevocation, at time.Time) error {
	if err := s.roomForRevocations(ctx, tx, accountID, entries, len(rs)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM revocations WHERE source_id = $1`, id); err != nil {
		return err
	}
	if _, err := postgresInsertRevocations(ctx, tx, accountID, id, rs, at); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE krl_sources SET entries = $1 WHERE id = $2`, len(rs), id)
	return err
}

func (s *postgresStore) ListKRLSources(ctx context.Context, accountID int64) ([]KRLSource, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+postgresSourceColumns+` FROM krl_sources WHERE account_id = $1 ORDER BY id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list KRL sources of account %d: %w", accountID, err)
	}
	list, err := collectPostgres(rows, scanPostgresSource)
	if err != nil {
		return nil, fmt.Errorf("list KRL sources of account %d: %w", accountID, err)
	}
	return list, nil
}

func (s *postgresStore) RemoveKRLSource(ctx context.Context, accountID, id int64) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM krl_sources WHERE id = $1 AND account_id = $2`, id, accountID)
	if err == nil && tag.RowsAffected() == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("remove KRL source %d of account %d: %w", id, accountID, err)
	}
	return nil
}

func (s *postgresStore) ClaimDueKRLSource(ctx context.Context, now, leaseUntil time.Time) (KRLSource, error) {
	src, err := scanPostgresSource(s.pool.QueryRow(ctx,
		`UPDATE krl_sources SET lease_until = $2
		 WHERE id = (SELECT id FROM krl_sources s
		             WHERE next_fetch_at <= $1 AND (lease_until IS NULL OR lease_until <= $1)
		               AND NOT EXISTS (SELECT 1 FROM krl_sources held
		                               WHERE held.account_id = s.account_id AND held.lease_until > $1)
		             ORDER BY next_fetch_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
		 RETURNING `+postgresSourceColumns,
		storedTime(now), storedTime(leaseUntil)))
	if err != nil {
		return KRLSource{}, fmt.Errorf("claim a due KRL source: %w", postgresErr(err))
	}
	return src, nil
}

func (s *postgresStore) FinishKRLFetch(ctx context.Context, id int64, lease time.Time, f KRLFetch) error {
	var checked []storedRevocation
	if f.Entries != nil {
		var err error
		if checked, err = checkRevocations(f.Entries); err != nil {
			return fmt.Errorf("finish the fetch of KRL source %d: %w", id, err)
		}
		checked = dedupe(checked)
	}
	at := storedTime(f.At)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			accountID int64
			entries   int
			every     int64
			failures  int
		)
		err := tx.QueryRow(ctx,
			`SELECT account_id, entries, every_seconds, failures FROM krl_sources WHERE id = $1 AND lease_until = $2 FOR UPDATE`,
			id, storedTime(lease)).Scan(&accountID, &entries, &every, &failures)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrLeaseLost
		}
		if err != nil {
			return err
		}
		next := nextFetch(time.Duration(every)*time.Second, at)
		if f.Err != "" {
			_, err := tx.Exec(ctx,
				`UPDATE krl_sources SET lease_until = NULL, next_fetch_at = $1, last_error = $2, last_error_at = $3, failures = failures + 1 WHERE id = $4`,
				nextFetch(retryAfter(time.Duration(every)*time.Second, failures+1), at), f.Err, at, id)
			return err
		}
		if f.Entries != nil {
			if err := s.replaceSourceEntries(ctx, tx, accountID, id, entries, checked, at); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx,
			`UPDATE krl_sources SET lease_until = NULL, next_fetch_at = $1, fetched_at = $2, content_sha256 = $3,
			     last_error = '', last_error_at = NULL, failures = 0
			 WHERE id = $4`,
			next, at, f.ContentHash, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("finish the fetch of KRL source %d: %w", id, postgresErr(err))
	}
	return nil
}

// Principal map

const postgresMappingColumns = `id, account_id, principal, services, from_patterns, ca_fingerprint, created_at, updated_at`

func scanPostgresMapping(row pgx.Row) (PrincipalMapping, error) {
	var (
		m              PrincipalMapping
		services, from string
	)
	err := row.Scan(&m.ID, &m.AccountID, &m.Principal, &services, &from, &m.CAFingerprint, &m.CreatedAt, &m.UpdatedAt)
	if err != nil {
		return PrincipalMapping{}, err
	}
	m.Services, m.From = splitList(services), splitList(from)
	m.CreatedAt, m.UpdatedAt = m.CreatedAt.UTC(), m.UpdatedAt.UTC()
	return m, nil
}

func (s *postgresStore) SetPrincipalMapping(ctx context.Context, accountID int64, nm NewPrincipalMapping) (PrincipalMapping, bool, error) {
	if err := checkMapping(nm); err != nil {
		return PrincipalMapping{}, false, fmt.Errorf("map principal: %w", err)
	}
	var (
		m       PrincipalMapping
		created bool
	)
	at := now()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := postgresLockAccount(ctx, tx, accountID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx,
			`UPDATE principal_map SET services = $1, from_patterns = $2, ca_fingerprint = $3, updated_at = $4
			 WHERE account_id = $5 AND principal = $6`,
			joinList(nm.Services), joinList(nm.From), nm.CAFingerprint, at, accountID, nm.Principal)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var count int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM principal_map WHERE account_id = $1`, accountID).Scan(&count); err != nil {
				return err
			}
			if count >= MaxPrincipalMappings {
				return ErrTooManyMappings
			}
			_, err = tx.Exec(ctx,
				`INSERT INTO principal_map (account_id, principal, services, from_patterns, ca_fingerprint, created_at, updated_at)
				 VALUES ($1, $2, $3, $4, $5, $6, $6)`,
				accountID, nm.Principal, joinList(nm.Services), joinList(nm.From), nm.CAFingerprint, at)
			if err != nil {
				return err
			}
			// Mapping a new principal gives more, but a login's trust cache (auth) holds the
			// mappings it read under the account's access version: raise it, in this
			// transaction, so that the very next login reads the map again.
			if _, err := tx.Exec(ctx, `UPDATE access_versions SET version = version + 1 WHERE account_id = $1`, accountID); err != nil {
				return err
			}
			created = true
		}
		m, err = scanPostgresMapping(tx.QueryRow(ctx,
			`SELECT `+postgresMappingColumns+` FROM principal_map WHERE account_id = $1 AND principal = $2`, accountID, nm.Principal))
		return err
	})
	if err != nil {
		return PrincipalMapping{}, false, fmt.Errorf("map principal %q in account %d: %w", nm.Principal, accountID, postgresErr(err))
	}
	return m, created, nil
}

func (s *postgresStore) ListPrincipalMappings(ctx context.Context, accountID int64) ([]PrincipalMapping, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT `+postgresMappingColumns+` FROM principal_map WHERE account_id = $1 ORDER BY principal COLLATE "C"`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list the principal map of account %d: %w", accountID, err)
	}
	list, err := collectPostgres(rows, scanPostgresMapping)
	if err != nil {
		return nil, fmt.Errorf("list the principal map of account %d: %w", accountID, err)
	}
	return list, nil
}

func (s *postgresStore) RemovePrincipalMapping(ctx context.Context, accountID int64, principal string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM principal_map WHERE account_id = $1 AND principal = $2`, accountID, principal)
	if err == nil && tag.RowsAffected() == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("unmap principal %q in account %d: %w", principal, accountID, err)
	}
	return nil
}

func (s *postgresStore) PrincipalMappings(ctx context.Context, accountID int64, principals []string) ([]PrincipalMapping, error) {
	look := lookupPrincipals(principals)
	if len(look) == 0 {
		return []PrincipalMapping{}, nil
	}
	names := make([]string, len(look))
	for i, p := range look {
		names[i] = p.(string)
	}
	rows, err := s.pool.Query(ctx,
		`SELECT `+postgresMappingColumns+` FROM principal_map WHERE account_id = $1 AND principal = ANY($2::text[])
		 ORDER BY principal COLLATE "C"`, accountID, names)
	if err != nil {
		return nil, fmt.Errorf("look up principals in account %d: %w", accountID, err)
	}
	list, err := collectPostgres(rows, scanPostgresMapping)
	if err != nil {
		return nil, fmt.Errorf("look up principals in account %d: %w", accountID, err)
	}
	return list, nil
}
