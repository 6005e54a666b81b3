package gateway

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/internal/sshtest"
)

func TestLoadHostCertificate(t *testing.T) {
	hostKey, hostCA, other := sshtest.NewSigner(t), sshtest.NewSigner(t), sshtest.NewSigner(t)
	now := time.Now()
	write := func(t *testing.T, key gossh.PublicKey, signer gossh.Signer, edit func(*gossh.Certificate)) string {
		c := &gossh.Certificate{Key: key, CertType: gossh.HostCert, KeyId: "portico", ValidPrincipals: []string{"example.com"},
			ValidAfter: uint64(now.Add(-time.Hour).Unix()), ValidBefore: uint64(now.Add(time.Hour).Unix())}
		if edit != nil {
			edit(c)
		}
		if err := c.SignCert(rand.Reader, signer); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "host-cert.pub")
		if err := os.WriteFile(path, gossh.MarshalAuthorizedKey(c), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write(t, hostKey.PublicKey(), hostCA, nil)
	h, err := LoadHostCertificate(good, hostKey, now)
	if err != nil {
		t.Fatal(err)
	}
	line := h.KnownHostsLine("example.com", 2222)
	want := "@cert-authority [example.com]:2222 " + strings.TrimSpace(string(gossh.MarshalAuthorizedKey(hostCA.PublicKey())))
	if line != want {
		t.Errorf("known_hosts line %q, want %q", line, want)
	}
	if got := h.KnownHostsLine("example.com", 22); !strings.HasPrefix(got, "@cert-authority example.com ssh-ed25519 ") {
		t.Errorf("port 22 line %q", got)
	}
	bad := []struct {
		name, path, want string
	}{
		{"another key's certificate", write(t, other.PublicKey(), hostCA, nil), "not this server's host key"},
		{"a user certificate", write(t, hostKey.PublicKey(), hostCA, func(c *gossh.Certificate) { c.CertType = gossh.UserCert }), "user certificate"},
		{"expired", write(t, hostKey.PublicKey(), hostCA, func(c *gossh.Certificate) { c.ValidBefore = uint64(now.Add(-time.Minute).Unix()) }), "expired"},
		{"no host named", write(t, hostKey.PublicKey(), hostCA, func(c *gossh.Certificate) { c.ValidPrincipals = nil }), "names no host"},
		{"missing", filepath.Join(t.TempDir(), "nope"), "no such file"},
	}
	plain := filepath.Join(t.TempDir(), "plain.pub")
	os.WriteFile(plain, gossh.MarshalAuthorizedKey(hostKey.PublicKey()), 0o644)
	bad = append(bad, struct{ name, path, want string }{"a plain key", plain, "not a certificate"})
	for _, b := range bad {
		if _, err := LoadHostCertificate(b.path, hostKey, now); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: error %v, want one saying %q", b.name, err, b.want)
		}
	}
	// A forged signature: the certificate's bytes changed after signing.
	forged := write(t, hostKey.PublicKey(), hostCA, nil)
	b, _ := os.ReadFile(forged)
	pub, _, _, _, _ := gossh.ParseAuthorizedKey(b)
	c := pub.(*gossh.Certificate)
	c.ValidPrincipals = []string{"evil.example"}
	os.WriteFile(forged, gossh.MarshalAuthorizedKey(c), 0o644)
	if _, err := LoadHostCertificate(forged, hostKey, now); err == nil {
		t.Error("a certificate whose signature does not verify was loaded")
	}
}
