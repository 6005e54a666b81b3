package pgs

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/services"
	"github.com/portico-sh/portico/services/pgs/sitepath"
)

// ChannelTypes: pgs takes direct-tcpip channels (ssh -L) to its sites' port 80.
func (s *Service) ChannelTypes() []string { return []string{"direct-tcpip"} }

// directTCPIP is the payload of a direct-tcpip channel request (RFC 4254 7.2).
type directTCPIP struct {
	Host     string
	Port     uint32
	OrigHost string
	OrigPort uint32
}

// HandleChannel serves one forward (`ssh -N -L 8000:alice-blog:80 pgs@HOST`) to a site: the
// gateway checked pgs and permit-port-forwarding; which sites the connection may see is
// auth's decision (a private site: its owner and the accounts it lists). Any other target is
// refused, in words that say no more than "no such site".
func (s *Service) HandleChannel(c *services.Conn, nc gossh.NewChannel) {
	var req directTCPIP
	if err := gossh.Unmarshal(nc.ExtraData(), &req); err != nil {
		nc.Reject(gossh.ConnectionFailed, "bad direct-tcpip request")
		return
	}
	if req.Port != 80 {
		nc.Reject(gossh.Prohibited, "pgs forwards port 80 of a site only: ssh -N -L 8000:ACCOUNT-PROJECT:80 "+s.public.SSHHost)
		return
	}
	account, project, ok := s.forwardTarget(req.Host)
	if !ok {
		nc.Reject(gossh.ConnectionFailed, "no such site")
		return
	}
	f := &forwardedSite{svc: s, grant: c.Grant, account: account, project: project}
	if c.SSH != nil {
		f.source = auth.SourceOf(c.SSH.RemoteAddr())
	}
	if _, err := f.handler(c.Ctx); err != nil {
		nc.Reject(gossh.ConnectionFailed, "no such site")
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	go gossh.DiscardRequests(reqs)
	s.log.Info("pgs: site forward", "account", c.Grant.Account, "identity", c.Grant.Identity, "site", account+"-"+project)
	serveOne(c.Ctx, f, channelConn{Channel: ch})
}

// forwardTarget splits the host of a forward: ACCOUNT-PROJECT or ACCOUNT (the project named
// like the account), optionally followed by this server's domain.
func (s *Service) forwardTarget(host string) (account, project string, ok bool) {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if domain := strings.ToLower(s.public.HTTP.Hostname()); domain != "" {
		host = strings.TrimSuffix(host, "."+domain)
	}
	account, project, found := strings.Cut(host, "-")
	if !found {
		project = account
	}
	if auth.ValidAccountName(account) != nil || sitepath.CheckProject(project) != nil {
		return "", "", false
	}
	return account, project, true
}

// forwardCommand is the ssh command that opens a forward to the account's project.
func (s *Service) forwardCommand(account, project string) string {
	target := account + "-" + project
	if project == account {
		target = account
	}
	cmd := "ssh"
	if s.public.SSHPort != 22 && s.public.SSHPort != 0 {
		cmd += " -p " + strconv.Itoa(s.public.SSHPort)
	}
	return cmd + " -N -L 8000:" + target + ":80 pgs@" + s.public.SSHHost
}

// forwardedSite answers the requests of one forward, looking the site and its ACL up for each
// (a deploy switch or an ACL change applies to the next request).
type forwardedSite struct {
	svc              *Service
	grant            auth.Grant
	account, project string
	source           string // the SSH client's source (auth.SourceOf), for password checks
}

var errNoSite = errors.New("no such site")

func (f *forwardedSite) handler(ctx context.Context) (http.Handler, error) {
	live, found, err := f.svc.sites.liveOf(ctx, f.account, f.project, false)
	switch {
	case err != nil:
		return nil, err
	case !found:
		return nil, errNoSite
	}
	site := &siteHandler{svc: f.svc, accountID: live.AccountID, deployID: live.DeployID,
		private: live.ACL.Kind == db.PGSAccounts || live.ACL.Kind == db.PGSPassword}
	switch live.ACL.Kind {
	case db.PGSAccounts:
		if err := auth.MaySeePrivateSite(f.grant, live.AccountID, live.ACL.AccountIDs); err != nil {
			return nil, errNoSite
		}
		return notStored{site}, nil
	case db.PGSPassword:
		return notStored{&basicAuth{svc: f.svc, hash: live.ACL.PasswordHash, realm: f.account + "-" + f.project,
			source: "ssh:" + f.source, next: site}}, nil
	}
	return site, nil
}

// notStoredCacheControl is what a private site's answers over a forward say.
var notStoredCacheControl = []string{"private, no-store"}

// notStored serves a private site over a forward with Cache-Control private, no-store, whatever
// else it set: the browser's origin there (http://localhost:8000) is every site's forwarded to
// that port, and a page it kept, even stale, a site opened there later could read
// (fetch(url, {cache: "only-if-cached", mode: "same-origin"})).
type notStored struct{ next http.Handler }

func (n notStored) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.next.ServeHTTP(&notStoredWriter{ResponseWriter: w}, r)
}

// notStoredWriter sets Cache-Control as its header is written.
type notStoredWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *notStoredWriter) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.wrote = true
		w.Header()["Cache-Control"] = notStoredCacheControl
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *notStoredWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

func (f *forwardedSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Service-Worker") != "" {
		// The browser fetches a service worker's script so. Every site forwarded to the same
		// local port is one origin to it (http://localhost:8000): a service worker one site
		// installed there would control the pages of every site forwarded there later, private
		// ones included, and could send them away.
		http.Error(w, "service workers are not served over SSH forwards: every site forwarded to the same local port shares its browser origin", http.StatusForbidden)
		return
	}
	h, err := f.handler(r.Context())
	switch {
	case errors.Is(err, errNoSite):
		http.NotFound(w, r)
	case err != nil:
		http.Error(w, "site unavailable, try again", http.StatusServiceUnavailable)
	default:
		h.ServeHTTP(w, r)
	}
}

// serveOne serves HTTP/1.1 on one connection until it closes or ctx ends.
func serveOne(ctx context.Context, h http.Handler, conn net.Conn) {
	l := &oneConnListener{conn: conn, closed: make(chan struct{})}
	srv := &http.Server{
		Handler:  h,
		ErrorLog: log.New(io.Discard, "", 0),
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateClosed || st == http.StateHijacked {
				l.close()
			}
		},
	}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	srv.Serve(l)
	conn.Close()
}

// oneConnListener hands out one connection, then waits until it is closed.
type oneConnListener struct {
	conn   net.Conn
	once   sync.Once
	closed chan struct{}
	given  bool
	mu     sync.Mutex
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	given := l.given
	l.given = true
	l.mu.Unlock()
	if !given {
		return l.conn, nil
	}
	<-l.closed
	return nil, net.ErrClosed
}

func (l *oneConnListener) close()         { l.once.Do(func() { close(l.closed) }) }
func (l *oneConnListener) Close() error   { l.close(); return nil }
func (l *oneConnListener) Addr() net.Addr { return forwardAddr{} }

// channelConn is an SSH channel as a net.Conn. Deadlines are not supported: the HTTP server's
// timeouts then do not apply, and an idle forward lasts until its client closes it or the
// connection ends (the gateway bounds the forwards of a connection).
type channelConn struct {
	gossh.Channel
}

func (channelConn) LocalAddr() net.Addr                { return forwardAddr{} }
func (channelConn) RemoteAddr() net.Addr               { return forwardAddr{} }
func (channelConn) SetDeadline(t time.Time) error      { return nil }
func (channelConn) SetReadDeadline(t time.Time) error  { return nil }
func (channelConn) SetWriteDeadline(t time.Time) error { return nil }

type forwardAddr struct{}

func (forwardAddr) Network() string { return "ssh" }
func (forwardAddr) String() string  { return "ssh-forward" }
