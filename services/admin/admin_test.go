package admin

import (
	"bytes"
	"context"
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
