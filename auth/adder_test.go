package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/db"
)

// TestRecheckAdder: the claim of a pending key judges again the connection that added it, from
// what the entry recorded: its key or certificate, and its address.
func TestRecheckAdder(t *testing.T) {
	e := newEnv(t)
	admin := func(c *gossh.Certificate) {
		c.ValidPrincipals = []string{"admin"}
		c.CriticalOptions = map[string]string{"source-address": "192.0.2.0/24"}
	}
	cert := e.cert(t, admin)
	pgsOnly := e.cert(t, nil)
	from := AdderAddr(tcp("192.0.2.10:40000"))
	if from != "192.0.2.10" {
		t.Fatalf("AdderAddr = %q", from)
	}
	for _, c := range []struct {
		name      string
		accountID int64
		by, from  string
		before    func()
		want      Reason // "": allowed
	}{
		{name: "login key", accountID: e.alice.ID, by: AdderLine(e.login.PublicKey()), from: from},
		{name: "certificate", accountID: e.alice.ID, by: AdderLine(cert), from: from},
		{name: "certificate from elsewhere", accountID: e.alice.ID, by: AdderLine(cert), from: "198.51.100.1", want: ReasonSourceAddress},
		{name: "certificate, no address", accountID: e.alice.ID, by: AdderLine(cert), want: ReasonSourceAddress},
		{name: "certificate without admin", accountID: e.alice.ID, by: AdderLine(pgsOnly), from: from, want: ReasonDoesNotGrant},
		{name: "another account", accountID: e.carol.ID, by: AdderLine(e.login.PublicKey()), from: from, want: ReasonDoesNotGrant},
		{name: "recorded nothing", accountID: e.alice.ID, from: from, want: ReasonNotRegistered},
		{name: "certificate revoked", accountID: e.alice.ID, by: AdderLine(cert), from: from, want: ReasonRevoked,
			before: func() { e.revoke(e.alice.ID, db.NewRevocation{Kind: db.RevokeKeyID, Value: "bob@laptop"}) }},
		{name: "login key removed", accountID: e.alice.ID, by: AdderLine(e.login.PublicKey()), from: from, want: ReasonNotRegistered,
			before: func() { delete(e.store.keys, e.loginKey.Fingerprint) }},
	} {
		if c.before != nil {
			c.before()
		}
		a := New(e.store, Options{Now: func() time.Time { return testNow }})
		err := a.RecheckAdder(context.Background(), c.accountID, c.by, c.from)
		r, refused := AsRefusal(err)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v, want nil", c.name, err)
		case c.want != "" && (!refused || r.Reason != c.want):
			t.Errorf("%s: %v, want a refusal for %q", c.name, err, c.want)
		}
	}
	// What no adder line is, is no decision: an error, not a refusal.
	a := New(e.store, Options{Now: func() time.Time { return testNow }})
	for _, bad := range [][2]string{{"not a key", ""}, {AdderLine(cert), "not an address"}} {
		if err := a.RecheckAdder(context.Background(), e.alice.ID, bad[0], bad[1]); err == nil || errors.As(err, new(*Refusal)) {
			t.Errorf("RecheckAdder(%q, %q) = %v, want an error that is no refusal", bad[0], bad[1], err)
		}
	}
}
