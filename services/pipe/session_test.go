package pipe_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db/dbtest"
	"github.com/portico-sh/portico/gateway"
	"github.com/portico-sh/portico/internal/sshtest"
	"github.com/portico-sh/portico/services"
	"github.com/portico-sh/portico/services/pipe"
)

// server is a gateway on loopback serving the pipe service, with the accounts alice and bob.
type server struct {
	addr       string
	alice, bob gossh.Signer
	broker     *pipe.MemoryBroker
}

func startServer(t *testing.T, o pipe.MemoryOptions) *server {
	t.Helper()
	store := dbtest.SQLite(t)
	s := &server{alice: sshtest.NewSigner(t), bob: sshtest.NewSigner(t), broker: pipe.NewMemoryBroker(o)}
	for name, k := range map[string]gossh.Signer{"alice": s.alice, "bob": s.bob} {
		line, err := auth.ParseKeyLine(sshtest.AuthorizedKey(k.PublicKey()))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := store.CreateAccount(context.Background(), name, line.NewKey("laptop")); err != nil {
			t.Fatal(err)
		}
	}
	router, err := services.NewRouter(pipe.New(pipe.Options{Broker: s.broker, DropNotice: 300 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Options{
		Store:        store,
		Auth:         auth.New(store, auth.Options{}),
		Router:       router,
		HostKey:      sshtest.NewSigner(t),
		SSH:          []gateway.Listener{{Addr: "127.0.0.1:0"}},
		HTTPAddr:     "127.0.0.1:0",
		Domain:       "example.test",
		DrainTimeout: time.Second,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Listen(); err != nil {
		t.Fatal(err)
	}
	s.addr = gw.SSHAddrs()[0].String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	})
	return s
}

// dial opens a connection to the pipe service with key k; it is closed at the end of the test.
func (s *server) dial(t *testing.T, k gossh.Signer) *gossh.Client {
	t.Helper()
	c, err := gossh.Dial("tcp", s.addr, &gossh.ClientConfig{
		User:            "pipe",
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(k)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// session is one command running on a connection.
type session struct {
	conn   *gossh.Client
	sess   *gossh.Session
	stdin  io.WriteCloser
	stdout io.Reader
	stderr *sshtest.SyncBuffer
}

// start runs command as alice on a new connection.
func (s *server) start(t *testing.T, command string) *session {
	t.Helper()
	return s.startOn(t, s.dial(t, s.alice), command)
}

// startAs runs command with key k on a new connection.
func (s *server) startAs(t *testing.T, k gossh.Signer, command string) *session {
	t.Helper()
	return s.startOn(t, s.dial(t, k), command)
}

// startOn runs command in a new session of conn.
func (s *server) startOn(t *testing.T, conn *gossh.Client, command string) *session {
	t.Helper()
	sess, err := conn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out := &session{conn: conn, sess: sess, stderr: &sshtest.SyncBuffer{}}
	sess.Stderr = out.stderr
	if out.stdin, err = sess.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if out.stdout, err = sess.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	if err := sess.Start(command); err != nil {
		t.Fatal(err)
	}
	return out
}

// count returns the counts of topic among account's topics (zero when it is not open).
func (s *server) count(account, topic string) pipe.TopicStats {
	for _, st := range s.broker.Topics(account) {
		if st.Topic == topic {
			return st
		}
	}
	return pipe.TopicStats{}
}

// waitFor polls until cond holds, failing the test after a while.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestNoGoroutineOutlivesItsSessions runs rounds of sessions that end every way a client can
// make them end, and checks that the server is back to the goroutines it started with and
// has no topic open.
func TestNoGoroutineOutlivesItsSessions(t *testing.T) {
	s := startServer(t, pipe.MemoryOptions{BufferSize: 64 << 10, StallTimeout: time.Second})
	warm := s.start(t, "ls") // the server's own goroutines start with its first connection
	io.Copy(io.Discard, warm.stdout)
	warm.conn.Close()
	baseline := settledGoroutines()

	payload := bytes.Repeat([]byte("portico pipe\n"), 320<<10) // more than a client window and a buffer
	for round := range 3 {
		topic := fmt.Sprintf("t%d", round)
		var wg sync.WaitGroup

		// A completed stream: sub reads to the end, pub publishes and closes stdin.
		sub := s.start(t, "sub "+topic)
		wg.Go(func() {
			got, _ := io.ReadAll(sub.stdout)
			if !bytes.Equal(got, payload) {
				t.Errorf("round %d: subscriber got %d bytes, want %d", round, len(got), len(payload))
			}
		})
		// A subscriber that stops reading: dropped, then disconnected.
		stalled := s.start(t, "sub "+topic)
		// A pipe client that closes its stdin, and one that just disconnects.
		quiet := s.start(t, "pipe "+topic)
		quiet.stdin.Close()
		chatty := s.start(t, "pipe "+topic+" -r")
		wg.Go(func() { io.Copy(io.Discard, quiet.stdout) })
		wg.Go(func() { io.Copy(io.Discard, chatty.stdout) })
		waitFor(t, "four readers", func() bool { st := s.count("alice", "alice/"+topic); return st.Subscribers+st.Pipes == 4 })

		pub := s.start(t, "pub "+topic+" -c")
		pub.stdin.Write(payload)
		pub.stdin.Close()
		if err := pub.sess.Wait(); err != nil {
			t.Fatalf("round %d: pub: %v (%s)", round, err, pub.stderr)
		}
		err := stalled.sess.Wait() // without reading: its connection is closed by the server
		var exit *gossh.ExitError
		if err == nil || errors.As(err, &exit) && exit.ExitStatus() == 0 {
			t.Errorf("round %d: the stalled subscriber ended with %v", round, err)
		}
		chatty.stdin.Write([]byte("bye\n"))

		// A publisher waiting for a subscriber, and a subscriber waiting for a publisher,
		// whose clients go away; and a subscriber cut off in the middle of a stream.
		waiting := s.start(t, "pub -t 1h lonely"+topic)
		waitingSub := s.start(t, "sub -k idle"+topic)
		midSub := s.start(t, "sub mid"+topic)
		midPub := s.start(t, "pub mid"+topic)
		midPub.stdin.Write(payload)
		buf := make([]byte, 1024)
		io.ReadFull(midSub.stdout, buf)
		waitFor(t, "the waiting clients", func() bool { return len(s.broker.Topics("alice")) >= 4 })

		for _, c := range []*session{sub, stalled, quiet, chatty, pub, waiting, waitingSub, midSub, midPub} {
			c.conn.Close()
		}
		wg.Wait()
	}

	waitFor(t, "every topic to close", func() bool { return len(s.broker.Topics("alice")) == 0 })
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			var b strings.Builder
			pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Fatalf("%d goroutines, %d before the sessions:\n%s", runtime.NumGoroutine(), baseline, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// settledGoroutines waits until the goroutine count stays the same for a moment and
// returns it.
func settledGoroutines() int {
	n, same := runtime.NumGoroutine(), 0
	for i := 0; i < 500 && same < 10; i++ {
		time.Sleep(10 * time.Millisecond)
		if m := runtime.NumGoroutine(); m == n {
			same++
		} else {
			n, same = m, 0
		}
	}
	return n
}
