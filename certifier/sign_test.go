package certifier

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/internal/oidctest"
)

// A teammate's real ID token gets an hour-long certificate: key ID their email, principals the
// services their groups map to, validity from a minute ago, a random serial, the default
// extensions, signed by the CA; one audit line and one issued record say so.
func TestSignCertificate(t *testing.T) {
	f := newFixture(t)
	key := newSigner(t)
	before := time.Now()
	r := f.sign(f.token(alice, clientID), key.PublicKey(), "")
	cert := r.certificate(t)

	checker := gossh.CertChecker{}
	if err := checker.CheckCert("pgs", cert); err != nil {
		t.Errorf("the certificate does not check: %v", err)
	}
	if !bytes.Equal(cert.SignatureKey.Marshal(), f.ca.PublicKey().Marshal()) {
		t.Error("the certificate is not signed by the CA")
	}
	if !bytes.Equal(cert.Key.Marshal(), key.PublicKey().Marshal()) {
		t.Error("the certificate is not for the key sent")
	}
	if cert.CertType != gossh.UserCert || cert.KeyId != "alice@example.com" || !slices.Equal(cert.ValidPrincipals, []string{"pgs", "tuns"}) {
		t.Errorf("type %d, key ID %q, principals %v", cert.CertType, cert.KeyId, cert.ValidPrincipals)
	}
	after := time.Unix(int64(cert.ValidAfter), 0)
	if d := before.Add(-time.Minute).Sub(after); d < -2*time.Second || d > 2*time.Second {
		t.Errorf("valid after %v, want a minute before %v", after, before)
	}
	if life := time.Duration(cert.ValidBefore-cert.ValidAfter) * time.Second; life != time.Hour+time.Minute {
		t.Errorf("validity %v, want 1h1m (1h from now, from a minute ago)", life)
	}
	if !r.sign.ValidBefore.Equal(time.Unix(int64(cert.ValidBefore), 0)) {
		t.Errorf("valid_before %v is not the certificate's", r.sign.ValidBefore)
	}
	if cert.Serial == 0 || cert.Serial > maxSerial {
		t.Errorf("serial %d", cert.Serial)
	}
	if len(cert.Extensions) != 2 || cert.Extensions["permit-pty"] != "" || cert.Extensions["permit-port-forwarding"] != "" || len(cert.CriticalOptions) != 0 {
		t.Errorf("extensions %v, critical options %v", cert.Extensions, cert.CriticalOptions)
	}
	if !strings.HasSuffix(r.sign.Certificate, " alice@example.com") {
		t.Errorf("certificate line %q: want the key ID as its comment", r.sign.Certificate)
	}

	e := f.lastAudit()
	if e.Event != "sign" || e.Outcome != "signed" || e.Reason != "" || e.Subject != alice.Subject || e.Email != alice.Email ||
		e.KeyID != alice.Email || !slices.Equal(e.Groups, alice.Groups) || !slices.Equal(e.Principals, []string{"pgs", "tuns"}) ||
		e.KeyFingerprint != gossh.FingerprintSHA256(key.PublicKey()) || e.Serial == nil || *e.Serial != cert.Serial ||
		e.ValidBefore == nil || !e.ValidBefore.Equal(r.sign.ValidBefore) || e.ValidAfter == nil ||
		!strings.HasPrefix(e.RemoteAddr, "127.0.0.1") || e.RequestReason != "testing" {
		t.Errorf("audit entry %+v", e)
	}
	issued, err := FindIssued(f.dir, "alice@example.com", 0)
	if err != nil || len(issued) != 1 || issued[0].Serial != cert.Serial {
		t.Errorf("issued records %+v, %v", issued, err)
	}

	// Two certificates never share a serial.
	r2 := f.sign(f.token(alice, clientID), key.PublicKey(), "30m")
	if c2 := r2.certificate(t); c2.Serial == cert.Serial || time.Duration(c2.ValidBefore-c2.ValidAfter)*time.Second != 31*time.Minute {
		t.Errorf("second certificate: serial %d, validity %v", c2.Serial, time.Duration(c2.ValidBefore-c2.ValidAfter)*time.Second)
	}
}

// Every principal a group gives is named, admin too; --extensions changes the extensions.
func TestSignAdminAndExtensions(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Extensions = []string{"permit-pty"} })
	cert := f.sign(f.token(olga, clientID), newSigner(t).PublicKey(), "").certificate(t)
	if !slices.Equal(cert.ValidPrincipals, []string{"admin"}) || len(cert.Extensions) != 1 || cert.KeyId != olga.Email {
		t.Errorf("principals %v, extensions %v, key ID %q", cert.ValidPrincipals, cert.Extensions, cert.KeyId)
	}
}

// An email the provider does not vouch for (email_verified false) could name someone else, so
// the key ID is the subject.
func TestUnverifiedEmailIsNotTheKeyID(t *testing.T) {
	f := newFixture(t)
	cert := f.sign(f.token(mallory, clientID), newSigner(t).PublicKey(), "").certificate(t)
	if cert.KeyId != mallory.Subject {
		t.Errorf("key ID %q, want the subject %q", cert.KeyId, mallory.Subject)
	}
	if e := f.lastAudit(); e.Email != "alice@example.com" || e.KeyID != mallory.Subject {
		t.Errorf("audit entry %+v: want the email shown and the subject as key ID", e)
	}
}

// A TTL over the maximum is clamped, and the audit line says so.
func TestTTLClamped(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxTTL = 10 * time.Minute })
	cert := f.sign(f.token(alice, clientID), newSigner(t).PublicKey(), "2h").certificate(t)
	if life := time.Duration(cert.ValidBefore-cert.ValidAfter) * time.Second; life != 11*time.Minute {
		t.Errorf("validity %v, want 11m (the 10m maximum and the minute before)", life)
	}
	if e := f.lastAudit(); !e.TTLClamped || e.Outcome != "signed" {
		t.Errorf("audit entry %+v: want ttl_clamped", e)
	}
}

// hs256 is a token signed with HMAC, the secret being the issuer's public key in PEM: the
// algorithm confusion attack on verifiers that take the key's bytes as an HMAC secret.
func hs256(t *testing.T, f *fixture, claims map[string]any) string {
	pub, kid := f.provider.SigningKey()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	raw, err := oidctest.Sign(claims, jose.HS256, secret, kid)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// unsigned is a token with alg none.
func unsigned(claims map[string]any) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	p, _ := json.Marshal(claims)
	return enc.EncodeToString(h) + "." + enc.EncodeToString(p) + "."
}

func validClaims(f *fixture) map[string]any {
	now := time.Now()
	return map[string]any{"iss": f.provider.Issuer, "sub": alice.Subject, "aud": clientID, "azp": clientID,
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "email": alice.Email, "email_verified": true, "groups": []string{"web-team"}}
}

// Every refusal of issue point 5 and of an attacker: the client gets the reason, nothing is
// signed, and the audit log has the refusal with the same words.
func TestRefusals(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Limits.RefusalsPerSource = 1000 })
	other := oidctest.Start(t, oidctest.Options{Users: users, Clients: []string{clientID}})
	key := newSigner(t).PublicKey()
	keyLine := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(key)))
	foreignRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, kid := f.provider.SigningKey()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(alg jose.SignatureAlgorithm, key any, kid string) string {
		raw, err := oidctest.Sign(validClaims(f), alg, key, kid)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	body := func(req SignRequest) []byte { b, _ := json.Marshal(req); return b }
	good := body(SignRequest{PublicKey: keyLine})
	rsaSmall, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallPub, _ := gossh.NewPublicKey(&rsaSmall.PublicKey)
	certForKey := f.sign(f.token(alice, clientID), key, "").certificate(t)

	tests := []struct {
		name   string
		auth   func() string // the Authorization header
		body   []byte
		status int
		reason Reason
		words  string
	}{
		{"no token", func() string { return "" }, good, 401, ReasonNoToken, "Bearer"},
		{"basic auth", func() string { return "Basic YWxpY2U6cHc=" }, good, 401, ReasonNoToken, "no ID token"},
		{"garbage token", func() string { return "Bearer not.a.jwt" }, good, 401, ReasonMalformedToken, "malformed"},
		{"alg none", func() string { return "Bearer " + unsigned(validClaims(f)) }, good, 401, ReasonAlgorithm, `"none"`},
		{"alg confusion HS256", func() string { return "Bearer " + hs256(t, f, validClaims(f)) }, good, 401, ReasonAlgorithm, `"HS256"`},
		{"unexpected ES256", func() string { return "Bearer " + sign(jose.ES256, ecKey, kid) }, good, 401, ReasonAlgorithm, `"ES256"`},
		{"forged signature", func() string { return "Bearer " + sign(jose.RS256, foreignRSA, kid) }, good, 401, ReasonSignature, "does not verify"},
		{"forged, unknown key", func() string { return "Bearer " + sign(jose.RS256, foreignRSA, "other-kid") }, good, 401, ReasonSignature, "does not verify"},
		{"foreign issuer", func() string {
			raw, err := other.IDToken(t.Context(), clientID, "alice", alice.Password)
			if err != nil {
				t.Fatal(err)
			}
			return "Bearer " + raw
		}, good, 401, ReasonIssuer, other.Issuer},
		{"another audience", func() string { return "Bearer " + f.token(alice, "other-app") }, good, 401, ReasonAudience, `"other-app"`},
		{"authorized party elsewhere", func() string {
			return "Bearer " + f.mint(map[string]any{"aud": []string{clientID, "other-app"}, "azp": "other-app"})
		}, good, 401, ReasonAudience, "other-app"},
		{"several audiences, no azp", func() string {
			return "Bearer " + f.mint(map[string]any{"aud": []string{"other-app", clientID}, "azp": nil})
		}, good, 401, ReasonAudience, "wrong audience"},
		{"expired", func() string {
			return "Bearer " + f.mint(map[string]any{"exp": time.Now().Add(-time.Minute).Unix(), "iat": time.Now().Add(-time.Hour).Unix()})
		}, good, 401, ReasonExpired, "expired"},
		{"not yet valid", func() string { return "Bearer " + f.mint(map[string]any{"nbf": time.Now().Add(time.Hour).Unix()}) }, good, 401, ReasonNotYetValid, "not yet valid"},
		{"no subject", func() string { return "Bearer " + f.mint(map[string]any{"sub": nil, "email_verified": false}) }, good, 401, ReasonMalformedToken, "subject"},
		{"groups not a list", func() string { return "Bearer " + f.mint(map[string]any{"groups": 42}) }, good, 401, ReasonMalformedToken, "groups"},
		{"groups map to nothing", func() string { return "Bearer " + f.token(bob, clientID) }, good, 403, ReasonNoServices, `"sales"`},
		{"no groups at all", func() string { return "Bearer " + f.token(nobody, clientID) }, good, 403, ReasonNoServices, "groups (none)"},
		{"not JSON", func() string { return "Bearer " + f.token(alice, clientID) }, []byte("public_key=ssh-ed25519"), 400, ReasonBadRequest, "JSON"},
		{"two JSON values", func() string { return "Bearer " + f.token(alice, clientID) }, append(good, good...), 400, ReasonBadRequest, "more than one"},
		{"body too large", func() string { return "Bearer " + f.token(alice, clientID) }, bytes.Repeat([]byte(" "), DefaultMaxBody+1), 413, ReasonTooLarge, "too large"},
		{"bad ttl", func() string { return "Bearer " + f.token(alice, clientID) }, body(SignRequest{PublicKey: keyLine, TTL: "soon"}), 400, ReasonBadRequest, "ttl"},
		{"negative ttl", func() string { return "Bearer " + f.token(alice, clientID) }, body(SignRequest{PublicKey: keyLine, TTL: "-5m"}), 400, ReasonBadRequest, "ttl"},
		{"long reason", func() string { return "Bearer " + f.token(alice, clientID) }, body(SignRequest{PublicKey: keyLine, Reason: strings.Repeat("x", 300)}), 400, ReasonBadRequest, "reason"},
		{"key not a key", func() string { return "Bearer " + f.token(alice, clientID) }, body(SignRequest{PublicKey: "hello world"}), 400, ReasonPublicKey, "not an OpenSSH public key"},
		{"empty key", func() string { return "Bearer " + f.token(alice, clientID) }, body(SignRequest{}), 400, ReasonPublicKey, "empty"},
		{"key with options", func() string { return "Bearer " + f.token(alice, clientID) }, body(SignRequest{PublicKey: `command="sh" ` + keyLine}), 400, ReasonPublicKey, "options"},
		{"two keys", func() string { return "Bearer " + f.token(alice, clientID) }, body(SignRequest{PublicKey: keyLine + "\n" + keyLine}), 400, ReasonPublicKey, "more than one line"},
		{"certificate as key", func() string { return "Bearer " + f.token(alice, clientID) }, body(SignRequest{PublicKey: string(gossh.MarshalAuthorizedKey(certForKey))}), 400, ReasonPublicKey, "certificate"},
		{"small RSA key", func() string { return "Bearer " + f.token(alice, clientID) }, body(SignRequest{PublicKey: string(gossh.MarshalAuthorizedKey(smallPub))}), 400, ReasonPublicKey, "2048"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.auditLines())
			r := f.post(tt.auth(), tt.body)
			if r.status != tt.status || r.err.Reason != tt.reason || !strings.Contains(r.err.Error, tt.words) {
				t.Fatalf("HTTP %d %s; want %d, reason %q, %q in the message", r.status, r.body, tt.status, tt.reason, tt.words)
			}
			lines := f.auditLines()
			if len(lines) != before+1 {
				t.Fatalf("%d audit lines written, want 1", len(lines)-before)
			}
			if e := lines[len(lines)-1]; e.Outcome != "refused" || e.Reason != r.err.Error || e.Serial != nil || len(e.Principals) != 0 {
				t.Errorf("audit entry %+v", e)
			}
		})
	}

	// The identity of a verified token is in the audit line of its refusal; a forged token's
	// claims never are.
	f.post("Bearer "+f.token(bob, clientID), good)
	if e := f.lastAudit(); e.KeyID != bob.Email || !slices.Equal(e.Groups, bob.Groups) {
		t.Errorf("audit entry of bob's refusal %+v", e)
	}
	f.post("Bearer "+sign(jose.RS256, foreignRSA, kid), good)
	if e := f.lastAudit(); e.KeyID != "" || e.Email != "" || e.Subject != "" || e.Groups != nil {
		t.Errorf("audit entry of a forged token %+v names someone", e)
	}
}

// An ID token gets one certificate: presented again, it is refused.
func TestReplayedToken(t *testing.T) {
	f := newFixture(t)
	token := f.token(alice, clientID)
	f.sign(token, newSigner(t).PublicKey(), "").certificate(t)
	r := f.sign(token, newSigner(t).PublicKey(), "")
	if r.status != http.StatusUnauthorized || r.err.Reason != ReasonReplayed {
		t.Fatalf("HTTP %d %s; want a replay refusal", r.status, r.body)
	}
	if e := f.lastAudit(); e.Outcome != "refused" || e.KeyID != alice.Email || !strings.Contains(e.Reason, "already used") {
		t.Errorf("audit entry %+v", e)
	}
}

// The certifier's clock decides expiry: a token valid when issued is refused once its exp
// passes, without waiting.
func TestTokenExpiresOnTheCertifiersClock(t *testing.T) {
	f := newFixture(t)
	token := f.token(alice, clientID)
	f.clock.advance(2 * time.Hour)
	r := f.sign(token, newSigner(t).PublicKey(), "")
	if r.status != http.StatusUnauthorized || r.err.Reason != ReasonExpired {
		t.Fatalf("HTTP %d %s; want expired", r.status, r.body)
	}
}

// A key ID revoked with Revoke gets no more certificates.
func TestRevokedKeyIDIsNotSigned(t *testing.T) {
	f := newFixture(t)
	if added, err := Revoke(f.dir, "alice@example.com", 0, time.Now()); err != nil || !added {
		t.Fatalf("Revoke: %v %v", added, err)
	}
	r := f.sign(f.token(alice, clientID), newSigner(t).PublicKey(), "")
	if r.status != http.StatusForbidden || r.err.Reason != ReasonRevoked || !strings.Contains(r.err.Error, "alice@example.com") {
		t.Fatalf("HTTP %d %s; want revoked", r.status, r.body)
	}
	f.sign(f.token(olga, clientID), newSigner(t).PublicKey(), "").certificate(t)
}

// When the issuer cannot be reached nothing is decided: 503, and the audit line says so.
func TestIssuerUnavailable(t *testing.T) {
	f := newFixture(t)
	token := f.token(alice, clientID)
	f.provider.Close()
	r := f.sign(token, newSigner(t).PublicKey(), "")
	if r.status != http.StatusServiceUnavailable || r.err.Reason != ReasonUnavailable {
		t.Fatalf("HTTP %d %s; want unavailable", r.status, r.body)
	}
	if e := f.lastAudit(); e.Outcome != "refused" || !strings.Contains(e.Reason, "unavailable") {
		t.Errorf("audit entry %+v", e)
	}
}

// GET /config and GET /ca tell a client all it needs.
func TestConfigAndCA(t *testing.T) {
	f := newFixture(t)
	resp, err := http.Get(f.http.URL + "/config")
	if err != nil {
		t.Fatal(err)
	}
	var c ConfigResponse
	err = json.NewDecoder(resp.Body).Decode(&c)
	resp.Body.Close()
	if err != nil || c.Issuer != f.provider.Issuer || c.ClientID != clientID || !slices.Contains(c.Scopes, "openid") || c.MaxTTL != "1h0m0s" {
		t.Errorf("config %+v, %v", c, err)
	}
	resp, err = http.Get(f.http.URL + "/ca")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	resp.Body.Close()
	pub, _, options, _, err := gossh.ParseAuthorizedKey(buf.Bytes())
	if err != nil || !slices.Equal(options, []string{"cert-authority"}) || !bytes.Equal(pub.Marshal(), f.ca.PublicKey().Marshal()) {
		t.Errorf("GET /ca %q: %v", buf.String(), err)
	}
	resp, err = http.Post(f.http.URL+"/ca", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /ca: HTTP %d", resp.StatusCode)
	}
}
