package auth

import (
	"context"
	"net"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// TestGrantExpiresAt: a grant says when its grounds lapse by themselves, for live access to end
// the connection then: the earliest of the certificate's valid_before and the key's or CA's
// expiry-time option.
func TestGrantExpiresAt(t *testing.T) {
	hour := testNow.Add(time.Hour)
	later := testNow.Add(3 * time.Hour)
	sooner := testNow.Add(30 * time.Minute)
	tests := []struct {
		name  string
		setup func(e *env)
		key   func(t *testing.T, e *env) gossh.PublicKey
		want  *time.Time
	}{
		{"login key without expiry-time", nil,
			func(_ *testing.T, e *env) gossh.PublicKey { return e.login.PublicKey() }, nil},
		{"login key with expiry-time", func(e *env) { e.setOptions(e.loginKey, `expiry-time="20260601150000"`) },
			func(_ *testing.T, e *env) gossh.PublicKey { return e.login.PublicKey() }, &later},
		{"certificate", nil,
			func(t *testing.T, e *env) gossh.PublicKey { return e.cert(t, nil) }, &hour},
		{"certificate that never expires", nil,
			func(t *testing.T, e *env) gossh.PublicKey {
				return e.cert(t, func(c *gossh.Certificate) { c.ValidBefore = gossh.CertTimeInfinity })
			}, nil},
		{"CA that expires after the certificate", func(e *env) { e.setOptions(e.caKey, `cert-authority,expiry-time="20260601150000"`) },
			func(t *testing.T, e *env) gossh.PublicKey { return e.cert(t, nil) }, &hour},
		{"CA that expires before the certificate", func(e *env) { e.setOptions(e.caKey, `cert-authority,expiry-time="202606011230"`) },
			func(t *testing.T, e *env) gossh.PublicKey { return e.cert(t, nil) }, &sooner},
		{"CA that expires, certificate that never does", func(e *env) { e.setOptions(e.caKey, `cert-authority,expiry-time="202606011230"`) },
			func(t *testing.T, e *env) gossh.PublicKey {
				return e.cert(t, func(c *gossh.Certificate) { c.ValidBefore = gossh.CertTimeInfinity })
			}, &sooner},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.setup != nil {
				tt.setup(e)
			}
			a := New(e.store, Options{Now: func() time.Time { return testNow }})
			g, err := a.Authenticate(context.Background(), Attempt{Key: tt.key(t, e), Service: PGS,
				RemoteAddr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 5000}})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.want == nil && g.ExpiresAt != nil:
				t.Errorf("expires at %v, want never", g.ExpiresAt)
			case tt.want != nil && (g.ExpiresAt == nil || !g.ExpiresAt.Equal(*tt.want)):
				t.Errorf("expires at %v, want %v", g.ExpiresAt, tt.want)
			}
		})
	}
}
