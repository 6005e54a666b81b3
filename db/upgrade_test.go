package db_test

import (
	"database/sql"
	"io/fs"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/migrations"
)

// TestSQLiteUpgradeKeepsData: migration 00002 rebuilds accounts, keys and revocations on
// SQLite (for ids that are never reused). An existing database keeps every row, the access
// log keeps its account ids (nothing cascades), and ids go on from the largest.
func TestSQLiteUpgradeKeepsData(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, db.SQLiteFile)
	first, err := fs.ReadFile(migrations.SQLite, "00001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	p, err := goose.NewProvider(goose.DialectSQLite3, raw, fstest.MapFS{"00001_init.sql": {Data: first}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	ts := "2026-01-02T03:04:05.000000Z"
	exec(t, raw,
		`INSERT INTO accounts (id, name, created_at) VALUES (1, 'alice', '`+ts+`'), (2, 'bob', '`+ts+`')`,
		`INSERT INTO keys (id, account_id, name, kind, algorithm, fingerprint, public_key, created_at)
		 VALUES (1, 1, 'laptop', 'login', 'ssh-ed25519', 'SHA256:a', 'ssh-ed25519 AAAA', '`+ts+`'),
		        (2, 2, 'ca', 'ca', 'ssh-ed25519', 'SHA256:b', 'ssh-ed25519 BBBB', '`+ts+`')`,
		`INSERT INTO revocations (id, account_id, kind, value, created_at) VALUES (5, 1, 'serial', '42', '`+ts+`')`,
		`INSERT INTO access_log (time, account_id, account, service, method, outcome) VALUES ('`+ts+`', 1, 'alice', 'admin', 'key', 'allowed')`,
	)
	raw.Close()

	s, err := db.Open(ctx, "", dir)
	if err != nil {
		t.Fatalf("Open (migrating to the latest version): %v", err)
	}
	defer s.Close()
	accounts, err := s.ListAccounts(ctx)
	if err != nil || len(accounts) != 2 || accounts[0].Name != "alice" || accounts[0].ID != 1 {
		t.Fatalf("accounts after the upgrade: %+v, %v", accounts, err)
	}
	k, err := s.KeyByFingerprint(ctx, "SHA256:b")
	if err != nil || k.ID != 2 || k.AccountID != 2 || k.Kind != db.KindCA {
		t.Errorf("bob's CA after the upgrade: %+v, %v", k, err)
	}
	revs, err := s.ListRevocations(ctx, 1)
	if err != nil || len(revs) != 1 || revs[0].ID != 5 || revs[0].Value != "42" {
		t.Errorf("alice's revocations after the upgrade: %+v, %v", revs, err)
	}
	entries, err := s.ListAccess(ctx, 1, "", 10)
	if err != nil || len(entries) != 1 {
		t.Errorf("alice's access log after the upgrade: %+v, %v", entries, err)
	}
	// Foreign keys hold again: deleting an account cascades to its keys.
	if err := s.DeleteAccount(ctx, 2, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KeyByFingerprint(ctx, "SHA256:b"); err == nil {
		t.Error("bob's CA survived the deletion of his account: foreign keys are off")
	}
	// Ids go on from the largest and are not reused.
	r, err := s.AddRevocation(ctx, 1, db.NewRevocation{Kind: db.RevokeSerial, Value: "43"})
	if err != nil || r.ID <= 5 {
		t.Errorf("the next revocation: %+v, %v; want an id above 5", r, err)
	}
	carol, _ := createAccount(t, s, "carol")
	if carol.ID <= 2 {
		t.Errorf("carol got the id %d of a deleted account", carol.ID)
	}
}
