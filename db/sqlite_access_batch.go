package db

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

const (
	sqliteInsertAccess = `INSERT INTO access_log (time, account_id, account, service, method, identity, serial,
	     key_fingerprint, ca_fingerprint, remote_addr, outcome, reason, count)
	 VALUES (?, (SELECT id FROM accounts WHERE id = ?), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqliteTouchKey = `UPDATE keys SET last_used_at = ? WHERE id = ?`
)

func (s *sqliteStore) AppendAccessBatch(ctx context.Context, entries []AccessEntry, touched map[int64]time.Time) error {
	// Both statements are prepared once on the write connection, not for every batch.
	insertStmt, err := s.writeStatement(ctx, sqliteInsertAccess)
	if err != nil {
		return fmt.Errorf("append %d access-log entries: %w", len(entries), err)
	}
	touchStmt, err := s.writeStatement(ctx, sqliteTouchKey)
	if err != nil {
		return fmt.Errorf("append %d access-log entries: %w", len(entries), err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		insert := tx.StmtContext(ctx, insertStmt)
		defer insert.Close()
		touch := tx.StmtContext(ctx, touchStmt)
		defer touch.Close()
		for _, e := range entries {
			if e.Time.IsZero() {
				e.Time = now()
			}
			if _, err := insert.ExecContext(ctx, sqliteTime(e.Time), e.AccountID, e.Account, e.Service, e.Method, e.Identity,
				formatSerial(e.Serial), e.KeyFingerprint, e.CAFingerprint, e.RemoteAddr, e.Outcome, e.Reason, entryCount(e)); err != nil {
				return sqliteErr(err)
			}
		}
		for id, at := range touched {
			if _, err := touch.ExecContext(ctx, sqliteTime(at), id); err != nil {
				return sqliteErr(err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append %d access-log entries: %w", len(entries), err)
	}
	return nil
}
