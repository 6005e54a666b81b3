package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anmitsu/go-shlex"
	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/services"
)

// agentRequest is OpenSSH's agent-forwarding request, which charmbracelet/ssh would accept.
const agentRequest = "auth-agent-req@openssh.com"

// newSSHServer makes the SSH server of one listener; bound is the service the listener is
// bound to, or empty.
func (g *Gateway) newSSHServer(bound auth.Service) *ssh.Server {
	version := "portico"
	if v := softwareVersion(g.o.Version); v != "" {
		version += "_" + v
	}
	return &ssh.Server{
		Version:     version,
		HostSigners: []ssh.Signer{g.o.HostKey},
		Handler:     g.serveSession,
		ConnCallback: func(ctx ssh.Context, conn net.Conn) net.Conn {
			// LoginGraceTime: the connection is closed unless it authenticates in time.
			t := time.AfterFunc(g.o.LoginGraceTime, func() { conn.Close() })
			ctx.SetValue(loginTimerKey{}, t)
			ctx.SetValue(openSessionsKey{}, new(atomic.Int32))
			context.AfterFunc(ctx, func() { t.Stop() })
			return conn
		},
		ServerConfigCallback: func(ctx ssh.Context) *gossh.ServerConfig {
			return g.serverConfig(ctx, bound)
		},
		ConnectionFailedCallback: func(conn net.Conn, err error) {
			g.log.Debug("ssh connection failed", "remote", conn.RemoteAddr().String(), "err", err)
		},
		PtyCallback: func(ctx ssh.Context, _ ssh.Pty) bool {
			grant, ok := grantFrom(ctx)
			return ok && grant.Permits.PTY
		},
		SessionRequestCallback: g.snapshotTerminal,
		SubsystemHandlers:      map[string]ssh.SubsystemHandler{"default": g.serveSession},
		ChannelHandlers: map[string]ssh.ChannelHandler{
			"session": serveSessionChannel,
			"default": g.serveChannel,
		},
		RequestHandlers: map[string]ssh.RequestHandler{"default": g.serveGlobalRequest},
	}
}

// serveSession runs one shell, exec or subsystem session on the service of the grant.
func (g *Gateway) serveSession(s ssh.Session) {
	v, _ := g.terminals.LoadAndDelete(s)
	begun, _ := v.(sessionStart)
	term := begun.term
	closed := make(<-chan struct{}) // never, without a channel: the connection's end ends it
	if begun.channel != nil {
		defer begun.channel.unref()
		closed = begun.channel.closed
	}
	grant, ok := grantFrom(s.Context())
	if !ok {
		fmt.Fprint(s.Stderr(), "portico: not authenticated\n")
		s.Exit(1)
		return
	}
	svc := g.o.Router.Lookup(grant.Service)
	ds := withDrainedWindowChanges(s, term, newSessionContext(s.Context(), closed))
	sess := &services.Session{Session: ds, Grant: grant}
	if grant.ForceCommand != "" {
		cmd, err := shlex.Split(grant.ForceCommand, true)
		if err != nil {
			g.log.Warn("force-command does not parse", "account", grant.Account, "identity", grant.Identity, "err", err)
			fmt.Fprint(s.Stderr(), "portico: the certificate's force-command does not parse\n")
			s.Exit(1)
			return
		}
		sess.Command, sess.RawCommand = cmd, grant.ForceCommand
	} else {
		if len(s.RawCommand()) > maxCommandBytes {
			fmt.Fprintf(s.Stderr(), "portico: the command is longer than %d bytes\n", maxCommandBytes)
			s.Exit(2)
			return
		}
		sess.Command, sess.RawCommand, sess.Subsystem = s.Command(), s.RawCommand(), s.Subsystem()
	}

	name := string(svc.Name())
	g.metrics.sessionsTotal.WithLabelValues(name).Inc()
	g.metrics.sessionsActive.WithLabelValues(name).Inc()
	defer g.metrics.sessionsActive.WithLabelValues(name).Dec()
	pty := term.ok
	log := g.log.With("account", grant.Account, "service", name, "identity", grant.Identity, "remote", s.RemoteAddr().String())
	log.Info("session start", "command", sess.RawCommand, "subsystem", sess.Subsystem, "pty", pty)
	start := time.Now()
	code := g.run(svc, sess, log)
	log.Info("session end", "status", code, "duration", time.Since(start).Round(time.Millisecond).String())
	s.Exit(code)
}

// run calls svc.Serve, turning a panic into exit status 1 so one session cannot take the
// server down.
func (g *Gateway) run(svc services.Service, sess *services.Session, log *slog.Logger) (code int) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("service panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			fmt.Fprint(sess.Stderr(), "portico: internal error\n")
			code = 1
		}
	}()
	return svc.Serve(sess)
}

// serveSessionChannel is charmbracelet/ssh's session handler minus agent forwarding, which
// it would otherwise accept, and with a bound on environment variables. X11 requests are
// refused by it already.
func serveSessionChannel(srv *ssh.Server, conn *gossh.ServerConn, ch gossh.NewChannel, ctx ssh.Context) {
	open, ok := ctx.Value(openSessionsKey{}).(*atomic.Int32)
	if !ok {
		ch.Reject(gossh.ConnectionFailed, "no session accounting")
		return
	}
	if open.Add(1) > maxSessions {
		open.Add(-1)
		ch.Reject(gossh.ResourceShortage, fmt.Sprintf("at most %d sessions per connection", maxSessions))
		return
	}
	sc := &sessionChannel{closed: make(chan struct{}), release: func() { open.Add(-1) }}
	sc.refs.Store(1)
	// DefaultSessionHandler returns when the channel's requests end: the client closed the
	// channel or the connection ended. The handler may still be running; it holds the slot
	// until it returns.
	ssh.DefaultSessionHandler(srv, conn, agentlessChannel{ch, sc}, ctx)
	sc.unref()
}

// sessionChannel is an accepted session channel that knows when it is closed, and holds its
// connection's session slot until both it and its handler are done.
type sessionChannel struct {
	gossh.Channel
	closed  chan struct{} // closed when the channel's requests end
	refs    atomic.Int32  // the channel, and its handler while that runs
	release func()        // gives the connection's session slot back
}

func (c *sessionChannel) unref() {
	if c.refs.Add(-1) == 0 {
		c.release()
	}
}

// channelLookup is the name of a request the gateway sends itself, through a session, to
// find that session's channel: charmbracelet/ssh hides it inside the session.
const channelLookup = "portico-channel-lookup"

var (
	lookupSeq atomic.Uint64
	lookups   sync.Map // key → *sessionChannel, for the moment of one channelOf
)

// SendRequest answers channelLookup without sending anything; other requests go to the client.
func (c *sessionChannel) SendRequest(name string, wantReply bool, payload []byte) (bool, error) {
	if name == channelLookup {
		lookups.Store(string(payload), c)
		return false, nil
	}
	return c.Channel.SendRequest(name, wantReply, payload)
}

// channelOf returns the session channel under s, or nil.
func channelOf(s ssh.Session) *sessionChannel {
	key := strconv.FormatUint(lookupSeq.Add(1), 10)
	_, _ = s.SendRequest(channelLookup, false, []byte(key))
	v, ok := lookups.LoadAndDelete(key)
	if !ok {
		return nil
	}
	return v.(*sessionChannel)
}

// sessionContext is a session's context: the connection's, ended also when the session's
// channel closes, so that a service stops when its client closes the session even while the
// connection goes on (ssh's connection sharing, or any client running several sessions).
type sessionContext struct {
	ssh.Context
	done chan struct{}
}

func newSessionContext(conn ssh.Context, closed <-chan struct{}) sessionContext {
	c := sessionContext{Context: conn, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		select {
		case <-closed:
		case <-conn.Done():
		}
	}()
	return c
}

func (c sessionContext) Done() <-chan struct{} { return c.done }

func (c sessionContext) Err() error {
	select {
	case <-c.done:
		if err := c.Context.Err(); err != nil {
			return err
		}
		return context.Canceled
	default:
		return nil
	}
}

// maxCommandBytes bounds an exec command: splitting one into words costs time that grows
// faster than its length, and no portico command needs more.
const maxCommandBytes = 16 << 10

// maxSessions bounds the open session channels of one connection, as sshd's MaxSessions
// (default 10) does: each holds goroutines and, with a terminal, a TUI.
const maxSessions = 10

// openSessionsKey holds a connection's count of open session channels (*atomic.Int32).
type openSessionsKey struct{}

// Bounds on the "env" requests of one session: charmbracelet/ssh keeps every one it is sent,
// so without them a client could make the server hold any amount of memory. Requests past
// them are refused, as sshd refuses variables it does not accept.
const (
	maxEnvVars  = 64
	maxEnvBytes = 32 << 10
)

type agentlessChannel struct {
	gossh.NewChannel
	sc *sessionChannel
}

func (c agentlessChannel) Accept() (gossh.Channel, <-chan *gossh.Request, error) {
	ch, reqs, err := c.NewChannel.Accept()
	if err != nil {
		return ch, reqs, err
	}
	c.sc.Channel = ch
	out := make(chan *gossh.Request)
	go func() {
		defer close(c.sc.closed)
		defer close(out)
		envVars, envBytes := 0, 0
		for req := range reqs {
			switch req.Type {
			case agentRequest:
				req.Reply(false, nil)
				continue
			case "env":
				envVars, envBytes = envVars+1, envBytes+len(req.Payload)
				if envVars > maxEnvVars || envBytes > maxEnvBytes {
					req.Reply(false, nil)
					continue
				}
			}
			out <- req
		}
	}()
	return c.sc, out, nil
}

// terminal is a session's terminal as its shell, exec or subsystem request found it.
type terminal struct {
	pty   ssh.Pty
	winch <-chan ssh.Window
	ok    bool
}

// snapshotTerminal records the session's terminal when its shell, exec or subsystem request
// is accepted. charmbracelet/ssh writes the terminal's size on every "window-change" without a
// lock, from its request loop, and Pty() reads it: only this callback, which runs in that loop
// before the session's handler starts, can read it without racing a resize. The handler and
// the services use the snapshot, and window changes arrive on its channel.
func (g *Gateway) snapshotTerminal(s ssh.Session, _ string) bool {
	p, winch, ok := s.Pty()
	start := sessionStart{term: terminal{pty: p, winch: winch, ok: ok}, channel: channelOf(s)}
	if start.channel != nil {
		start.channel.refs.Add(1) // the handler, which starts once this returns true
	}
	g.terminals.Store(s, start)
	return true
}

// sessionStart is what the gateway learns about a session as its handler is about to start.
type sessionStart struct {
	term    terminal
	channel *sessionChannel // nil only if the session did not come through serveSessionChannel
}

// drainedSession is a session whose terminal is the snapshot taken when it started and whose
// window changes the gateway reads itself. charmbracelet/ssh delivers each "window-change"
// request on a one-slot channel and blocks the session's request loop until someone reads it;
// a service that does not (an exec with a terminal) would leave that loop, and the session,
// stuck for ever after one resize. The gateway reads every change and keeps only the latest
// for the service.
type drainedSession struct {
	ssh.Session
	term  terminal
	winch <-chan ssh.Window
	ctx   sessionContext
}

// Context ends when the session's channel closes, not only with the connection.
func (s drainedSession) Context() ssh.Context { return s.ctx }

// Pty is the terminal as the session started; later sizes arrive on the channel.
func (s drainedSession) Pty() (ssh.Pty, <-chan ssh.Window, bool) {
	return s.term.pty, s.winch, s.term.ok
}

// withDrainedWindowChanges returns s with the terminal term, its window changes read by the
// gateway, and the context ctx. The reader ends when the session's requests end.
func withDrainedWindowChanges(s ssh.Session, term terminal, ctx sessionContext) ssh.Session {
	if term.winch == nil {
		return drainedSession{Session: s, term: term, ctx: ctx}
	}
	out := make(chan ssh.Window, 1)
	go func() {
		defer close(out)
		for w := range term.winch {
			for {
				select {
				case out <- w:
				case <-out: // drop the change the service has not read: w is newer
					continue
				}
				break
			}
		}
	}()
	return drainedSession{Session: s, term: term, winch: out, ctx: ctx}
}

// serveGlobalRequest hands global requests (tcpip-forward, cancel-tcpip-forward) to the
// grant's service when the grant permits port forwarding and the service takes them.
func (g *Gateway) serveGlobalRequest(ctx ssh.Context, _ *ssh.Server, req *gossh.Request) (bool, []byte) {
	c, svc, ok := g.forwarding(ctx)
	if !ok {
		return false, nil
	}
	h, ok := svc.(services.GlobalRequestHandler)
	if !ok || !slices.Contains(h.RequestTypes(), req.Type) {
		return false, nil
	}
	return h.HandleRequest(c, req)
}

// serveChannel hands channels other than sessions (direct-tcpip) to the grant's service when
// the grant permits port forwarding and the service takes them.
func (g *Gateway) serveChannel(_ *ssh.Server, _ *gossh.ServerConn, ch gossh.NewChannel, ctx ssh.Context) {
	c, svc, ok := g.forwarding(ctx)
	if !ok {
		ch.Reject(gossh.Prohibited, "port forwarding is not permitted")
		return
	}
	h, ok := svc.(services.ChannelHandler)
	if !ok || !slices.Contains(h.ChannelTypes(), ch.ChannelType()) {
		ch.Reject(gossh.UnknownChannelType, "unsupported channel type")
		return
	}
	h.HandleChannel(c, ch)
}

// forwarding returns the connection and its service when the grant permits port forwarding.
func (g *Gateway) forwarding(ctx ssh.Context) (*services.Conn, services.Service, bool) {
	grant, ok := grantFrom(ctx)
	if !ok || !grant.Permits.PortForwarding {
		return nil, nil, false
	}
	conn, ok := ctx.Value(ssh.ContextKeyConn).(*gossh.ServerConn)
	if !ok {
		return nil, nil, false
	}
	return &services.Conn{Ctx: ctx, Grant: grant, SSH: conn}, g.o.Router.Lookup(grant.Service), true
}

// softwareVersion makes v fit the SSH version string (RFC 4253 §4.2: printable ASCII, no
// spaces or minus signs): "(devel)" becomes "devel", "v1.2.3-rc.1" becomes "v1.2.3_rc.1".
func softwareVersion(v string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '+':
			return r
		case r == '-':
			return '_'
		default:
			return -1
		}
	}, v)
}
