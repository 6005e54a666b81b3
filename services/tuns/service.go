package tuns

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/services"
)

// Bounds on what one connection may make the service hold.
const (
	// DefaultMaxTunnels is an account's limit of tunnels at once (PORTICO_TUNS_MAX).
	DefaultMaxTunnels = 10
	// maxForwardRequests bounds the tcpip-forward requests one connection may send, refused or
	// not: each refusal is kept to be told.
	maxForwardRequests = 64
	// maxOpenChannels bounds the forwarded-tcpip channels open at once on one connection (each
	// may hold its 2 MiB window of unread data): visitors past it wait for one, or are refused.
	maxOpenChannels = 64
	// openTimeout bounds how long the client may take to answer a forwarded-tcpip open.
	openTimeout = 15 * time.Second
	// nameCheckTimeout bounds the lookup of a pgs project of the same name.
	nameCheckTimeout = 5 * time.Second
	// refusalWait bounds how long a refusal waits for the connection's session to show its
	// reason first (OpenSSH opens its session just after its forward requests; on a busy server
	// that took over a second, and ExitOnForwardFailure=yes then ended ssh before the reason).
	// A client without a session (ssh -N) hears of the refusal this much later.
	refusalWait = 3 * time.Second
)

// PortRange is the operator's range of public TCP ports; the zero value is none.
type PortRange struct{ First, Last int }

// Contains reports whether p is in the range.
func (r PortRange) Contains(p int) bool { return r.First > 0 && p >= r.First && p <= r.Last }

// ParsePortRange reads "40000-40099" (or one port); "" is none.
func ParsePortRange(s string) (PortRange, error) {
	if s == "" || s == "off" {
		return PortRange{}, nil
	}
	a, b, found := cutDash(s)
	first, err1 := strconv.Atoi(a)
	last, err2 := first, error(nil)
	if found {
		last, err2 = strconv.Atoi(b)
	}
	if err1 != nil || err2 != nil || first < 1 || last > 65535 || first > last {
		return PortRange{}, fmt.Errorf("tuns TCP ports %q: want a range such as 40000-40099", s)
	}
	if r := (PortRange{first, last}); r.Contains(80) || r.Contains(443) {
		return PortRange{}, fmt.Errorf("tuns TCP ports %q: 80 and 443 are HTTP tunnels, not public ports", s)
	}
	return PortRange{First: first, Last: last}, nil
}

func cutDash(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == '-' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// Options configure the service.
type Options struct {
	Registry Registry
	Public   services.Public
	// MaxTunnels is an account's limit of tunnels at once (DefaultMaxTunnels when zero; -1: none).
	MaxTunnels int
	// TCPPorts is the range public TCP ports are taken from; none when zero.
	TCPPorts PortRange
	// TCPHost is the address public TCP ports listen on ("" for all).
	TCPHost string
	// Exempt lists the client addresses whose public TCP ports no share bounds (the gateway's
	// PORTICO_PER_SOURCE_EXEMPT: a trusted proxy or the operator's own hosts).
	Exempt []netip.Prefix
	// ProjectExists reports whether the account has a pgs project of that name, which no tunnel
	// may take. nil: no projects.
	ProjectExists func(ctx context.Context, account, name string) (bool, error)
	// SSHCommand is how users reach the service, for usage text: "ssh -p 2222 tuns@example.com".
	SSHCommand string
	// Grace is how long a session waits for its connection's forwards before it says there are
	// none, and a connection without a session waits before it is closed for having none
	// (2s when zero; never less than a refusal waits for the session, refusalWait).
	Grace  time.Duration
	Logger *slog.Logger
}

// Service is the tuns service.
type Service struct {
	o     Options
	reg   Registry
	log   *slog.Logger
	mu    sync.Mutex
	conns map[*gossh.ServerConn]*conn
	// publicBy counts the public TCP ports the connections from each address hold.
	publicBy map[string]int

	refusalWait time.Duration // refusalWait, shorter in tests
}

// New returns the tuns service.
func New(o Options) *Service {
	if o.Registry == nil {
		o.Registry = NewMemoryRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxTunnels == 0 {
		o.MaxTunnels = DefaultMaxTunnels
	}
	if o.SSHCommand == "" {
		o.SSHCommand = "ssh tuns@HOST"
	}
	if o.Grace <= 0 {
		o.Grace = 2 * time.Second
	}
	return &Service{o: o, reg: o.Registry, log: o.Logger, conns: map[*gossh.ServerConn]*conn{}, publicBy: map[string]int{}, refusalWait: refusalWait}
}

// Name is the service's name and principal.
func (s *Service) Name() auth.Service { return auth.Tuns }

// RequestTypes are the global requests the service takes.
func (s *Service) RequestTypes() []string {
	return []string{"tcpip-forward", "cancel-tcpip-forward"}
}

// forwardRequest is the payload of tcpip-forward and cancel-tcpip-forward (RFC 4254 7.1).
type forwardRequest struct {
	Addr string
	Port uint32
}

// HandleRequest binds or cancels a forward.
func (s *Service) HandleRequest(c *services.Conn, req *gossh.Request) (bool, []byte) {
	var fr forwardRequest
	if err := gossh.Unmarshal(req.Payload, &fr); err != nil {
		s.log.Info("tuns: malformed forward request", "account", c.Grant.Account, "type", req.Type)
		return false, nil
	}
	cs := s.connOf(c.SSH, c.Grant)
	if cs == nil {
		return false, nil
	}
	cs.setReserve(c.ReserveChannel)
	switch req.Type {
	case "tcpip-forward":
		t, err := cs.bind(fr.Addr, fr.Port)
		if errors.Is(err, errFlood) {
			return false, nil
		}
		if err != nil {
			cs.refuse(fmt.Sprintf("%s refused: %v", forwardLabel(fr), err))
			cs.tellBeforeReply(s.refusalWait)
			return false, nil
		}
		if fr.Port == 0 {
			return true, gossh.Marshal(struct{ Port uint32 }{t.Port})
		}
		return true, nil
	case "cancel-tcpip-forward":
		return cs.cancel(fr.Addr, fr.Port), nil
	}
	return false, nil
}

// forwardLabel names a forward request as the user wrote it: -R dev:80, or -R 8080 without a name.
func forwardLabel(fr forwardRequest) string {
	if slices.Contains(unnamed, fr.Addr) {
		return fmt.Sprintf("-R %d", fr.Port)
	}
	return fmt.Sprintf("-R %s:%d", printable(fr.Addr), fr.Port)
}

// ForwardRefused hears of a forward the gateway refused (the grant lacks
// permit-port-forwarding), so that the client is told why as for the service's own refusals.
func (s *Service) ForwardRefused(c *services.Conn, req *gossh.Request, reason string) {
	var fr forwardRequest
	if req.Type != "tcpip-forward" || gossh.Unmarshal(req.Payload, &fr) != nil {
		return
	}
	if cs := s.connOf(c.SSH, c.Grant); cs != nil {
		cs.mu.Lock()
		cs.forwards++
		n := cs.forwards
		cs.mu.Unlock()
		if n > maxForwardRequests {
			return // told often enough (errFlood)
		}
		cs.refuse(fmt.Sprintf("%s refused: %s", forwardLabel(fr), reason))
		cs.tellBeforeReply(s.refusalWait)
	}
}

// connOf returns the service's state of an SSH connection, made on first use and dropped
// (its tunnels ended) when the connection ends. nil when the connection has ended already.
func (s *Service) connOf(sc *gossh.ServerConn, g auth.Grant) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs, ok := s.conns[sc]; ok {
		return cs
	}
	cs := &conn{svc: s, ssh: sc, grant: g, remote: sc.RemoteAddr().String(),
		slots: make(chan struct{}, maxOpenChannels), done: make(chan struct{}), attached: make(chan struct{})}
	s.conns[sc] = cs
	go func() {
		sc.Wait()
		s.mu.Lock()
		delete(s.conns, sc)
		s.mu.Unlock()
		cs.shutdown()
	}()
	return cs
}

// projectExists reports whether one of the account's pgs projects has the name.
func (s *Service) projectExists(account, name string) (bool, error) {
	if s.o.ProjectExists == nil {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), nameCheckTimeout)
	defer cancel()
	return s.o.ProjectExists(ctx, account, name)
}

// randomName is a name for an unnamed HTTP tunnel: 10 letters and digits, starting with a letter.
func randomName() string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	const alnum = letters + "0123456789"
	b := make([]byte, 10)
	rand.Read(b)
	for i := range b {
		if i == 0 {
			b[i] = letters[int(b[i])%len(letters)]
		} else {
			b[i] = alnum[int(b[i])%len(alnum)]
		}
	}
	return string(b)
}

// publicHost is the host name of public TCP ports as users reach them.
func (s *Service) publicHost() string { return s.o.Public.HTTP.Hostname() }

// publicShare is how many public TCP ports the connections from one address may hold: a
// quarter of the range, so that one user (whatever its accounts: sign-up may be open) cannot
// take them all, but at least 10 of it (a small range is a small server's, for a few users).
func (s *Service) publicShare() int {
	n := s.o.TCPPorts.Last - s.o.TCPPorts.First + 1
	return max(n/4, min(n, publicShareMin))
}

// publicShareMin is the least share of the public ports an address may hold.
const publicShareMin = 10

// holdPublic counts one more public port for the client at addr by its source (an IPv4 address
// or IPv6 /64, as the gateway's per-source limits count), or refuses when it holds its share; the
// returned func gives it back (once). An exempt address is not counted.
func (s *Service) holdPublic(addr net.Addr) (func(), error) {
	if auth.ListContains(s.o.Exempt, addr) {
		return func() {}, nil
	}
	host := auth.SourceOf(addr)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.o.TCPPorts.First == 0 {
		return func() {}, nil // listenPublic refuses, with its reason
	}
	// A share of the whole range bounds nothing: the range's own end says why.
	if share := s.publicShare(); share < s.o.TCPPorts.Last-s.o.TCPPorts.First+1 && s.publicBy[host] >= share {
		return nil, fmt.Errorf("connections from your address hold %d public TCP ports, as many as they may; end one first", s.publicShare())
	}
	s.publicBy[host]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.publicBy[host]--; s.publicBy[host] <= 0 {
				delete(s.publicBy, host)
			}
		})
	}, nil
}

// listenPublic opens a public TCP port: port, or a free one of the range when port is 0.
func (s *Service) listenPublic(port uint32) (net.Listener, uint32, error) {
	r := s.o.TCPPorts
	if r.First == 0 {
		return nil, 0, errors.New("this server has no public TCP ports (its operator may set PORTICO_TUNS_TCP_PORTS); name the tunnel for a private one (-R NAME:PORT:localhost:LOCALPORT) or use port 80 for HTTP")
	}
	if port != 0 {
		if !r.Contains(int(port)) {
			return nil, 0, fmt.Errorf("port %d is outside this server's public TCP ports %d-%d (ask for port 0 to get a free one)", port, r.First, r.Last)
		}
		l, err := net.Listen("tcp", net.JoinHostPort(s.o.TCPHost, strconv.Itoa(int(port))))
		if err != nil {
			return nil, 0, fmt.Errorf("port %d is busy (ask for port 0 to get a free one)", port)
		}
		return l, port, nil
	}
	n := r.Last - r.First + 1
	var off [2]byte
	rand.Read(off[:])
	start := (int(off[0])<<8 | int(off[1])) % n
	for i := range n {
		p := r.First + (start+i)%n
		if l, err := net.Listen("tcp", net.JoinHostPort(s.o.TCPHost, strconv.Itoa(p))); err == nil {
			return l, uint32(p), nil
		}
	}
	return nil, 0, fmt.Errorf("every public TCP port of %d-%d is busy", r.First, r.Last)
}
