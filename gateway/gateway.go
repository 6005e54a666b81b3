package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/services"
)

// Authenticator decides a connection attempt; *auth.Authenticator is one. It returns a Grant,
// an *auth.Refusal, or another error when it could not decide (the store is down).
type Authenticator interface {
	Authenticate(ctx context.Context, a auth.Attempt) (auth.Grant, error)
}

// Store is what the gateway itself keeps: the access log, key use times, and a health check.
type Store interface {
	// AppendAccessBatch records authentication decisions and the keys' last use, in batches.
	AppendAccessBatch(ctx context.Context, entries []db.AccessEntry, touched map[int64]time.Time) error
	AddSuppressedAccess(ctx context.Context, e db.AccessEntry) error
	PruneAccess(ctx context.Context, before time.Time) (int64, error)
	// AccessVersions reads the accounts' access versions, for live access.
	AccessVersions(ctx context.Context, accountIDs []int64) (map[int64]int64, error)
	Ping(ctx context.Context) error
}

// Defaults for the zero values of Options.
const (
	DefaultDrainTimeout       = 10 * time.Second
	DefaultAccessLogRetention = 90 * 24 * time.Hour
	DefaultLoginGraceTime     = 2 * time.Minute
	DefaultMaxAuthTries       = 6
	// DefaultHTTPIdleTimeout is how long an HTTP keep-alive connection may wait for its next
	// request.
	DefaultHTTPIdleTimeout = 60 * time.Second
)

// httpReadHeaderTimeout is how long an HTTP client may take to send a request's headers.
const httpReadHeaderTimeout = 10 * time.Second

// Options configure a Gateway. Store, Auth, Router, HostKey and at least one SSH listener are
// required.
type Options struct {
	Store   Store
	Auth    Authenticator
	Router  *services.Router
	HostKey gossh.Signer
	// HostCert, when set, is presented to clients that ask for host certificates, beside the
	// plain host key.
	HostCert *HostCertificate
	// Ciphers, when set, is the fixed list of SSH ciphers offered to every client; nil: chosen
	// per connection from the client's KEXINIT (AES-GCM alone when it offers it).
	Ciphers []string

	SSH         []Listener // SSH listen addresses, each optionally bound to a service
	HTTPAddr    string     // HTTP listen address (sites, /healthz); empty: no HTTP server
	MetricsAddr string     // Prometheus /metrics listen address; empty: no metrics server
	Domain      string     // sites answer on {account}-{name}.{Domain}

	Version            string        // sent in the SSH version string ("SSH-2.0-portico_VERSION")
	DrainTimeout       time.Duration // how long shutdown waits for sessions to end
	AccessLogRetention time.Duration // access-log entries older than this are pruned
	LoginGraceTime     time.Duration // a connection must authenticate within this
	MaxAuthTries       int           // failed authentication attempts per connection
	// Limits bound connections, channels and login failures; nil: DefaultLimits.
	Limits          *Limits
	HTTPIdleTimeout time.Duration // how long an HTTP connection may stay idle: between requests, or with nothing moving in one
	Logger          *slog.Logger
	Now             func() time.Time
}

// Gateway is portico's SSH and HTTP front door.
type Gateway struct {
	o         Options
	log       *slog.Logger
	metrics   *metrics
	limits    Limits
	admission *admission
	refusals  refusalLog
	denied    deniedRows

	sshVersion string // the server's SSH version line, without CR LF
	live       *liveAccess
	access     *accessWriter
	sessions   sessionSet // every open session, to tell them at shutdown

	// terminals holds each session's terminal as it was when its shell, exec or subsystem
	// request was accepted, until the session's handler takes it (see snapshotTerminal).
	terminals sync.Map // ssh.Session → sessionStart

	// deciding is held (read) by each authentication decision in progress, from before auth
	// decides until its access-log entry is queued; shutdown takes it to set closing, which
	// waits for them, so that every decision is queued before the access log's writer stops.
	// The SSH library does not count connections still in their handshake.
	deciding sync.RWMutex
	closing  bool // the server is shutting down: no more decisions

	mu      sync.Mutex
	ssh     []*sshListener
	http    []*httpListener // the public listener, then the metrics listener
	started bool
}

type sshListener struct {
	cfg Listener
	ln  net.Listener
	srv *ssh.Server

	// serving is closed once srv.Serve has registered the listener (it calls Accept only
	// after that) or has returned, so that srv.Close at shutdown finds it.
	serving     chan struct{}
	servingOnce sync.Once
	// stopped makes Accept answer ssh.ErrServerClosed: the gateway stops accepting by itself
	// rather than with charmbracelet/ssh's Shutdown, whose WaitGroup races with connections
	// that finish their handshake while it waits.
	stopped atomic.Bool
}

func (l *sshListener) markServing() { l.servingOnce.Do(func() { close(l.serving) }) }

// acceptingListener tells its sshListener when Serve first calls Accept.
type acceptingListener struct {
	net.Listener
	l *sshListener
}

func (a acceptingListener) Accept() (net.Conn, error) {
	a.l.markServing()
	if a.l.stopped.Load() {
		return nil, ssh.ErrServerClosed
	}
	c, err := a.Listener.Accept()
	if err != nil && a.l.stopped.Load() {
		return nil, ssh.ErrServerClosed
	}
	return c, err
}

// stopAccepting makes Serve return ssh.ErrServerClosed and closes the socket.
func (l *sshListener) stopAccepting() {
	l.stopped.Store(true)
	l.ln.Close()
}

type httpListener struct {
	name string // "http" or "metrics", for logs
	ln   net.Listener
	srv  *http.Server
	fast *fastHTTP // nil: net/http alone
}

// New checks o and fills in its defaults.
func New(o Options) (*Gateway, error) {
	switch {
	case o.Store == nil:
		return nil, errors.New("gateway: no store")
	case o.Auth == nil:
		return nil, errors.New("gateway: no authenticator")
	case o.Router == nil:
		return nil, errors.New("gateway: no router")
	case o.HostKey == nil:
		return nil, errors.New("gateway: no host key")
	case len(o.SSH) == 0:
		return nil, errors.New("gateway: no SSH listen address")
	}
	if o.Domain == "" {
		o.Domain = "localhost"
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.AccessLogRetention <= 0 {
		o.AccessLogRetention = DefaultAccessLogRetention
	}
	if o.LoginGraceTime <= 0 {
		o.LoginGraceTime = DefaultLoginGraceTime
	}
	if o.MaxAuthTries <= 0 {
		o.MaxAuthTries = DefaultMaxAuthTries
	}
	if o.HTTPIdleTimeout <= 0 {
		o.HTTPIdleTimeout = DefaultHTTPIdleTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HostCert != nil && !bytes.Equal(o.HostCert.Cert.Key.Marshal(), o.HostKey.PublicKey().Marshal()) {
		return nil, errors.New("gateway: the host certificate is not of the host key")
	}
	g := &Gateway{o: o, log: o.Logger, limits: DefaultLimits(), sshVersion: sshVersion(o.Version)}
	if o.Limits != nil {
		g.limits = *o.Limits
	}
	g.admission = newAdmission(g.limits, o.Now)
	g.live = newLiveAccess(o.Auth, o.Store, o.Logger, o.Now)
	g.access = newAccessWriter(o.Store, o.Logger)
	g.metrics = newMetrics(g.admission.counts)
	return g, nil
}

// Listen binds every SSH listener, the HTTP listener and the metrics listener and logs their
// addresses (msg="ssh listening" addr=...). Serve calls it when it has not been called.
func (g *Gateway) Listen() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started {
		return nil
	}
	var lns []net.Listener
	fail := func(err error) error {
		for _, ln := range lns {
			ln.Close()
		}
		g.ssh, g.http = nil, nil
		return err
	}
	for _, l := range g.o.SSH {
		ln, err := net.Listen("tcp", l.Addr)
		if err != nil {
			return fail(fmt.Errorf("ssh listen %s: %w", l, err))
		}
		lns = append(lns, ln)
		g.ssh = append(g.ssh, &sshListener{cfg: l, ln: ln, srv: g.newSSHServer(l.Service), serving: make(chan struct{})})
	}
	for _, h := range []struct {
		name, addr string
		handler    http.Handler
	}{
		{"http", g.o.HTTPAddr, g.httpHandler()},
		{"metrics", g.o.MetricsAddr, g.metricsHandler()},
	} {
		if h.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", h.addr)
		if err != nil {
			return fail(fmt.Errorf("%s listen %s: %w", h.name, h.addr, err))
		}
		lns = append(lns, ln)
		ln = progressListener{Listener: ln, idle: g.o.HTTPIdleTimeout, max: g.limits.MaxHTTPConnections, open: new(atomic.Int64),
			refused: func(remote net.Addr) {
				g.refuse(&errLimit{limitMaxHTTPConnections, "too many HTTP connections"}, remote)
			}}
		hl := &httpListener{name: h.name, ln: ln, srv: g.newHTTPServer(h.handler)}
		if h.name == "http" {
			// Sites' plainest requests are answered before net/http (fastHTTP).
			hl.fast = newFastHTTP(ln, g.siteServers(), g.o.Domain, httpReadHeaderTimeout, g.o.HTTPIdleTimeout, g.log)
		}
		g.http = append(g.http, hl)
	}
	g.started = true
	for _, l := range g.ssh {
		if l.cfg.Service == "" {
			g.log.Info("ssh listening", "addr", l.ln.Addr().String())
		} else {
			g.log.Info("ssh listening", "addr", l.ln.Addr().String(), "service", l.cfg.Service)
		}
	}
	for _, h := range g.http {
		g.log.Info(h.name+" listening", "addr", h.ln.Addr().String())
	}
	return nil
}

// newHTTPServer returns an HTTP server for handler. Headers must arrive within
// httpReadHeaderTimeout and a keep-alive connection may wait Options.HTTPIdleTimeout for its
// next request. No read or write timeout covers a whole request: tunnels stream bodies and
// upgraded connections for as long as both ends live. But within a request too, a read or
// write on which nothing moved either way for Options.HTTPIdleTimeout fails (progressConn).
func (g *Gateway) newHTTPServer(handler http.Handler) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		IdleTimeout:       g.o.HTTPIdleTimeout,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		// A hijacked connection (a WebSocket or other Upgrade through a tunnel) is its new
		// owner's: it may stay silent for as long as both ends are alive.
		ConnState: func(c net.Conn, st http.ConnState) {
			if pc, ok := c.(*progressConn); ok && st == http.StateHijacked {
				pc.hijacked()
			}
		},
	}
}

// SSHAddrs returns the bound SSH addresses, in the order of Options.SSH, after Listen.
func (g *Gateway) SSHAddrs() []net.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]net.Addr, len(g.ssh))
	for i, l := range g.ssh {
		out[i] = l.ln.Addr()
	}
	return out
}

// HTTPAddr returns the bound HTTP address after Listen, or nil.
func (g *Gateway) HTTPAddr() net.Addr { return g.httpAddr("http") }

// MetricsAddr returns the bound metrics address after Listen, or nil.
func (g *Gateway) MetricsAddr() net.Addr { return g.httpAddr("metrics") }

func (g *Gateway) httpAddr(name string) net.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, h := range g.http {
		if h.name == name {
			return h.ln.Addr()
		}
	}
	return nil
}

// Serve serves until ctx is done, then stops accepting connections, waits up to
// Options.DrainTimeout for open sessions to end, closes the rest and returns nil. It returns
// an error when a listener fails.
func (g *Gateway) Serve(ctx context.Context) error {
	if err := g.Listen(); err != nil {
		return err
	}
	errc := make(chan error, len(g.ssh)+len(g.http))
	for _, l := range g.ssh {
		go func() {
			defer l.markServing()
			if err := l.srv.Serve(acceptingListener{l.ln, l}); err != nil && !errors.Is(err, ssh.ErrServerClosed) {
				errc <- fmt.Errorf("ssh %s: %w", l.cfg, err)
			}
		}()
	}
	for _, h := range g.http {
		go func() {
			ln := h.ln
			if h.fast != nil {
				go h.fast.serve()
				ln = h.fast.handoff
			}
			if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s %s: %w", h.name, h.ln.Addr(), err)
			}
		}()
	}
	pruneCtx, stopPrune := context.WithCancel(context.Background())
	pruned := make(chan struct{})
	go func() {
		defer close(pruned)
		g.pruneAccessLog(pruneCtx)
	}()
	stopAccess := make(chan struct{})
	accessWritten := make(chan struct{})
	go func() {
		defer close(accessWritten)
		g.access.run(stopAccess)
	}()
	liveCtx, stopLive := context.WithCancel(context.Background())
	defer stopLive()
	go g.live.run(liveCtx)
	flushCtx, stopFlush := context.WithCancel(context.Background())
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		g.flushSuppressed(flushCtx)
	}()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	g.shutdown()
	close(stopAccess) // after the shutdown: every decision is recorded
	<-accessWritten
	stopPrune()
	stopFlush() // after the shutdown: the last counts are written too
	<-pruned
	<-flushed
	return serveErr
}

// shutdown stops accepting, drains and closes everything.
func (g *Gateway) shutdown() {
	g.log.Info("shutting down", "drain_timeout", g.o.DrainTimeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), g.o.DrainTimeout)
	defer cancel()
	g.deciding.Lock() // waits for the decisions in progress
	g.closing = true
	g.deciding.Unlock()
	g.tellShutdown()
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, l := range g.ssh {
			select {
			case <-l.serving:
			case <-ctx.Done():
			}
			l.stopAccepting()
		}
		// Open connections get until the drain timeout to end by themselves.
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
	drain:
		for {
			if g.admission.counts().conns == 0 {
				break
			}
			select {
			case <-ctx.Done():
				g.log.Warn("ssh sessions still open after the drain timeout; closing them")
				break drain
			case <-tick.C:
			}
		}
		for _, l := range g.ssh {
			l.srv.Close()
		}
	})
	for _, h := range g.http {
		wg.Go(func() {
			if err := h.srv.Shutdown(ctx); err != nil {
				h.srv.Close()
			}
		})
		if h.fast != nil {
			wg.Go(func() { h.fast.shutdown(ctx) })
		}
	}
	wg.Wait()
	g.log.Info("stopped")
}

// SyncAccessLog waits until every access-log entry queued so far is written, so that reading
// the log finds them; the log is written in the background, in batches.
func (g *Gateway) SyncAccessLog(ctx context.Context) error { return g.access.sync(ctx) }

// shutdownReason is what open sessions are told when the server stops.
const shutdownReason = "server is shutting down"

// tellShutdown tells every open session that the server is shutting down: a terminal session
// (the TUI, a shell) cannot drain by itself, so it is ended now and says why once its service
// has stopped; the others are told on stderr and may finish within the drain timeout.
func (g *Gateway) tellShutdown() {
	deadline := time.Now().Add(endGrace)
	var wg sync.WaitGroup
	for _, sc := range g.sessions.all() {
		wg.Go(func() {
			if sc.interactive() {
				sc.end(shutdownReason, deadline)
			} else {
				sc.tell(shutdownReason, deadline)
			}
		})
	}
	wg.Wait()
}

// pruneAccessLog deletes access-log entries older than the retention now and every hour
// until ctx is done.
func (g *Gateway) pruneAccessLog(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		before := g.o.Now().Add(-g.o.AccessLogRetention)
		n, err := g.o.Store.PruneAccess(ctx, before)
		switch {
		case err != nil && ctx.Err() == nil:
			g.log.Warn("pruning the access log failed", "err", err)
		case n > 0:
			g.log.Info("pruned the access log", "entries", n, "before", before.UTC().Format(time.RFC3339))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
