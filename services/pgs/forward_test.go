package pgs

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/internal/sshtest"
)

// accountClient makes an account with a login key and returns an SSH client of it on the pgs
// service.
func (h *harness) accountClient(name string) *gossh.Client {
	h.t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := gossh.NewSignerFromKey(priv)
	kl, err := auth.ParseKeyLine(sshtest.AuthorizedKey(signer.PublicKey()) + " " + name)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, _, err := h.store.CreateAccount(context.Background(), name, kl.NewKey(name)); err != nil {
		h.t.Fatal(err)
	}
	return h.client(signer)
}

func (h *harness) client(signer gossh.Signer) *gossh.Client {
	h.t.Helper()
	client, err := gossh.Dial("tcp", "127.0.0.1:"+h.sshPort, &gossh.ClientConfig{
		User: "pgs", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { client.Close() })
	return client
}

// forwardGet asks for path through a direct-tcpip channel to target, as ssh -L does.
func forwardGet(t *testing.T, c *gossh.Client, target, path string, header ...string) (int, string, error) {
	t.Helper()
	conn, err := c.Dial("tcp", target)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	req, _ := http.NewRequest("GET", "http://localhost:8000"+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if err := req.Write(conn); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), nil
}

// TestPrivateSites: acl accounts keeps a site off the public listener and shows it through
// SSH forwards of the owner and the listed accounts only; acl password asks for HTTP Basic;
// acl public opens it again. ls shows the ACL kind, never the password.
func TestPrivateSites(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.html": "secret home"})
	h.mustRsync("-r", src+"/", remote+"/blog/")
	alice, _ := h.goSSH("pgs")
	bob := h.accountClient("bob")
	mallory := h.accountClient("mallory")

	if _, stderr, code := h.ssh("acl", "blog", "accounts", "bob"); code != 0 {
		t.Fatalf("acl accounts: %s", stderr)
	}
	if code, body, _ := h.get("blog", "/"); code != 404 || strings.Contains(body, "secret") {
		t.Fatalf("public listener: %d %q", code, body)
	}
	for name, c := range map[string]*gossh.Client{"alice": alice, "bob": bob} {
		if code, body, err := forwardGet(t, c, "alice-blog:80", "/"); err != nil || code != 200 || body != "secret home" {
			t.Errorf("%s through a forward: %d %q %v", name, code, body, err)
		}
	}
	if _, _, err := forwardGet(t, bob, "alice-blog.localhost:80", "/"); err != nil {
		t.Errorf("forward to the full host name: %v", err)
	}
	if code, body, err := forwardGet(t, mallory, "alice-blog:80", "/"); err == nil {
		t.Errorf("mallory got %d %q", code, body)
	}
	for _, target := range []string{"alice-blog:81", "alice-nope:80", "bob-blog:80", "127.0.0.1:22", "localhost:80", "alice-blog:443"} {
		if _, _, err := forwardGet(t, bob, target, "/"); err == nil {
			t.Errorf("forward to %s was accepted", target)
		}
	}

	// A password: HTTP Basic with any user name.
	if _, stderr, code := h.run(strings.NewReader("correct horse battery\n"), "ssh", append(h.sshArgs(), "pgs@127.0.0.1", "acl", "blog", "password")...); code != 0 {
		t.Fatalf("acl password: %s", stderr)
	}
	if code, _, hdr := h.get("blog", "/"); code != 401 || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("no password: %d %v", code, hdr)
	}
	basic := func(user, pw string) string {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(user, pw)
		return req.Header.Get("Authorization")
	}
	if code, _, _ := h.get("blog", "/", "Authorization", basic("x", "wrong password")); code != 401 {
		t.Fatalf("wrong password: %d", code)
	}
	for range 2 {
		code, body, hdr := h.get("blog", "/", "Authorization", basic("anyone", "correct horse battery"))
		if code != 200 || body != "secret home" {
			t.Fatalf("right password: %d %q", code, body)
		}
		// a shared cache (a CDN, a proxy) must not keep it for visitors without the password
		if cc := hdr.Get("Cache-Control"); !strings.HasPrefix(cc, "private") {
			t.Errorf("a page behind a password says Cache-Control %q, want private", cc)
		}
	}
	out, _, _ := h.ssh("ls", "--json")
	var list []ProjectView
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].ACL != "password" ||
		strings.Contains(out, "argon2") || strings.Contains(out, "horse") {
		t.Fatalf("ls --json: %s %v", out, err)
	}
	// Bad input changes nothing.
	for _, args := range [][]string{{"acl", "blog", "accounts", "Not_A_Name!"}, {"acl", "blog", "secret"}, {"acl", "nope", "public"}} {
		if _, _, code := h.ssh(args...); code == 0 {
			t.Errorf("%v accepted", args)
		}
	}
	if _, stderr, code := h.run(strings.NewReader("short\n"), "ssh", append(h.sshArgs(), "pgs@127.0.0.1", "acl", "blog", "password")...); code == 0 || !strings.Contains(stderr, "at least 8 bytes") {
		t.Errorf("short password: %d %s", code, stderr)
	}
	if code, _, _ := h.get("blog", "/", "Authorization", basic("x", "correct horse battery")); code != 200 {
		t.Fatalf("after refused changes: %d", code)
	}
	if _, stderr, code := h.ssh("acl", "blog", "public"); code != 0 {
		t.Fatalf("acl public: %s", stderr)
	}
	if code, body, _ := h.get("blog", "/"); code != 200 || body != "secret home" {
		t.Fatalf("public again: %d %q", code, body)
	}
}

func TestPasswordHash(t *testing.T) {
	hash := hashPassword("correct horse")
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(hash, "horse") {
		t.Fatalf("hash %s", hash)
	}
	if !checkPassword(hash, "correct horse") || checkPassword(hash, "correct horsE") || checkPassword("$argon2id$v=19$m=0,t=1,p=1$AA$AA", "x") {
		t.Fatal("checkPassword")
	}
	if hashPassword("correct horse") == hash {
		t.Fatal("no salt")
	}
}

// TestPrivateSiteUnlistedNames: an ACL may list only accounts that exist. Were a name that no
// account holds accepted (a typo, a colleague not yet signed up), whoever signed up under it
// first would see the private site.
func TestPrivateSiteUnlistedNames(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.html": "secret home"})
	h.mustRsync("-r", src+"/", remote+"/blog/")
	h.accountClient("bob")
	if _, stderr, code := h.ssh("acl", "blog", "accounts", "bob,carl"); code == 0 || !strings.Contains(stderr, "carl") {
		t.Fatalf("acl with an account that does not exist: exit %d %s", code, stderr)
	}
	out, _, _ := h.ssh("ls", "--json")
	var list []ProjectView
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].ACL != "public" {
		t.Fatalf("a refused acl changed the site: %s %v", out, err)
	}
}

// TestPasswordChecksPerSource: one source has at most one password check waiting or running,
// so a single client guessing passwords in parallel cannot hold every check slot of the gateway
// and keep other visitors of password sites out.
func TestPasswordChecksPerSource(t *testing.T) {
	c := newPasswordChecker()
	// A costly hash (64 MiB, 3 passes) keeps the first check running for a while.
	slow := "$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + strings.Repeat("A", 43)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.check(context.Background(), "192.0.2.7:1000", slow, "guess one")
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		busy := len(c.slots) > 0
		c.mu.Unlock()
		if busy || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := c.check(context.Background(), "192.0.2.7:2000", slow, "guess two"); err != errPasswordBusy {
		t.Errorf("a second check from the same source: %v, want %v", err, errPasswordBusy)
	}
	shared := make(chan error, 1)
	go func() {
		_, err := c.check(context.Background(), "192.0.2.7:1500", slow, "guess one")
		shared <- err
	}()
	if _, err := c.check(context.Background(), "198.51.100.1:1000", slow, "guess three"); err != nil {
		t.Errorf("a check from another source: %v", err)
	}
	if err := <-shared; err != nil {
		t.Errorf("the same password from the same source at once (one check, shared): %v", err)
	}
	<-done
	if _, err := c.check(context.Background(), "192.0.2.7:3000", slow, "guess four"); err != nil {
		t.Errorf("the source's next check, once the first ended: %v", err)
	}
}

// TestPrivateSiteHostSpellings: however the forward's host is spelled (case, trailing dots,
// the server's domain), a private site answers its owner's listed accounts only.
func TestPrivateSiteHostSpellings(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.html": "secret home"})
	h.mustRsync("-r", src+"/", remote+"/blog/")
	bob := h.accountClient("bob")
	mallory := h.accountClient("mallory")
	if _, stderr, code := h.ssh("acl", "blog", "accounts", "bob"); code != 0 {
		t.Fatalf("acl accounts: %s", stderr)
	}
	for _, target := range []string{"ALICE-BLOG:80", "alice-blog.:80", "Alice-Blog.LocalHost.:80", "alice-blog.localhost:80"} {
		if code, body, err := forwardGet(t, bob, target, "/"); err != nil || code != 200 || body != "secret home" {
			t.Errorf("bob to %s: %d %q %v", target, code, body, err)
		}
		if code, body, err := forwardGet(t, mallory, target, "/"); err == nil {
			t.Errorf("mallory to %s: %d %q", target, code, body)
		}
	}
	for _, target := range []string{"alice-blog.evil.example:80", "alice-blog..:80", "alice--blog:80", "-alice-blog:80", "alice-blog\x00:80", "alice-blog/../x:80", "[::1]:80"} {
		if code, body, err := forwardGet(t, bob, target, "/"); err == nil {
			t.Errorf("bob to %q: accepted, %d %q", target, code, body)
		}
	}
}
