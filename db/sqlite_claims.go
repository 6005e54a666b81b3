package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Pending keys

const sqlitePendingColumns = `id, account_id, name, kind, algorithm, fingerprint, public_key, options, code, expires_at, attempts, created_at, added_by, added_from`

func (s *sqliteStore) AddPendingKey(ctx context.Context, accountID int64, pk NewPendingKey, now time.Time) (PendingKey, error) {
	if err := checkPendingKey(pk); err != nil {
		return PendingKey{}, fmt.Errorf("add pending key %q: %w", pk.Name, err)
	}
	p := PendingKey{AccountID: accountID, NewPendingKey: pk, CreatedAt: storedTime(now)}
	p.ExpiresAt = storedTime(pk.ExpiresAt)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM pending_keys WHERE expires_at <= ?`, sqliteTime(now)); err != nil {
			return err
		}
		if err := sqliteAccountExists(ctx, tx, accountID); err != nil {
			return err
		}
		var active, waiting int
		err := tx.QueryRowContext(ctx,
			`SELECT (SELECT count(*) FROM keys WHERE account_id = ? AND fingerprint = ?),
			        (SELECT count(*) FROM pending_keys WHERE account_id = ? AND fingerprint = ?)`,
			accountID, pk.Fingerprint, accountID, pk.Fingerprint).Scan(&active, &waiting)
		switch {
		case err != nil:
			return err
		case active > 0:
			return ErrKeyTaken
		case waiting > 0:
			return ErrPendingTaken
		}
		if err := sqliteNameFree(ctx, tx, accountID, pk.Name, now); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pending_keys WHERE account_id = ?`, accountID).Scan(&n); err != nil {
			return err
		}
		if n >= MaxPendingKeys {
			return ErrTooManyPending
		}
		err = tx.QueryRowContext(ctx,
			`INSERT INTO pending_keys (account_id, name, kind, algorithm, fingerprint, public_key, options, code, expires_at, created_at, added_by, added_from)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			accountID, pk.Name, string(pk.Kind), pk.Algorithm, pk.Fingerprint, pk.PublicKey, pk.Options, pk.Code,
			sqliteTime(p.ExpiresAt), sqliteTime(p.CreatedAt), pk.AddedBy, pk.AddedFrom).Scan(&p.ID)
		return sqliteErr(err)
	})
	if err != nil {
		return PendingKey{}, fmt.Errorf("add pending key %q: %w", pk.Name, err)
	}
	return p, nil
}

// sqliteAccountExists returns ErrNotFound when the account is gone.
func sqliteAccountExists(ctx context.Context, tx *sql.Tx, accountID int64) error {
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM accounts WHERE id = ?`, accountID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("account: %w", ErrNotFound)
	}
	return err
}

// sqliteNameFree returns ErrNameTaken when the account has a key or a pending key called name.
func sqliteNameFree(ctx context.Context, tx *sql.Tx, accountID int64, name string, now time.Time) error {
	var n int
	err := tx.QueryRowContext(ctx,
		`SELECT (SELECT count(*) FROM keys WHERE account_id = ? AND name = ?)
		      + (SELECT count(*) FROM pending_keys WHERE account_id = ? AND name = ? AND expires_at > ?)`,
		accountID, name, accountID, name, sqliteTime(now)).Scan(&n)
	if err != nil {
		return err
	}
	if n > 0 {
		return ErrNameTaken
	}
	return nil
}

func (s *sqliteStore) ListPendingKeys(ctx context.Context, accountID int64, now time.Time) ([]PendingKey, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT `+sqlitePendingColumns+` FROM pending_keys WHERE account_id = ? AND expires_at > ? ORDER BY id`,
		accountID, sqliteTime(now))
	if err != nil {
		return nil, fmt.Errorf("list pending keys of account %d: %w", accountID, err)
	}
	list, err := collectSQLite(rows, scanSQLitePending)
	if err != nil {
		return nil, fmt.Errorf("list pending keys of account %d: %w", accountID, err)
	}
	return list, nil
}

func (s *sqliteStore) PendingKeyByFingerprint(ctx context.Context, accountID int64, fingerprint string, now time.Time) (PendingKey, error) {
	p, err := scanSQLitePending(s.r.QueryRowContext(ctx,
		`SELECT `+sqlitePendingColumns+` FROM pending_keys WHERE account_id = ? AND fingerprint = ? AND expires_at > ?`,
		accountID, fingerprint, sqliteTime(now)))
	if err != nil {
		return PendingKey{}, fmt.Errorf("pending key %s of account %d: %w", fingerprint, accountID, err)
	}
	return p, nil
}

func (s *sqliteStore) RemovePendingKey(ctx context.Context, accountID, id int64) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM pending_keys WHERE id = ? AND account_id = ?`, id, accountID)
	if err == nil {
		err = sqliteAffected(res)
	}
	if err != nil {
		return fmt.Errorf("remove pending key %d of account %d: %w", id, accountID, err)
	}
	return nil
}

func (s *sqliteStore) HasPendingLoginKey(ctx context.Context, fingerprint string, now time.Time) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx,
		`SELECT count(*) FROM pending_keys WHERE fingerprint = ? AND kind = 'login' AND expires_at > ?`,
		fingerprint, sqliteTime(now)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("pending login key %s: %w", fingerprint, err)
	}
	return n > 0, nil
}

func (s *sqliteStore) PendingLoginKey(ctx context.Context, fingerprint, code string, now time.Time) (PendingKey, error) {
	p, err := scanSQLitePending(s.r.QueryRowContext(ctx,
		`SELECT `+sqlitePendingColumns+` FROM pending_keys
		 WHERE fingerprint = ? AND code = ? AND kind = 'login' AND expires_at > ?`,
		fingerprint, code, sqliteTime(now)))
	if err != nil {
		return PendingKey{}, fmt.Errorf("pending login key %s: %w", fingerprint, err)
	}
	return p, nil
}

func (s *sqliteStore) ClaimLoginKey(ctx context.Context, fingerprint, code string, now time.Time) (Key, error) {
	var (
		k     Key
		wrong bool
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		p, err := scanSQLitePending(tx.QueryRowContext(ctx,
			`SELECT `+sqlitePendingColumns+` FROM pending_keys
			 WHERE fingerprint = ? AND code = ? AND kind = 'login' AND expires_at > ?`,
			fingerprint, code, sqliteTime(now)))
		if errors.Is(err, ErrNotFound) {
			// A wrong code: it counts against every entry this key could claim, and is
			// committed, so that the bound holds across connections.
			wrong = true
			_, err := tx.ExecContext(ctx,
				`UPDATE pending_keys SET attempts = attempts + 1
				 WHERE fingerprint = ? AND kind = 'login' AND expires_at > ?`, fingerprint, sqliteTime(now))
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx,
				`DELETE FROM pending_keys WHERE fingerprint = ? AND kind = 'login' AND attempts >= ?`,
				fingerprint, MaxClaimAttempts)
			return err
		}
		if err != nil {
			return err
		}
		k, err = sqliteActivate(ctx, tx, p)
		return err
	})
	if err == nil && wrong {
		err = ErrNotFound
	}
	if err != nil {
		return Key{}, fmt.Errorf("claim login key %s: %w", fingerprint, err)
	}
	return k, nil
}

func (s *sqliteStore) ActivatePendingKey(ctx context.Context, accountID, id int64, now time.Time) (Key, error) {
	var k Key
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		p, err := scanSQLitePending(tx.QueryRowContext(ctx,
			`SELECT `+sqlitePendingColumns+` FROM pending_keys WHERE id = ? AND account_id = ? AND expires_at > ?`,
			id, accountID, sqliteTime(now)))
		if err != nil {
			return err
		}
		k, err = sqliteActivate(ctx, tx, p)
		return err
	})
	if err != nil {
		return Key{}, fmt.Errorf("activate pending key %d of account %d: %w", id, accountID, err)
	}
	return k, nil
}

// sqliteActivate turns the pending key p into a key of its account and drops every pending
// entry of its fingerprint. ErrKeyTaken: the fingerprint is active somewhere already.
func sqliteActivate(ctx context.Context, tx *sql.Tx, p PendingKey) (Key, error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM keys WHERE fingerprint = ?`, p.Fingerprint).Scan(&n); err != nil {
		return Key{}, err
	}
	if n > 0 {
		return Key{}, ErrKeyTaken
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM pending_keys WHERE fingerprint = ?`, p.Fingerprint); err != nil {
		return Key{}, err
	}
	return sqliteInsertKey(ctx, tx, p.AccountID, p.NewKey)
}

func (s *sqliteStore) UndoClaim(ctx context.Context, accountID, id int64) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM keys WHERE id = ? AND account_id = ? AND kind = 'login'`, id, accountID)
	if err == nil {
		err = sqliteAffected(res)
	}
	if err != nil {
		return fmt.Errorf("undo the claim of key %d of account %d: %w", id, accountID, err)
	}
	return nil
}

func scanSQLitePending(row interface{ Scan(...any) error }) (PendingKey, error) {
	var (
		p                PendingKey
		kind             string
		expires, created string
	)
	err := row.Scan(&p.ID, &p.AccountID, &p.Name, &kind, &p.Algorithm, &p.Fingerprint, &p.PublicKey,
		&p.Options, &p.Code, &expires, &p.Attempts, &created, &p.AddedBy, &p.AddedFrom)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return PendingKey{}, ErrNotFound
		}
		return PendingKey{}, err
	}
	p.Kind = KeyKind(kind)
	if p.ExpiresAt, err = parseSQLiteTime(expires); err != nil {
		return PendingKey{}, err
	}
	if p.CreatedAt, err = parseSQLiteTime(created); err != nil {
		return PendingKey{}, err
	}
	return p, nil
}

// Account lifecycle

func (s *sqliteStore) SignUp(ctx context.Context, name string, first NewKey, limit SignupLimit) (Account, Key, error) {
	if err := checkFirstKey(name, first); err != nil {
		return Account{}, Key{}, err
	}
	var (
		a Account
		k Key
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		t := now()
		if limit.Max > 0 {
			since := sqliteTime(t.Add(-limit.Window))
			if _, err := tx.ExecContext(ctx, `DELETE FROM signups WHERE time <= ?`, since); err != nil {
				return err
			}
			var n int
			err := tx.QueryRowContext(ctx, `SELECT count(*) FROM signups WHERE source = ? AND time > ?`,
				limit.Source, since).Scan(&n)
			if err != nil {
				return err
			}
			if n >= limit.Max {
				return ErrSignupRate
			}
		}
		var err error
		if a, k, err = sqliteCreateAccount(ctx, tx, name, first, t); err != nil {
			return err
		}
		if limit.Max > 0 {
			_, err = tx.ExecContext(ctx, `INSERT INTO signups (source, time) VALUES (?, ?)`, limit.Source, sqliteTime(t))
		}
		return err
	})
	if err != nil {
		return Account{}, Key{}, fmt.Errorf("sign up account %q: %w", name, err)
	}
	return a, k, nil
}

// sqliteCreateAccount creates account name with its first key, unless the name is held, and
// drops the pending entries of that key elsewhere: it is now active.
func sqliteCreateAccount(ctx context.Context, tx *sql.Tx, name string, first NewKey, t time.Time) (Account, Key, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM held_names WHERE name = ? AND held_until > ?`,
		name, sqliteTime(t)).Scan(&n)
	if err != nil {
		return Account{}, Key{}, err
	}
	if n > 0 {
		return Account{}, Key{}, ErrNameHeld
	}
	a := Account{Name: name, CreatedAt: storedTime(t)}
	err = tx.QueryRowContext(ctx,
		`INSERT INTO accounts (name, created_at) VALUES (?, ?) RETURNING id`,
		a.Name, sqliteTime(a.CreatedAt)).Scan(&a.ID)
	if err != nil {
		return Account{}, Key{}, sqliteErr(err)
	}
	k, err := sqliteInsertKey(ctx, tx, a.ID, first)
	if err != nil {
		return Account{}, Key{}, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM pending_keys WHERE fingerprint = ?`, first.Fingerprint); err != nil {
		return Account{}, Key{}, err
	}
	return a, k, nil
}

func (s *sqliteStore) DeleteAccount(ctx context.Context, id int64, holdUntil time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var name string
		err := tx.QueryRowContext(ctx, `SELECT name FROM accounts WHERE id = ?`, id).Scan(&name)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM held_names WHERE held_until <= ?`, sqliteTime(now())); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM accounts WHERE id = ?`, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO held_names (name, held_until) VALUES (?, ?)
			 ON CONFLICT (name) DO UPDATE SET held_until = excluded.held_until`,
			name, sqliteTime(holdUntil))
		return err
	})
	if err != nil {
		return fmt.Errorf("delete account %d: %w", id, err)
	}
	return nil
}
