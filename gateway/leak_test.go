package gateway_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/internal/sshtest"
)

// usage is what the gateway holds, as the test process sees it.
type usage struct {
	goroutines int
	heap       uint64 // bytes in use on the heap after a collection
}

func measure() usage {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return usage{goroutines: runtime.NumGoroutine(), heap: m.HeapInuse}
}

func (u usage) String() string {
	return fmt.Sprintf("%d goroutines, %.1f MiB heap", u.goroutines, float64(u.heap)/(1<<20))
}

// settle waits up to 10 s for the gateway to let go of what the test's clients made it hold:
// goroutines back within slack of base and the heap within heapSlack of it. It returns what it
// measured last.
func settle(t *testing.T, base usage, slack int, heapSlack uint64) usage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		u := measure()
		if u.goroutines <= base.goroutines+slack && u.heap <= base.heap+heapSlack {
			return u
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the clients left the gateway still holds %s (baseline %s)", u, base)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// warmBaseline runs one session to warm the server up (its first session starts what stays),
// then measures the baseline.
func warmBaseline(t *testing.T, f *fixture) usage {
	t.Helper()
	warm := f.connect(f.ssh, "pgs", f.alice.login)
	exec(t, warm, "ls")
	warm.Close()
	return measure()
}

// waitUnblocked waits up to 5 s for every blocked pgs handler to return; the failure says
// when they should have.
func waitUnblocked(t *testing.T, f *fixture, when string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f.pgs.blocked.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d handlers still run %s", f.pgs.blocked.Load(), when)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWindowChangeBeforeExecLeavesNothingBehind: a client that asks for a terminal, resizes it
// before any shell or exec, fills its stdin window and leaves must leave no goroutine and no
// buffered data behind. (charmbracelet/ssh hands each resize to a one-slot channel that
// nothing reads before a session starts; its request loop used to block on it for good.)
func TestWindowChangeBeforeExecLeavesNothingBehind(t *testing.T) {
	f := start(t)
	base := warmBaseline(t, f)

	const conns = 20
	stdin := bytes.Repeat([]byte("x"), 2<<20) // one session's whole window
	for i := range conns {
		// Half the clients are fresh keys on a sign-up grant, as any stranger can get.
		signer, user := f.alice.login, "pgs"
		if i%2 == 1 {
			signer, user = sshtest.NewSigner(t), "admin"
		}
		c := f.connect(f.ssh, user, signer)
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err != nil {
			t.Fatal(err)
		}
		for w := range 3 {
			if _, err := s.SendRequest("window-change", false, gossh.Marshal(struct{ W, H, PW, PH uint32 }{uint32(100 + w), 40, 0, 0})); err != nil {
				t.Fatal(err)
			}
		}
		in, err := s.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := in.Write(stdin); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	after := settle(t, base, 10, 8<<20)
	t.Logf("%d clients resized before exec, wrote 2 MiB and left: baseline %s, after %s", conns, base, after)
}

// TestSessionsOnALiveConnectionLeaveNothingBehind: a client that keeps one connection open and
// runs session after session on it (each ended by the client closing it, some never sending a
// request at all), then drops the TCP connection under sessions still running, leaves no
// goroutine behind: a session's context holds nothing on its connection once its handler has
// returned, and the connection's end ends the sessions still running.
func TestSessionsOnALiveConnectionLeaveNothingBehind(t *testing.T) {
	f := start(t)
	base := warmBaseline(t, f)

	c := f.connect(f.ssh, "pgs", f.alice.login)
	for i := range 150 {
		s, err := c.NewSession()
		if err != nil {
			t.Fatalf("session %d: %v", i+1, err)
		}
		if i%3 == 0 { // no request: the client just closes it
			s.Close()
			continue
		}
		startBlocked(t, s, fmt.Sprintf("session %d", i+1))
		s.Close()
	}
	waitForRoom(t, c, "after 150 closed ones")
	during := settle(t, base, 15, 8<<20) // the connection is still open
	for range 5 {                        // sessions running when the connection drops
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		startBlocked(t, s, "a session left running")
	}
	c.Close()
	waitUnblocked(t, f, "after their connection dropped")
	after := settle(t, base, 10, 8<<20)
	t.Logf("150 sessions on one connection: baseline %s, connection open %s, after %s", base, during, after)
}

// TestRevocationEndsARunningSessionWithItsReason: a session whose service waits on its context
// (it takes no goroutine of its own any more) ends within 5 s of a revocation of its
// certificate, with the reason on stderr and a non-zero exit status.
func TestRevocationEndsARunningSessionWithItsReason(t *testing.T) {
	f := start(t)
	cert := certFor(t, f.alice.ca, sshtest.NewSigner(t), nil)
	c := f.connect(f.ssh, "pgs", cert)
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var stderr sshtest.SyncBuffer
	s.Stderr = &stderr
	out, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("block"); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.AddRevocation(t.Context(), f.alice.ID, db.NewRevocation{Kind: db.RevokeKeyID, Value: "bob@laptop"}); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() { ended <- s.Wait() }()
	select {
	case err := <-ended:
		var exit *gossh.ExitError
		if !errors.As(err, &exit) || exit.ExitStatus() == 0 || !strings.Contains(stderr.String(), "revoked") {
			t.Fatalf("session ended with %v, stderr %q; want a non-zero status and the reason", err, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("the session still runs 5 s after its certificate was revoked (stderr %q)", stderr.String())
	}
}

// startBlocked runs "block" on s (the test pgs service's command that returns only when its
// session's context ends) and waits until the service has started: its report arrives.
func startBlocked(t *testing.T, s *gossh.Session, what string) {
	t.Helper()
	out, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("block"); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
