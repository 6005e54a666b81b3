package certifier

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/internal/oidctest"
)

const clientID = "portico"

// The provider's users.
var (
	alice   = oidctest.User{Subject: "u-alice", Username: "alice", Password: "pw-alice", Email: "alice@example.com", Groups: []string{"web-team", "staff"}}
	olga    = oidctest.User{Subject: "u-olga", Username: "olga", Password: "pw-olga", Email: "olga@example.com", Groups: []string{"ops"}}
	bob     = oidctest.User{Subject: "u-bob", Username: "bob", Password: "pw-bob", Email: "bob@example.com", Groups: []string{"sales"}}
	nobody  = oidctest.User{Subject: "u-nobody", Username: "nobody", Password: "pw-nobody", Email: "nobody@example.com"}
	mallory = oidctest.User{Subject: "u-mallory", Username: "mallory", Password: "pw-mallory", Email: "alice@example.com", EmailUnverified: true, Groups: []string{"web-team"}}
	users   = []oidctest.User{alice, olga, bob, nobody, mallory}
)

// fixture is a certifier in front of a real provider.
type fixture struct {
	t        *testing.T
	provider *oidctest.Provider
	server   *Server
	http     *httptest.Server
	ca       gossh.Signer
	dir      string
	clock    *clock
}

// clock is a settable time for the certifier (the provider keeps real time).
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

func newSigner(t testing.TB) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pubLine(s gossh.Signer) string {
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(s.PublicKey())))
}

// newFixture starts a provider and a certifier mapping web-team=pgs,tuns and ops=admin, with
// a maximum TTL of an hour; change lets a test adjust the configuration.
func newFixture(t *testing.T, change ...func(*Config)) *fixture {
	t.Helper()
	return newFixtureWith(t, oidctest.Options{}, change...)
}

// newFixtureWith is newFixture with a provider started with opts (its users and clients are
// the fixture's).
func newFixtureWith(t *testing.T, opts oidctest.Options, change ...func(*Config)) *fixture {
	t.Helper()
	opts.Users, opts.Clients = users, []string{clientID, "other-app"}
	p := oidctest.Start(t, opts)
	dir := t.TempDir()
	state, err := OpenState(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { state.Close() })
	mapping, err := ParseMapping([]string{"web-team=pgs,tuns", "ops=admin"})
	if err != nil {
		t.Fatal(err)
	}
	ext, _ := ParseExtensions(DefaultExtensions)
	c := &clock{}
	cfg := Config{
		CA:          newSigner(t),
		Issuer:      p.Issuer,
		ClientID:    clientID,
		Scopes:      []string{"openid", "email", "profile", "offline_access"},
		Mapping:     mapping,
		GroupsClaim: "groups",
		MaxTTL:      time.Hour,
		Extensions:  ext,
		State:       state,
		Now:         c.now,
	}
	for _, f := range change {
		f(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := httptest.NewServer(s.Handler())
	t.Cleanup(h.Close)
	return &fixture{t: t, provider: p, server: s, http: h, ca: cfg.CA, dir: dir, clock: c}
}

// token is a real ID token of user for the client, from the authorization code flow.
func (f *fixture) token(user oidctest.User, client string) string {
	f.t.Helper()
	raw, err := f.provider.IDToken(f.t.Context(), client, user.Username, user.Password)
	if err != nil {
		f.t.Fatalf("logging %s in: %v", user.Username, err)
	}
	return raw
}

// mint is an ID token with the provider's own key and these claims over valid defaults.
func (f *fixture) mint(claims map[string]any) string {
	f.t.Helper()
	now := time.Now()
	c := map[string]any{
		"iss": f.provider.Issuer, "sub": alice.Subject, "aud": clientID, "azp": clientID,
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(),
		"email": alice.Email, "email_verified": true, "groups": alice.Groups,
	}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	raw, err := f.provider.Mint(c)
	if err != nil {
		f.t.Fatal(err)
	}
	return raw
}

// result is an answer of the certifier.
type result struct {
	status int
	body   []byte
	sign   SignResponse
	err    ErrorResponse
}

// post sends a /sign request with the raw body and Authorization header.
func (f *fixture) post(authorization string, body []byte) result {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.t.Context(), http.MethodPost, f.http.URL+"/sign", bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, body: data}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(data, &r.sign); err != nil {
			f.t.Fatalf("sign answer %s: %v", data, err)
		}
	} else if err := json.Unmarshal(data, &r.err); err != nil {
		f.t.Fatalf("refusal %d %s: %v", resp.StatusCode, data, err)
	}
	return r
}

// sign asks for a certificate for key with token.
func (f *fixture) sign(token string, key gossh.PublicKey, ttl string) result {
	f.t.Helper()
	body, _ := json.Marshal(SignRequest{PublicKey: strings.TrimSpace(string(gossh.MarshalAuthorizedKey(key))), TTL: ttl, Reason: "testing"})
	return f.post("Bearer "+token, body)
}

// certificate parses a signed answer's certificate.
func (r result) certificate(t *testing.T) *gossh.Certificate {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("HTTP %d: %s", r.status, r.body)
	}
	pub, _, _, _, err := gossh.ParseAuthorizedKey([]byte(r.sign.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	cert, ok := pub.(*gossh.Certificate)
	if !ok {
		t.Fatalf("%q is not a certificate", r.sign.Certificate)
	}
	return cert
}

// auditLines returns the audit log's entries.
func (f *fixture) auditLines() []AuditEntry {
	f.t.Helper()
	return readAudit(f.t, f.dir)
}

func readAudit(t *testing.T, dir string) []AuditEntry {
	t.Helper()
	file, err := os.Open(filepath.Join(dir, AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var out []AuditEntry
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		var e AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// lastAudit is the last audit entry.
func (f *fixture) lastAudit() AuditEntry {
	f.t.Helper()
	lines := f.auditLines()
	if len(lines) == 0 {
		f.t.Fatal("the audit log is empty")
	}
	return lines[len(lines)-1]
}
