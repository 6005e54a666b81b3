package db_test

import (
	"database/sql"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pressly/goose/v3"

	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/db/dbtest"
	"github.com/portico-sh/portico/migrations"
)

// upgradeDB is one database for a migration upgrade test: raw opens it without the store (to
// build the old schema and look at the tables), open opens the store, which migrates to the
// latest version, and dialect and all are the dialect's goose name and migrations.
type upgradeDB struct {
	dialect goose.Dialect
	all     fs.FS
	raw     func() *sql.DB
	open    func() db.Store
}

// sqliteUpgradeDB is a fresh SQLite database in a temporary directory.
func sqliteUpgradeDB(t *testing.T) upgradeDB {
	dir := t.TempDir()
	return upgradeDB{
		dialect: goose.DialectSQLite3,
		all:     migrations.SQLite,
		raw: func() *sql.DB {
			raw, err := sql.Open("sqlite", filepath.Join(dir, db.SQLiteFile)+"?_pragma=foreign_keys(1)")
			if err != nil {
				t.Fatal(err)
			}
			raw.SetMaxOpenConns(1)
			return raw
		},
		open: func() db.Store {
			s, err := db.Open(ctx, "", dir)
			if err != nil {
				t.Fatalf("Open (migrating to the latest version): %v", err)
			}
			return s
		},
	}
}

// postgresUpgradeDB is a fresh database of its own on the test Postgres server.
func postgresUpgradeDB(t *testing.T) upgradeDB {
	url := dbtest.PostgresURL(t)
	return upgradeDB{
		dialect: goose.DialectPostgres,
		all:     migrations.Postgres,
		raw: func() *sql.DB {
			raw, err := sql.Open("pgx", url) // registered by pgx/v5/stdlib, which db imports
			if err != nil {
				t.Fatal(err)
			}
			return raw
		},
		open: func() db.Store {
			s, err := db.Open(ctx, url, "")
			if err != nil {
				t.Fatalf("Open (migrating to the latest version): %v", err)
			}
			return s
		},
	}
}

// migrateBefore applies to raw every migration whose file name sorts before version ("00012"):
// the schema an existing database had before that migration.
func (u upgradeDB) migrateBefore(t *testing.T, raw *sql.DB, version string) {
	t.Helper()
	before := fstest.MapFS{}
	entries, err := fs.ReadDir(u.all, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sql") || e.Name() >= version {
			continue
		}
		data, err := fs.ReadFile(u.all, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		before[e.Name()] = &fstest.MapFile{Data: data}
	}
	p, err := goose.NewProvider(u.dialect, raw, before)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
}

// exec runs each statement on raw, failing the test at the first error.
func exec(t *testing.T, raw *sql.DB, stmts ...string) {
	t.Helper()
	for _, stmt := range stmts {
		if _, err := raw.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// provider is a goose provider of every migration on raw (to migrate down, then up again).
func (u upgradeDB) provider(t *testing.T, raw *sql.DB) *goose.Provider {
	t.Helper()
	p, err := goose.NewProvider(u.dialect, raw, u.all)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
