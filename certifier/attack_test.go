package certifier

import (
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Tests of what an attacker might try, found reading the certifier as one.

// base64 lets the last character of a JWT's signature change without changing the signature:
// the same ID token then has several spellings that all verify. It still gets one certificate.
func TestReplayedTokenRespelled(t *testing.T) {
	f := newFixture(t)
	token := f.token(alice, clientID)
	sig := token[strings.LastIndexByte(token, '.')+1:]
	want, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		t.Fatal(err)
	}
	var respelled string
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		other := sig[:len(sig)-1] + string(c)
		if other == sig {
			continue
		}
		if got, err := base64.RawURLEncoding.DecodeString(other); err == nil && string(got) == string(want) {
			respelled = token[:len(token)-len(sig)] + other
			break
		}
	}
	if respelled == "" {
		t.Skip("this signature's last character has no other spelling")
	}
	f.sign(token, newSigner(t).PublicKey(), "").certificate(t)
	r := f.sign(respelled, newSigner(t).PublicKey(), "")
	if r.status != http.StatusUnauthorized || r.err.Reason != ReasonReplayed {
		t.Fatalf("the respelled token: HTTP %d %s; want replayed", r.status, r.body)
	}
}

// The provider's other signed tokens share its issuer, keys and often the audience: JWT access
// tokens, logout tokens and Keycloak's access and refresh tokens are not ID tokens.
func TestOtherTokenTypes(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Limits.RefusalsPerSource = 1000 })
	key := newSigner(t).PublicKey()
	typed := func(typ string, claims map[string]any) string {
		c := validClaims(f)
		for k, v := range claims {
			c[k] = v
		}
		raw, err := f.provider.MintTyped(c, typ)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	for _, tt := range []struct {
		name, token, words string
	}{
		{"JWT access token", typed("at+jwt", nil), `"at+jwt"`},
		{"logout token", typed("logout+jwt", map[string]any{"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}), `"logout+jwt"`},
		{"logout token, plain typ", typed("JWT", map[string]any{"events": map[string]any{}}), "logout token"},
		{"Keycloak access token", typed("JWT", map[string]any{"typ": "Bearer"}), `"Bearer"`},
		{"Keycloak refresh token", typed("JWT", map[string]any{"typ": "Refresh"}), `"Refresh"`},
	} {
		r := f.sign(tt.token, key, "")
		if r.status != http.StatusUnauthorized || r.err.Reason != ReasonMalformedToken || !strings.Contains(r.err.Error, tt.words) {
			t.Errorf("%s: HTTP %d %s", tt.name, r.status, r.body)
		}
	}
	// Keycloak's ID tokens say typ ID; no typ header at all is fine too.
	f.sign(typed("JWT", map[string]any{"typ": "ID"}), key, "").certificate(t)
}

// A revoked person cannot get certificates back under another spelling of themselves: with
// their email no longer verified (their key ID would be their subject), or with another email.
func TestRevocationCoversTheSubject(t *testing.T) {
	f := newFixture(t)
	f.sign(f.token(alice, clientID), newSigner(t).PublicKey(), "").certificate(t)
	if _, err := Revoke(f.dir, "alice@example.com", 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	key := newSigner(t).PublicKey()
	for name, claims := range map[string]map[string]any{
		"unverified email":  {"email_verified": false},
		"another email":     {"email": "alice.new@example.com"},
		"no email":          {"email": nil, "email_verified": nil},
		"someone, her mail": {"sub": "u-someone", "email_verified": false},
	} {
		r := f.sign(f.mint(claims), key, "")
		if r.status != http.StatusForbidden || r.err.Reason != ReasonRevoked {
			t.Errorf("%s: HTTP %d %s; want revoked", name, r.status, r.body)
		}
	}
	f.sign(f.token(olga, clientID), key, "").certificate(t)
}

// One address cannot hold every connection: beyond its share, its new connections are closed.
func TestPerSourceConnections(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newSourceLimitListener(inner, 2, nil)
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial()
	dial()
	first, second := <-accepted, <-accepted
	third := dial()
	third.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := third.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the third connection from one address: %v, want it closed", err)
	}
	first.Close()
	dial()
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Error("a connection was not accepted after one closed")
	}
	second.Close()
}

// A certificate whose audit line cannot be written is not handed out.
func TestNoCertificateWithoutAudit(t *testing.T) {
	f := newFixture(t)
	token := f.token(alice, clientID)
	f.server.cfg.State.audit.Close()
	r := f.sign(token, newSigner(t).PublicKey(), "")
	if r.status != http.StatusServiceUnavailable || r.err.Reason != ReasonUnavailable || strings.Contains(string(r.body), "cert-v01") {
		t.Fatalf("HTTP %d %s; want unavailable and no certificate", r.status, r.body)
	}
}
