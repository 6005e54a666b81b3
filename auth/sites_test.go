package auth

import (
	"errors"
	"testing"
)

func TestMaySeePrivateSite(t *testing.T) {
	fwd := Permits{PortForwarding: true}
	listed := []string{"bob", "carol"}
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
		{"name case", Grant{AccountID: 2, Account: "Bob", Services: []Service{PGS}, Permits: fwd}, ErrSiteNotListed},
	} {
		if err := MaySeePrivateSite(c.g, "alice", listed); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}
