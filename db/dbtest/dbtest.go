package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portico-sh/portico/db"
)

// Environment variables the helpers read.
const (
	// EnvDatabaseURL names a Postgres server on which each test creates its own database, e.g.
	// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
	EnvDatabaseURL = "PORTICO_TEST_DATABASE_URL"
	// EnvDB chooses the store Open returns: "postgres", or SQLite when empty or "sqlite".
	EnvDB = "PORTICO_TEST_DB"
)

// Open returns a fresh store of the kind PORTICO_TEST_DB chooses, SQLite by default.
func Open(t testing.TB) db.Store {
	t.Helper()
	switch kind := os.Getenv(EnvDB); kind {
	case "", "sqlite":
		return SQLite(t)
	case "postgres":
		return Postgres(t)
	default:
		t.Fatalf("%s=%q: want sqlite or postgres", EnvDB, kind)
		return nil
	}
}

// SQLite returns a fresh SQLite store in a temporary directory, closed when the test ends.
func SQLite(t testing.TB) db.Store {
	t.Helper()
	return open(t, "", t.TempDir())
}

// Postgres returns a fresh Postgres store in a database of its own, closed and dropped when the
// test ends. Without PORTICO_TEST_DATABASE_URL the test is skipped, or fails when CI=true.
func Postgres(t testing.TB) db.Store {
	t.Helper()
	return open(t, PostgresURL(t), "")
}

// PostgresURL creates an empty database for the test on the server named by
// PORTICO_TEST_DATABASE_URL and returns its URL; the database is dropped when the test ends.
// Without the variable the test is skipped, or fails when CI=true.
func PostgresURL(t testing.TB) string {
	t.Helper()
	server := os.Getenv(EnvDatabaseURL)
	if server == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: Postgres tests must run in CI", EnvDatabaseURL)
		}
		t.Skipf("%s is not set: skipping the Postgres test", EnvDatabaseURL)
	}
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("%s is not a URL", EnvDatabaseURL)
	}
	var b [8]byte
	rand.Read(b[:])
	name := "portico_test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatalf("connect to %s: %v", EnvDatabaseURL, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

func open(t testing.TB, databaseURL, dataDir string) db.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := db.Open(ctx, databaseURL, dataDir)
	if err != nil {
		t.Fatalf("open test store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close test store: %v", err)
		}
	})
	return s
}
