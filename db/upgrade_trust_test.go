package db_test

import (
	"database/sql"
	"io/fs"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/pressly/goose/v3"

	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/migrations"
)

// TestSQLiteTrustUpgradeKeepsIDs: migration 00006 rebuilds revocations on SQLite (for the new
// kinds). An existing database keeps every revocation, and the id of one removed before the
// upgrade is not given again.
func TestSQLiteTrustUpgradeKeepsIDs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, db.SQLiteFile)
	before := fstest.MapFS{}
	for _, name := range []string{"00001_init.sql", "00002_claims_and_lifecycle.sql"} {
		data, err := fs.ReadFile(migrations.SQLite, name)
		if err != nil {
			t.Fatal(err)
		}
		before[name] = &fstest.MapFile{Data: data}
	}
	raw, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	p, err := goose.NewProvider(goose.DialectSQLite3, raw, before)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	ts := "2026-01-02T03:04:05.000000Z"
	exec(t, raw,
		`INSERT INTO accounts (id, name, created_at) VALUES (1, 'alice', '`+ts+`')`,
		`INSERT INTO revocations (account_id, kind, value, ca_fingerprint, created_at) VALUES
		     (1, 'serial', '42', 'SHA256:ca', '`+ts+`'), (1, 'key_id', 'bob', '', '`+ts+`'), (1, 'key', 'SHA256:k', '', '`+ts+`')`,
		`DELETE FROM revocations WHERE id = 3`,
	)
	raw.Close()

	s, err := db.Open(ctx, "", dir)
	if err != nil {
		t.Fatalf("Open (migrating to the latest version): %v", err)
	}
	defer s.Close()
	revs, err := s.ListRevocations(ctx, 1)
	if err != nil || len(revs) != 2 || revs[0].ID != 1 || revs[0].Value != "42" || revs[0].Origin != db.OriginRevoke || revs[1].ID != 2 {
		t.Fatalf("revocations after the upgrade: %+v, %v", revs, err)
	}
	if _, err := s.FindRevocation(ctx, 1, db.CertRef{Serial: 42, CAFingerprint: "SHA256:ca"}); err != nil {
		t.Errorf("the serial revoked before the upgrade: %v", err)
	}
	r, err := s.AddRevocation(ctx, 1, db.NewRevocation{Kind: db.RevokeSerialRange, Value: "1-9"})
	if err != nil || r.ID <= 3 {
		t.Errorf("the first revocation after the upgrade: %+v, %v; want an id above 3, the largest ever given", r, err)
	}
}
