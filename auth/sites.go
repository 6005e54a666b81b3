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
// owner whose ACL lists accounts: in that order, the grant must permit port forwarding, include
// pgs (or admin, which includes it), and belong to the owner or a listed account. nil: it may.
func MaySeePrivateSite(g Grant, owner string, accounts []string) error {
	switch {
	case g.IsSignup() || g.AccountID == 0 || !g.Permits.PortForwarding:
		return ErrSiteNoForwarding
	case !g.Allows(PGS) && !g.Allows(Admin):
		return ErrSiteNoService
	case g.Account != owner && !slices.Contains(accounts, g.Account):
		return ErrSiteNotListed
	}
	return nil
}
