package db

import (
	"context"
	"fmt"
)

func (s *postgresStore) AddSuppressedAccess(ctx context.Context, e AccessEntry) error {
	e, err := suppressedRow(e)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx,
		`INSERT INTO access_log (time, service, method, remote_addr, outcome, reason, count)
		 VALUES ($1, $2, $3, $4, $5, $6, $7)
		 ON CONFLICT (remote_addr, time) WHERE outcome = 'suppressed'
		 DO UPDATE SET count = access_log.count + EXCLUDED.count`,
		e.Time, e.Service, e.Method, e.RemoteAddr, e.Outcome, e.Reason, e.Count)
	if err != nil {
		return fmt.Errorf("add %d suppressed attempts of %q: %w", e.Count, e.RemoteAddr, postgresErr(err))
	}
	return nil
}
