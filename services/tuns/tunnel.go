package tuns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// Tunnel is one bound forward of a connection.
type Tunnel struct {
	Account     string
	Name        string // the NAME; empty for a public TCP port
	Kind        Kind
	Port        uint32 // the remote port: 80/443, the private tunnel's port, or the public port
	Identity    string // the owner's login key name or certificate key ID
	ConnectedAt time.Time

	requests atomic.Int64 // HTTP requests or TCP connections
	bytesIn  atomic.Int64 // from visitors to the owner
	bytesOut atomic.Int64 // from the owner to visitors

	bindAddr  string // as the client sent it; forwarded-tcpip channels name it
	bindPort  uint32
	owner     *conn
	proxy     http.Handler    // KindHTTP
	transport *http.Transport // KindHTTP
	listener  net.Listener    // KindTCPPublic
	// unholdPublic gives back the public port the owner's address holds (KindTCPPublic).
	unholdPublic func()
	endOnce      sync.Once
	ended        chan struct{}

	mu   sync.Mutex
	open map[*tracked]struct{} // connections through the tunnel: cut when it ends
}

// tracked is a connection through a tunnel (a pointer: channels need not be comparable).
type tracked struct{ c io.Closer }

// track records c as a connection through the tunnel, closed when the tunnel ends, and reports
// false (c is closed) when it has ended already. untrack forgets it.
func (t *Tunnel) track(c io.Closer) (*tracked, bool) {
	t.mu.Lock()
	select {
	case <-t.ended:
		t.mu.Unlock()
		c.Close()
		return nil, false
	default:
	}
	if t.open == nil {
		t.open = map[*tracked]struct{}{}
	}
	tr := &tracked{c}
	t.open[tr] = struct{}{}
	t.mu.Unlock()
	return tr, true
}

func (t *Tunnel) untrack(tr *tracked) {
	t.mu.Lock()
	delete(t.open, tr)
	t.mu.Unlock()
}

// cut closes every connection through the tunnel, which has ended: nothing reaches the owner's
// machine through a tunnel once it is cancelled, taken over or its session ends.
func (t *Tunnel) cut() {
	t.mu.Lock()
	open := t.open
	t.open = nil
	t.mu.Unlock()
	for tr := range open {
		tr.c.Close()
	}
}

// Stats are a tunnel's counts so far.
type Stats struct {
	Requests, BytesIn, BytesOut int64
}

// Stats returns the tunnel's counts.
func (t *Tunnel) Stats() Stats {
	return Stats{Requests: t.requests.Load(), BytesIn: t.bytesIn.Load(), BytesOut: t.bytesOut.Load()}
}

// Allow is who besides the owner may reach a private tunnel.
func (t *Tunnel) Allow() []string {
	return append([]string{}, t.owner.options().allow...)
}

// key is the tunnel's key in its account: its name, or ":PORT" for a public port.
func (t *Tunnel) key() string {
	if t.Name == "" {
		return ":" + strconv.Itoa(int(t.Port))
	}
	return t.Name
}

// Host is the tunnel's host name without the domain: alice-dev; empty for a public port.
func (t *Tunnel) Host() string {
	if t.Name == "" {
		return ""
	}
	return t.Account + "-" + t.Name
}

// label names the tunnel in messages.
func (t *Tunnel) label() string {
	switch t.Kind {
	case KindHTTP:
		return t.Host()
	case KindTCPPrivate:
		return t.Host() + ":" + strconv.Itoa(int(t.Port))
	}
	return "port " + strconv.Itoa(int(t.Port))
}

// URL is how visitors reach the tunnel: its http(s) URL, or empty.
func (t *Tunnel) URL() string {
	if t.Kind != KindHTTP {
		return ""
	}
	return t.owner.svc.o.Public.SiteURL(t.Account, t.Name)
}

// announce is the session's line for a new tunnel.
func (t *Tunnel) announce() string {
	s := t.owner.svc
	switch t.Kind {
	case KindHTTP:
		return t.URL()
	case KindTCPPrivate:
		return fmt.Sprintf("%s (private: %s)", t.label(), s.forwardRecipe(t))
	}
	return "tcp://" + net.JoinHostPort(s.publicHost(), strconv.Itoa(int(t.Port)))
}

// forwardRecipe is the command that reaches a private tunnel.
func (s *Service) forwardRecipe(t *Tunnel) string {
	if t.Port == 22 {
		return "ssh -J " + s.jumpHost() + " " + t.Host()
	}
	p := strconv.Itoa(int(t.Port))
	return "ssh -N -L " + p + ":" + t.Host() + ":" + p + " " + s.sshDest()
}

func (s *Service) sshDest() string {
	p := s.o.Public
	if p.SSHPort != 22 && p.SSHPort != 0 {
		return "-p " + strconv.Itoa(p.SSHPort) + " tuns@" + p.SSHHost
	}
	return "tuns@" + p.SSHHost
}

func (s *Service) jumpHost() string {
	p := s.o.Public
	if p.SSHPort != 22 && p.SSHPort != 0 {
		return "tuns@" + net.JoinHostPort(p.SSHHost, strconv.Itoa(p.SSHPort))
	}
	return "tuns@" + p.SSHHost
}

// release frees what a tunnel that was never claimed holds.
func (t *Tunnel) release() {
	if t.listener != nil {
		t.listener.Close()
	}
	if t.unholdPublic != nil {
		t.unholdPublic()
	}
	if t.transport != nil {
		t.transport.CloseIdleConnections()
	}
}

// end frees the tunnel's name and what it holds; open connections through it end with its
// owner's connection or by themselves.
func (t *Tunnel) end() {
	t.endOnce.Do(func() {
		t.mu.Lock()
		close(t.ended)
		t.mu.Unlock()
		t.owner.svc.reg.Release(t)
		t.release()
		t.cut()
	})
}

// A dial's errors: the tunnel has ended; its connection has maxOpenChannels open.
var (
	errTunnelEnded = errors.New("the tunnel has ended")
	errBusy        = errors.New("the tunnel has as many connections open as it may")
)

// forwardedTCPIP is the payload of a forwarded-tcpip channel open (RFC 4254 7.2).
type forwardedTCPIP struct {
	Addr       string
	Port       uint32
	OriginAddr string
	OriginPort uint32
}

// dial opens a forwarded-tcpip channel to the owner's machine for a visitor from origin.
// It waits for one of the connection's channel slots, and for the client's answer, no
// longer than ctx and openTimeout.
func (t *Tunnel) dial(ctx context.Context, origin string, wait bool) (*chanConn, error) {
	c := t.owner
	select {
	case <-t.ended:
		return nil, errTunnelEnded
	default:
	}
	if !wait {
		select {
		case c.slots <- struct{}{}:
		default:
			return nil, errBusy
		}
	} else {
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.ended:
			return nil, errTunnelEnded
		}
	}
	gwRelease, err := c.reserveChannel()
	if err != nil {
		<-c.slots
		return nil, fmt.Errorf("%w: %v", errBusy, err)
	}
	release := func() {
		gwRelease()
		<-c.slots
	}
	host, portStr, _ := net.SplitHostPort(origin)
	port, _ := strconv.Atoi(portStr)
	payload := gossh.Marshal(forwardedTCPIP{Addr: t.bindAddr, Port: t.Port, OriginAddr: host, OriginPort: uint32(port)})
	type opened struct {
		ch   gossh.Channel
		reqs <-chan *gossh.Request
		err  error
	}
	res := make(chan opened, 1)
	go func() {
		ch, reqs, err := c.ssh.OpenChannel("forwarded-tcpip", payload)
		res <- opened{ch, reqs, err}
	}()
	timer := time.NewTimer(openTimeout)
	defer timer.Stop()
	select {
	case o := <-res:
		if o.err != nil {
			release()
			return nil, o.err
		}
		go gossh.DiscardRequests(o.reqs)
		cc := newChanConn(o.ch, t, origin, release)
		tr, ok := t.track(cc)
		if !ok {
			return nil, errTunnelEnded
		}
		cc.mu.Lock()
		cc.tracked = tr
		cc.mu.Unlock()
		return cc, nil
	case <-ctx.Done():
	case <-timer.C:
	case <-t.ended:
	}
	// The client has not answered: the slot is held until it does (or its connection ends).
	go func() {
		o := <-res
		if o.err == nil {
			go gossh.DiscardRequests(o.reqs)
			o.ch.Close()
		}
		release()
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, errors.New("the tunnel's client did not answer")
}

// chanConn is a forwarded-tcpip channel as a net.Conn, counting the tunnel's bytes. It gives
// its slot back once it is closed and no write is blocked in it: a client that stops reading
// leaves a writer waiting for window space until its connection ends, and that must count.
type chanConn struct {
	ch     gossh.Channel
	t      *Tunnel
	origin string

	mu       sync.Mutex
	writers  int
	closed   bool
	released bool
	release  func()
	tracked  *tracked // its entry in the tunnel's connections
}

func newChanConn(ch gossh.Channel, t *Tunnel, origin string, release func()) *chanConn {
	return &chanConn{ch: ch, t: t, origin: origin, release: release}
}

func (c *chanConn) Read(p []byte) (int, error) {
	n, err := c.ch.Read(p)
	c.t.bytesOut.Add(int64(n))
	return n, err
}

func (c *chanConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	c.writers++
	c.mu.Unlock()
	n, err := c.ch.Write(p)
	c.t.bytesIn.Add(int64(n))
	c.mu.Lock()
	c.writers--
	c.maybeReleaseLocked()
	c.mu.Unlock()
	return n, err
}

func (c *chanConn) maybeReleaseLocked() {
	if c.closed && c.writers == 0 && !c.released {
		c.released = true
		c.release()
	}
}

// CloseWrite sends EOF.
func (c *chanConn) CloseWrite() error { return c.ch.CloseWrite() }

func (c *chanConn) Close() error {
	c.mu.Lock()
	already, tr := c.closed, c.tracked
	c.closed = true
	c.maybeReleaseLocked()
	c.mu.Unlock()
	if already {
		return nil
	}
	if tr != nil {
		c.t.untrack(tr)
	}
	return c.ch.Close()
}

type tunnelAddr string

func (a tunnelAddr) Network() string { return "ssh" }
func (a tunnelAddr) String() string  { return string(a) }

func (c *chanConn) LocalAddr() net.Addr  { return tunnelAddr(c.t.label()) }
func (c *chanConn) RemoteAddr() net.Addr { return tunnelAddr(c.origin) }

// Deadlines are not kept: the visitor's side bounds how long anything waits (its request's
// context, the HTTP listener's idle limit, or its own channel), and closing ends a read.
func (c *chanConn) SetDeadline(time.Time) error      { return nil }
func (c *chanConn) SetReadDeadline(time.Time) error  { return nil }
func (c *chanConn) SetWriteDeadline(time.Time) error { return nil }

// halfCloser is a connection whose sending side can be closed alone.
type halfCloser interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// splice copies both ways between a and b until both directions end, passing each EOF on,
// and closes both. It returns the bytes copied from a to b and from b to a.
func splice(a, b halfCloser) (ab, ba int64) {
	var wg sync.WaitGroup
	wg.Go(func() {
		ab, _ = io.Copy(b, a)
		b.CloseWrite()
	})
	ba, _ = io.Copy(a, b)
	a.CloseWrite()
	// When one side has gone for good, the other direction may never end by itself.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(spliceLinger):
		a.Close()
		b.Close()
		<-done
	}
	a.Close()
	b.Close()
	return ab, ba
}

// spliceLinger is how long one direction of a spliced connection may go on after the other
// ended: a half-closed connection that is still used is rare; one left open is common.
const spliceLinger = 10 * time.Minute
