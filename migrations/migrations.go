package migrations

import (
	"embed"
	"io/fs"
)

//go:embed sqlite/*.sql
var sqliteFiles embed.FS

//go:embed postgres/*.sql
var postgresFiles embed.FS

// SQLite and Postgres are the migrations of each dialect, with the .sql files at their root as
// goose.NewProvider expects them.
var (
	SQLite   fs.FS = mustSub(sqliteFiles, "sqlite")
	Postgres fs.FS = mustSub(postgresFiles, "postgres")
)

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // dir is a constant that go:embed has already checked
	}
	return sub
}
