package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pgs on Postgres, shared by several gateways. Deploy locks expire by the database's clock.
// Taking a lock locks the account row FOR SHARE and collecting blobs locks it FOR UPDATE, so
// no deploy of an account starts while its blobs are being collected. Every transaction that
// locks rows takes the account row first, then a lock row: one order, so none waits on another
// in a circle.

const postgresPGSProjectColumns = `p.id, p.account_id, p.name, p.link_to, COALESCE(d.seq, 0), COALESCE(p.live_deploy_id, 0),
	COALESCE(d.files, 0), COALESCE(d.bytes, 0), p.created_at, p.updated_at, p.updated_by,
	p.acl, p.acl_accounts, p.acl_password`

const postgresPGSProjectFrom = `pgs_projects p LEFT JOIN pgs_deploys d ON d.id = p.live_deploy_id`

func scanPostgresPGSProject(row pgx.Row) (PGSProject, error) {
	var p PGSProject
	var aclAccounts string
	err := row.Scan(&p.ID, &p.AccountID, &p.Name, &p.LinkTo, &p.LiveSeq, &p.LiveDeployID,
		&p.Files, &p.Bytes, &p.CreatedAt, &p.UpdatedAt, &p.UpdatedBy, &p.ACL.Kind, &aclAccounts, &p.ACL.PasswordHash)
	p.ACL.AccountIDs = splitACLAccountIDs(aclAccounts)
	if err != nil {
		return PGSProject{}, postgresErr(err)
	}
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return p, nil
}

func (s *postgresStore) PGSProjects(ctx context.Context, accountID int64) ([]PGSProject, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+postgresPGSProjectColumns+` FROM `+postgresPGSProjectFrom+`
		WHERE p.account_id = $1 ORDER BY p.name COLLATE "C"`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list projects of account %d: %w", accountID, err)
	}
	list, err := collectPostgres(rows, scanPostgresPGSProject)
	if err != nil {
		return nil, fmt.Errorf("list projects of account %d: %w", accountID, err)
	}
	return list, nil
}

func (s *postgresStore) PGSProject(ctx context.Context, accountID int64, name string) (PGSProject, error) {
	p, err := scanPostgresPGSProject(s.pool.QueryRow(ctx, `SELECT `+postgresPGSProjectColumns+` FROM `+postgresPGSProjectFrom+`
		WHERE p.account_id = $1 AND p.name = $2`, accountID, name))
	if err != nil {
		return PGSProject{}, fmt.Errorf("project %q of account %d: %w", name, accountID, err)
	}
	return p, nil
}

func (s *postgresStore) PGSLive(ctx context.Context, account, project string) (PGSLive, error) {
	var l PGSLive
	var aclAccounts string
	err := s.pool.QueryRow(ctx, `SELECT p.account_id, p.id, p.link_to,
			COALESCE(CASE WHEN p.link_to <> '' THEN t.live_deploy_id ELSE p.live_deploy_id END, 0),
			p.acl, p.acl_accounts, p.acl_password
		FROM pgs_projects p JOIN accounts a ON a.id = p.account_id
		LEFT JOIN pgs_projects t ON p.link_to <> '' AND t.account_id = p.account_id AND t.name = p.link_to
		WHERE a.name = $1 AND p.name = $2`, account, project).Scan(&l.AccountID, &l.ProjectID, &l.LinkTo, &l.DeployID,
		&l.ACL.Kind, &aclAccounts, &l.ACL.PasswordHash)
	if err != nil {
		return PGSLive{}, fmt.Errorf("live deploy of %s/%s: %w", account, project, postgresErr(err))
	}
	l.ACL.AccountIDs = splitACLAccountIDs(aclAccounts)
	return l, nil
}

func (s *postgresStore) PGSProjectExists(ctx context.Context, account, project string) (bool, error) {
	var exists bool
	err := s.pool.QueryRow(ctx, `SELECT
		   EXISTS (SELECT 1 FROM pgs_projects p JOIN accounts a ON a.id = p.account_id WHERE a.name = $1 AND p.name = $2)
		OR EXISTS (SELECT 1 FROM pgs_locks l JOIN accounts a ON a.id = l.account_id
		           WHERE a.name = $1 AND l.project = $2 AND l.expires_at > now())`, account, project).Scan(&exists)
	if err != nil {
		return false, fmt.Errorf("project %s/%s: %w", account, project, err)
	}
	return exists, nil
}

const postgresPGSDeployColumns = `id, project_id, seq, created_at, identity, method, serial::text, key_fingerprint, tool,
	added, changed, removed, files, bytes`

func scanPostgresPGSDeploy(row pgx.Row) (PGSDeploy, error) {
	var (
		d      PGSDeploy
		serial *string
	)
	err := row.Scan(&d.ID, &d.ProjectID, &d.Seq, &d.CreatedAt, &d.Identity, &d.Method, &serial, &d.KeyFingerprint,
		&d.Tool, &d.Added, &d.Changed, &d.Removed, &d.Files, &d.Bytes)
	if err != nil {
		return PGSDeploy{}, postgresErr(err)
	}
	d.CreatedAt = d.CreatedAt.UTC()
	if d.Serial, err = parseSerial(serial); err != nil {
		return PGSDeploy{}, err
	}
	return d, nil
}

func (s *postgresStore) PGSDeploys(ctx context.Context, projectID int64) ([]PGSDeploy, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+postgresPGSDeployColumns+` FROM pgs_deploys
		WHERE project_id = $1 ORDER BY seq DESC`, projectID)
	if err != nil {
		return nil, fmt.Errorf("deploys of project %d: %w", projectID, err)
	}
	list, err := collectPostgres(rows, scanPostgresPGSDeploy)
	if err != nil {
		return nil, fmt.Errorf("deploys of project %d: %w", projectID, err)
	}
	return list, nil
}

func (s *postgresStore) PGSFiles(ctx context.Context, deployID int64) ([]PGSFile, error) {
	rows, err := s.pool.Query(ctx, `SELECT path, hash, size, mode, mtime, mtime_nsec FROM pgs_files
		WHERE deploy_id = $1 ORDER BY path COLLATE "C"`, deployID)
	if err != nil {
		return nil, fmt.Errorf("files of deploy %d: %w", deployID, err)
	}
	list, err := collectPostgres(rows, func(row pgx.Row) (PGSFile, error) {
		var f PGSFile
		var mode int64
		err := row.Scan(&f.Path, &f.Hash, &f.Size, &mode, &f.MTime, &f.MTimeNsec)
		f.Mode = uint32(mode)
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("files of deploy %d: %w", deployID, err)
	}
	return list, nil
}

// Locks

func (s *postgresStore) LockPGSProject(ctx context.Context, accountID int64, project, holder string, ttl time.Duration) (bool, error) {
	var got bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id int64
		if err := tx.QueryRow(ctx, `SELECT id FROM accounts WHERE id = $1 FOR SHARE`, accountID).Scan(&id); err != nil {
			return postgresErr(err)
		}
		tag, err := tx.Exec(ctx, `INSERT INTO pgs_locks (account_id, project, holder, expires_at)
			VALUES ($1, $2, $3, now() + $4 * interval '1 microsecond')
			ON CONFLICT (account_id, project) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE pgs_locks.holder = excluded.holder OR pgs_locks.expires_at <= now()`,
			accountID, project, holder, ttl.Microseconds())
		got = err == nil && tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("lock project %q of account %d: %w", project, accountID, err)
	}
	return got, nil
}

func (s *postgresStore) UnlockPGSProject(ctx context.Context, accountID int64, project, holder string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM pgs_locks WHERE account_id = $1 AND project = $2 AND holder = $3`,
		accountID, project, holder)
	if err != nil {
		return fmt.Errorf("unlock project %q of account %d: %w", project, accountID, err)
	}
	return nil
}

func (s *postgresStore) ResetPGSLocks(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM pgs_locks`); err != nil {
		return fmt.Errorf("reset deploy locks: %w", err)
	}
	return nil
}

// postgresHoldsLock checks, inside a transaction, that holder has the project's lock, and keeps
// the lock row locked until the transaction ends. The account row must be locked already.
func postgresHoldsLock(ctx context.Context, tx pgx.Tx, accountID int64, project, holder string) error {
	var n int
	err := tx.QueryRow(ctx, `SELECT 1 FROM pgs_locks
		WHERE account_id = $1 AND project = $2 AND holder = $3 AND expires_at > now() FOR UPDATE`,
		accountID, project, holder).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrLockLost
	}
	return err
}

// Blobs

func (s *postgresStore) RecordPGSBlobs(ctx context.Context, accountID int64, blobs []PGSBlob) (int64, error) {
	hashes := make([]string, len(blobs))
	sizes := make([]int64, len(blobs))
	for i, b := range blobs {
		hashes[i], sizes[i] = b.Hash, b.Size
	}
	var total int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id int64
		if err := tx.QueryRow(ctx, `SELECT id FROM accounts WHERE id = $1 FOR SHARE`, accountID).Scan(&id); err != nil {
			return postgresErr(err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO pgs_blobs (account_id, hash, size, created_at)
			SELECT $1, h, z, now() FROM unnest($2::text[], $3::bigint[]) AS b (h, z)
			ON CONFLICT (account_id, hash) DO NOTHING`, accountID, hashes, sizes)
		if err != nil {
			return postgresErr(err)
		}
		return tx.QueryRow(ctx, `SELECT COALESCE(sum(size), 0)::bigint FROM pgs_blobs WHERE account_id = $1`,
			accountID).Scan(&total)
	})
	if err != nil {
		return 0, fmt.Errorf("record %d blobs of account %d: %w", len(blobs), accountID, err)
	}
	return total, nil
}

func (s *postgresStore) PGSUsage(ctx context.Context, accountID int64) (PGSUsage, error) {
	var u PGSUsage
	err := s.pool.QueryRow(ctx, `SELECT
			(SELECT COALESCE(sum(size), 0)::bigint FROM pgs_blobs WHERE account_id = $1),
			(SELECT count(*) FROM pgs_blobs WHERE account_id = $1),
			(SELECT count(*) FROM pgs_projects WHERE account_id = $1)`, accountID).Scan(&u.Bytes, &u.Blobs, &u.Projects)
	if err != nil {
		return PGSUsage{}, fmt.Errorf("storage of account %d: %w", accountID, err)
	}
	return u, nil
}

// Deploys

func (s *postgresStore) PublishPGSDeploy(ctx context.Context, p PGSPublish) (PGSDeploy, error) {
	d := p.Deploy
	d.CreatedAt = now()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := postgresLockAccount(ctx, tx, p.AccountID); err != nil {
			return err
		}
		if err := postgresHoldsLock(ctx, tx, p.AccountID, p.Project, p.Holder); err != nil {
			return err
		}
		var linkTo string
		err := tx.QueryRow(ctx, `SELECT id, next_seq, link_to FROM pgs_projects WHERE account_id = $1 AND name = $2 FOR UPDATE`,
			p.AccountID, p.Project).Scan(&d.ProjectID, &d.Seq, &linkTo)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if err := postgresCheckProjects(ctx, tx, p.AccountID, p.MaxProjects); err != nil {
				return err
			}
			err = tx.QueryRow(ctx, `INSERT INTO pgs_projects (account_id, name, created_at, updated_at)
				VALUES ($1, $2, $3, $3) RETURNING id, next_seq`, p.AccountID, p.Project, d.CreatedAt).Scan(&d.ProjectID, &d.Seq)
			if err != nil {
				return postgresErr(err)
			}
		case err != nil:
			return err
		case linkTo != "":
			return ErrLinked
		}
		err = tx.QueryRow(ctx, `INSERT INTO pgs_deploys (project_id, seq, created_at, identity, method, serial,
				key_fingerprint, tool, added, changed, removed, files, bytes)
			VALUES ($1, $2, $3, $4, $5, $6::text::numeric, $7, $8, $9, $10, $11, $12, $13) RETURNING id`,
			d.ProjectID, d.Seq, d.CreatedAt, d.Identity, d.Method, formatSerial(d.Serial),
			d.KeyFingerprint, d.Tool, d.Added, d.Changed, d.Removed, d.Files, d.Bytes).Scan(&d.ID)
		if err != nil {
			return err
		}
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"pgs_files"},
			[]string{"deploy_id", "account_id", "path", "hash", "size", "mode", "mtime", "mtime_nsec"},
			pgx.CopyFromSlice(len(p.Files), func(i int) ([]any, error) {
				f := p.Files[i]
				return []any{d.ID, p.AccountID, f.Path, f.Hash, f.Size, int64(f.Mode), f.MTime, f.MTimeNsec}, nil
			}))
		if err != nil {
			var e *pgconn.PgError
			if errors.As(err, &e) && e.Code == pgForeignKey {
				return ErrBlobMissing
			}
			return err
		}
		if p.Quota > 0 {
			var total int64
			if err := tx.QueryRow(ctx, `SELECT COALESCE(sum(size), 0)::bigint FROM pgs_blobs WHERE account_id = $1`,
				p.AccountID).Scan(&total); err != nil {
				return err
			}
			if total > p.Quota {
				return ErrOverQuota
			}
		}
		_, err = tx.Exec(ctx, `UPDATE pgs_projects SET next_seq = $1, live_deploy_id = $2, updated_at = $3, updated_by = $4
			WHERE id = $5`, d.Seq+1, d.ID, d.CreatedAt, d.Identity, d.ProjectID)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM pgs_deploys WHERE project_id = $1 AND id <> $2 AND seq <= $3`,
			d.ProjectID, d.ID, d.Seq-int64(max(p.Keep, 1)))
		if err != nil || p.MaxKeptFiles <= 0 {
			return err
		}
		var kept int64
		if err := tx.QueryRow(ctx, `SELECT COALESCE(sum(d.files), 0)::bigint FROM pgs_deploys d
			JOIN pgs_projects p ON p.id = d.project_id WHERE p.account_id = $1`, p.AccountID).Scan(&kept); err != nil {
			return err
		}
		if kept > p.MaxKeptFiles {
			return ErrTooManyKeptFiles
		}
		return nil
	})
	if err != nil {
		return PGSDeploy{}, fmt.Errorf("publish a deploy of project %q of account %d: %w", p.Project, p.AccountID, err)
	}
	return d, nil
}

// postgresLockedProject checks holder's lock and returns the project's id and link, locking
// its row (ErrNotFound when the project does not exist).
func postgresLockedProject(ctx context.Context, tx pgx.Tx, accountID int64, project, holder string) (int64, string, error) {
	if err := postgresLockAccount(ctx, tx, accountID); err != nil {
		return 0, "", err
	}
	if err := postgresHoldsLock(ctx, tx, accountID, project, holder); err != nil {
		return 0, "", err
	}
	var id int64
	var link string
	err := tx.QueryRow(ctx, `SELECT id, link_to FROM pgs_projects WHERE account_id = $1 AND name = $2 FOR UPDATE`,
		accountID, project).Scan(&id, &link)
	return id, link, postgresErr(err)
}

func (s *postgresStore) SetPGSLive(ctx context.Context, accountID int64, project, holder string, seq int64, by string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		id, link, err := postgresLockedProject(ctx, tx, accountID, project, holder)
		if err != nil {
			return err
		}
		if link != "" {
			return ErrLinked
		}
		var deployID int64
		err = tx.QueryRow(ctx, `SELECT id FROM pgs_deploys WHERE project_id = $1 AND seq = $2`, id, seq).Scan(&deployID)
		if err != nil {
			return postgresErr(err)
		}
		_, err = tx.Exec(ctx, `UPDATE pgs_projects SET live_deploy_id = $1, updated_at = $2, updated_by = $3 WHERE id = $4`,
			deployID, now(), by, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("make deploy d%d of project %q live: %w", seq, project, err)
	}
	return nil
}

// postgresCheckProjects refuses a new project past max (0: no limit). The caller has locked
// the account row, so that two new projects cannot both pass.
func postgresCheckProjects(ctx context.Context, tx pgx.Tx, accountID int64, max int) error {
	if max <= 0 {
		return nil
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM pgs_projects WHERE account_id = $1`, accountID).Scan(&n); err != nil {
		return err
	}
	if n >= max {
		return ErrTooManyProjects
	}
	return nil
}

func (s *postgresStore) LinkPGSProject(ctx context.Context, accountID int64, project, target, holder, by string, maxProjects int) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if project == target {
			return ErrLinkChain
		}
		// The account row's lock also keeps a concurrent link from closing a chain.
		if err := postgresLockAccount(ctx, tx, accountID); err != nil {
			return err
		}
		if err := postgresHoldsLock(ctx, tx, accountID, project, holder); err != nil {
			return err
		}
		var targetLink string
		err := tx.QueryRow(ctx, `SELECT link_to FROM pgs_projects WHERE account_id = $1 AND name = $2`,
			accountID, target).Scan(&targetLink)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("target %q: %w", target, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if targetLink != "" {
			return ErrLinkChain
		}
		var linkers int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM pgs_projects WHERE account_id = $1 AND link_to = $2`,
			accountID, project).Scan(&linkers); err != nil {
			return err
		}
		if linkers > 0 {
			return ErrLinkChain
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pgs_projects WHERE account_id = $1 AND name = $2)`,
			accountID, project).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			if err := postgresCheckProjects(ctx, tx, accountID, maxProjects); err != nil {
				return err
			}
		}
		at := now()
		_, err = tx.Exec(ctx, `INSERT INTO pgs_projects (account_id, name, link_to, created_at, updated_at, updated_by)
			VALUES ($1, $2, $3, $4, $4, $5)
			ON CONFLICT (account_id, name) DO UPDATE SET link_to = excluded.link_to, updated_at = excluded.updated_at,
				updated_by = excluded.updated_by`, accountID, project, target, at, by)
		return postgresErr(err)
	})
	if err != nil {
		return fmt.Errorf("link project %q to %q: %w", project, target, err)
	}
	return nil
}

func (s *postgresStore) UnlinkPGSProject(ctx context.Context, accountID int64, project, holder, by string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		id, link, err := postgresLockedProject(ctx, tx, accountID, project, holder)
		if err != nil {
			return err
		}
		if link == "" {
			return ErrNotFound
		}
		_, err = tx.Exec(ctx, `UPDATE pgs_projects SET link_to = '', updated_at = $1, updated_by = $2 WHERE id = $3`,
			now(), by, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("unlink project %q: %w", project, err)
	}
	return nil
}

func (s *postgresStore) DeletePGSProject(ctx context.Context, accountID int64, project, holder string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		id, _, err := postgresLockedProject(ctx, tx, accountID, project, holder)
		if err != nil {
			return err
		}
		var linkers int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM pgs_projects WHERE account_id = $1 AND link_to = $2`,
			accountID, project).Scan(&linkers); err != nil {
			return err
		}
		if linkers > 0 {
			return ErrLinkedTo
		}
		_, err = tx.Exec(ctx, `DELETE FROM pgs_projects WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete project %q: %w", project, err)
	}
	return nil
}

func (s *postgresStore) CollectPGSBlobs(ctx context.Context, accountID int64, limit int, force bool,
	remove func(hashes []string) ([]string, error)) (int, error) {
	var n int
	var rerr error
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// A deleted account's records are collected all the same; no deploy can start for it.
		var id int64
		err := tx.QueryRow(ctx, `SELECT id FROM accounts WHERE id = $1 FOR UPDATE`, accountID).Scan(&id)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if !force {
			var busy bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pgs_locks WHERE account_id = $1 AND expires_at > now())`,
				accountID).Scan(&busy); err != nil {
				return err
			}
			if busy {
				return ErrBusy
			}
		}
		rows, err := tx.Query(ctx, `SELECT hash FROM pgs_blobs b WHERE account_id = $1
			AND NOT EXISTS (SELECT 1 FROM pgs_files f WHERE f.account_id = b.account_id AND f.hash = b.hash)
			LIMIT $2`, accountID, limit)
		if err != nil {
			return err
		}
		hashes, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(hashes) == 0 {
			return err
		}
		var removed []string
		removed, rerr = remove(hashes)
		if len(removed) > 0 {
			tag, err := tx.Exec(ctx, `DELETE FROM pgs_blobs WHERE account_id = $1 AND hash = ANY($2::text[])`, accountID, removed)
			if err != nil {
				return err
			}
			n = int(tag.RowsAffected())
		}
		return nil
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return n, fmt.Errorf("collect blobs of account %d: %w", accountID, err)
	}
	return n, nil
}

func (s *postgresStore) PGSAccountsWithGarbage(ctx context.Context, limit int) ([]int64, error) {
	// In random order: accounts whose collection keeps being refused (a deploy holding a lock)
	// must not keep the others out of every sweep.
	rows, err := s.pool.Query(ctx, `SELECT account_id FROM (SELECT DISTINCT account_id FROM pgs_blobs b
		WHERE NOT EXISTS (SELECT 1 FROM pgs_files f WHERE f.account_id = b.account_id AND f.hash = b.hash)) g
		ORDER BY random() LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("accounts with unused blobs: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("accounts with unused blobs: %w", err)
	}
	return ids, nil
}

func (s *postgresStore) DeletePGSAccountData(ctx context.Context, accountID int64) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM pgs_projects WHERE account_id = $1`, accountID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM pgs_locks WHERE account_id = $1`, accountID)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete the sites of account %d: %w", accountID, err)
	}
	return nil
}

func (s *postgresStore) SetPGSACL(ctx context.Context, accountID int64, project string, acl PGSACL) error {
	if err := checkPGSACL(acl); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE pgs_projects SET acl = $1, acl_accounts = $2, acl_password = $3
		WHERE account_id = $4 AND name = $5`, acl.Kind, joinACLAccountIDs(acl.AccountIDs), acl.PasswordHash, accountID, project)
	if err != nil {
		return fmt.Errorf("set the ACL of project %q of account %d: %w", project, accountID, postgresErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set the ACL of project %q of account %d: %w", project, accountID, ErrNotFound)
	}
	return nil
}
