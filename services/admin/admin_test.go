package admin

import (
	"bytes"
	"context"
	"github.com/portico-sh/portico/internal/sshtest"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/services"
	"github.com/portico-sh/portico/services/admin/ops/opstest"
)

// fakeSession is an SSH session without a terminal: stdin, stdout and stderr are buffers.
type fakeSession struct {
	ssh.Session // nil: any method the test does not expect panics
	stdin       io.Reader
	stdout      bytes.Buffer
	stderr      bytes.Buffer
	key         ssh.PublicKey
}

func (f *fakeSession) Read(p []byte) (int, error)  { return f.stdin.Read(p) }
func (f *fakeSession) Write(p []byte) (int, error) { return f.stdout.Write(p) }
func (f *fakeSession) Stderr() io.ReadWriter       { return &f.stderr }
func (f *fakeSession) PublicKey() ssh.PublicKey    { return f.key }
func (f *fakeSession) Context() ssh.Context        { return fakeContext{ctx: context.Background()} }
func (f *fakeSession) Pty() (ssh.Pty, <-chan ssh.Window, bool) {
	return ssh.Pty{}, nil, false
}

// fakeContext is an ssh.Context that is only a context.Context.
type fakeContext struct {
	ssh.Context // nil
	ctx         context.Context
}

func (c fakeContext) Deadline() (time.Time, bool) { return c.ctx.Deadline() }
func (c fakeContext) Done() <-chan struct{}       { return c.ctx.Done() }
func (c fakeContext) Err() error                  { return c.ctx.Err() }
func (c fakeContext) Value(k any) any             { return c.ctx.Value(k) }

func TestServe(t *testing.T) {
	o, _ := opstest.New(t)
	svc := New(o)
	if svc.Name() != auth.Admin {
		t.Errorf("Name() = %q", svc.Name())
	}
	key := opstest.Key(t, 1)

	// No terminal and no command: help.
	f := &fakeSession{stdin: strings.NewReader(""), key: key}
	if code := svc.Serve(&services.Session{Session: f, Grant: opstest.SignupGrant(key)}); code != 0 || !strings.Contains(f.stdout.String(), "register NAME") {
		t.Errorf("no command: status %d, stdout %q", code, f.stdout.String())
	}

	// register takes the session's own key.
	f = &fakeSession{stdin: strings.NewReader(""), key: key}
	s := &services.Session{Session: f, Grant: opstest.SignupGrant(key), Command: []string{"register", "alice"}, RawCommand: "register alice"}
	if code := svc.Serve(s); code != 0 || !strings.Contains(f.stdout.String(), "account alice created") {
		t.Errorf("register: status %d, stdout %q, stderr %q", code, f.stdout.String(), f.stderr.String())
	}

	// A subsystem is refused.
	f = &fakeSession{stdin: strings.NewReader(""), key: key}
	s = &services.Session{Session: f, Grant: opstest.SignupGrant(key), Subsystem: "sftp"}
	if code := svc.Serve(s); code != 1 || !strings.Contains(f.stderr.String(), `no subsystem "sftp"`) {
		t.Errorf("sftp: status %d, stderr %q", code, f.stderr.String())
	}
}

// ttySession is a session with an (emulated) terminal whose input never ends.
type ttySession struct {
	fakeSession
	winch chan ssh.Window
	out   sshtest.SyncBuffer
}

func (f *ttySession) Read(p []byte) (int, error)  { select {} }
func (f *ttySession) Write(p []byte) (int, error) { return f.out.Write(p) }
func (f *ttySession) EmulatedPty() bool           { return true }
func (f *ttySession) Environ() []string           { return nil }
func (f *ttySession) Pty() (ssh.Pty, <-chan ssh.Window, bool) {
	return ssh.Pty{Term: "xterm", Window: ssh.Window{Width: 80, Height: 24}}, f.winch, true
}

// TestTUIEndsWithItsChannel: when the session's requests end (the client closed the channel,
// perhaps keeping the connection for others), the window-change channel closes and the TUI
// stops, instead of being fed empty window sizes in a busy loop until the connection ends.
func TestTUIEndsWithItsChannel(t *testing.T) {
	o, _ := opstest.New(t)
	key := opstest.Key(t, 1)
	g := opstest.Register(t, o, "alice", key)
	f := &ttySession{fakeSession: fakeSession{key: key}, winch: make(chan ssh.Window, 1)}
	f.winch <- ssh.Window{Width: 80, Height: 24}
	done := make(chan int, 1)
	go func() { done <- New(o).Serve(&services.Session{Session: f, Grant: g}) }()
	time.Sleep(100 * time.Millisecond)
	close(f.winch)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the TUI still runs 10s after its session's requests ended")
	}
}
