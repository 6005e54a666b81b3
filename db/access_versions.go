package db

import "context"

// AccessVersions are the accounts' access versions, which database triggers raise whenever what
// grounds an account's access changes: one of its login keys or CAs is removed or changed, a
// revocation is added, a principal mapping is changed or removed; mapping a new principal raises
// it too (the store does that in the same transaction, see SetPrincipalMapping). Gateways poll them to re-judge open connections (live access).
type AccessVersions interface {
	// AccessVersions returns the access version of each of the accounts that still exists.
	AccessVersions(ctx context.Context, accountIDs []int64) (map[int64]int64, error)
	// AccessVersion returns one account's access version (one indexed point query), or
	// ErrNotFound when the account is gone. auth's trust cache reads it on every login that
	// uses what it cached.
	AccessVersion(ctx context.Context, accountID int64) (int64, error)
}
