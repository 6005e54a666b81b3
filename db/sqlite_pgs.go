package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// pgs on SQLite. Every write goes through the one writing connection, so a write transaction
// is exclusive: a deploy lock taken or a blob collection runs alone.

const sqlitePGSProjectColumns = `p.id, p.account_id, p.name, p.link_to, COALESCE(d.seq, 0), COALESCE(p.live_deploy_id, 0),
	COALESCE(d.files, 0), COALESCE(d.bytes, 0), p.created_at, p.updated_at, p.updated_by,
	p.acl, p.acl_accounts, p.acl_password`

const sqlitePGSProjectFrom = `pgs_projects p LEFT JOIN pgs_deploys d ON d.id = p.live_deploy_id`

func scanSQLitePGSProject(row interface{ Scan(...any) error }) (PGSProject, error) {
	var (
		p                PGSProject
		created, updated string
	)
	var aclAccounts string
	err := row.Scan(&p.ID, &p.AccountID, &p.Name, &p.LinkTo, &p.LiveSeq, &p.LiveDeployID,
		&p.Files, &p.Bytes, &created, &updated, &p.UpdatedBy, &p.ACL.Kind, &aclAccounts, &p.ACL.PasswordHash)
	p.ACL.AccountIDs = splitACLAccountIDs(aclAccounts)
	if errors.Is(err, sql.ErrNoRows) {
		return PGSProject{}, ErrNotFound
	}
	if err != nil {
		return PGSProject{}, err
	}
	if p.CreatedAt, err = parseSQLiteTime(created); err != nil {
		return PGSProject{}, err
	}
	p.UpdatedAt, err = parseSQLiteTime(updated)
	return p, err
}

func (s *sqliteStore) PGSProjects(ctx context.Context, accountID int64) ([]PGSProject, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+sqlitePGSProjectColumns+` FROM `+sqlitePGSProjectFrom+`
		WHERE p.account_id = ? ORDER BY p.name`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list projects of account %d: %w", accountID, err)
	}
	list, err := collectSQLite(rows, scanSQLitePGSProject)
	if err != nil {
		return nil, fmt.Errorf("list projects of account %d: %w", accountID, err)
	}
	return list, nil
}

func (s *sqliteStore) PGSProject(ctx context.Context, accountID int64, name string) (PGSProject, error) {
	p, err := scanSQLitePGSProject(s.r.QueryRowContext(ctx, `SELECT `+sqlitePGSProjectColumns+` FROM `+sqlitePGSProjectFrom+`
		WHERE p.account_id = ? AND p.name = ?`, accountID, name))
	if err != nil {
		return PGSProject{}, fmt.Errorf("project %q of account %d: %w", name, accountID, err)
	}
	return p, nil
}

func (s *sqliteStore) PGSLive(ctx context.Context, account, project string) (PGSLive, error) {
	var l PGSLive
	var aclAccounts string
	err := s.r.QueryRowContext(ctx, `SELECT p.account_id, p.id, p.link_to,
			COALESCE(CASE WHEN p.link_to <> '' THEN t.live_deploy_id ELSE p.live_deploy_id END, 0),
			p.acl, p.acl_accounts, p.acl_password
		FROM pgs_projects p JOIN accounts a ON a.id = p.account_id
		LEFT JOIN pgs_projects t ON p.link_to <> '' AND t.account_id = p.account_id AND t.name = p.link_to
		WHERE a.name = ? AND p.name = ?`, account, project).Scan(&l.AccountID, &l.ProjectID, &l.LinkTo, &l.DeployID,
		&l.ACL.Kind, &aclAccounts, &l.ACL.PasswordHash)
	l.ACL.AccountIDs = splitACLAccountIDs(aclAccounts)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return PGSLive{}, fmt.Errorf("live deploy of %s/%s: %w", account, project, err)
	}
	return l, nil
}

func (s *sqliteStore) PGSProjectExists(ctx context.Context, account, project string) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT
		  (SELECT count(*) FROM pgs_projects p JOIN accounts a ON a.id = p.account_id WHERE a.name = ? AND p.name = ?)
		+ (SELECT count(*) FROM pgs_locks l JOIN accounts a ON a.id = l.account_id
		   WHERE a.name = ? AND l.project = ? AND l.expires_at > ?)`,
		account, project, account, project, sqliteTime(time.Now())).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("project %s/%s: %w", account, project, err)
	}
	return n > 0, nil
}

const sqlitePGSDeployColumns = `id, project_id, seq, created_at, identity, method, serial, key_fingerprint, tool,
	added, changed, removed, files, bytes`

func scanSQLitePGSDeploy(row interface{ Scan(...any) error }) (PGSDeploy, error) {
	var (
		d       PGSDeploy
		created string
		serial  sql.NullString
	)
	err := row.Scan(&d.ID, &d.ProjectID, &d.Seq, &created, &d.Identity, &d.Method, &serial, &d.KeyFingerprint,
		&d.Tool, &d.Added, &d.Changed, &d.Removed, &d.Files, &d.Bytes)
	if errors.Is(err, sql.ErrNoRows) {
		return PGSDeploy{}, ErrNotFound
	}
	if err != nil {
		return PGSDeploy{}, err
	}
	if d.CreatedAt, err = parseSQLiteTime(created); err != nil {
		return PGSDeploy{}, err
	}
	if serial.Valid {
		if d.Serial, err = parseSerial(&serial.String); err != nil {
			return PGSDeploy{}, err
		}
	}
	return d, nil
}

func (s *sqliteStore) PGSDeploys(ctx context.Context, projectID int64) ([]PGSDeploy, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+sqlitePGSDeployColumns+` FROM pgs_deploys
		WHERE project_id = ? ORDER BY seq DESC`, projectID)
	if err != nil {
		return nil, fmt.Errorf("deploys of project %d: %w", projectID, err)
	}
	list, err := collectSQLite(rows, scanSQLitePGSDeploy)
	if err != nil {
		return nil, fmt.Errorf("deploys of project %d: %w", projectID, err)
	}
	return list, nil
}

func (s *sqliteStore) PGSFiles(ctx context.Context, deployID int64) ([]PGSFile, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT path, hash, size, mode, mtime, mtime_nsec FROM pgs_files
		WHERE deploy_id = ? ORDER BY path`, deployID)
	if err != nil {
		return nil, fmt.Errorf("files of deploy %d: %w", deployID, err)
	}
	list, err := collectSQLite(rows, func(row interface{ Scan(...any) error }) (PGSFile, error) {
		var f PGSFile
		err := row.Scan(&f.Path, &f.Hash, &f.Size, &f.Mode, &f.MTime, &f.MTimeNsec)
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("files of deploy %d: %w", deployID, err)
	}
	return list, nil
}

// Locks

func (s *sqliteStore) LockPGSProject(ctx context.Context, accountID int64, project, holder string, ttl time.Duration) (bool, error) {
	t := time.Now()
	res, err := s.w.ExecContext(ctx, `INSERT INTO pgs_locks (account_id, project, holder, expires_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (account_id, project) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE pgs_locks.holder = excluded.holder OR pgs_locks.expires_at <= ?`,
		accountID, project, holder, sqliteTime(t.Add(ttl)), sqliteTime(t))
	if err != nil {
		return false, fmt.Errorf("lock project %q of account %d: %w", project, accountID, sqlitePGSErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("lock project %q of account %d: %w", project, accountID, err)
	}
	return n == 1, nil
}

func (s *sqliteStore) UnlockPGSProject(ctx context.Context, accountID int64, project, holder string) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM pgs_locks WHERE account_id = ? AND project = ? AND holder = ?`,
		accountID, project, holder)
	if err != nil {
		return fmt.Errorf("unlock project %q of account %d: %w", project, accountID, err)
	}
	return nil
}

func (s *sqliteStore) ResetPGSLocks(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM pgs_locks`); err != nil {
		return fmt.Errorf("reset deploy locks: %w", err)
	}
	return nil
}

// sqliteHoldsLock checks, inside a write transaction, that holder has the project's lock.
func sqliteHoldsLock(ctx context.Context, tx *sql.Tx, accountID int64, project, holder string) error {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pgs_locks
		WHERE account_id = ? AND project = ? AND holder = ? AND expires_at > ?`,
		accountID, project, holder, sqliteTime(time.Now())).Scan(&n)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrLockLost
	}
	return nil
}

// sqlitePGSErr maps the pgs tables' constraint violations to the package's errors.
func sqlitePGSErr(err error) error {
	var e *sqlite.Error
	if errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY {
		return ErrNotFound
	}
	return err
}

// Blobs

func (s *sqliteStore) RecordPGSBlobs(ctx context.Context, accountID int64, blobs []PGSBlob) (int64, error) {
	var total int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var id int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM accounts WHERE id = ?`, accountID).Scan(&id); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("account %d: %w", accountID, ErrNotFound)
			}
			return err
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO pgs_blobs (account_id, hash, size, created_at)
			VALUES (?, ?, ?, ?) ON CONFLICT (account_id, hash) DO NOTHING`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		at := sqliteTime(time.Now())
		for _, b := range blobs {
			if _, err := stmt.ExecContext(ctx, accountID, b.Hash, b.Size, at); err != nil {
				return sqlitePGSErr(err)
			}
		}
		return tx.QueryRowContext(ctx, `SELECT COALESCE(sum(size), 0) FROM pgs_blobs WHERE account_id = ?`,
			accountID).Scan(&total)
	})
	if err != nil {
		return 0, fmt.Errorf("record %d blobs of account %d: %w", len(blobs), accountID, err)
	}
	return total, nil
}

func (s *sqliteStore) PGSUsage(ctx context.Context, accountID int64) (PGSUsage, error) {
	var u PGSUsage
	err := s.r.QueryRowContext(ctx, `SELECT
			(SELECT COALESCE(sum(size), 0) FROM pgs_blobs WHERE account_id = ?),
			(SELECT count(*) FROM pgs_blobs WHERE account_id = ?),
			(SELECT count(*) FROM pgs_projects WHERE account_id = ?)`,
		accountID, accountID, accountID).Scan(&u.Bytes, &u.Blobs, &u.Projects)
	if err != nil {
		return PGSUsage{}, fmt.Errorf("storage of account %d: %w", accountID, err)
	}
	return u, nil
}

// Deploys

func (s *sqliteStore) PublishPGSDeploy(ctx context.Context, p PGSPublish) (PGSDeploy, error) {
	d := p.Deploy
	d.CreatedAt = now()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := sqliteHoldsLock(ctx, tx, p.AccountID, p.Project, p.Holder); err != nil {
			return err
		}
		var linkTo string
		err := tx.QueryRowContext(ctx, `SELECT id, next_seq, link_to FROM pgs_projects WHERE account_id = ? AND name = ?`,
			p.AccountID, p.Project).Scan(&d.ProjectID, &d.Seq, &linkTo)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if err := sqliteCheckProjects(ctx, tx, p.AccountID, p.MaxProjects); err != nil {
				return err
			}
			err = tx.QueryRowContext(ctx, `INSERT INTO pgs_projects (account_id, name, created_at, updated_at)
				VALUES (?, ?, ?, ?) RETURNING id, next_seq`,
				p.AccountID, p.Project, sqliteTime(d.CreatedAt), sqliteTime(d.CreatedAt)).Scan(&d.ProjectID, &d.Seq)
			if err != nil {
				return sqlitePGSErr(err)
			}
		case err != nil:
			return err
		case linkTo != "":
			return ErrLinked
		}
		err = tx.QueryRowContext(ctx, `INSERT INTO pgs_deploys (project_id, seq, created_at, identity, method, serial,
				key_fingerprint, tool, added, changed, removed, files, bytes)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			d.ProjectID, d.Seq, sqliteTime(d.CreatedAt), d.Identity, d.Method, formatSerial(d.Serial),
			d.KeyFingerprint, d.Tool, d.Added, d.Changed, d.Removed, d.Files, d.Bytes).Scan(&d.ID)
		if err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO pgs_files (deploy_id, account_id, path, hash, size, mode, mtime, mtime_nsec)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, f := range p.Files {
			if _, err := stmt.ExecContext(ctx, d.ID, p.AccountID, f.Path, f.Hash, f.Size, f.Mode, f.MTime, f.MTimeNsec); err != nil {
				if errors.Is(sqlitePGSErr(err), ErrNotFound) {
					return fmt.Errorf("%s: %w", f.Path, ErrBlobMissing)
				}
				return err
			}
		}
		if p.Quota > 0 {
			var total int64
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(sum(size), 0) FROM pgs_blobs WHERE account_id = ?`,
				p.AccountID).Scan(&total); err != nil {
				return err
			}
			if total > p.Quota {
				return ErrOverQuota
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE pgs_projects SET next_seq = ?, live_deploy_id = ?, updated_at = ?, updated_by = ?
			WHERE id = ?`, d.Seq+1, d.ID, sqliteTime(d.CreatedAt), d.Identity, d.ProjectID)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM pgs_deploys WHERE project_id = ? AND id <> ? AND seq <= ?`,
			d.ProjectID, d.ID, d.Seq-int64(max(p.Keep, 1)))
		if err != nil || p.MaxKeptFiles <= 0 {
			return err
		}
		var kept int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(sum(d.files), 0) FROM pgs_deploys d
			JOIN pgs_projects p ON p.id = d.project_id WHERE p.account_id = ?`, p.AccountID).Scan(&kept); err != nil {
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

// sqliteLockedProject checks holder's lock and returns the project's id and link (ErrNotFound
// when the project does not exist).
func sqliteLockedProject(ctx context.Context, tx *sql.Tx, accountID int64, project, holder string) (int64, string, error) {
	if err := sqliteHoldsLock(ctx, tx, accountID, project, holder); err != nil {
		return 0, "", err
	}
	var id int64
	var link string
	err := tx.QueryRowContext(ctx, `SELECT id, link_to FROM pgs_projects WHERE account_id = ? AND name = ?`,
		accountID, project).Scan(&id, &link)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", ErrNotFound
	}
	return id, link, err
}

func (s *sqliteStore) SetPGSLive(ctx context.Context, accountID int64, project, holder string, seq int64, by string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		id, link, err := sqliteLockedProject(ctx, tx, accountID, project, holder)
		if err != nil {
			return err
		}
		if link != "" {
			return ErrLinked
		}
		var deployID int64
		err = tx.QueryRowContext(ctx, `SELECT id FROM pgs_deploys WHERE project_id = ? AND seq = ?`, id, seq).Scan(&deployID)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE pgs_projects SET live_deploy_id = ?, updated_at = ?, updated_by = ? WHERE id = ?`,
			deployID, sqliteTime(time.Now()), by, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("make deploy d%d of project %q live: %w", seq, project, err)
	}
	return nil
}

// sqliteCheckProjects refuses a new project past max (0: no limit).
func sqliteCheckProjects(ctx context.Context, tx *sql.Tx, accountID int64, max int) error {
	if max <= 0 {
		return nil
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pgs_projects WHERE account_id = ?`, accountID).Scan(&n); err != nil {
		return err
	}
	if n >= max {
		return ErrTooManyProjects
	}
	return nil
}

func (s *sqliteStore) LinkPGSProject(ctx context.Context, accountID int64, project, target, holder, by string, maxProjects int) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if project == target {
			return ErrLinkChain
		}
		if err := sqliteHoldsLock(ctx, tx, accountID, project, holder); err != nil {
			return err
		}
		var targetLink string
		err := tx.QueryRowContext(ctx, `SELECT link_to FROM pgs_projects WHERE account_id = ? AND name = ?`,
			accountID, target).Scan(&targetLink)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("target %q: %w", target, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if targetLink != "" {
			return ErrLinkChain
		}
		var linkers int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pgs_projects WHERE account_id = ? AND link_to = ?`,
			accountID, project).Scan(&linkers); err != nil {
			return err
		}
		if linkers > 0 {
			return ErrLinkChain
		}
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pgs_projects WHERE account_id = ? AND name = ?`,
			accountID, project).Scan(&exists); err != nil {
			return err
		}
		if exists == 0 {
			if err := sqliteCheckProjects(ctx, tx, accountID, maxProjects); err != nil {
				return err
			}
		}
		at := sqliteTime(time.Now())
		_, err = tx.ExecContext(ctx, `INSERT INTO pgs_projects (account_id, name, link_to, created_at, updated_at, updated_by)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (account_id, name) DO UPDATE SET link_to = excluded.link_to, updated_at = excluded.updated_at,
				updated_by = excluded.updated_by`, accountID, project, target, at, at, by)
		return sqlitePGSErr(err)
	})
	if err != nil {
		return fmt.Errorf("link project %q to %q: %w", project, target, err)
	}
	return nil
}

func (s *sqliteStore) UnlinkPGSProject(ctx context.Context, accountID int64, project, holder, by string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		id, link, err := sqliteLockedProject(ctx, tx, accountID, project, holder)
		if err != nil {
			return err
		}
		if link == "" {
			return ErrNotFound
		}
		_, err = tx.ExecContext(ctx, `UPDATE pgs_projects SET link_to = '', updated_at = ?, updated_by = ? WHERE id = ?`,
			sqliteTime(time.Now()), by, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("unlink project %q: %w", project, err)
	}
	return nil
}

func (s *sqliteStore) DeletePGSProject(ctx context.Context, accountID int64, project, holder string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		id, _, err := sqliteLockedProject(ctx, tx, accountID, project, holder)
		if err != nil {
			return err
		}
		var linkers int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pgs_projects WHERE account_id = ? AND link_to = ?`,
			accountID, project).Scan(&linkers); err != nil {
			return err
		}
		if linkers > 0 {
			return ErrLinkedTo
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM pgs_projects WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete project %q: %w", project, err)
	}
	return nil
}

func (s *sqliteStore) CollectPGSBlobs(ctx context.Context, accountID int64, limit int, force bool,
	remove func(hashes []string) ([]string, error)) (int, error) {
	var n int
	var rerr error
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if !force {
			var locks int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pgs_locks WHERE account_id = ? AND expires_at > ?`,
				accountID, sqliteTime(time.Now())).Scan(&locks); err != nil {
				return err
			}
			if locks > 0 {
				return ErrBusy
			}
		}
		rows, err := tx.QueryContext(ctx, `SELECT hash FROM pgs_blobs b WHERE account_id = ?
			AND NOT EXISTS (SELECT 1 FROM pgs_files f WHERE f.account_id = b.account_id AND f.hash = b.hash)
			LIMIT ?`, accountID, limit)
		if err != nil {
			return err
		}
		hashes, err := collectSQLite(rows, func(row interface{ Scan(...any) error }) (string, error) {
			var h string
			return h, row.Scan(&h)
		})
		if err != nil || len(hashes) == 0 {
			return err
		}
		var removed []string
		removed, rerr = remove(hashes)
		for _, h := range removed {
			if _, err := tx.ExecContext(ctx, `DELETE FROM pgs_blobs WHERE account_id = ? AND hash = ?`, accountID, h); err != nil {
				return err
			}
			n++
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

func (s *sqliteStore) PGSAccountsWithGarbage(ctx context.Context, limit int) ([]int64, error) {
	// In random order: accounts whose collection keeps being refused (a deploy holding a lock)
	// must not keep the others out of every sweep.
	rows, err := s.r.QueryContext(ctx, `SELECT account_id FROM (SELECT DISTINCT account_id FROM pgs_blobs b
		WHERE NOT EXISTS (SELECT 1 FROM pgs_files f WHERE f.account_id = b.account_id AND f.hash = b.hash))
		ORDER BY random() LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("accounts with unused blobs: %w", err)
	}
	ids, err := collectSQLite(rows, func(row interface{ Scan(...any) error }) (int64, error) {
		var id int64
		return id, row.Scan(&id)
	})
	if err != nil {
		return nil, fmt.Errorf("accounts with unused blobs: %w", err)
	}
	return ids, nil
}

func (s *sqliteStore) DeletePGSAccountData(ctx context.Context, accountID int64) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM pgs_projects WHERE account_id = ?`, accountID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM pgs_locks WHERE account_id = ?`, accountID)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete the sites of account %d: %w", accountID, err)
	}
	return nil
}

func (s *sqliteStore) SetPGSACL(ctx context.Context, accountID int64, project string, acl PGSACL) error {
	if err := checkPGSACL(acl); err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, `UPDATE pgs_projects SET acl = ?, acl_accounts = ?, acl_password = ?
		WHERE account_id = ? AND name = ?`, acl.Kind, joinACLAccountIDs(acl.AccountIDs), acl.PasswordHash, accountID, project)
	if err != nil {
		return fmt.Errorf("set the ACL of project %q of account %d: %w", project, accountID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("set the ACL of project %q of account %d: %w", project, accountID, ErrNotFound)
	}
	return nil
}
