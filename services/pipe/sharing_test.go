package pipe_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/services/pipe"
)

// waitExit waits for the session's exit status, at most d.
func waitExit(t *testing.T, s *session, d time.Duration) (int, bool) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.sess.Wait() }()
	select {
	case err := <-done:
		var exit *gossh.ExitError
		switch {
		case err == nil:
			return 0, true
		case errors.As(err, &exit):
			return exit.ExitStatus(), true
		}
		t.Fatalf("session ended without a status: %v", err)
	case <-time.After(d):
	}
	return -1, false
}

// When the owner's last sharing client leaves, a guest pipe client stops with the message
// and exit status 1, as a guest publisher does (README).
func TestGuestPipeClientExitsOneWhenSharingEnds(t *testing.T) {
	s := startServer(t, pipe.MemoryOptions{})
	owner := s.startAs(t, s.alice, "sub -k -a bob builds")
	waitFor(t, "the owner's subscriber", func() bool { return s.count("alice", "alice/builds").Subscribers == 1 })
	guest := s.startAs(t, s.bob, "pipe alice/builds")
	go io.Copy(io.Discard, guest.stdout)
	waitFor(t, "the guest's pipe client", func() bool { return s.count("alice", "alice/builds").Pipes == 1 })
	owner.conn.Close()

	code, ok := waitExit(t, guest, 10*time.Second)
	if !ok {
		t.Fatal("the guest pipe client did not end after the owner stopped sharing")
	}
	if code != 1 || !strings.Contains(guest.stderr.String(), "alice stopped sharing alice/builds") {
		t.Fatalf("guest pipe client: exit %d, stderr %q; want exit 1 and the message", code, guest.stderr)
	}
}

// A guest publisher whose stdin is quiet stops too (message, exit 1) when the owner stops
// sharing, not at its next write.
func TestIdleGuestPublisherStopsWhenSharingEnds(t *testing.T) {
	s := startServer(t, pipe.MemoryOptions{})
	owner := s.startAs(t, s.alice, "sub -k -a bob builds")
	waitFor(t, "the owner's subscriber", func() bool { return s.count("alice", "alice/builds").Subscribers == 1 })
	guest := s.startAs(t, s.bob, "pub alice/builds")
	waitFor(t, "the guest's publisher", func() bool { return s.count("alice", "alice/builds").Publishers == 1 })
	owner.conn.Close()

	code, ok := waitExit(t, guest, 5*time.Second)
	if !ok {
		t.Fatalf("the guest publisher is still running 5s after the owner stopped sharing (topics of alice: %+v)", s.broker.Topics("alice"))
	}
	if code != 1 || !strings.Contains(guest.stderr.String(), "alice stopped sharing alice/builds") {
		t.Fatalf("guest publisher: exit %d, stderr %q; want exit 1 and the message", code, guest.stderr)
	}
}

// A client that closes its session channel but keeps the connection (OpenSSH multiplexing,
// any library client) has left: its subscriber leaves the topic and stops sharing it, and the
// connection may open more sessions than the gateway's ten at once, one after the other.
func TestClosedSessionOnALiveConnectionLeavesTheTopic(t *testing.T) {
	s := startServer(t, pipe.MemoryOptions{})
	conn := s.dial(t, s.alice)
	const n = 15  // more than the gateway's 10 sessions per connection
	for range n { // each one leaves when its session closes, so the next may open
		sub := s.startOn(t, conn, "sub -k -a bob idle")
		waitFor(t, "the subscriber", func() bool { return s.count("alice", "alice/idle").Subscribers == 1 })
		sub.sess.Close()
		waitFor(t, "the closed session's subscriber to leave", func() bool { return s.count("alice", "alice/idle").Subscribers == 0 })
	}
}

// A refusal reads the same whether the topic is open or not.
func TestRefusalDoesNotTellWhetherATopicExists(t *testing.T) {
	s := startServer(t, pipe.MemoryOptions{})
	s.startAs(t, s.alice, "sub -k secret")
	waitFor(t, "alice's subscriber", func() bool { return s.count("alice", "alice/secret").Subscribers == 1 })
	for _, cmd := range []string{"sub alice/%s", "pub alice/%s -b=false", "pipe alice/%s", "sub alice/%s -a carol"} {
		type outcome struct {
			code   int
			stderr string
		}
		var got []outcome
		for _, name := range []string{"secret", "nothere"} {
			x := s.startAs(t, s.bob, strings.ReplaceAll(cmd, "%s", name))
			code, ok := waitExit(t, x, 5*time.Second)
			if !ok {
				t.Fatalf("%q: bob was not refused", cmd)
			}
			got = append(got, outcome{code, strings.ReplaceAll(x.stderr.String(), name, "NAME")})
		}
		if got[0] != got[1] || got[0].code != 1 {
			t.Errorf("%q: open topic %+v, unknown topic %+v", cmd, got[0], got[1])
		}
	}
}

// A reader past the topic's cap is told why and exits 1.
func TestReaderPastTheCapIsRefused(t *testing.T) {
	s := startServer(t, pipe.MemoryOptions{MaxReaders: 2})
	s.start(t, "sub -k full")
	s.start(t, "pipe full")
	waitFor(t, "two readers", func() bool {
		st := s.count("alice", "alice/full")
		return st.Subscribers+st.Pipes == 2
	})
	third := s.start(t, "sub full")
	if code, ok := waitExit(t, third, 10*time.Second); !ok || code != 1 || !strings.Contains(third.stderr.String(), "alice/full has 2 readers") {
		t.Errorf("a third reader: exit %d (ended %v), stderr %q; want 1 and why", code, ok, third.stderr.String())
	}
}
