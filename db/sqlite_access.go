package db

import (
	"context"
	"fmt"
)

func (s *sqliteStore) AddSuppressedAccess(ctx context.Context, e AccessEntry) error {
	e, err := suppressedRow(e)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx,
		`INSERT INTO access_log (time, service, method, remote_addr, outcome, reason, count)
		 VALUES (?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT (remote_addr, time) WHERE outcome = 'suppressed'
		 DO UPDATE SET count = count + excluded.count`,
		sqliteTime(e.Time), e.Service, e.Method, e.RemoteAddr, e.Outcome, e.Reason, e.Count)
	if err != nil {
		return fmt.Errorf("add %d suppressed attempts of %q: %w", e.Count, e.RemoteAddr, sqliteErr(err))
	}
	return nil
}
