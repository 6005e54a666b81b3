package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/internal/sshtest"
)

// TestPendingKeyGrantsNothingElse drives the built server with golang.org/x/crypto/ssh as the
// holder of a pending key would if they meant harm: other services, port forwarding, a
// subsystem, every admin command, and many claim codes at once over one connection. Only
// `keys claim` and `help` may run, and the guesses are bounded.
func TestPendingKeyGrantsNothingElse(t *testing.T) {
	requirePostgresEverywhere(t)
	t.Parallel()
	dir := t.TempDir()
	e, err := newEndpoints()
	if err != nil {
		t.Fatal(err)
	}
	storage := append([]string{"--data-dir", filepath.Join(dir, "data")}, databaseFlags(t)...)
	alice, desk := sshtest.NewSigner(t), sshtest.NewSigner(t)
	if err := os.WriteFile(filepath.Join(dir, "alice.pub"), []byte(sshtest.AuthorizedKey(alice.PublicKey())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	create := exec.Command(porticoBin, append([]string{"account", "create", "alice", "--key", filepath.Join(dir, "alice.pub")}, storage...)...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("account create: %v\n%s", err, out)
	}
	args := append([]string{"--ssh-listen", e.sshAddr(), "--http-listen", strings.TrimPrefix(e.httpURL(""), "http://"),
		"--signups", "closed"}, storage...)
	srv, err := startServer(dir, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, args, filepath.Join(dir, "portico.log"), e)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Log(srv.logTail())
		}
	})
	hostPub, err := hostKey(e.sshAddr())
	if err != nil {
		t.Fatal(err)
	}
	dial := func(user string, signer ssh.Signer) (*ssh.Client, error) {
		return ssh.Dial("tcp", e.sshAddr(), &ssh.ClientConfig{
			User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
			HostKeyCallback: ssh.FixedHostKey(hostPub), Timeout: 10 * time.Second,
		})
	}
	// newSession opens a session once the connection has room: a pending key's connection
	// has one session at a time, held until the previous one's handler has returned.
	newSession := func(c *ssh.Client) (*ssh.Session, error) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			s, err := c.NewSession()
			if err == nil || !strings.Contains(err.Error(), "one session at a time") || time.Now().After(deadline) {
				return s, err
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	run := func(c *ssh.Client, command, stdin string) (string, string, int) {
		t.Helper()
		s, err := newSession(c)
		if err != nil {
			t.Fatalf("session for %q: %v", command, err)
		}
		defer s.Close()
		var stdout, stderr bytes.Buffer
		s.Stdin, s.Stdout, s.Stderr = strings.NewReader(stdin), &stdout, &stderr
		err = s.Run(command)
		var exitErr *ssh.ExitError
		switch {
		case err == nil:
			return stdout.String(), stderr.String(), 0
		case errors.As(err, &exitErr):
			return stdout.String(), stderr.String(), exitErr.ExitStatus()
		}
		t.Fatalf("%q: %v", command, err)
		return "", "", 0
	}

	admin, err := dial("admin", alice)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	out, errOut, status := run(admin, "keys add --json", sshtest.AuthorizedKey(desk.PublicKey())+" desk\n")
	var added struct {
		State string
		Claim struct{ Code string }
	}
	if status != 0 || json.Unmarshal([]byte(out), &added) != nil || added.State != "pending" {
		t.Fatalf("keys add: status %d, %s %s", status, out, errOut)
	}

	// No other service.
	for _, user := range []string{"pipe", "pgs", "tuns"} {
		if c, err := dial(user, desk); err == nil {
			c.Close()
			t.Errorf("the pending key logged in as %s@", user)
		}
	}
	c, err := dial("admin", desk)
	if err != nil {
		t.Fatalf("the pending key on admin: %v", err)
	}
	defer c.Close()

	// No port forwarding, either way, and no subsystem.
	if ok, _, err := c.SendRequest("tcpip-forward", true, ssh.Marshal(struct {
		Addr string
		Port uint32
	}{"127.0.0.1", 0})); ok || err != nil {
		t.Errorf("tcpip-forward: ok %v, err %v; want a refusal", ok, err)
	}
	if ch, _, err := c.OpenChannel("direct-tcpip", ssh.Marshal(struct {
		Host       string
		Port       uint32
		OriginHost string
		OriginPort uint32
	}{"127.0.0.1", uint32(e.HTTPPort), "127.0.0.1", 1})); err == nil {
		ch.Close()
		t.Error("direct-tcpip was opened for the pending key")
	}
	if s, err := newSession(c); err == nil {
		if err := s.RequestSubsystem("sftp"); err == nil {
			if err := s.Wait(); err == nil {
				t.Error("the sftp subsystem ran for the pending key")
			}
		}
		s.Close()
	}

	// Every command but keys claim and help is refused, and changes nothing.
	for _, command := range []string{"whoami", "keys ls", "keys add", "keys rm alice", "logs", "revoke --key-id x",
		"revocations ls", "account delete --yes", "register desk"} {
		if out, errOut, status := run(c, command, ""); status != 1 || out != "" {
			t.Errorf("%q: status %d, stdout %q, stderr %q; want a refusal", command, status, out, errOut)
		}
	}
	if out, _, status := run(c, "help", ""); status != 0 || !strings.Contains(out, "This key waits to be claimed") {
		t.Errorf("help: status %d, %q", status, out)
	}

	// Guesses at once on parallel connections (one has one session at a time): each counts,
	// and after five the entry is gone, so the right code fails too.
	var guessers []*ssh.Client
	for range 8 {
		g, err := dial("admin", desk)
		if err != nil {
			t.Fatalf("a guesser's connection: %v", err)
		}
		defer g.Close()
		guessers = append(guessers, g)
	}
	var wg sync.WaitGroup
	for i, g := range guessers {
		wg.Go(func() {
			code := []byte("2222222" + string(rune('2'+i)))
			if string(code) == added.Claim.Code {
				return
			}
			s, err := newSession(g)
			if err != nil {
				t.Errorf("session: %v", err)
				return
			}
			defer s.Close()
			if err := s.Run("keys claim " + string(code)); err == nil {
				t.Errorf("keys claim %s succeeded", code)
			}
		})
	}
	wg.Wait()
	if _, errOut, status := run(c, "keys claim "+added.Claim.Code, ""); status != 1 || !strings.Contains(errOut, "no key waiting to be claimed") {
		t.Errorf("the right code after 8 wrong ones: status %d, %q", status, errOut)
	}
	if out, _, _ := run(admin, "keys ls --json", ""); strings.Contains(out, "desk") {
		t.Errorf("the entry survived the guesses: %s", out)
	}
	if c2, err := dial("admin", desk); err == nil {
		c2.Close()
		t.Error("the key whose entry was dropped still gets a grant (signups are closed)")
	}
}
