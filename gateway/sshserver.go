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
	signers := []ssh.Signer{g.o.HostKey}
	if g.o.HostCert != nil {
		signers = append(signers, g.o.HostCert.Signer)
	}
	return &ssh.Server{
		Version:      strings.TrimPrefix(g.sshVersion, "SSH-2.0-"),
		HostSigners:  signers,
		Handler:      g.serveSession,
		ConnCallback: g.admit,
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
			"session": g.serveSessionChannel,
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
	if begun.channel != nil {
		defer begun.channel.unref()
	}
	grant, ok := grantFrom(s.Context())
	if !ok {
		fmt.Fprint(s.Stderr(), "portico: not authenticated\n")
		s.Exit(1)
		return
	}
	if sc := begun.channel; sc != nil {
		defer close(sc.handlerDone)
	}
	svc := g.o.Router.Lookup(grant.Service)
	sctx, stopCtx := newSessionContext(s.Context(), begun.channel)
	defer stopCtx()
	sess := &services.Session{Session: startedSession{Session: s, term: term, ctx: sctx, key: grant.PublicKey}, Grant: grant}
	sess.Regrant = func(ng auth.Grant) { g.watchRegrant(s, ng) }
	if forced, ok := grant.ForcedCommand(); ok {
		cmd, err := shlex.Split(forced, true)
		if err != nil {
			g.log.Warn("force-command does not parse", "account", grant.Account, "identity", grant.Identity, "err", err)
			fmt.Fprint(s.Stderr(), "portico: the certificate's force-command does not parse\n")
			s.Exit(1)
			return
		}
		if len(cmd) == 0 {
			// No words is no command, not the client's: an empty command would be a shell
			// (the TUI) or whatever the service does without one.
			fmt.Fprint(s.Stderr(), "portico: the certificate's force-command is blank: nothing to run\n")
			s.Exit(1)
			return
		}
		sess.Command, sess.RawCommand = cmd, forced
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
	// One line per session, written when it ends, says who ran what and how it ended; the
	// line that it starts is for debugging only (a busy gateway paid for three lines a
	// session: auth allowed, session start, session end).
	if g.log.Enabled(s.Context(), slog.LevelDebug) {
		g.log.Debug("session start", "account", grant.Account, "service", name, "identity", grant.Identity,
			"remote", s.RemoteAddr().String(), "command", sess.RawCommand, "subsystem", sess.Subsystem, "pty", pty)
	}
	start := time.Now()
	code := g.run(svc, sess, grant, name)
	if begun.channel != nil {
		// The gateway ended the session (its access ended, or the server is shutting
		// down): now that the service has stopped, say why.
		if reason := begun.channel.endReason(); reason != "" {
			fmt.Fprintf(s.Stderr(), "portico: %s\r\n", reason)
			code = max(code, 1)
		}
	}
	g.log.Info("session end", "account", grant.Account, "service", name, "method", string(grant.Method),
		"identity", grant.Identity, "key", grant.KeyFingerprint, "remote", s.RemoteAddr().String(),
		"command", sess.RawCommand, "subsystem", sess.Subsystem, "pty", pty,
		"status", code, "duration", time.Since(start).Round(time.Millisecond).String())
	s.Exit(code)
}

// watchRegrant puts the connection of s under live access with grant ng, which a service had
// auth give the session's key during the session (a sign-up or a claim in the TUI): the
// gateway watched only the grant the connection logged in with, and a key claimed in the TUI
// kept its account's access after the key was removed. It is judged again at once: what
// grounds ng may have changed since auth gave it.
func (g *Gateway) watchRegrant(s ssh.Session, ng auth.Grant) {
	cs, ok := connStateOf(s.Context())
	cur, _ := grantFrom(s.Context())
	if !ok || ng.IsSignup() || ng.AccountID == 0 || cur.PublicKey == nil {
		return
	}
	at := auth.Attempt{Key: cur.PublicKey, Service: ng.Service, RemoteAddr: s.RemoteAddr(), LoginOnly: true}
	remove := g.live.add(at, &ng, judgeNow, cs.end)
	context.AfterFunc(s.Context(), remove)
}

// run calls svc.Serve, turning a panic into exit status 1 so one session cannot take the
// server down.
func (g *Gateway) run(svc services.Service, sess *services.Session, grant auth.Grant, name string) (code int) {
	defer func() {
		if r := recover(); r != nil {
			g.log.Error("service panicked", "account", grant.Account, "service", name, "identity", grant.Identity,
				"remote", sess.RemoteAddr().String(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			fmt.Fprint(sess.Stderr(), "portico: internal error\n")
			code = 1
		}
	}()
	return svc.Serve(sess)
}

// serveSessionChannel is charmbracelet/ssh's session handler minus agent forwarding, which
// it would otherwise accept, with the gateway answering window changes, and with bounds on
// sessions and environment variables. X11 requests are refused by it already.
func (g *Gateway) serveSessionChannel(srv *ssh.Server, conn *gossh.ServerConn, ch gossh.NewChannel, ctx ssh.Context) {
	c, ok := clientOf(ctx)
	if !ok {
		ch.Reject(gossh.ConnectionFailed, "no session accounting")
		return
	}
	if cs, ok := connStateOf(ctx); ok && cs.ending() {
		ch.Reject(gossh.Prohibited, "this connection's access ended")
		return
	}
	release, err := c.openChannel(true)
	if err != nil {
		g.refuse(err, conn.RemoteAddr())
		ch.Reject(gossh.ResourceShortage, err.Error())
		return
	}
	var act *activity
	if ci := connInfoOf(ctx); ci != nil {
		act = ci.activity
	}
	sc := &sessionChannel{closed: make(chan struct{}), release: release, winch: make(chan ssh.Window, 1), activity: act,
		connCtx: ctx, stop: make(chan struct{}), handlerDone: make(chan struct{}), ctxDone: make(chan struct{})}
	sc.refs.Store(1)
	// Once accepted, the session is known to its connection and to the gateway, which may
	// end it (live access, shutdown).
	cs, _ := connStateOf(ctx)
	accepted := func() {
		if cs != nil && !cs.addSession(sc) {
			// The connection's access ended while the channel opened: nothing starts on it.
			sc.mu.Lock()
			sc.ending = true
			sc.mu.Unlock()
		}
		g.sessions.add(sc)
	}
	defer func() {
		if cs != nil {
			cs.removeSession(sc)
		}
		g.sessions.remove(sc)
	}()
	// DefaultSessionHandler returns when the channel's requests end: the client closed the
	// channel or the connection ended. The handler may still be running; it holds the slot
	// until it returns.
	ssh.DefaultSessionHandler(srv, conn, agentlessChannel{ch, sc, accepted}, ctx)
	sc.unref()
}

// sessionChannel is an accepted session channel that knows when it is closed, and holds its
// connection's session slot until both it and its handler are done. The gateway answers the
// session's window changes itself (see sessionRequests.resize): charmbracelet/ssh hands each
// one to a one-slot channel and blocks the session's request loop until someone reads it,
// which nothing does before a shell or exec starts, nor later for a service that ignores
// resizes; that loop, the channel and its unread data would then be held for good.
type sessionChannel struct {
	gossh.Channel
	closed  chan struct{} // closed when the channel's requests end
	refs    atomic.Int32  // the channel, and its handler while that runs
	release func()        // gives the connection's session slot back

	// winch carries the terminal's size as the session starts, then its changes, the latest
	// only; it is closed when the channel's requests end.
	winch chan ssh.Window
	// size is the terminal's size when the session started (its pty request's, or the last
	// window change before the start), or nil. The request goroutine writes it only before it
	// passes the shell, exec or subsystem request on, and snapshotTerminal reads it only once
	// that request arrived.
	size *ssh.Window
	// activity learns of every read of the client's input.
	activity *activity

	connCtx     ssh.Context   // the connection's context, for its grant
	stop        chan struct{} // closed when the gateway ends the session
	handlerDone chan struct{} // closed when the session's handler has returned
	// ctxDone ends the session's context: closed (by endContext) when the channel's
	// requests end, when the gateway ends the session, or when the connection ends.
	ctxDone chan struct{}
	ctxOnce sync.Once

	mu       sync.Mutex
	started  bool   // its handler was started
	terminal bool   // with a terminal
	ending   bool   // the gateway is ending it
	reason   string // why the gateway ended it
}

// begin reports whether the session's handler may start, and records that it does: not once
// the gateway is ending the session.
func (c *sessionChannel) begin(terminal bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ending {
		return false
	}
	c.started, c.terminal = true, terminal
	return true
}

// interactive reports whether the session runs with a terminal.
func (c *sessionChannel) interactive() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.started && c.terminal
}

// endReason is why the gateway ended the session, or empty.
func (c *sessionChannel) endReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// endPatience is how long a running service gets to finish by itself before the gateway stops
// it: a command that ended its own access (account delete, keys rm of its own key) finishes
// with its own output and status.
const endPatience = 500 * time.Millisecond

// end ends the session for reason: no new command starts on it; a running service that does not
// finish within endPatience is stopped, and its handler says why once it has returned (waited
// for until deadline); a session whose service has not started is told at once.
func (c *sessionChannel) end(reason string, deadline time.Time) {
	c.mu.Lock()
	if c.ending {
		c.mu.Unlock()
		return
	}
	c.ending = true
	started := c.started
	c.mu.Unlock()
	if !started {
		close(c.stop)
		c.endContext()
		c.tell(reason, deadline)
		return
	}
	select {
	case <-c.handlerDone:
		return
	case <-time.After(min(endPatience, time.Until(deadline))):
	}
	c.mu.Lock()
	c.reason = reason
	c.mu.Unlock()
	close(c.stop)
	c.endContext()
	select {
	case <-c.handlerDone:
	case <-time.After(time.Until(deadline)):
	}
}

// tell writes "portico: reason" on the session's stderr, waiting for the client's window
// until deadline at most.
func (c *sessionChannel) tell(reason string, deadline time.Time) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Stderr().Write([]byte("portico: " + reason + "\r\n"))
	}()
	select {
	case <-done:
	case <-time.After(time.Until(deadline)):
	}
}

// Read is the session's stdin, as its service reads it.
func (c *sessionChannel) Read(p []byte) (int, error) {
	n, err := c.Channel.Read(p)
	if n > 0 && c.activity != nil {
		c.activity.input()
	}
	return n, err
}

// endContext ends the session's context (see sessionContext).
func (c *sessionChannel) endContext() { c.ctxOnce.Do(func() { close(c.ctxDone) }) }

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
// channel closes or the gateway ends the session, so that a service stops when its client
// closes the session even while the connection goes on (ssh's connection sharing, or any
// client running several sessions). It takes no goroutine of its own: the session channel
// closes done from where those happen, and the connection's end from context.AfterFunc.
type sessionContext struct {
	ssh.Context
	done <-chan struct{}
}

// newSessionContext makes the context of a session on sc (nil: the connection's end alone
// ends it); stop releases what it registered on the connection's context, once the session's
// handler returns.
func newSessionContext(conn ssh.Context, sc *sessionChannel) (sessionContext, func() bool) {
	if sc == nil {
		return sessionContext{Context: conn, done: conn.Done()}, func() bool { return false }
	}
	return sessionContext{Context: conn, done: sc.ctxDone}, context.AfterFunc(conn, sc.endContext)
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

// Bounds on the "env" requests of one session: charmbracelet/ssh keeps every one it is sent,
// so without them a client could make the server hold any amount of memory. Requests past
// them are refused, as sshd refuses variables it does not accept.
const (
	maxEnvVars  = 64
	maxEnvBytes = 32 << 10
)

type agentlessChannel struct {
	gossh.NewChannel
	sc       *sessionChannel
	accepted func()
}

func (c agentlessChannel) Accept() (gossh.Channel, <-chan *gossh.Request, error) {
	ch, reqs, err := c.NewChannel.Accept()
	if err != nil {
		return ch, reqs, err
	}
	c.sc.Channel = ch
	c.accepted()
	out := make(chan *gossh.Request)
	go func() {
		defer close(c.sc.closed)
		defer c.sc.endContext()
		defer close(c.sc.winch)
		defer close(out)
		r := sessionRequests{sc: c.sc}
		for req := range reqs {
			if r.pass(req) {
				out <- req
			}
		}
	}()
	return c.sc, out, nil
}

// sessionRequests is what the gateway keeps of one session's requests while it reads them,
// before charmbracelet/ssh sees them.
type sessionRequests struct {
	sc                *sessionChannel
	envVars, envBytes int
	terminal, started bool        // a pty-req came; a shell, exec or subsystem request came
	toldNoPTY         bool        // the client was told its grant permits no terminal
	size              *ssh.Window // the terminal's size, from its pty-req and window changes
}

// pass answers the requests the gateway handles itself and reports whether req goes on to
// charmbracelet/ssh.
func (r *sessionRequests) pass(req *gossh.Request) bool {
	switch req.Type {
	case agentRequest:
		req.Reply(false, nil)
		return false
	case "env":
		r.envVars, r.envBytes = r.envVars+1, r.envBytes+len(req.Payload)
		if r.envVars > maxEnvVars || r.envBytes > maxEnvBytes {
			req.Reply(false, nil)
			return false
		}
	case "pty-req":
		var p struct {
			Term                             string
			Columns, Rows, WidthPx, HeightPx uint32
			Modes                            string
		}
		if !r.terminal && !r.started && gossh.Unmarshal(req.Payload, &p) == nil {
			r.size = &ssh.Window{Width: int(p.Columns), Height: int(p.Rows), WidthPixels: int(p.WidthPx), HeightPixels: int(p.HeightPx)}
		}
		if grant, ok := grantFrom(r.sc.connCtx); ok && !grant.Permits.PTY {
			r.refuseTerminal(req)
			return false
		}
		r.terminal = true
	case "window-change":
		req.Reply(r.resize(req.Payload), nil)
		return false
	case "shell", "exec", "subsystem":
		if !r.started && r.size != nil {
			r.sc.size = r.size
			r.offer(*r.size)
		}
		r.started = true
	}
	return true
}

// ptyRefusalPause is how long the gateway waits between saying why a terminal is refused and
// refusing it: OpenSSH, asked for a terminal with -t, ends the session as soon as the refusal
// comes, and drops stderr it has received but not yet printed.
const ptyRefusalPause = 200 * time.Millisecond

// refuseTerminal refuses a pty request of a grant without permit-pty, saying why on the
// session's stderr first (once); OpenSSH itself prints only "PTY allocation request failed".
func (r *sessionRequests) refuseTerminal(req *gossh.Request) {
	if !r.toldNoPTY {
		r.toldNoPTY = true
		r.sc.Stderr().Write([]byte("portico: this certificate does not permit a terminal (it lacks permit-pty)\r\n"))
		time.Sleep(ptyRefusalPause)
	}
	req.Reply(false, nil)
}

// resize takes a window change: before the session starts it sets the terminal's size at the
// start; after, it goes to the session's window changes. It never blocks.
func (r *sessionRequests) resize(payload []byte) bool {
	var w struct{ Columns, Rows, WidthPx, HeightPx uint32 }
	if !r.terminal || gossh.Unmarshal(payload, &w) != nil {
		return false
	}
	win := ssh.Window{Width: int(w.Columns), Height: int(w.Rows), WidthPixels: int(w.WidthPx), HeightPixels: int(w.HeightPx)}
	if r.started {
		r.offer(win)
	} else {
		r.size = &win
	}
	return true
}

// offer puts win on the session's window changes, replacing one the service has not read:
// win is newer.
func (r *sessionRequests) offer(win ssh.Window) {
	for {
		select {
		case r.sc.winch <- win:
			return
		default:
		}
		select {
		case <-r.sc.winch:
		default:
		}
	}
}

// terminal is a session's terminal as its shell, exec or subsystem request found it.
type terminal struct {
	pty   ssh.Pty
	winch <-chan ssh.Window
	ok    bool
}

// snapshotTerminal records the session's terminal when its shell, exec or subsystem request
// is accepted: charmbracelet/ssh's pty request, sized as the gateway last saw it. The callback
// runs in charmbracelet/ssh's request loop before the session's handler starts, so it reads
// the pty without racing that loop. Later window changes arrive on the session channel's own
// channel.
func (g *Gateway) snapshotTerminal(s ssh.Session, _ string) bool {
	p, _, ok := s.Pty()
	start := sessionStart{term: terminal{pty: p, ok: ok}, channel: channelOf(s)}
	if sc := start.channel; sc != nil {
		if !sc.begin(ok) {
			return false // the gateway is ending it
		}
		sc.refs.Add(1) // the handler, which starts once this returns true
		if ok {
			if sc.size != nil {
				start.term.pty.Window = *sc.size
			}
			start.term.winch = sc.winch
		}
	}
	g.terminals.Store(s, start)
	return true
}

// sessionStart is what the gateway learns about a session as its handler is about to start.
type sessionStart struct {
	term    terminal
	channel *sessionChannel // nil only if the session did not come through serveSessionChannel
}

// startedSession is a session as its service sees it: its terminal is the snapshot taken when
// it started, window changes come from the gateway, and its context ends with its channel.
type startedSession struct {
	ssh.Session
	term terminal
	ctx  sessionContext
	key  gossh.PublicKey // the grant's: the key whose signature verified
}

// PublicKey is the key the connection authenticated with (a *gossh.Certificate for a
// certificate). The gateway does not have charmbracelet/ssh carry it (as base64 in the
// connection's Permissions, parsed again after the handshake and kept in its context): the
// grant holds it already.
func (s startedSession) PublicKey() ssh.PublicKey {
	if s.key == nil {
		return nil
	}
	return s.key
}

// Context ends when the session's channel closes, not only with the connection.
func (s startedSession) Context() ssh.Context { return s.ctx }

// Pty is the terminal as the session started; later sizes arrive on the channel.
func (s startedSession) Pty() (ssh.Pty, <-chan ssh.Window, bool) {
	return s.term.pty, s.term.winch, s.term.ok
}

// serveGlobalRequest hands global requests (tcpip-forward, cancel-tcpip-forward) to the
// grant's service when the grant permits port forwarding and the service takes them.
func (g *Gateway) serveGlobalRequest(ctx ssh.Context, _ *ssh.Server, req *gossh.Request) (bool, []byte) {
	c, svc, ok := g.forwarding(ctx)
	if !ok {
		g.forwardRefused(ctx, req)
		return false, nil
	}
	h, ok := svc.(services.GlobalRequestHandler)
	if !ok || !slices.Contains(h.RequestTypes(), req.Type) {
		return false, nil
	}
	return h.HandleRequest(c, req)
}

// forwardRefused tells the grant's service of a global request refused because the grant
// lacks permit-port-forwarding, when the service takes that request: SSH's refusal carries no
// reason, and the service can say it on the connection's session.
func (g *Gateway) forwardRefused(ctx ssh.Context, req *gossh.Request) {
	grant, ok := grantFrom(ctx)
	conn, isConn := ctx.Value(ssh.ContextKeyConn).(*gossh.ServerConn)
	if !ok || !isConn || grant.Permits.PortForwarding {
		return
	}
	svc := g.o.Router.Lookup(grant.Service)
	h, ok := svc.(services.GlobalRequestHandler)
	r, told := svc.(services.ForwardRefusalHandler)
	if !ok || !told || !slices.Contains(h.RequestTypes(), req.Type) {
		return
	}
	r.ForwardRefused(&services.Conn{Ctx: ctx, Grant: grant, SSH: conn}, req,
		"this certificate does not permit port forwarding (it lacks permit-port-forwarding)")
}

// serveChannel hands channels other than sessions (direct-tcpip) to the grant's service when
// the grant permits port forwarding and the service takes them, within the connection's and
// the gateway's channel limits.
func (g *Gateway) serveChannel(_ *ssh.Server, conn *gossh.ServerConn, ch gossh.NewChannel, ctx ssh.Context) {
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
	cl, ok := clientOf(ctx)
	if !ok {
		ch.Reject(gossh.ConnectionFailed, "no channel accounting")
		return
	}
	release, err := cl.openChannel(false)
	if err != nil {
		g.refuse(err, conn.RemoteAddr())
		ch.Reject(gossh.ResourceShortage, err.Error())
		return
	}
	// The slot is given back when the service rejects or closes the channel, or when the
	// connection ends, whichever comes first.
	stop := context.AfterFunc(ctx, release)
	h.HandleChannel(c, countedChannel{NewChannel: ch, release: func() { stop(); release() }})
}

// countedChannel is a forwarded channel that gives its slot back when it is rejected or closed.
type countedChannel struct {
	gossh.NewChannel
	release func()
}

func (c countedChannel) Accept() (gossh.Channel, <-chan *gossh.Request, error) {
	ch, reqs, err := c.NewChannel.Accept()
	if err != nil {
		c.release()
		return ch, reqs, err
	}
	return closingChannel{Channel: ch, release: c.release}, reqs, nil
}

func (c countedChannel) Reject(reason gossh.RejectionReason, message string) error {
	defer c.release()
	return c.NewChannel.Reject(reason, message)
}

type closingChannel struct {
	gossh.Channel
	release func()
}

func (c closingChannel) Close() error {
	defer c.release()
	return c.Channel.Close()
}

// forwarding returns the connection and its service when the grant permits port forwarding.
func (g *Gateway) forwarding(ctx ssh.Context) (*services.Conn, services.Service, bool) {
	grant, ok := grantFrom(ctx)
	if !ok || !grant.Permits.PortForwarding {
		return nil, nil, false
	}
	if cs, ok := connStateOf(ctx); ok && cs.ending() {
		return nil, nil, false // its access ended
	}
	conn, ok := ctx.Value(ssh.ContextKeyConn).(*gossh.ServerConn)
	if !ok {
		return nil, nil, false
	}
	c := &services.Conn{Ctx: ctx, Grant: grant, SSH: conn}
	if cl, ok := clientOf(ctx); ok {
		c.ReserveChannel = cl.openOutbound
	}
	return c, g.o.Router.Lookup(grant.Service), true
}

// sshVersion is the server's SSH version line for software version v: SSH-2.0-portico_v.
func sshVersion(v string) string {
	version := "SSH-2.0-portico"
	if v := softwareVersion(v); v != "" {
		version += "_" + v
	}
	return version
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
