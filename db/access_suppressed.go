package db

import (
	"context"
	"fmt"
	"time"
)

// OutcomeSuppressed marks an access-log row that stands for denied attempts that were
// counted instead of logged one by one.
const OutcomeSuppressed = "suppressed"

// SuppressedAccess keeps the counts of denied attempts that were not logged one by one: one
// row per source address and minute, so that a flood can neither fill the log nor go unseen.
type SuppressedAccess interface {
	// AddSuppressedAccess adds e.Count attempts to the suppressed row of e.RemoteAddr (a
	// source address) for the minute of e.Time, creating it. The row keeps the service,
	// method and reason it was created with.
	AddSuppressedAccess(ctx context.Context, e AccessEntry) error
}

// suppressedRow checks e and returns it as stored: outcome suppressed, its time the start of
// its minute, no account.
func suppressedRow(e AccessEntry) (AccessEntry, error) {
	if e.Count < 1 {
		return e, fmt.Errorf("suppressed access of %q: count %d, want at least 1", e.RemoteAddr, e.Count)
	}
	if e.Time.IsZero() {
		e.Time = now()
	}
	e.Time = storedTime(e.Time).Truncate(time.Minute)
	e.Outcome, e.AccountID, e.Account = OutcomeSuppressed, 0, ""
	return e, nil
}

// entryCount is the count an appended entry is stored with: one attempt unless it says more.
func entryCount(e AccessEntry) int64 { return max(e.Count, 1) }
