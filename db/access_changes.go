package db

import (
	"context"
	"time"
)

// AccessChange records that what grounds an account's access changed: one of its login keys or
// CAs was removed or changed, a revocation was added, or the account was deleted. Database
// triggers write these, so every way of making such a change is recorded.
type AccessChange struct {
	ID        int64
	AccountID int64
}

// AccessChanges is the feed of access changes that gateways poll to re-judge open connections.
type AccessChanges interface {
	// LastAccessChange returns the id of the newest change, or 0 when there is none.
	LastAccessChange(ctx context.Context) (int64, error)
	// AccessChangesAfter returns the accounts changed after change id after (each once) and
	// the newest change id seen (after itself when there is none).
	AccessChangesAfter(ctx context.Context, after int64) (accountIDs []int64, last int64, err error)
	// PruneAccessChanges deletes changes older than before.
	PruneAccessChanges(ctx context.Context, before time.Time) (int64, error)
}
