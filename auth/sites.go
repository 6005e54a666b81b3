package auth

import (
	"errors"
	"slices"
)

// Why a connection may not see a private site over an SSH forward. The messages say nothing
// about the site or its owner, so that they reveal no more than an unknown name would.
var (
	ErrSiteNoForwarding = errors.New("this key or certificate does not permit port forwarding")
	ErrSiteNoService    = errors.New("this key or certificate does not grant pgs")
	ErrSiteNotListed    = errors.New("no such site")
)

// MaySeePrivateSite decides whether a connection may see, through an SSH forward, the site of
// the account ownerID whose ACL lists the accounts accountIDs: in that order, the grant must
// permit port forwarding, include pgs (or admin, which includes it), and belong to the owner
// or a listed account. Accounts are compared by id, never by name: a listed account that was
// deleted lets nobody in, even one who registers its name again. nil: it may.
func MaySeePrivateSite(g Grant, ownerID int64, accountIDs []int64) error {
	switch {
	case g.IsSignup() || g.AccountID == 0 || !g.Permits.PortForwarding:
		return ErrSiteNoForwarding
	case !g.Allows(PGS) && !g.Allows(Admin):
		return ErrSiteNoService
	case g.AccountID != ownerID && !slices.Contains(accountIDs, g.AccountID):
		return ErrSiteNotListed
	}
	return nil
}
