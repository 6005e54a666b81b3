package auth

import (
	"errors"
	"testing"
)

func TestMaySeePrivateSite(t *testing.T) {
	fwd := Permits{PortForwarding: true}
	listed := []int64{2, 3} // bob, carol; alice (1) owns the site
	for _, c := range []struct {
		name string
		g    Grant
		want error
	}{
		{"owner", Grant{AccountID: 1, Account: "alice", Services: []Service{PGS}, Permits: fwd}, nil},
		{"listed", Grant{AccountID: 2, Account: "bob", Services: []Service{PGS}, Permits: fwd}, nil},
		{"listed with admin", Grant{AccountID: 3, Account: "carol", Services: []Service{Admin}, Permits: fwd}, nil},
		{"not listed", Grant{AccountID: 4, Account: "mallory", Services: []Service{PGS}, Permits: fwd}, ErrSiteNotListed},
		{"no forwarding", Grant{AccountID: 2, Account: "bob", Services: []Service{PGS}}, ErrSiteNoForwarding},
		{"tunnels only", Grant{AccountID: 2, Account: "bob", Services: []Service{Tuns}, Permits: fwd}, ErrSiteNoService},
		{"signup", Grant{Method: MethodSignup, Services: []Service{PGS}, Permits: fwd}, ErrSiteNoForwarding},
		// bob's account was deleted and someone registered "bob" again: a new id.
		{"a listed name, another account", Grant{AccountID: 9, Account: "bob", Services: []Service{PGS}, Permits: fwd}, ErrSiteNotListed},
		{"the owner's name, another account", Grant{AccountID: 8, Account: "alice", Services: []Service{PGS}, Permits: fwd}, ErrSiteNotListed},
	} {
		if err := MaySeePrivateSite(c.g, 1, listed); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}
