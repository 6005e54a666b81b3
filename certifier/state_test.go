package certifier

import (
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/krl"
	gossh "golang.org/x/crypto/ssh"
)

// getKRL fetches GET /krl.
func (f *fixture) getKRL() []byte {
	f.t.Helper()
	resp, err := http.Get(f.http.URL + "/krl")
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		f.t.Fatalf("GET /krl: %d %v", resp.StatusCode, err)
	}
	return b
}

// GET /krl serves an OpenSSH KRL of what revoke revoked, signed by the CA, that ssh-keygen -Q
// reads: by key ID (every certificate of that person) and by serial (one certificate).
func TestKRL(t *testing.T) {
	requireTools(t, "ssh-keygen")
	f := newFixture(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certFile := func(name string, user string) (string, *gossh.Certificate) {
		token := f.token(alice, clientID)
		if user == "olga" {
			token = f.token(olga, clientID)
		}
		r := f.sign(token, newSigner(t).PublicKey(), "")
		return write(name, []byte(r.sign.Certificate+"\n")), r.certificate(t)
	}
	aliceCert, _ := certFile("alice-cert.pub", "alice")
	olgaCert, olga1 := certFile("olga-cert.pub", "olga")
	olgaCert2, _ := certFile("olga2-cert.pub", "olga")
	keygenQ := func(krlData []byte, certs ...string) string {
		out, _ := run(t, nil, "ssh-keygen", append([]string{"-Q", "-f", write("revoked.krl", krlData)}, certs...)...)
		return out
	}

	// Nothing revoked: an empty KRL that revokes nothing.
	empty := f.getKRL()
	if out := keygenQ(empty, aliceCert, olgaCert); strings.Contains(out, "REVOKED") || strings.Count(out, ": ok") != 2 {
		t.Errorf("empty KRL: %s", out)
	}

	if added, err := Revoke(f.dir, "alice@example.com", 0, time.Now()); err != nil || !added {
		t.Fatal(added, err)
	}
	if added, err := Revoke(f.dir, "alice@example.com", 0, time.Now()); err != nil || added {
		t.Errorf("revoking again: %v %v", added, err)
	}
	if _, err := Revoke(f.dir, "", olga1.Serial, time.Now()); err != nil {
		t.Fatal(err)
	}
	b := f.getKRL()
	out := keygenQ(b, aliceCert, olgaCert, olgaCert2)
	if !strings.Contains(out, "alice-cert.pub") || !strings.Contains(out, "alice-cert.pub (alice@example.com): REVOKED") ||
		!strings.Contains(out, "olga-cert.pub (olga@example.com): REVOKED") || !strings.Contains(out, "olga2-cert.pub (olga@example.com): ok") {
		t.Errorf("ssh-keygen -Q:\n%s", out)
	}
	parsed, err := krl.ParseKRL(b)
	if err != nil {
		t.Fatalf("the KRL's signature does not verify: %v", err)
	}
	if parsed.Version != 3 || len(parsed.SigningKeys) != 1 || gossh.FingerprintSHA256(parsed.SigningKeys[0]) != gossh.FingerprintSHA256(f.ca.PublicKey()) {
		t.Errorf("KRL version %d (want 3: two revocations), %d signatures", parsed.Version, len(parsed.SigningKeys))
	}
	listing, _ := run(t, nil, "ssh-keygen", "-Q", "-l", "-f", write("revoked.krl", b))
	if !strings.Contains(listing, "id: alice@example.com") || !strings.Contains(listing, "serial: ") {
		t.Errorf("ssh-keygen -Q -l:\n%s", listing)
	}
	if e := readAudit(t, f.dir); len(e) == 0 {
		t.Error("no audit lines")
	}
	if _, err := Revoke(f.dir, "", 0, time.Now()); err == nil {
		t.Error("revoking serial 0 was accepted")
	}
	if _, err := Revoke(f.dir, "bad\nid", 0, time.Now()); err == nil {
		t.Error("a key ID with a newline was revoked")
	}
}

// Two revokes at once lose neither.
func TestConcurrentRevokes(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := Revoke(dir, "", uint64(i+1), time.Now()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	rev, err := readRevocations(filepath.Join(dir, RevocationsFile))
	if err != nil || len(rev.Serials) != 20 || rev.Version != 20 {
		t.Errorf("%d serials, version %d, %v", len(rev.Serials), rev.Version, err)
	}
}

// A stream of refused requests from one address is turned away (429) after its budget; the
// audit log gets the refusals one by one up to the limit, then one line with a count.
func TestRefusalFlood(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Limits.RefusalsPerSource = 5
		c.Limits.AuditRefusals = 3
	})
	key := pubLine(newSigner(t))
	body := []byte(`{"public_key": "` + key + `"}`)
	for i := range 5 {
		if r := f.post("Bearer garbage", body); r.status != http.StatusUnauthorized {
			t.Fatalf("request %d: HTTP %d", i, r.status)
		}
	}
	for range 10 {
		if r := f.post("Bearer garbage", body); r.status != http.StatusTooManyRequests || r.err.Reason != ReasonRateLimited {
			t.Fatalf("over the budget: HTTP %d %s", r.status, r.body)
		}
	}
	// Even a good request from that address waits for the next minute.
	if r := f.sign(f.token(alice, clientID), newSigner(t).PublicKey(), ""); r.status != http.StatusTooManyRequests {
		t.Fatalf("a good request over the budget: HTTP %d", r.status)
	}
	if n := len(f.auditLines()); n != 3 {
		t.Errorf("%d audit lines, want the 3 the limit lets through", n)
	}
	f.clock.advance(time.Minute)
	f.sign(f.token(alice, clientID), newSigner(t).PublicKey(), "").certificate(t)
	lines := f.auditLines()
	if len(lines) != 5 {
		t.Fatalf("%d audit lines, want 3 refusals, 1 suppressed count, 1 signed", len(lines))
	}
	if s := lines[3]; s.Event != "suppressed" || s.Count != 13 || s.RemoteAddr != "127.0.0.1" {
		t.Errorf("suppressed line %+v, want 13 (2 refusals over the audit limit, 11 turned away)", s)
	}
	if lines[4].Outcome != "signed" {
		t.Errorf("last line %+v", lines[4])
	}
}

// The client address of the audit log and of the limits: the peer, or behind a trusted proxy
// the address it forwards; an IPv6 client counts as its /64.
func TestSourceOf(t *testing.T) {
	trusted, err := ParseTrustedProxies("10.0.0.0/8, 127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		remote  string
		xff     []string
		addr    string
		bucket  string
		trusted []netip.Prefix
	}{
		{"192.0.2.7:5000", nil, "192.0.2.7", "192.0.2.7", trusted},
		{"192.0.2.7:5000", []string{"203.0.113.9"}, "192.0.2.7", "192.0.2.7", trusted}, // not a proxy: ignored
		{"127.0.0.1:5000", []string{"203.0.113.9"}, "203.0.113.9", "203.0.113.9", trusted},
		{"127.0.0.1:5000", []string{"198.51.100.1, 203.0.113.9, 10.1.2.3"}, "203.0.113.9", "203.0.113.9", trusted},
		{"127.0.0.1:5000", []string{"bogus"}, "127.0.0.1", "127.0.0.1", trusted},
		{"127.0.0.1:5000", []string{"203.0.113.9"}, "127.0.0.1", "127.0.0.1", nil},
		{"[2001:db8:1:2:3:4:5:6]:443", nil, "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64", nil},
		{"[::ffff:192.0.2.7]:443", nil, "192.0.2.7", "192.0.2.7", nil},
	}
	for _, tt := range tests {
		addr, bucket := sourceOf(tt.remote, tt.xff, tt.trusted)
		if addr != tt.addr || bucket != tt.bucket {
			t.Errorf("sourceOf(%q, %q) = %q, %q; want %q, %q", tt.remote, tt.xff, addr, bucket, tt.addr, tt.bucket)
		}
	}
	if _, err := ParseTrustedProxies("10.0.0.1/8"); err == nil {
		t.Error("a CIDR block with host bits was accepted")
	}
}

// The replay memory is bounded: full of unexpired tokens, it refuses more instead of growing;
// expired ones make room.
func TestReplayCacheBound(t *testing.T) {
	c := newReplayCache(2)
	now := time.Now()
	if c.use("a", now.Add(time.Minute), now) != nil || c.use("b", now.Add(time.Hour), now) != nil {
		t.Fatal("fresh tokens refused")
	}
	if c.use("a", now.Add(time.Minute), now) != errReplayed {
		t.Error("a replay was accepted")
	}
	if c.use("c", now.Add(time.Hour), now) != errReplayFull {
		t.Error("the full cache grew")
	}
	later := now.Add(2 * time.Minute)
	if c.use("c", later.Add(time.Hour), later) != nil || len(c.seen) != 2 {
		t.Errorf("an expired token did not make room: %d held", len(c.seen))
	}
}
