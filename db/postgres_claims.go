package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Advisory lock classes (the first key of pg_advisory_xact_lock(int, int)); the second key is
// hashtext of the text the lock serialises on.
const (
	pgLockAccountName  = 7001 // creating or deleting the account of a name
	pgLockSignupSource = 7002 // counting and recording the sign-ups of a source address
	pgLockKey          = 7003 // making a fingerprint active: claims, activations, sign-ups
)

// postgresLockKey serialises, for the rest of the transaction, everything that makes the
// fingerprint active (a claim, an activation, a new account's first key) with everything else
// that does, and with the wrong claims that count against its entries. Without it, two claims
// of one key into two accounts each lock their own entry and then wait for the other's, and
// guesses made at once would all read an entry before any of their counts committed.
func postgresLockKey(ctx context.Context, tx pgx.Tx, fingerprint string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, pgLockKey, fingerprint)
	return err
}

// Constraint names of pending keys, as the migration declares them.
const (
	pgPendingCode        = "pending_keys_code_key"
	pgPendingFingerprint = "pending_keys_account_id_fingerprint_key"
	pgPendingName        = "pending_keys_account_id_name_key"
)

// Pending keys

const postgresPendingColumns = `id, account_id, name, kind, algorithm, fingerprint, public_key, options, code, expires_at, attempts, created_at, added_by, added_from`

// postgresLockAccount locks the account's row for the rest of the transaction, so that changes
// to its keys and pending keys (names unique across both) happen one at a time.
func postgresLockAccount(ctx context.Context, tx pgx.Tx, accountID int64) error {
	var id int64
	err := tx.QueryRow(ctx, `SELECT id FROM accounts WHERE id = $1 FOR UPDATE`, accountID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("account: %w", ErrNotFound)
	}
	return err
}

// postgresNameFree returns ErrNameTaken when the account has a key or a pending key called name.
func postgresNameFree(ctx context.Context, tx pgx.Tx, accountID int64, name string, now time.Time) error {
	var n int
	err := tx.QueryRow(ctx,
		`SELECT (SELECT count(*) FROM keys WHERE account_id = $1 AND name = $2)
		      + (SELECT count(*) FROM pending_keys WHERE account_id = $1 AND name = $2 AND expires_at > $3)`,
		accountID, name, storedTime(now)).Scan(&n)
	if err != nil {
		return err
	}
	if n > 0 {
		return ErrNameTaken
	}
	return nil
}

func (s *postgresStore) AddPendingKey(ctx context.Context, accountID int64, pk NewPendingKey, now time.Time) (PendingKey, error) {
	if err := checkPendingKey(pk); err != nil {
		return PendingKey{}, fmt.Errorf("add pending key %q: %w", pk.Name, err)
	}
	p := PendingKey{AccountID: accountID, NewPendingKey: pk, CreatedAt: storedTime(now)}
	p.ExpiresAt = storedTime(pk.ExpiresAt)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM pending_keys WHERE expires_at <= $1`, storedTime(now)); err != nil {
			return err
		}
		if err := postgresLockAccount(ctx, tx, accountID); err != nil {
			return err
		}
		var active, waiting int
		err := tx.QueryRow(ctx,
			`SELECT (SELECT count(*) FROM keys WHERE account_id = $1 AND fingerprint = $2),
			        (SELECT count(*) FROM pending_keys WHERE account_id = $1 AND fingerprint = $2)`,
			accountID, pk.Fingerprint).Scan(&active, &waiting)
		switch {
		case err != nil:
			return err
		case active > 0:
			return ErrKeyTaken
		case waiting > 0:
			return ErrPendingTaken
		}
		if err := postgresNameFree(ctx, tx, accountID, pk.Name, now); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM pending_keys WHERE account_id = $1`, accountID).Scan(&n); err != nil {
			return err
		}
		if n >= MaxPendingKeys {
			return ErrTooManyPending
		}
		err = tx.QueryRow(ctx,
			`INSERT INTO pending_keys (account_id, name, kind, algorithm, fingerprint, public_key, options, code, expires_at, created_at, added_by, added_from)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id`,
			accountID, pk.Name, string(pk.Kind), pk.Algorithm, pk.Fingerprint, pk.PublicKey, pk.Options, pk.Code,
			p.ExpiresAt, p.CreatedAt, pk.AddedBy, pk.AddedFrom).Scan(&p.ID)
		return postgresErr(err)
	})
	if err != nil {
		return PendingKey{}, fmt.Errorf("add pending key %q: %w", pk.Name, err)
	}
	return p, nil
}

func (s *postgresStore) ListPendingKeys(ctx context.Context, accountID int64, now time.Time) ([]PendingKey, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT `+postgresPendingColumns+` FROM pending_keys WHERE account_id = $1 AND expires_at > $2 ORDER BY id`,
		accountID, storedTime(now))
	if err != nil {
		return nil, fmt.Errorf("list pending keys of account %d: %w", accountID, err)
	}
	list, err := collectPostgres(rows, scanPostgresPending)
	if err != nil {
		return nil, fmt.Errorf("list pending keys of account %d: %w", accountID, err)
	}
	return list, nil
}

func (s *postgresStore) PendingKeyByFingerprint(ctx context.Context, accountID int64, fingerprint string, now time.Time) (PendingKey, error) {
	p, err := scanPostgresPending(s.pool.QueryRow(ctx,
		`SELECT `+postgresPendingColumns+` FROM pending_keys WHERE account_id = $1 AND fingerprint = $2 AND expires_at > $3`,
		accountID, fingerprint, storedTime(now)))
	if err != nil {
		return PendingKey{}, fmt.Errorf("pending key %s of account %d: %w", fingerprint, accountID, postgresErr(err))
	}
	return p, nil
}

func (s *postgresStore) RemovePendingKey(ctx context.Context, accountID, id int64) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM pending_keys WHERE id = $1 AND account_id = $2`, id, accountID)
	if err == nil && tag.RowsAffected() == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("remove pending key %d of account %d: %w", id, accountID, err)
	}
	return nil
}

func (s *postgresStore) HasPendingLoginKey(ctx context.Context, fingerprint string, now time.Time) (bool, error) {
	var found bool
	err := s.pool.QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM pending_keys WHERE fingerprint = $1 AND kind = 'login' AND expires_at > $2)`,
		fingerprint, storedTime(now)).Scan(&found)
	if err != nil {
		return false, fmt.Errorf("pending login key %s: %w", fingerprint, err)
	}
	return found, nil
}

func (s *postgresStore) PendingLoginKey(ctx context.Context, fingerprint, code string, now time.Time) (PendingKey, error) {
	p, err := scanPostgresPending(s.pool.QueryRow(ctx,
		`SELECT `+postgresPendingColumns+` FROM pending_keys
		 WHERE fingerprint = $1 AND code = $2 AND kind = 'login' AND expires_at > $3`,
		fingerprint, code, storedTime(now)))
	if err != nil {
		return PendingKey{}, fmt.Errorf("pending login key %s: %w", fingerprint, postgresErr(err))
	}
	return p, nil
}

func (s *postgresStore) ClaimLoginKey(ctx context.Context, fingerprint, code string, now time.Time) (Key, error) {
	var (
		k     Key
		wrong bool
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := postgresLockKey(ctx, tx, fingerprint); err != nil {
			return err
		}
		var accountID, id int64
		err := tx.QueryRow(ctx,
			`SELECT account_id, id FROM pending_keys
			 WHERE fingerprint = $1 AND code = $2 AND kind = 'login' AND expires_at > $3`,
			fingerprint, code, storedTime(now)).Scan(&accountID, &id)
		if errors.Is(err, pgx.ErrNoRows) {
			// A wrong code: it counts against every entry this key could claim, and is
			// committed, so that the bound holds across connections.
			wrong = true
			_, err := tx.Exec(ctx,
				`UPDATE pending_keys SET attempts = attempts + 1
				 WHERE fingerprint = $1 AND kind = 'login' AND expires_at > $2`, fingerprint, storedTime(now))
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx,
				`DELETE FROM pending_keys WHERE fingerprint = $1 AND kind = 'login' AND attempts >= $2`,
				fingerprint, MaxClaimAttempts)
			return err
		}
		if err != nil {
			return err
		}
		k, err = postgresActivate(ctx, tx, accountID, id, now)
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

func (s *postgresStore) ActivatePendingKey(ctx context.Context, accountID, id int64, now time.Time) (Key, error) {
	var k Key
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		k, err = postgresActivate(ctx, tx, accountID, id, now)
		return err
	})
	if err != nil {
		return Key{}, fmt.Errorf("activate pending key %d of account %d: %w", id, accountID, err)
	}
	return k, nil
}

// postgresActivate turns the account's pending key id into a key of the account and drops
// every pending entry of its fingerprint. ErrNotFound: the entry is gone or expired (a
// concurrent claim took it); ErrKeyTaken: the fingerprint is active somewhere already.
func postgresActivate(ctx context.Context, tx pgx.Tx, accountID, id int64, now time.Time) (Key, error) {
	var fingerprint string
	err := tx.QueryRow(ctx, `SELECT fingerprint FROM pending_keys WHERE id = $1 AND account_id = $2`, id, accountID).Scan(&fingerprint)
	if err != nil {
		return Key{}, postgresErr(err)
	}
	if err := postgresLockKey(ctx, tx, fingerprint); err != nil {
		return Key{}, err
	}
	if err := postgresLockAccount(ctx, tx, accountID); err != nil {
		return Key{}, err
	}
	p, err := scanPostgresPending(tx.QueryRow(ctx,
		`SELECT `+postgresPendingColumns+` FROM pending_keys WHERE id = $1 AND account_id = $2 AND expires_at > $3 FOR UPDATE`,
		id, accountID, storedTime(now)))
	if err != nil {
		return Key{}, postgresErr(err)
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM keys WHERE fingerprint = $1`, p.Fingerprint).Scan(&n); err != nil {
		return Key{}, err
	}
	if n > 0 {
		return Key{}, ErrKeyTaken
	}
	if _, err := tx.Exec(ctx, `DELETE FROM pending_keys WHERE fingerprint = $1`, p.Fingerprint); err != nil {
		return Key{}, err
	}
	return postgresInsertKey(ctx, tx, p.AccountID, p.NewKey)
}

func (s *postgresStore) UndoClaim(ctx context.Context, accountID, id int64) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM keys WHERE id = $1 AND account_id = $2 AND kind = 'login'`, id, accountID)
	if err == nil && tag.RowsAffected() == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("undo the claim of key %d of account %d: %w", id, accountID, postgresErr(err))
	}
	return nil
}

func scanPostgresPending(row pgx.Row) (PendingKey, error) {
	var (
		p    PendingKey
		kind string
	)
	err := row.Scan(&p.ID, &p.AccountID, &p.Name, &kind, &p.Algorithm, &p.Fingerprint, &p.PublicKey,
		&p.Options, &p.Code, &p.ExpiresAt, &p.Attempts, &p.CreatedAt, &p.AddedBy, &p.AddedFrom)
	if err != nil {
		return PendingKey{}, err
	}
	p.Kind = KeyKind(kind)
	p.ExpiresAt, p.CreatedAt = p.ExpiresAt.UTC(), p.CreatedAt.UTC()
	return p, nil
}

// Account lifecycle

func (s *postgresStore) SignUp(ctx context.Context, name string, first NewKey, limit SignupLimit) (Account, Key, error) {
	if err := checkFirstKey(name, first); err != nil {
		return Account{}, Key{}, err
	}
	var (
		a Account
		k Key
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		t := now()
		if limit.Max > 0 {
			// Two sign-ups from one source count one after the other.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, pgLockSignupSource, limit.Source); err != nil {
				return err
			}
			since := t.Add(-limit.Window)
			if _, err := tx.Exec(ctx, `DELETE FROM signups WHERE time <= $1`, since); err != nil {
				return err
			}
			var n int
			err := tx.QueryRow(ctx, `SELECT count(*) FROM signups WHERE source = $1 AND time > $2`,
				limit.Source, since).Scan(&n)
			if err != nil {
				return err
			}
			if n >= limit.Max {
				return ErrSignupRate
			}
		}
		var err error
		if a, k, err = postgresCreateAccount(ctx, tx, name, first, t); err != nil {
			return err
		}
		if limit.Max > 0 {
			_, err = tx.Exec(ctx, `INSERT INTO signups (source, time) VALUES ($1, $2)`, limit.Source, t)
		}
		return err
	})
	if err != nil {
		return Account{}, Key{}, fmt.Errorf("sign up account %q: %w", name, err)
	}
	return a, k, nil
}

// postgresCreateAccount creates account name with its first key, unless the name is held, and
// drops the pending entries of that key elsewhere: it is now active.
func postgresCreateAccount(ctx context.Context, tx pgx.Tx, name string, first NewKey, t time.Time) (Account, Key, error) {
	// A deletion of the same name commits its hold before or after this check, never between.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, pgLockAccountName, name); err != nil {
		return Account{}, Key{}, err
	}
	var held bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM held_names WHERE name = $1 AND held_until > $2)`,
		name, t).Scan(&held)
	if err != nil {
		return Account{}, Key{}, err
	}
	if held {
		return Account{}, Key{}, ErrNameHeld
	}
	if err := postgresLockKey(ctx, tx, first.Fingerprint); err != nil {
		return Account{}, Key{}, err
	}
	a := Account{Name: name, CreatedAt: t}
	err = tx.QueryRow(ctx,
		`INSERT INTO accounts (name, created_at) VALUES ($1, $2) RETURNING id`,
		a.Name, a.CreatedAt).Scan(&a.ID)
	if err != nil {
		return Account{}, Key{}, postgresErr(err)
	}
	k, err := postgresInsertKey(ctx, tx, a.ID, first)
	if err != nil {
		return Account{}, Key{}, err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM pending_keys WHERE fingerprint = $1`, first.Fingerprint); err != nil {
		return Account{}, Key{}, err
	}
	return a, k, nil
}

func (s *postgresStore) DeleteAccount(ctx context.Context, id int64, holdUntil time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var name string
		err := tx.QueryRow(ctx, `SELECT name FROM accounts WHERE id = $1`, id).Scan(&name)
		if err != nil {
			return postgresErr(err)
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, pgLockAccountName, name); err != nil {
			return err
		}
		if err := postgresLockAccount(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM held_names WHERE held_until <= $1`, now()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM accounts WHERE id = $1`, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx,
			`INSERT INTO held_names (name, held_until) VALUES ($1, $2)
			 ON CONFLICT (name) DO UPDATE SET held_until = excluded.held_until`,
			name, storedTime(holdUntil))
		return err
	})
	if err != nil {
		return fmt.Errorf("delete account %d: %w", id, err)
	}
	return nil
}
