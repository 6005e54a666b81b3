package db_test

import (
	"testing"
)

// TestSQLiteMTimeNsecUpgrade and TestPostgresMTimeNsecUpgrade: migration 00012 gives the files
// of existing deploys 0 nanoseconds and keeps their whole seconds; a new file keeps its
// nanoseconds; migrating down drops the column and keeps the files.
func TestSQLiteMTimeNsecUpgrade(t *testing.T) { testMTimeNsecUpgrade(t, sqliteUpgradeDB(t)) }

func TestPostgresMTimeNsecUpgrade(t *testing.T) { testMTimeNsecUpgrade(t, postgresUpgradeDB(t)) }

func testMTimeNsecUpgrade(t *testing.T, u upgradeDB) {
	raw := u.raw()
	u.migrateBefore(t, raw, "00012")
	ts := "2026-01-02T03:04:05.000000Z"
	b := blobOf("old")
	exec(t, raw,
		`INSERT INTO accounts (name, created_at) VALUES ('alice', '`+ts+`')`,
		`INSERT INTO pgs_projects (account_id, name, created_at, updated_at, next_seq)
		 SELECT id, 'blog', '`+ts+`', '`+ts+`', 2 FROM accounts WHERE name = 'alice'`,
		`INSERT INTO pgs_deploys (project_id, seq, created_at) SELECT id, 1, '`+ts+`' FROM pgs_projects`,
		`UPDATE pgs_projects SET live_deploy_id = (SELECT id FROM pgs_deploys)`,
		`INSERT INTO pgs_blobs (account_id, hash, size, created_at) SELECT id, '`+b.Hash+`', 3, '`+ts+`' FROM accounts`,
		`INSERT INTO pgs_files (deploy_id, account_id, path, hash, size, mode, mtime)
		 SELECT d.id, a.id, 'index.html', '`+b.Hash+`', 3, 420, 1700000000 FROM pgs_deploys d, accounts a`,
	)
	var deployID int64
	if err := raw.QueryRowContext(ctx, `SELECT id FROM pgs_deploys`).Scan(&deployID); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	s := u.open()
	files, err := s.PGSFiles(ctx, deployID)
	if err != nil || len(files) != 1 || files[0].MTime != 1700000000 || files[0].MTimeNsec != 0 {
		t.Fatalf("files after the upgrade: %+v, %v; want index.html at 1700000000 s and 0 ns", files, err)
	}
	a, err := s.AccountByName(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	lock(t, s, a.ID, "blog", "h1")
	d2 := publish(t, s, a.ID, "blog", "h1", 10, map[string]string{"index.html": "new"})
	if files, err := s.PGSFiles(ctx, d2.ID); err != nil || len(files) != 1 || files[0].MTimeNsec != 123_456_789 {
		t.Fatalf("a new file: %+v, %v; want 123456789 ns", files, err)
	}
	s.Close()

	// Down again: the column goes, the files stay.
	raw = u.raw()
	defer raw.Close()
	p := u.provider(t, raw)
	if _, err := p.Down(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := raw.QueryRowContext(ctx, `SELECT count(*) FROM pgs_files WHERE mtime = 1700000000`).Scan(&n); err != nil || n != 2 {
		t.Errorf("files after migrating down: %d, %v; want 2", n, err)
	}
	if _, err := raw.ExecContext(ctx, `SELECT mtime_nsec FROM pgs_files`); err == nil {
		t.Error("mtime_nsec is still there after migrating down")
	}
	// And up once more.
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
}
