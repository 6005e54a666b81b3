package db

import "context"

// AccessVersions are the accounts' access versions, which database triggers raise whenever what
// grounds an account's access changes: one of its login keys or CAs is removed or changed, or a
// revocation is added. Gateways poll them to re-judge open connections (live access).
type AccessVersions interface {
	// AccessVersions returns the access version of each of the accounts that still exists.
	AccessVersions(ctx context.Context, accountIDs []int64) (map[int64]int64, error)
}
