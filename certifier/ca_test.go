package certifier

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

var fixedNow = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// requireTools skips a test whose tools are missing, or fails it under CI=true.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required (CI=true): %v", tool, err)
			}
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
}

// run runs a command and returns its combined output.
func run(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// keygen makes a key pair with ssh-keygen and returns the private key's path.
func keygen(t *testing.T, dir, name, typ string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if out, err := run(t, nil, "ssh-keygen", "-q", "-t", typ, "-N", "", "-C", name, "-f", path); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	return path
}

// The claim certificate is what keys add --ca takes as proof of possession: a user certificate
// signed by the CA for a throwaway key, key ID portico-claim, principal the code, valid now
// and for 15 minutes.
func TestClaimCertificate(t *testing.T) {
	ca := newSigner(t)
	line, err := ClaimCertificate(ca, "K7QX2M9P", fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(line, "\n") != 0 || !strings.HasPrefix(line, "ssh-ed25519-cert-v01@openssh.com ") {
		t.Errorf("line %q", line)
	}
	pub, _, _, _, err := gossh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	cert := pub.(*gossh.Certificate)
	checker := gossh.CertChecker{Clock: func() time.Time { return fixedNow }}
	if err := checker.CheckCert("K7QX2M9P", cert); err != nil {
		t.Errorf("CheckCert: %v", err)
	}
	if cert.CertType != gossh.UserCert || cert.KeyId != "portico-claim" || !slices.Equal(cert.ValidPrincipals, []string{"K7QX2M9P"}) ||
		!bytes.Equal(cert.SignatureKey.Marshal(), ca.PublicKey().Marshal()) ||
		time.Unix(int64(cert.ValidBefore), 0).Sub(fixedNow) != 15*time.Minute || time.Unix(int64(cert.ValidAfter), 0).After(fixedNow) {
		t.Errorf("certificate %+v", cert)
	}
	for _, bad := range []string{"", "two words", "a,b", strings.Repeat("A", 65), "code\n", "admin", "PGS"} {
		if _, err := ClaimCertificate(ca, bad, fixedNow); err == nil {
			t.Errorf("code %q was signed", bad)
		}
	}
}

// A CA key file must be the owner's alone; an encrypted one is sent to the agent.
func TestLoadCAFile(t *testing.T) {
	requireTools(t, "ssh-keygen")
	dir := t.TempDir()
	path := keygen(t, dir, "ca", "ed25519")
	ca, err := LoadCA(path, "")
	if err != nil {
		t.Fatal(err)
	}
	pubLine, _ := os.ReadFile(path + ".pub")
	want, _, _, _, _ := gossh.ParseAuthorizedKey(pubLine)
	if !bytes.Equal(ca.PublicKey().Marshal(), want.Marshal()) {
		t.Error("LoadCA read another key")
	}
	os.Chmod(path, 0o644)
	if _, err := LoadCA(path, ""); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a world-readable CA key: %v", err)
	}
	enc := filepath.Join(dir, "enc")
	if out, err := run(t, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", enc); err != nil {
		t.Fatal(out)
	}
	if _, err := LoadCA(enc, ""); err == nil || !strings.Contains(err.Error(), "--ca agent:") {
		t.Errorf("an encrypted CA key: %v", err)
	}
	if _, err := LoadCA(filepath.Join(dir, "missing"), ""); err == nil {
		t.Error("a missing CA key file loaded")
	}
	if _, err := LoadCA("agent:", ""); err == nil || !strings.Contains(err.Error(), "SSH_AUTH_SOCK") {
		t.Errorf("agent: without SSH_AUTH_SOCK: %v", err)
	}
}

// startAgent runs a real ssh-agent on a socket in dir until the test ends.
func startAgent(t *testing.T, dir string) string {
	t.Helper()
	sock := filepath.Join(dir, "agent.sock")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return sock
		}
		if time.Now().After(deadline) {
			t.Fatal("ssh-agent did not listen")
		}
	}
}

// --ca agent: signs through a real ssh-agent: certificates, claims and KRLs verify with the
// CA's public key, an RSA CA signs with SHA-2, and the agent is found again after a restart.
func TestAgentCA(t *testing.T) {
	requireTools(t, "ssh-agent", "ssh-add", "ssh-keygen")
	dir := t.TempDir()
	sock := startAgent(t, dir)
	env := []string{"SSH_AUTH_SOCK=" + sock}
	if _, err := LoadCA("agent:", sock); err == nil || !strings.Contains(err.Error(), "holds no key") {
		t.Errorf("an empty agent: %v", err)
	}
	edCA := keygen(t, dir, "edca", "ed25519")
	rsaCA := keygen(t, dir, "rsaca", "rsa")
	if out, err := run(t, env, "ssh-add", "-q", edCA); err != nil {
		t.Fatal(out)
	}
	ca, err := LoadCA("agent:", sock)
	if err != nil {
		t.Fatal(err)
	}
	line, err := ClaimCertificate(ca, "CODE1234", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, _ := gossh.ParseAuthorizedKey([]byte(line))
	if err := (&gossh.CertChecker{}).CheckCert("CODE1234", pub.(*gossh.Certificate)); err != nil {
		t.Errorf("the agent-signed claim certificate: %v", err)
	}

	if out, err := run(t, env, "ssh-add", "-q", rsaCA); err != nil {
		t.Fatal(out)
	}
	if _, err := LoadCA("agent:", sock); err == nil || !strings.Contains(err.Error(), "--ca agent:FINGERPRINT") {
		t.Errorf("an agent with two keys: %v", err)
	}
	rsaPub := readPub(t, rsaCA+".pub")
	ca, err = LoadCA("agent:"+gossh.FingerprintSHA256(rsaPub), sock)
	if err != nil {
		t.Fatal(err)
	}
	line, err = ClaimCertificate(ca, "CODE5678", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, _ = gossh.ParseAuthorizedKey([]byte(line))
	cert := pub.(*gossh.Certificate)
	if cert.Signature.Format != gossh.KeyAlgoRSASHA512 {
		t.Errorf("the RSA CA signed with %s, want rsa-sha2-512", cert.Signature.Format)
	}
	if err := (&gossh.CertChecker{}).CheckCert("CODE5678", cert); err != nil {
		t.Errorf("the RSA agent-signed certificate: %v", err)
	}
	// ssh-keygen reads a KRL that the RSA CA signed through the agent.
	krlPath := filepath.Join(dir, "rsa.krl")
	b, err := MarshalKRL(Revocations{Version: 1, Serials: []RevokedSerial{{Serial: cert.Serial}}}, ca)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(krlPath, b, 0o644)
	certPath := filepath.Join(dir, "claim-cert.pub")
	os.WriteFile(certPath, []byte(line+"\n"), 0o644)
	if out, err := run(t, nil, "ssh-keygen", "-Q", "-f", krlPath, certPath); err == nil || !strings.Contains(out, "REVOKED") {
		t.Errorf("ssh-keygen -Q with the agent-signed KRL: %v\n%s", err, out)
	}
	if _, err := LoadCA("agent:SHA256:nope", sock); err == nil || !strings.Contains(err.Error(), "no key SHA256:nope") {
		t.Errorf("an unknown fingerprint: %v", err)
	}
}

// Once the agent is gone, signing fails with an error that names it.
func TestAgentGone(t *testing.T) {
	requireTools(t, "ssh-agent", "ssh-add", "ssh-keygen")
	dir := t.TempDir()
	sock := startAgent(t, dir)
	if out, err := run(t, []string{"SSH_AUTH_SOCK=" + sock}, "ssh-add", "-q", keygen(t, dir, "ca", "ed25519")); err != nil {
		t.Fatal(out)
	}
	ca, err := LoadCA("agent:", sock)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(sock)
	_, err = ClaimCertificate(ca, "CODE", time.Now())
	if err == nil || !strings.Contains(err.Error(), "ssh-agent at") {
		t.Errorf("signing without the agent: %v", err)
	}
}

func readPub(t *testing.T, path string) gossh.PublicKey {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := gossh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}
