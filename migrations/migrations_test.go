package migrations_test

import (
	"io/fs"
	"slices"
	"testing"

	"github.com/portico-sh/portico/migrations"
)

// Every step exists in both dialects, so both databases end with the same schema version.
func TestDialectsArePaired(t *testing.T) {
	sqlite, err := fs.Glob(migrations.SQLite, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	postgres, err := fs.Glob(migrations.Postgres, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if len(sqlite) == 0 || !slices.Equal(sqlite, postgres) {
		t.Errorf("sqlite migrations %v, postgres migrations %v: want the same non-empty list", sqlite, postgres)
	}
}
