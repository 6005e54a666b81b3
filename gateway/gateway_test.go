package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/dsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/portico-sh/portico/internal/sshtest"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/gateway"
)

func TestLoginKeyReachesTheRoutedService(t *testing.T) {
	f := start(t)
	tests := []struct {
		name, user string
		want       auth.Service
	}{
		{"admin user", "admin", auth.Admin},
		{"pgs user", "pgs", auth.PGS},
		{"local login name goes to admin", "alice", auth.Admin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.connect(f.ssh, tt.user, f.alice.login)
			r, _, code := exec(t, c, `deploy "my site" --now`)
			if code != 0 {
				t.Errorf("exit status %d", code)
			}
			want := report{Service: tt.want, Account: "alice", Method: auth.MethodKey, Identity: "laptop",
				Command: []string{"deploy", "my site", "--now"}, RawCommand: `deploy "my site" --now`}
			if !equalReports(r, want) {
				t.Errorf("service saw %+v, want %+v", r, want)
			}
		})
	}
}

func TestExitStatusReachesTheClient(t *testing.T) {
	f := start(t)
	c := f.connect(f.ssh, "pgs", f.alice.login)
	if _, _, code := exec(t, c, "exit 3"); code != 3 {
		t.Errorf("exit status %d, want 3", code)
	}
}

func TestBoundListenerForcesItsService(t *testing.T) {
	f := start(t)
	c := f.connect(f.sshPGS, "admin", f.alice.login)
	if r, _, _ := exec(t, c, "whoami"); r.Service != auth.PGS {
		t.Errorf("service %q on the pgs listener, want pgs", r.Service)
	}
}

func TestUnavailableService(t *testing.T) {
	f := start(t)
	for _, user := range []string{"tuns", "pipe"} { // tuns: placeholder; pipe: not registered
		c := f.connect(f.ssh, user, f.alice.login)
		_, stderr, code := exec(t, c, "ls")
		if code != 1 || stderr != "portico: the "+user+" service is not available yet\n" {
			t.Errorf("%s: exit %d, stderr %q", user, code, stderr)
		}
	}
}

func TestRefusalShowsTheReasonAsBanner(t *testing.T) {
	f := start(t)
	bob := sshtest.NewSigner(t)
	tests := []struct {
		name, user string
		signer     gossh.Signer
		want       string // in the banner
		account    string // in the access log
	}{
		{"unknown key asks for pgs", "pgs", bob, "not registered", ""},
		{"certificate does not grant admin", "admin", certFor(t, f.alice.ca, bob, nil), "does not grant", "alice"},
		{"expired certificate", "pgs", certFor(t, f.alice.ca, bob, func(c *gossh.Certificate) {
			c.ValidBefore = uint64(time.Now().Add(-time.Minute).Unix())
		}), "expired", "alice"},
		{"unknown critical option", "pgs", certFor(t, f.alice.ca, bob, func(c *gossh.Certificate) {
			c.CriticalOptions["verify-required"] = ""
		}), "critical option", "alice"},
		{"source-address mismatch", "pgs", certFor(t, f.alice.ca, bob, func(c *gossh.Certificate) {
			c.CriticalOptions["source-address"] = "192.0.2.0/24"
		}), "source address", "alice"},
		{"unknown CA", "pgs", certFor(t, sshtest.NewSigner(t), bob, nil), "unknown certificate authority", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.store.entries())
			banner := f.refused(f.ssh, tt.user, tt.signer)
			if !strings.HasPrefix(banner, "portico: ") || !strings.Contains(banner, tt.want) || !strings.HasSuffix(banner, "\r\n") {
				t.Errorf("banner %q, want \"portico: ...%s...\\r\\n\"", banner, tt.want)
			}
			entries := f.store.entries()[before:]
			if len(entries) != 1 {
				t.Fatalf("%d access-log entries, want 1", len(entries))
			}
			e := entries[0]
			if e.Outcome != "denied" || e.Account != tt.account || e.Service != tt.user || e.Reason == "" ||
				e.KeyFingerprint != auth.Fingerprint(bob.PublicKey()) || !strings.HasPrefix(e.RemoteAddr, "127.0.0.1:") {
				t.Errorf("access entry %+v", e)
			}
		})
	}
}

func TestCertificateGrant(t *testing.T) {
	f := start(t)
	bob := sshtest.NewSigner(t)
	cert := certFor(t, f.alice.ca, bob, func(c *gossh.Certificate) {
		c.CriticalOptions["source-address"] = "127.0.0.0/8"
	})
	c := f.connect(f.ssh, "pgs", cert)
	r, _, _ := exec(t, c, "ls")
	want := report{Service: auth.PGS, Account: "alice", Method: auth.MethodCert, Identity: "bob@laptop",
		Command: []string{"ls"}, RawCommand: "ls"}
	if !equalReports(r, want) {
		t.Errorf("service saw %+v, want %+v", r, want)
	}
	entries := f.store.entries()
	e := entries[len(entries)-1]
	if e.Outcome != "allowed" || e.Account != "alice" || e.AccountID != f.alice.ID || e.Method != "cert" ||
		e.Identity != "bob@laptop" || e.Serial == nil || *e.Serial != 7 || e.Service != "pgs" ||
		e.CAFingerprint != auth.Fingerprint(f.alice.ca.PublicKey()) || e.KeyFingerprint != auth.Fingerprint(bob.PublicKey()) {
		t.Errorf("access entry %+v", e)
	}
}

func TestLastUseOfTheKeyIsRecorded(t *testing.T) {
	f := start(t)
	f.connect(f.ssh, "admin", f.alice.login)
	f.store.entries() // the key's use is written with the connection's entry
	k, err := f.store.KeyByFingerprint(t.Context(), auth.Fingerprint(f.alice.login.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	if k.LastUsedAt == nil || time.Since(*k.LastUsedAt) > time.Minute {
		t.Errorf("last_used_at %v, want about now", k.LastUsedAt)
	}
}

func TestOnlyPublicKeysAuthenticate(t *testing.T) {
	f := start(t)
	asked := false
	tests := []struct {
		name    string
		methods []gossh.AuthMethod
	}{
		{"none", nil},
		{"password", []gossh.AuthMethod{gossh.Password("alice")}},
		{"keyboard-interactive", []gossh.AuthMethod{gossh.KeyboardInteractive(
			func(string, string, []string, []bool) ([]string, error) { asked = true; return nil, nil })}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := f.dial(f.ssh, "alice", tt.methods...)
			if d.err == nil {
				t.Fatal("accepted")
			}
			// The server offers publickey only, so the client runs out of methods.
			if !strings.Contains(d.err.Error(), "no supported methods remain") {
				t.Errorf("error %q", d.err)
			}
		})
	}
	if asked {
		t.Error("the server sent a keyboard-interactive challenge")
	}
	if n := len(f.store.entries()); n != 0 {
		t.Errorf("%d access-log entries, want 0", n)
	}
}

// failingSigner offers a key but cannot sign: the server sees only the unsigned query.
type failingSigner struct{ gossh.Signer }

func (failingSigner) Sign(io.Reader, []byte) (*gossh.Signature, error) {
	return nil, io.ErrUnexpectedEOF
}

func TestAccessLogOnlyForSignedAttempts(t *testing.T) {
	f := start(t)
	bob := sshtest.NewSigner(t)
	for _, signer := range []gossh.Signer{f.alice.login, bob, certFor(t, f.alice.ca, bob, nil)} {
		for _, user := range []string{"admin", "pgs"} {
			if d := f.dial(f.ssh, user, gossh.PublicKeys(failingSigner{signer})); d.err == nil {
				t.Fatal("a key that did not sign was accepted")
			}
		}
	}
	if n := f.auth.calls.Load(); n != 0 {
		t.Fatalf("%d decisions for unsigned queries, want 0: nothing is decided before a key is proven", n)
	}
	if n := len(f.store.entries()); n != 0 {
		t.Fatalf("%d access-log entries after unsigned queries, want 0", n)
	}

	f.connect(f.ssh, "admin", f.alice.login)
	f.refused(f.ssh, "pgs", bob)
	if n := len(f.store.entries()); n != 2 {
		t.Errorf("%d access-log entries after two signed attempts, want 2", n)
	}
}

// signHook runs before its signer signs: after the server answered the client's query for
// the key, before the signed attempt.
type signHook struct {
	gossh.Signer
	before func()
}

func (s signHook) Sign(r io.Reader, data []byte) (*gossh.Signature, error) {
	s.before()
	return s.Signer.Sign(r, data)
}

// TestRevokedBetweenQueryAndSignature: a certificate revoked after the server answered the
// query for it, but before the client signed, is refused: the decision is made on the proven
// key, from the store as it is then, not carried over from the query.
func TestRevokedBetweenQueryAndSignature(t *testing.T) {
	f := start(t)
	bob := sshtest.NewSigner(t)
	cert := certFor(t, f.alice.ca, bob, nil)
	revoke := func() {
		if _, err := f.store.AddRevocation(context.Background(), f.alice.ID, db.NewRevocation{Kind: db.RevokeKeyID, Value: "bob@laptop"}); err != nil {
			t.Error(err)
		}
	}
	banner := f.refused(f.ssh, "pgs", signHook{cert, revoke})
	if !strings.Contains(banner, "revoked") {
		t.Errorf("banner %q, want it to say revoked", banner)
	}
}

func TestFirstKeyRefusedSecondAccepted(t *testing.T) {
	f := start(t)
	d := f.dial(f.ssh, "pgs", gossh.PublicKeys(sshtest.NewSigner(t), f.alice.login))
	if d.err != nil {
		t.Fatalf("refused: %v", d.err)
	}
	r, _, _ := exec(t, d.client, "ls")
	if r.Account != "alice" || r.Identity != "laptop" {
		t.Errorf("service saw %+v, want alice's login key", r)
	}
	entries := f.store.entries()
	if len(entries) != 2 || entries[0].Outcome != "denied" || entries[1].Outcome != "allowed" {
		t.Errorf("access log %+v, want denied then allowed", entries)
	}
}

func TestStoreDown(t *testing.T) {
	f := start(t)
	f.store.down.Store(true)
	banner := f.refused(f.ssh, "admin", f.alice.login)
	if !strings.Contains(banner, "unavailable") {
		t.Errorf("banner %q, want it to say unavailable", banner)
	}
	if n := len(f.store.entries()); n != 0 {
		t.Errorf("%d access-log entries, want 0", n)
	}
	f.store.down.Store(false)
	f.connect(f.ssh, "admin", f.alice.login)
}

// TestUnrecordedLoginIsRefused: access-log entries are written in the background, and an
// allowed connection is served once its entry is queued; once writing fails, connections are
// refused as unavailable until it works again, and what was queued is written then.
func TestUnrecordedLoginIsRefused(t *testing.T) {
	f := start(t)
	before := len(f.store.entries())
	f.store.failAppend.Store(true)
	f.connect(f.ssh, "admin", f.alice.login).Close() // queued, not yet written
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := f.dial(f.ssh, "admin", gossh.PublicKeys(f.alice.login))
		if d.err != nil {
			if !strings.Contains(d.banner, "unavailable") {
				t.Fatalf("refused with banner %q, want it to say unavailable", d.banner)
			}
			break
		}
		d.client.Close()
		if time.Now().After(deadline) {
			t.Fatal("connections are still served 10 s after the access log stopped being written")
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.store.failAppend.Store(false)
	deadline = time.Now().Add(15 * time.Second)
	for {
		if d := f.dial(f.ssh, "admin", gossh.PublicKeys(f.alice.login)); d.err == nil {
			d.client.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("connections are still refused 15 s after the access log works again")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(f.store.entries()) - before; n < 2 {
		t.Errorf("%d entries written once the access log worked again, want the queued ones too", n)
	}
}

func TestForceCommand(t *testing.T) {
	f := start(t)
	bob := sshtest.NewSigner(t)
	cert := certFor(t, f.alice.ca, bob, func(c *gossh.Certificate) {
		c.CriticalOptions["force-command"] = `publish --site "my blog"`
	})
	c := f.connect(f.ssh, "pgs", cert)
	forced := []string{"publish", "--site", "my blog"}

	for _, cmd := range []string{"rm -rf /", ""} {
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		s.Stdout, s.Stderr = &stdout, &stderr
		if cmd == "" {
			err = s.Shell()
		} else {
			err = s.Start(cmd)
		}
		if err != nil {
			t.Fatal(err)
		}
		r, _, _ := finish(t, s.Wait(), &stdout, &stderr)
		if !slices.Equal(r.Command, forced) || r.RawCommand != `publish --site "my blog"` || r.Subsystem != "" {
			t.Errorf("command %q: service saw %+v, want the forced command", cmd, r)
		}
	}

	r := subsystem(t, c, "sftp")
	if !slices.Equal(r.Command, forced) || r.Subsystem != "" {
		t.Errorf("subsystem sftp: service saw %+v, want the forced command", r)
	}
}

// TestBlankForceCommandRunsNothing: a force-command with no words (force-command="", or " ")
// runs nothing the client asked for: no exec, no shell (which would be the TUI), no
// subsystem; each ends with a reason on stderr and a non-zero exit status.
func TestBlankForceCommandRunsNothing(t *testing.T) {
	f := start(t)
	for _, forced := range []string{"", " ", "\t \n"} {
		cert := certFor(t, f.alice.ca, sshtest.NewSigner(t), func(c *gossh.Certificate) {
			c.CriticalOptions["force-command"] = forced
			c.Extensions["permit-pty"] = ""
		})
		c := f.connect(f.ssh, "pgs", cert)
		for _, req := range []string{"exec", "shell", "subsystem"} {
			s, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			stdout, _ := s.StdoutPipe()
			stderr, _ := s.StderrPipe()
			switch req {
			case "exec":
				err = s.Start("deploy --everything")
			case "shell":
				if err = s.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err == nil {
					err = s.Shell()
				}
			case "subsystem":
				err = s.RequestSubsystem("sftp")
			}
			if err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(stdout)
			errOut, _ := io.ReadAll(stderr)
			if len(out) > 0 || !strings.Contains(string(errOut), "force-command") {
				t.Errorf("force-command %q, %s: service said %q, stderr %q; want nothing run, and why", forced, req, out, errOut)
			}
			var exit *gossh.ExitError
			// x/crypto's Wait works only on sessions it started (exec, shell); the e2e test
			// sees sftp's exit status.
			if err := s.Wait(); req != "subsystem" && (!errors.As(err, &exit) || exit.ExitStatus() == 0) {
				t.Errorf("force-command %q, %s: session ended with %v, want a non-zero exit status", forced, req, err)
			}
			s.Close()
		}
	}
}

func TestSubsystemReachesTheService(t *testing.T) {
	f := start(t)
	c := f.connect(f.ssh, "pgs", f.alice.login)
	r := subsystem(t, c, "sftp")
	if r.Service != auth.PGS || r.Subsystem != "sftp" || len(r.Command) != 0 {
		t.Errorf("service saw %+v, want subsystem sftp on pgs", r)
	}
}

func TestPTYNeedsPermit(t *testing.T) {
	f := start(t)
	bob := sshtest.NewSigner(t)
	tests := []struct {
		name   string
		signer gossh.Signer
		want   bool
	}{
		{"login key", f.alice.login, true},
		{"certificate with permit-pty", certFor(t, f.alice.ca, bob, func(c *gossh.Certificate) { c.Extensions["permit-pty"] = "" }), true},
		{"certificate without permit-pty", certFor(t, f.alice.ca, bob, nil), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.connect(f.ssh, "pgs", tt.signer)
			s, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			err = s.RequestPty("xterm", 24, 80, gossh.TerminalModes{})
			if got := err == nil; got != tt.want {
				t.Fatalf("pty granted %v, want %v (%v)", got, tt.want, err)
			}
			var stdout, stderr bytes.Buffer
			s.Stdout, s.Stderr = &stdout, &stderr
			r, _, _ := finish(t, s.Run("ls"), &stdout, &stderr)
			if r.PTY != tt.want {
				t.Errorf("service saw pty %v, want %v", r.PTY, tt.want)
			}
		})
	}
}

func TestPortForwardingNeedsPermitAndService(t *testing.T) {
	f := start(t)
	bob := sshtest.NewSigner(t)
	withPermit := certFor(t, f.alice.ca, bob, func(c *gossh.Certificate) {
		c.Extensions["permit-port-forwarding"] = ""
		c.ValidPrincipals = []string{"pgs", "admin"}
	})
	tests := []struct {
		name, user string
		signer     gossh.Signer
		want       bool
	}{
		{"login key on a forwarding service", "pgs", f.alice.login, true},
		{"certificate with permit", "pgs", withPermit, true},
		{"certificate without permit", "pgs", certFor(t, f.alice.ca, bob, nil), false},
		{"service without forwarding", "admin", f.alice.login, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.connect(f.ssh, tt.user, tt.signer)

			ln, err := c.Listen("tcp", "127.0.0.1:0")
			if got := err == nil; got != tt.want {
				t.Errorf("tcpip-forward accepted %v, want %v (%v)", got, tt.want, err)
			}
			if ln != nil {
				if !strings.HasSuffix(ln.Addr().String(), ":4242") {
					t.Errorf("forwarded address %s, want the service's port 4242", ln.Addr())
				}
				ln.Close()
			}

			conn, err := c.Dial("tcp", "10.1.2.3:80")
			if got := err == nil; got != tt.want {
				t.Fatalf("direct-tcpip accepted %v, want %v (%v)", got, tt.want, err)
			}
			if conn != nil {
				b, _ := io.ReadAll(conn)
				if string(b) != "tunnel for alice" {
					t.Errorf("tunnel said %q", b)
				}
				conn.Close()
			}
		})
	}
}

func TestAgentAndX11ForwardingRefused(t *testing.T) {
	f := start(t)
	c := f.connect(f.ssh, "admin", f.alice.login)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, req := range []string{"auth-agent-req@openssh.com", "x11-req"} {
		ok, err := s.SendRequest(req, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			t.Errorf("%s accepted", req)
		}
	}
}

// TestWindowChangesDoNotStallTheSession: a session with a terminal whose service never reads
// window changes (an exec, not the TUI) still answers every window-change request, so that
// resizing the terminal cannot wedge the session's requests or leak it.
func TestWindowChangesDoNotStallTheSession(t *testing.T) {
	f := start(t)
	c := f.connect(f.ssh, "pgs", f.alice.login)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Start("block"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		replied := make(chan error, 1)
		go func() {
			_, err := s.SendRequest("window-change", true, gossh.Marshal(struct{ W, H, PW, PH uint32 }{uint32(100 + i), 40, 0, 0}))
			replied <- err
		}()
		select {
		case err := <-replied:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("window change %d got no answer: the session's requests are stuck", i+1)
		}
	}
}

// TestResizeBeforeExecSizesTheTerminal: a window change between the pty request and the exec
// is the terminal's size when the session starts.
func TestResizeBeforeExecSizesTheTerminal(t *testing.T) {
	f := start(t)
	c := f.connect(f.ssh, "pgs", f.alice.login)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.SendRequest("window-change", true, gossh.Marshal(struct{ W, H, PW, PH uint32 }{132, 40, 0, 0})); !ok || err != nil {
		t.Fatalf("window change: %v, %v", ok, err)
	}
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr = &stdout, &stderr
	if r, _, _ := finish(t, s.Run("ls"), &stdout, &stderr); !r.PTY || r.Columns != 132 {
		t.Errorf("service saw pty %v with %d columns, want 132", r.PTY, r.Columns)
	}
}

// TestEnvRequestsAreBounded: a session keeps a bounded number of environment variables;
// further env requests are refused instead of held in memory.
func TestEnvRequestsAreBounded(t *testing.T) {
	f := start(t)
	c := f.connect(f.ssh, "pgs", f.alice.login)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	accepted := 0
	for i := range 200 {
		if err := s.Setenv(fmt.Sprintf("VAR%d", i), strings.Repeat("x", 100)); err == nil {
			accepted++
		}
	}
	if accepted == 0 || accepted >= 200 {
		t.Errorf("%d of 200 env requests accepted, want some but not all", accepted)
	}
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr = &stdout, &stderr
	if r, _, _ := finish(t, s.Run("ls"), &stdout, &stderr); r.Service != auth.PGS {
		t.Errorf("the session did not run after the refused env requests: %+v", r)
	}
}

// TestSessionsPerConnectionAreBounded: like sshd's MaxSessions, one connection holds at most
// ten open sessions; closing one makes room for another.
func TestSessionsPerConnectionAreBounded(t *testing.T) {
	f := start(t)
	c := f.connect(f.ssh, "pgs", f.alice.login)
	var open []*gossh.Session
	for range 10 {
		s, err := c.NewSession()
		if err != nil {
			t.Fatalf("session %d: %v", len(open)+1, err)
		}
		open = append(open, s)
	}
	if s, err := c.NewSession(); err == nil {
		s.Close()
		t.Fatal("an eleventh session was opened")
	}
	open[0].Close()
	waitForRoom(t, c, "after closing one")
	for _, s := range open[1:] {
		s.Close()
	}
}

// TestClosingASessionEndsItsHandler: a client that closes a session but keeps the connection
// (ssh's connection sharing) ends that session's context, so a service waiting on it returns;
// the session counts against the ten per connection until its handler has returned.
func TestClosingASessionEndsItsHandler(t *testing.T) {
	f := start(t)
	c := f.connect(f.ssh, "pgs", f.alice.login)
	for i := range 25 { // "block" returns only when the session's context ends
		s, err := c.NewSession()
		if err != nil {
			t.Fatalf("session %d: %v", i+1, err)
		}
		startBlocked(t, s, fmt.Sprintf("session %d", i+1))
		s.Close()
	}
	waitUnblocked(t, f, "after their sessions closed")
	// Had the closed sessions' handlers gone on, the connection would have no room left.
	waitForRoom(t, c, "after 25 closed ones")
}

// waitForRoom waits until c may open a session again.
func waitForRoom(t *testing.T, c *gossh.Client, when string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, err := c.NewSession()
		if err == nil {
			s.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no session %s: %v", when, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLongCommandIsRefused(t *testing.T) {
	f := start(t)
	c := f.connect(f.ssh, "pgs", f.alice.login)
	_, stderr, code := exec(t, c, "echo "+strings.Repeat("a ", 10<<10))
	if code != 2 || !strings.Contains(stderr, "longer than") {
		t.Fatalf("exit %d, stderr %q; want 2 and why", code, stderr)
	}
	if r, _, code := exec(t, c, "echo "+strings.Repeat("a ", 1<<10)); code != 0 || len(r.Command) != 1025 {
		t.Fatalf("a 2 KiB command: exit %d, %d words", code, len(r.Command))
	}
}

func TestSignupGrantForUnknownKeyOnAdmin(t *testing.T) {
	f := start(t)
	c := f.connect(f.ssh, "admin", sshtest.NewSigner(t))
	r, _, _ := exec(t, c, "register bob")
	if r.Method != auth.MethodSignup || r.Account != "" {
		t.Errorf("service saw %+v, want a signup grant", r)
	}
	e := f.store.entries()[0]
	if e.Outcome != "allowed" || e.Method != "signup" || e.Account != "" || e.AccountID != 0 {
		t.Errorf("access entry %+v", e)
	}
}

func TestHTTP(t *testing.T) {
	f := start(t)
	f.connect(f.ssh, "pgs", f.alice.login)
	tests := []struct {
		name, host, path string
		down             bool
		code             int
		body             string
	}{
		{"healthz", "localhost", "/healthz", false, 200, "ok"},
		{"healthz with the database down", "localhost", "/healthz", true, 503, "database unreachable"},
		{"metrics", domain, "/metrics", false, 200, `portico_auth_decisions_total{method="key",outcome="allowed",service="pgs"} 1`},
		{"metrics not on the public listener", domain, "/metrics", false, 404, ""},
		{"site", "alice-blog." + domain + ":8080", "/", false, 200, "alice's blog"},
		{"unknown site", "alice-wiki." + domain, "/", false, 404, ""},
		{"site of a bad account name", "Admin-blog." + domain, "/healthz", false, 200, "ok"},
		{"unknown path", domain, "/nope", false, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.store.down.Store(tt.down)
			defer f.store.down.Store(false)
			base := f.httpURL
			if tt.name == "metrics" {
				base = f.metricsURL
			}
			req, err := http.NewRequest("GET", base+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tt.host
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.code || !strings.Contains(string(body), tt.body) {
				t.Errorf("%d %q, want %d with %q", resp.StatusCode, body, tt.code, tt.body)
			}
		})
	}
}

// TestHTTPKeepAliveTimesOut: an HTTP client that keeps its connection open after a request
// and sends nothing more is disconnected after the idle timeout, on the public listener and
// the metrics listener.
func TestHTTPKeepAliveTimesOut(t *testing.T) {
	f := start(t, func(_ *fixture, o *gateway.Options) { o.HTTPIdleTimeout = 300 * time.Millisecond })
	for _, addr := range []string{f.httpURL, f.metricsURL} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(addr, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		path := "/healthz"
		if addr == f.metricsURL {
			path = "/metrics"
		}
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		begin := time.Now()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := conn.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("%s: an idle keep-alive connection was not closed: read %d, %v after %s", addr, n, err, time.Since(begin).Round(time.Millisecond))
		}
		t.Logf("%s: idle keep-alive connection closed after %s", addr, time.Since(begin).Round(time.Millisecond))
	}
}

// TestHTTPStalledRequestsEnd: an HTTP connection on which nothing moves is closed after the
// idle timeout in the middle of a request too, not only between requests. A request that
// announces a body and never sends it once held its connection and goroutine for good (the
// server reads the body before it answers, with no deadline): 300 such connections from one
// client, which cost it nothing, held 300 goroutines and sockets while they stayed open.
func TestHTTPStalledRequestsEnd(t *testing.T) {
	f := start(t, func(_ *fixture, o *gateway.Options) { o.HTTPIdleTimeout = time.Second })
	addr := strings.TrimPrefix(f.httpURL, "http://")
	base := measure()
	const conns = 300
	for range conns {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n")
	}
	time.Sleep(200 * time.Millisecond)
	held := measure()
	t.Logf("%d stalled requests: %s (baseline %s)", conns, held, base)
	u := settle(t, base, 20, 8<<20)
	t.Logf("after the idle timeout: %s", u)
}

// TestHTTPConnectionsAreBounded: an HTTP listener holds at most its bound of connections;
// past it, a new one is closed at once (and counted), and once some close, new ones are
// served again. Without a bound, one client could open connections until the process ran out
// of file descriptors, which SSH needs too.
func TestHTTPConnectionsAreBounded(t *testing.T) {
	const most = 40
	f := start(t, withLimits(func(l *gateway.Limits) { l.MaxHTTPConnections = most }))
	addr := strings.TrimPrefix(f.httpURL, "http://")
	var held []net.Conn
	for range most {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET /healthz HTTP/1.1\r\n") // and the rest never
		held = append(held, conn)
	}
	time.Sleep(100 * time.Millisecond) // accepted, each
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection %d past the bound of %d: read %d bytes, %v; want it closed at once", most+1, most, n, err)
	}
	for _, c := range held[:5] {
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(f.httpURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request served after connections under the bound closed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := f.metric(`portico_limit_refusals_total{limit="max_http_connections"}`); n < 1 {
		t.Errorf("portico_limit_refusals_total{limit=\"max_http_connections\"} = %d, want at least 1", n)
	}
}

// TestRegrantedConnectionEndsWithItsKey: a session that takes a new grant for its key (the
// TUI after a sign-up or a claim) puts its connection under live access with it: removing the
// key ends the connection. The gateway watched only the grant a connection logged in with, so
// a key claimed in the TUI kept the account's access after its removal.
func TestRegrantedConnectionEndsWithItsKey(t *testing.T) {
	f := start(t)
	key := sshtest.NewSigner(t)
	c := f.connect(f.ssh, "admin", key) // a sign-up connection: the key is in no account yet
	k, err := f.store.AddKey(t.Context(), f.alice.ID, newKey("tablet", db.KindLogin, key.PublicKey(), ""))
	if err != nil { // as a claim in the session would
		t.Fatal(err)
	}
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var stderr sshtest.SyncBuffer
	s.Stderr = &stderr
	if err := s.Start("regrant"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(stderr.String(), "regranted"); {
		if time.Now().After(deadline) {
			t.Fatalf("the session did not take the grant: %q", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := f.store.RemoveKey(t.Context(), f.alice.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() { ended <- c.Wait() }()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatalf("the connection still runs with alice's grant 5 s after its key was removed (stderr %q)", stderr.String())
	}
}

func TestShutdownDrainsAndReturns(t *testing.T) {
	f := start(t)
	c := f.connect(f.ssh, "admin", f.alice.login)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("block"); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := f.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if waited := time.Since(begin); waited > 5*time.Second {
		t.Errorf("shutdown took %s with a drain timeout of 2s", waited)
	}
	if d := f.dial(f.ssh, "admin", gossh.PublicKeys(f.alice.login)); d.err == nil {
		t.Error("a new connection was accepted after shutdown")
	}
}

func TestAccessLogIsPruned(t *testing.T) {
	now := time.Now()
	f := start(t, func(f *fixture, o *gateway.Options) {
		o.AccessLogRetention = 30 * 24 * time.Hour
		for _, age := range []time.Duration{31 * 24 * time.Hour, 29 * 24 * time.Hour} {
			e := db.AccessEntry{Time: now.Add(-age), AccountID: f.alice.ID, Account: "alice", Service: "admin",
				Method: "key", Identity: "laptop", RemoteAddr: "127.0.0.1:1", Outcome: "allowed"}
			if err := f.store.Store.AppendAccess(t.Context(), e); err != nil {
				t.Fatal(err)
			}
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		entries, err := f.store.ListAccess(t.Context(), f.alice.ID, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) == 1 && now.Sub(entries[0].Time) < 30*24*time.Hour {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("access log %+v, want only the entry younger than the retention", entries)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// subsystem requests a subsystem and returns the service's report.
func subsystem(t *testing.T, c *gossh.Client, name string) report {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stdout, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestSubsystem(name); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(stdout)
	if err != nil {
		t.Fatal(err)
	}
	var r report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("service output %q: %v", out, err)
	}
	return r
}

func equalReports(a, b report) bool {
	return a.Service == b.Service && a.Account == b.Account && a.Method == b.Method && a.Identity == b.Identity &&
		slices.Equal(a.Command, b.Command) && a.RawCommand == b.RawCommand && a.Subsystem == b.Subsystem && a.PTY == b.PTY
}

func TestMaxAuthTries(t *testing.T) {
	f := start(t)
	var keys []gossh.Signer
	for range 8 {
		keys = append(keys, sshtest.NewSigner(t))
	}
	keys = append(keys, f.alice.login)
	d := f.dial(f.ssh, "pgs", gossh.PublicKeys(keys...))
	if d.err == nil {
		t.Fatal("accepted after eight refused keys")
	}
	if n := len(f.store.entries()); n != gateway.DefaultMaxAuthTries {
		t.Errorf("%d access-log entries, want %d (one per refused key until the limit)", n, gateway.DefaultMaxAuthTries)
	}
}

func TestLoginGraceTime(t *testing.T) {
	f := start(t, func(_ *fixture, o *gateway.Options) { o.LoginGraceTime = 300 * time.Millisecond })
	conn, err := net.Dial("tcp", f.ssh)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	// Read the server's version line, then never authenticate.
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("the server did not close the connection in time: %v", err)
	}
}

// TestRSASignaturesNeedSHA2: as sshd since 8.8, an RSA key signs in with rsa-sha2-256 or
// rsa-sha2-512 only; ssh-rsa (SHA-1) signatures are refused, for plain keys and certificates
// alike, and so are DSA keys (ssh-dss), even for a sign-up.
func TestRSASignaturesNeedSHA2(t *testing.T) {
	f := start(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaSigner, err := gossh.NewSignerFromKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.AddKey(t.Context(), f.alice.ID, newKey("rsa", db.KindLogin, rsaSigner.PublicKey(), "")); err != nil {
		t.Fatal(err)
	}
	only := func(s gossh.Signer, algo string) gossh.Signer {
		t.Helper()
		ms, err := gossh.NewSignerWithAlgorithms(s.(gossh.AlgorithmSigner), []string{algo})
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	dsaKey := new(dsa.PrivateKey)
	if err := dsa.GenerateParameters(&dsaKey.Parameters, rand.Reader, dsa.L1024N160); err != nil {
		t.Fatal(err)
	}
	if err := dsa.GenerateKey(dsaKey, rand.Reader); err != nil {
		t.Fatal(err)
	}
	dsaSigner, err := gossh.NewSignerFromKey(dsaKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user string
		signer     gossh.Signer
		accepted   bool
	}{
		{"rsa-sha2-256", "pgs", only(rsaSigner, gossh.KeyAlgoRSASHA256), true},
		{"rsa-sha2-512", "pgs", only(rsaSigner, gossh.KeyAlgoRSASHA512), true},
		{"ssh-rsa (SHA-1)", "pgs", only(rsaSigner, gossh.KeyAlgoRSA), false},
		{"certificate signed in with ssh-rsa", "pgs", only(certFor(t, f.alice.ca, rsaSigner, nil), gossh.KeyAlgoRSA), false},
		{"certificate signed in with rsa-sha2-512", "pgs", only(certFor(t, f.alice.ca, rsaSigner, nil), gossh.KeyAlgoRSASHA512), true},
		{"ssh-dss sign-up", "admin", dsaSigner, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := f.dial(f.ssh, tt.user, gossh.PublicKeys(tt.signer))
			if got := d.err == nil; got != tt.accepted {
				t.Errorf("accepted %v, want %v (%v)", got, tt.accepted, d.err)
			}
		})
	}
}

// A gateway stopped the moment it starts serving stops cleanly: charmbracelet/ssh's Shutdown
// waits on the WaitGroup that its Serve adds the listener to, and the two must not overlap
// (the race detector saw it when a test's server was stopped at once).
func TestStopRightAfterStart(t *testing.T) {
	for range 20 {
		f := start(t)
		if err := f.stop(); err != nil {
			t.Fatal(err)
		}
	}
}
