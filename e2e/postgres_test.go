package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rogpeppe/go-internal/testscript"
)

// pgTimeout bounds every statement the harness sends to Postgres.
const pgTimeout = 30 * time.Second

// postgresEverywhere reports whether every server should run on Postgres
// (PORTICO_E2E_DATABASE=postgres), not only the postgres script's.
func postgresEverywhere() bool { return os.Getenv("PORTICO_E2E_DATABASE") == "postgres" }

// pgExec runs one statement on the database PORTICO_TEST_DATABASE_URL names.
func pgExec(sql string) error {
	base := os.Getenv("PORTICO_TEST_DATABASE_URL")
	if base == "" {
		return fmt.Errorf("PORTICO_TEST_DATABASE_URL is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return fmt.Errorf("connecting to PORTICO_TEST_DATABASE_URL: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// createDatabase creates a fresh database on the server of PORTICO_TEST_DATABASE_URL and
// returns its name and URL; dropDatabase removes it.
func createDatabase() (name, dbURL string, err error) {
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	name = "portico_e2e_" + hex.EncodeToString(suffix)
	if err := pgExec("CREATE DATABASE " + name); err != nil {
		return "", "", err
	}
	u, err := url.Parse(os.Getenv("PORTICO_TEST_DATABASE_URL"))
	if err != nil {
		return "", "", err
	}
	u.Path = "/" + name
	return name, u.String(), nil
}

func dropDatabase(name string) error {
	return pgExec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
}

// databaseFlags are the serve (and account) flags of a test's store when every server runs on
// Postgres: --database-url of a fresh database, dropped when t ends. Otherwise there are none:
// the store is the data directory's SQLite.
func databaseFlags(t *testing.T) []string {
	t.Helper()
	if !postgresEverywhere() {
		return nil
	}
	name, dbURL, err := createDatabase()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := dropDatabase(name); err != nil {
			t.Error(err)
		}
	})
	return []string{"--database-url", dbURL}
}

// createScriptDatabase creates the script's database, sets $DATABASE_URL to it, and drops
// it at the end of the script (after the server is stopped: defers run in reverse order).
func createScriptDatabase(ts *testscript.TestScript) {
	st := state(ts)
	if st.database != "" {
		ts.Fatalf("the script already has the database %s", st.database)
	}
	name, dbURL, err := createDatabase()
	ts.Check(err)
	st.database = name
	ts.Defer(func() {
		if err := dropDatabase(name); err != nil {
			st.reportError(err)
		}
	})
	ts.Setenv("DATABASE_URL", dbURL)
}

func cmdPgCreateDB(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "pg-createdb")
	createScriptDatabase(ts)
}

func scriptDatabase(ts *testscript.TestScript) string {
	name := state(ts).database
	if name == "" {
		ts.Fatalf("no database: run pg-createdb first")
	}
	return name
}

func cmdPgDown(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "pg-down")
	name := scriptDatabase(ts)
	// ALLOW_CONNECTIONS false holds for superusers too, unlike CONNECTION LIMIT.
	ts.Check(pgExec("ALTER DATABASE " + name + " ALLOW_CONNECTIONS false"))
	ts.Check(pgExec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + name + "'"))
}

func cmdPgUp(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "pg-up")
	ts.Check(pgExec("ALTER DATABASE " + scriptDatabase(ts) + " ALLOW_CONNECTIONS true"))
}
