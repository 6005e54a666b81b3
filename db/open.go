package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/portico-sh/portico/migrations"
)

// SQLiteFile is the name of the embedded database inside the data directory.
const SQLiteFile = "portico.db"

// Open connects to the database, applies pending migrations and returns the store. An empty
// databaseURL means SQLite at dataDir/portico.db (created with dataDir when missing);
// postgres:// and postgresql:// URLs mean Postgres.
func Open(ctx context.Context, databaseURL, dataDir string) (Store, error) {
	switch dialect, err := dialectOf(databaseURL); {
	case err != nil:
		return nil, err
	case dialect == goose.DialectSQLite3:
		return openSQLite(ctx, filepath.Join(dataDir, SQLiteFile))
	default:
		return openPostgres(ctx, databaseURL)
	}
}

// Migrate applies pending migrations to the database Open would use, and returns.
func Migrate(ctx context.Context, databaseURL, dataDir string) error {
	s, err := Open(ctx, databaseURL, dataDir)
	if err != nil {
		return err
	}
	return s.Close()
}

func dialectOf(databaseURL string) (goose.Dialect, error) {
	if databaseURL == "" {
		return goose.DialectSQLite3, nil
	}
	u, err := url.Parse(databaseURL)
	if err != nil {
		// url.Error repeats the URL, which may hold a password.
		return "", errors.New("database URL is not a URL (want empty for SQLite, or postgres://...)")
	}
	switch strings.ToLower(u.Scheme) {
	case "postgres", "postgresql":
		return goose.DialectPostgres, nil
	default:
		return "", fmt.Errorf("database URL scheme %q is not supported (want empty for SQLite, or postgres://...)", u.Scheme)
	}
}

// sqliteDSN returns the modernc.org/sqlite data source for path. Every connection waits up to
// busyTimeout for a lock and enforces foreign keys; the writer also turns on WAL (a persistent
// property of the file), readers are query-only.
func sqliteDSN(path string, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	if writer {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	return path + "?" + q.Encode()
}

const busyTimeout = 10 * time.Second

func openSQLite(ctx context.Context, path string) (Store, error) {
	if strings.Contains(path, "?") {
		return nil, fmt.Errorf("open sqlite %q: the path must not contain '?'", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	// SQLite would create the file with mode 0644, and its -wal and -shm files with the
	// file's mode: the database holds every account's keys and access log, so only the
	// server's user may read it. An existing file keeps the mode the operator gave it.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	f.Close()
	w, err := sql.Open("sqlite", sqliteDSN(path, true))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	// One writing connection: SQLite allows one writer at a time, and a pool of one turns
	// contention into waiting in Go instead of "database is locked" errors.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	if err := migrate(ctx, goose.DialectSQLite3, w, migrations.SQLite); err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	r, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	r.SetMaxOpenConns(sqliteReaders)
	r.SetMaxIdleConns(sqliteReaders)
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	return &sqliteStore{w: w, r: r}, nil
}

// sqliteReaders bounds the reading connections; WAL lets them read beside the writer.
const sqliteReaders = 8

func openPostgres(ctx context.Context, databaseURL string) (Store, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		// pgconn's parse errors redact the password.
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	sqlDB := stdlib.OpenDB(*cfg.ConnConfig.Copy())
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("open postgres %s: %w", where, err)
	}
	err = migrate(ctx, goose.DialectPostgres, sqlDB, migrations.Postgres, goose.WithSessionLocker(locker))
	if cerr := sqlDB.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("open postgres %s: %w", where, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres %s: %w", where, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s: %w", where, err)
	}
	return &postgresStore{pool: pool}, nil
}

func migrate(ctx context.Context, dialect goose.Dialect, sqlDB *sql.DB, fsys fs.FS, opts ...goose.ProviderOption) error {
	p, err := goose.NewProvider(dialect, sqlDB, fsys, opts...)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}
