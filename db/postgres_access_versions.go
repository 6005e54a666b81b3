package db

import (
	"context"
	"fmt"
)

func (s *postgresStore) AccessVersions(ctx context.Context, accountIDs []int64) (map[int64]int64, error) {
	out := make(map[int64]int64, len(accountIDs))
	rows, err := s.pool.Query(ctx, `SELECT account_id, version FROM access_versions WHERE account_id = ANY($1)`, accountIDs)
	if err != nil {
		return nil, fmt.Errorf("access versions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, v int64
		if err := rows.Scan(&id, &v); err != nil {
			return nil, fmt.Errorf("access versions: %w", err)
		}
		out[id] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("access versions: %w", err)
	}
	return out, nil
}

func (s *postgresStore) AccessVersion(ctx context.Context, accountID int64) (int64, error) {
	var v int64
	err := s.pool.QueryRow(ctx, `SELECT version FROM access_versions WHERE account_id = $1`, accountID).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("access version of account %d: %w", accountID, postgresErr(err))
	}
	return v, nil
}
