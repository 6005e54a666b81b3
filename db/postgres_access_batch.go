package db

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

func (s *postgresStore) AppendAccessBatch(ctx context.Context, entries []AccessEntry, touched map[int64]time.Time) error {
	var b pgx.Batch
	for _, e := range entries {
		if e.Time.IsZero() {
			e.Time = now()
		}
		b.Queue(`INSERT INTO access_log (time, account_id, account, service, method, identity, serial,
			     key_fingerprint, ca_fingerprint, remote_addr, outcome, reason, count)
			 VALUES ($1, (SELECT id FROM accounts WHERE id = $2), $3, $4, $5, $6, $7::text::numeric, $8, $9, $10, $11, $12, $13)`,
			storedTime(e.Time), e.AccountID, e.Account, e.Service, e.Method, e.Identity, formatSerial(e.Serial),
			e.KeyFingerprint, e.CAFingerprint, e.RemoteAddr, e.Outcome, e.Reason, entryCount(e))
	}
	for id, at := range touched {
		b.Queue(`UPDATE keys SET last_used_at = $1 WHERE id = $2`, storedTime(at), id)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return fmt.Errorf("append %d access-log entries: %w", len(entries), postgresErr(err))
	}
	return nil
}
