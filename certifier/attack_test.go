package certifier

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/portico-sh/portico/internal/oidctest"
)

// Tests of what an attacker might try, found reading the certifier as one.

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

// go-jose reads a JWS in its JSON serialization too (spacing and member order free) and decodes
// base64 leniently (the spare bits of a part's last character, the header's padding), so one
// signed ID token has endless spellings that verify. None of them gets a second certificate, and
// none that is not the token as issued gets one at all.
func TestReplayedTokenOtherSpellings(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Limits.RefusalsPerSource = 1000 })
	token := f.token(alice, clientID)
	parts := strings.Split(token, ".")
	var spellings []string
	join := func(h, p, s string) string { return h + "." + p + "." + s }
	for i := range 3 {
		for _, other := range respell(parts[i]) {
			p := slices.Clone(parts)
			p[i] = other
			spellings = append(spellings, join(p[0], p[1], p[2]))
		}
	}
	spellings = append(spellings,
		join(parts[0]+"=", parts[1], parts[2]),
		fmt.Sprintf(`{"protected":%q,"payload":%q,"signature":%q}`, parts[0], parts[1], parts[2]),
		fmt.Sprintf(`{"payload":%q, "protected":%q, "signature":%q}`, parts[1], parts[0], parts[2]),
		fmt.Sprintf(`{"signatures":[{"protected":%q,"signature":%q}],"payload":%q}`, parts[0], parts[2], parts[1]),
	)
	key := newSigner(t).PublicKey()
	signed := 0
	for _, s := range append(spellings, token) {
		if r := f.sign(s, key, ""); r.status == http.StatusOK {
			signed++
		} else if r.err.Reason != ReasonMalformedToken && r.err.Reason != ReasonReplayed {
			t.Errorf("%.60s...: HTTP %d %s", s, r.status, r.body)
		}
	}
	if signed != 1 {
		t.Fatalf("one ID token in %d spellings got %d certificates, want 1", len(spellings)+1, signed)
	}
	// The token as issued is the one that was signed.
	if r := f.sign(token, key, ""); r.err.Reason != ReasonReplayed {
		t.Errorf("the token again: HTTP %d %s", r.status, r.body)
	}
}

// respell returns the other base64url spellings of part that decode to the same bytes (the
// last character's spare bits).
func respell(part string) []string {
	want, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return nil
	}
	var out []string
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		other := part[:len(part)-1] + string(c)
		if got, err := base64.RawURLEncoding.DecodeString(other); other != part && err == nil && string(got) == string(want) {
			out = append(out, other)
		}
	}
	return out
}

// Go's JSON decoding matches a struct's fields ignoring case and keeps the last of duplicate
// members, while the claims map is exact: a token is refused if it names a claim the
// certifier (or go-oidc) reads twice, or in another case, so that what decides the key ID,
// the audience and the groups is one claim, read one way.
func TestClaimsAreReadExactly(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Limits.RefusalsPerSource = 1000 })
	now := time.Now().Unix()
	mint := func(claims string) string {
		payload := fmt.Sprintf(`{"iss":%q,"aud":"portico","exp":%d,"iat":%d,%s}`, f.provider.Issuer, now+3600, now, claims)
		raw, err := f.provider.MintPayload([]byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	key := newSigner(t).PublicKey()
	for name, claims := range map[string]string{
		"email in another case":    `"sub":"u-mallory","email":"mallory@example.com","email_verified":false,"groups":["web-team"],"Email":"alice@example.com","Email_Verified":true`,
		"email_verified twice":     `"sub":"u-mallory","email":"alice@example.com","email_verified":false,"groups":["web-team"],"email_verified":true`,
		"subject in another case":  `"sub":"u-mallory","groups":["web-team"],"SUB":"u-alice"`,
		"subject with a long s":    `"sub":"u-mallory","groups":["web-team"],"ſub":"u-alice"`,
		"groups twice":             `"sub":"u-mallory","groups":["sales"],"groups":["ops"]`,
		"groups in another case":   `"sub":"u-mallory","groups":["sales"],"Groups":["ops"]`,
		"authorized party, AZP":    `"sub":"u-mallory","groups":["web-team"],"azp":"portico","AZP":"other-app"`,
		"audience in another case": `"sub":"u-mallory","groups":["web-team"],"AUD":"other-app"`,
		"issuer in another case":   `"sub":"u-mallory","groups":["web-team"],"Iss":"https://elsewhere.example.com"`,
		"unknown claim twice":      `"sub":"u-mallory","groups":["web-team"],"x":1,"x":2`,
	} {
		r := f.sign(mint(claims), key, "")
		// go-oidc checks the issuer and audience it read before the certifier sees the claims.
		if r.status != http.StatusUnauthorized || !slices.Contains([]Reason{ReasonMalformedToken, ReasonIssuer, ReasonAudience}, r.err.Reason) {
			t.Errorf("%s: HTTP %d %s; want a malformed token", name, r.status, r.body)
		}
	}
	// The same token, spelled plainly, is fine.
	cert := f.sign(mint(`"sub":"u-mallory","email":"mallory@example.com","email_verified":true,"groups":["web-team"],"name":"Mallory","Name":"M"`), key, "").certificate(t)
	if cert.KeyId != "mallory@example.com" {
		t.Errorf("key ID %q", cert.KeyId)
	}
}

// A provider's JWT access tokens can share everything with its ID tokens: issuer, key, typ JWT,
// the client as audience, even the email and groups (zitadel issues them so; Keycloak, Azure AD
// and Okta can be set to). They are not ID tokens, whatever marks them: a scope (scope, scp),
// Cognito's token_use, or RFC 9068's client_id and jti without an authorized party.
func TestAccessTokensAreNotIDTokens(t *testing.T) {
	f := newFixtureWith(t, oidctest.Options{JWTAccessTokens: true}, func(c *Config) { c.Limits.RefusalsPerSource = 1000 })
	tok, err := f.provider.Token(t.Context(), clientID, alice.Username, alice.Password)
	if err != nil {
		t.Fatal(err)
	}
	key := newSigner(t).PublicKey()
	if strings.Count(tok.AccessToken, ".") != 2 {
		t.Fatalf("the provider's access token %q is not a JWT", tok.AccessToken)
	}
	r := f.sign(tok.AccessToken, key, "")
	if r.status != http.StatusUnauthorized || r.err.Reason != ReasonMalformedToken || !strings.Contains(r.err.Error, "access token") {
		t.Errorf("the provider's JWT access token: HTTP %d %s", r.status, r.body)
	}
	for name, claims := range map[string]map[string]any{
		"scope":            {"scope": "openid email"},
		"scp":              {"scp": []string{"user.read"}},
		"Cognito access":   {"token_use": "access"},
		"client_id no azp": {"client_id": clientID, "jti": "t1", "azp": nil},
	} {
		r := f.sign(f.mint(claims), key, "")
		if r.status != http.StatusUnauthorized || r.err.Reason != ReasonMalformedToken || !strings.Contains(r.err.Error, "not an ID token") {
			t.Errorf("%s: HTTP %d %s", name, r.status, r.body)
		}
	}
	// The same provider's ID tokens get certificates, marks of ID tokens and all.
	f.sign(tok.Extra("id_token").(string), key, "").certificate(t)
	f.sign(f.mint(map[string]any{"token_use": "id", "jti": "t2"}), key, "").certificate(t)
	f.sign(f.mint(map[string]any{"client_id": clientID, "jti": "t3"}), key, "").certificate(t)
}

// An email's case is the provider's to choose (and often the user's): a revoked key ID stops
// signing under any case of it, also for someone the certifier never signed for before.
func TestRevokedKeyIDInAnyCase(t *testing.T) {
	f := newFixture(t)
	if _, err := Revoke(f.dir, "alice@example.com", 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	r := f.sign(f.mint(map[string]any{"email": "Alice@Example.COM"}), newSigner(t).PublicKey(), "")
	if r.status != http.StatusForbidden || r.err.Reason != ReasonRevoked {
		t.Fatalf("Alice@Example.COM after alice@example.com was revoked: HTTP %d %s", r.status, r.body)
	}
}

// Revoking a person's key ID revokes, in the KRL, the certificates still valid that the same
// person (the same subject) got under another key ID: an older email, or another case of it.
func TestRevokeCoversThePersonsOtherKeyIDs(t *testing.T) {
	requireTools(t, "ssh-keygen")
	f := newFixture(t)
	dir := t.TempDir()
	certFile := func(name, token string) string {
		r := f.sign(token, newSigner(t).PublicKey(), "")
		r.certificate(t)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(r.sign.Certificate+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := certFile("old-cert.pub", f.token(alice, clientID))
	upper := certFile("upper-cert.pub", f.mint(map[string]any{"email": "ALICE@example.com"}))
	current := certFile("current-cert.pub", f.mint(map[string]any{"email": "alice.new@example.com"}))
	olga := certFile("olga-cert.pub", f.token(olga, clientID))
	if _, err := Revoke(f.dir, "alice.new@example.com", 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	krlPath := filepath.Join(dir, "revoked.krl")
	if err := os.WriteFile(krlPath, f.getKRL(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := run(t, nil, "ssh-keygen", "-Q", "-f", krlPath, old, upper, current, olga)
	for _, want := range []string{"old-cert.pub (alice@example.com): REVOKED", "upper-cert.pub (ALICE@example.com): REVOKED",
		"current-cert.pub (alice.new@example.com): REVOKED", "olga-cert.pub (olga@example.com): ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("ssh-keygen -Q: no %q in\n%s", want, out)
		}
	}
}

// The provider's keys decide every signature, so they come over https only (http only from a
// loopback address), as the issuer does: not from a jwks_uri in plain http, nor through a
// redirect to plain http. Otherwise anyone on the path could serve their own key and sign
// any ID token.
func TestProviderKeysOnlyOverHTTPS(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	// keys.example.com, in clear: found on loopback by the test's dialer.
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(jwks) }))
	t.Cleanup(keys.Close)
	_, keysPort, _ := net.SplitHostPort(keys.Listener.Addr().String())
	clearKeys := "http://keys.example.com:" + keysPort + "/keys"

	for name, jwksURI := range map[string]string{"a plain-http jwks_uri": clearKeys, "a redirect to plain http": "/redirect"} {
		t.Run(name, func(t *testing.T) {
			mux := http.NewServeMux()
			issuer := httptest.NewServer(mux)
			t.Cleanup(issuer.Close)
			if strings.HasPrefix(jwksURI, "/") {
				jwksURI = issuer.URL + jwksURI
			}
			mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
				json.NewEncoder(w).Encode(map[string]any{"issuer": issuer.URL, "jwks_uri": jwksURI,
					"authorization_endpoint": issuer.URL + "/authorize", "token_endpoint": issuer.URL + "/token",
					"id_token_signing_alg_values_supported": []string{"RS256"}})
			})
			mux.HandleFunc("GET /redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, clearKeys, http.StatusFound) })
			transport := http.DefaultTransport.(*http.Transport).Clone()
			transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				if host, p, err := net.SplitHostPort(addr); err == nil && host == "keys.example.com" {
					addr = net.JoinHostPort("127.0.0.1", p)
				}
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			}
			f := newFixture(t, func(c *Config) { c.Issuer, c.HTTPClient = issuer.URL, issuerClient(transport) })
			now := time.Now()
			token, err := oidctest.Sign(map[string]any{"iss": issuer.URL, "sub": "u-eve", "aud": clientID, "exp": now.Add(time.Hour).Unix(),
				"iat": now.Unix(), "email": "eve@example.com", "email_verified": true, "groups": []string{"ops"}}, jose.RS256, key, "k1")
			if err != nil {
				t.Fatal(err)
			}
			if r := f.sign(token, newSigner(t).PublicKey(), ""); r.status == http.StatusOK {
				t.Fatalf("a token signed with keys fetched in clear got a certificate: %s", r.sign.Certificate)
			}
		})
	}
}

// The refusal table holds MaxSources addresses a minute; an attacker who fills it from as many
// addresses (an IPv6 /48 holds 65536 /64s) must not get everyone else turned away: addresses
// beyond the table are not limited one by one (their refusals still count for the audit log's
// suppressed lines), rather than all sharing one budget that the attacker spends.
func TestRefusalTableFullTurnsNobodyAway(t *testing.T) {
	c := newRefusalCounter(Limits{RefusalsPerSource: 2, AuditRefusals: 1000, MaxSources: 3}.withDefaults())
	now := time.Now()
	for i := range 3 + 2 { // fills the table, then spends what would be the shared budget
		src := fmt.Sprintf("2001:db8:0:%x::/64", i)
		if ok, _ := c.admit(src, now); !ok {
			t.Fatalf("attacker address %d turned away before its first request", i)
		}
		c.refused(src, now)
	}
	if ok, _ := c.admit("192.0.2.1", now); !ok {
		t.Error("an address with no refusals was turned away because the table was full")
	}
	// An address in the table is still limited.
	c.refused("2001:db8:0:0::/64", now)
	if ok, _ := c.admit("2001:db8:0:0::/64", now); ok {
		t.Error("an address over its budget was let in")
	}
}
