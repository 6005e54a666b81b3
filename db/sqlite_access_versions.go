package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

func (s *sqliteStore) AccessVersions(ctx context.Context, accountIDs []int64) (map[int64]int64, error) {
	out := make(map[int64]int64, len(accountIDs))
	for chunk := range chunks(accountIDs, 500) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		marks := strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")
		rows, err := s.r.QueryContext(ctx, `SELECT account_id, version FROM access_versions WHERE account_id IN (`+marks+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("access versions: %w", err)
		}
		for rows.Next() {
			var id, v int64
			if err := rows.Scan(&id, &v); err != nil {
				rows.Close()
				return nil, fmt.Errorf("access versions: %w", err)
			}
			out[id] = v
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("access versions: %w", err)
		}
	}
	return out, nil
}

const sqliteAccessVersion = `SELECT version FROM access_versions WHERE account_id = ?`

func (s *sqliteStore) AccessVersion(ctx context.Context, accountID int64) (int64, error) {
	stmt, err := s.readStatement(ctx, sqliteAccessVersion)
	if err != nil {
		return 0, fmt.Errorf("access version of account %d: %w", accountID, err)
	}
	var v int64
	if err := stmt.QueryRowContext(ctx, accountID).Scan(&v); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			err = ErrNotFound
		}
		return 0, fmt.Errorf("access version of account %d: %w", accountID, err)
	}
	return v, nil
}

// chunks yields s in pieces of at most n.
func chunks[T any](s []T, n int) func(func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}
