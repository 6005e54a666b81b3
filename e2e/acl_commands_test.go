package e2e

import (
	"context"
	"database/sql"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rogpeppe/go-internal/testscript"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// The command of the ACL scripts:
//
//	lift-name-holds  end at once the hold on the names of deleted accounts, in the database of
//	                 the script's server ($DATABASE_URL, else data/portico.db): what 90 days
//	                 would do, so that a deleted account's name can be registered again
func init() {
	scriptCommands["lift-name-holds"] = cmdLiftNameHolds
}

func cmdLiftNameHolds(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "lift-name-holds")
	if len(args) != 0 {
		ts.Fatalf("usage: lift-name-holds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if url := ts.Getenv("DATABASE_URL"); url != "" {
		conn, err := pgx.Connect(ctx, url)
		ts.Check(err)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, `DELETE FROM held_names`)
		ts.Check(err)
		return
	}
	db, err := sql.Open("sqlite", ts.MkAbs("data/portico.db")+"?_pragma=busy_timeout(10000)")
	ts.Check(err)
	defer db.Close()
	_, err = db.ExecContext(ctx, `DELETE FROM held_names`)
	ts.Check(err)
}
