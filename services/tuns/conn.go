package tuns

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
)

// conn is the service's state of one SSH connection: its tunnels, the forwards it was refused,
// and the session that shows them (at most one at a time: the latest).
type conn struct {
	svc    *Service
	ssh    *gossh.ServerConn
	grant  auth.Grant
	remote string
	slots  chan struct{} // forwarded-tcpip channels open at once

	reserve func() (release func(), err error) // the gateway's count of open channels; nil: none
	done    chan struct{}                      // closed when the connection has ended

	mu         sync.Mutex
	tunnels    []*Tunnel
	forwards   int      // tcpip-forward requests seen
	pending    int      // tcpip-forward requests being decided
	refused    []string // why forwards were refused, in order
	hadTunnels bool
	sink       *sink // the attached session, or nil
	hadSession bool
	attached   chan struct{} // closed when a session first attaches
	opts       options
	ended      bool
	idleCheck  *time.Timer
	probe      chan struct{} // closed when the client answers the request in flight (confirmRead); nil: none
}

// options are the session's key=value words.
type options struct {
	allow      auth.ShareList
	hostHeader string
	quiet      bool
}

// setReserve records how the gateway counts the channels the service opens (the first one
// given: every request of a connection brings the same).
func (c *conn) setReserve(r func() (func(), error)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reserve == nil {
		c.reserve = r
	}
}

// reserveChannel counts one more open channel with the gateway.
func (c *conn) reserveChannel() (func(), error) {
	c.mu.Lock()
	r := c.reserve
	c.mu.Unlock()
	if r == nil {
		return func() {}, nil
	}
	return r()
}

// errFlood refuses the forward requests of a connection past the first one past
// maxForwardRequests: that one was told and logged; the rest are refused without a word, so
// that a client cannot fill the server's log (and its session) at network speed.
var errFlood = errors.New("too many forward requests")

// bind makes a tunnel of a tcpip-forward request.
func (c *conn) bind(addr string, port uint32) (*Tunnel, error) {
	c.mu.Lock()
	c.forwards++
	c.pending++
	n, ended := c.forwards, c.ended
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.pending--
		if c.sink != nil {
			c.sink.wakeUp()
		}
		c.mu.Unlock()
	}()
	if ended {
		return nil, errors.New("the connection is ending")
	}
	if n > maxForwardRequests+1 {
		return nil, errFlood
	}
	if n > maxForwardRequests {
		return nil, fmt.Errorf("more than %d forward requests on one connection", maxForwardRequests)
	}
	b, err := parseBind(addr, port)
	if err != nil {
		return nil, err
	}
	s := c.svc
	account := c.grant.Account
	t := &Tunnel{Account: account, Name: b.Name, Kind: b.Kind, Port: b.Port, Identity: c.grant.Identity,
		ConnectedAt: time.Now().UTC(), bindAddr: addr, bindPort: port, owner: c, ended: make(chan struct{})}
	switch b.Kind {
	case KindHTTP:
		if t.Name == "" {
			t.Name = c.freeName()
			if t.Name == "" {
				return nil, errors.New("no free random name was found; try again")
			}
		} else if err := c.checkName(t.Name); err != nil {
			return nil, err
		}
		t.startHTTP()
	case KindTCPPrivate:
		if err := c.checkName(t.Name); err != nil {
			return nil, err
		}
	case KindTCPPublic:
		unhold, err := s.holdPublic(c.ssh.RemoteAddr())
		if err != nil {
			return nil, err
		}
		l, p, err := s.listenPublic(port)
		if err != nil {
			unhold()
			return nil, err
		}
		t.Port, t.listener, t.unholdPublic = p, l, unhold
	}
	if c.owns(t.key()) {
		t.release()
		return nil, fmt.Errorf("this connection already has the tunnel %s", t.label())
	}
	taken, err := s.reg.Claim(t, s.o.MaxTunnels)
	if err != nil {
		t.release()
		if errors.Is(err, errLimit) {
			return nil, fmt.Errorf("%s has its limit of %d tunnels at once; end one first", account, s.o.MaxTunnels)
		}
		return nil, err
	}
	if taken == t {
		taken = nil
	}
	if taken != nil {
		// Told whatever becomes of t: the registry no longer has it.
		defer taken.owner.takenOver(taken, c.remote)
	}
	if t.Name != "" {
		// Asked again now that the name is claimed: pgs takes a project's lock (which
		// ProjectExists counts) before it asks TunnelLive, so of a tunnel and a first deploy of
		// the same name racing, at least one sees the other. The first check spares the
		// claim (and a takeover) in the common case.
		if err := c.checkName(t.Name); err != nil {
			t.end()
			return nil, err
		}
	}
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		t.end()
		return nil, errors.New("the connection is ending")
	}
	c.tunnels = append(c.tunnels, t)
	c.hadTunnels = true
	if c.sink != nil {
		c.sink.note(t.announce(), false)
	}
	c.mu.Unlock()
	if t.listener != nil {
		go t.acceptPublic()
	}
	s.log.Info("tuns: tunnel up", "account", account, "identity", t.Identity, "tunnel", t.label(), "kind", t.Kind,
		"port", t.Port, "remote", c.remote, "took_over", taken != nil)
	return t, nil
}

// checkName refuses a name one of the account's pgs projects has.
func (c *conn) checkName(name string) error {
	exists, err := c.svc.projectExists(c.grant.Account, name)
	if err != nil {
		c.svc.log.Warn("tuns: checking the project names failed", "account", c.grant.Account, "name", name, "err", err)
		return errors.New("the name could not be checked against your pgs projects; try again")
	}
	if exists {
		return fmt.Errorf("%s-%s is the host name of your pgs project %q; choose another tunnel name", c.grant.Account, name, name)
	}
	return nil
}

// freeName picks a random name that no project or tunnel of the account has.
func (c *conn) freeName() string {
	for range 5 {
		n := randomName()
		if c.svc.reg.TunnelLive(c.grant.Account, n) {
			continue
		}
		if exists, err := c.svc.projectExists(c.grant.Account, n); err != nil || exists {
			continue
		}
		return n
	}
	return ""
}

// owns reports whether the connection has a tunnel with key k.
func (c *conn) owns(k string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.ContainsFunc(c.tunnels, func(t *Tunnel) bool { return t.key() == k })
}

// cancel ends the tunnel a cancel-tcpip-forward names.
func (c *conn) cancel(addr string, port uint32) bool {
	c.mu.Lock()
	var found *Tunnel
	for _, t := range c.tunnels {
		if t.bindAddr == addr && (t.bindPort == port || t.Port == port) {
			found = t
		}
	}
	c.mu.Unlock()
	if found == nil {
		return false
	}
	c.endTunnel(found, "")
	return true
}

// refuse records why a forward was refused: the session is told, and a connection without one
// is closed once it has no tunnel.
func (c *conn) refuse(reason string) {
	c.svc.log.Info("tuns: forward refused", "account", c.grant.Account, "identity", c.grant.Identity, "remote", c.remote, "reason", reason)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.refused) < maxForwardRequests {
		c.refused = append(c.refused, reason)
	}
	if c.sink != nil {
		c.sink.note("portico: "+reason, true)
	}
	c.checkIdleLocked()
}

// tellBeforeReply waits, at most wait, for the connection's session to write the reasons of
// refusals so far, and for the client to have read them (confirmRead), so that they reach the
// user before the refusal itself: OpenSSH with ExitOnForwardFailure=yes exits on the refusal,
// and sends its forward requests before it opens its session, so without the wait it would
// exit without the reason.
func (c *conn) tellBeforeReply(wait time.Duration) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	select {
	case <-c.attached:
	case <-c.done:
		return
	case <-deadline.C:
		return
	}
	c.mu.Lock()
	sk := c.sink
	c.mu.Unlock()
	if sk == nil {
		return
	}
	want := sk.errsNoted() // this refusal's reason among them
	for {
		shown, told := sk.errsShown(want)
		if shown {
			c.confirmRead(deadline.C)
			return
		}
		select {
		case <-told:
		case <-c.done:
			return
		case <-deadline.C:
			return
		}
	}
}

// confirmRead waits, until stop, for the client to answer a request sent after what the
// session wrote. Written is not yet shown: OpenSSH reads the reason and the refusal together
// when they arrive together, and with ExitOnForwardFailure=yes it exits on the refusal before
// it writes out the reason. It answers a request only after the loop that read it has written
// what it read, so its answer means the reason is out. A client that does not answer keeps one
// request in flight per connection, and the wait ends at stop.
func (c *conn) confirmRead(stop <-chan time.Time) {
	if c.ssh == nil {
		return
	}
	for {
		c.mu.Lock()
		inFlight := c.probe
		if inFlight == nil {
			answered := make(chan struct{})
			c.probe = answered
			c.mu.Unlock()
			go func() {
				_, _, _ = c.ssh.SendRequest("keepalive@openssh.com", true, nil) // any answer will do
				c.mu.Lock()
				c.probe = nil
				c.mu.Unlock()
				close(answered)
			}()
			select {
			case <-answered:
			case <-c.done:
			case <-stop:
			}
			return
		}
		c.mu.Unlock()
		// A request sent before this reason was written does not vouch for it: wait for its
		// answer, then send another.
		select {
		case <-inFlight:
		case <-c.done:
			return
		case <-stop:
			return
		}
	}
}

// takenOver ends t, which a new connection of the same account has taken over.
func (c *conn) takenOver(t *Tunnel, by string) {
	c.endTunnel(t, fmt.Sprintf("the tunnel %s was taken over by a new connection from %s", t.label(), hostOf(by)))
}

// endTunnel ends one of the connection's tunnels, telling the session why when reason is set.
func (c *conn) endTunnel(t *Tunnel, reason string) {
	t.end()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tunnels = slices.DeleteFunc(c.tunnels, func(x *Tunnel) bool { return x == t })
	if reason != "" {
		c.svc.log.Info("tuns: tunnel ended", "account", c.grant.Account, "tunnel", t.label(), "reason", reason)
		if len(c.refused) < maxForwardRequests {
			c.refused = append(c.refused, reason)
		}
		if c.sink != nil {
			c.sink.note("portico: "+reason, true)
		}
	}
	if c.sink != nil {
		c.sink.wakeUp()
	}
	if reason != "" {
		// Not after a cancel: the client chose it, and may ask for more forwards later
		// (ssh -O forward through a ControlMaster).
		c.checkIdleLocked()
	}
}

// checkIdleLocked arranges that a connection without a session, all of whose forwards were
// refused or taken over, is closed: OpenSSH with -N would otherwise wait for ever, told
// nothing but "remote port forwarding failed".
func (c *conn) checkIdleLocked() {
	if c.sink != nil || c.hadSession || len(c.tunnels) > 0 || c.ended || c.idleCheck != nil {
		return
	}
	// Not before a refusal's wait for the session (tellBeforeReply) is over: a session that
	// opens within it must find the connection open, to show the reason.
	c.idleCheck = time.AfterFunc(max(c.svc.o.Grace, c.svc.refusalWait), func() {
		c.mu.Lock()
		c.idleCheck = nil
		idle := c.sink == nil && !c.hadSession && len(c.tunnels) == 0 && !c.ended
		reasons := strings.Join(c.refused, "; ")
		c.mu.Unlock()
		if idle {
			c.svc.log.Info("tuns: closing a connection without a session whose forwards all were refused or ended",
				"account", c.grant.Account, "identity", c.grant.Identity, "remote", c.remote, "reasons", reasons)
			c.ssh.Close()
		}
	})
}

// endAll ends every tunnel of the connection.
func (c *conn) endAll() {
	c.mu.Lock()
	ts := c.tunnels
	c.tunnels = nil
	c.mu.Unlock()
	for _, t := range ts {
		t.end()
	}
}

// shutdown ends the connection's tunnels once it has ended.
func (c *conn) shutdown() {
	c.mu.Lock()
	c.ended = true
	if c.idleCheck != nil {
		c.idleCheck.Stop()
	}
	close(c.done)
	c.mu.Unlock()
	c.endAll()
}

// live returns the connection's tunnels.
func (c *conn) live() []*Tunnel {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.tunnels)
}

// options returns the session's options.
func (c *conn) options() options {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opts
}

// attach makes s the connection's session, with its options: it is told the tunnels and
// refusals so far, and from now on what happens.
func (c *conn) attach(s *sink, o options) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sink != nil {
		c.sink.note("portico: another session of this connection shows its tunnels now", true)
	}
	if !c.hadSession {
		close(c.attached)
	}
	c.sink, c.hadSession, c.opts = s, true, o
	for _, t := range c.tunnels {
		s.note(t.announce(), false)
	}
	for _, r := range c.refused {
		s.note("portico: "+r, true)
	}
}

// detach ends s's turn as the connection's session.
func (c *conn) detach(s *sink) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sink == s {
		// Its words (allow=, host-header=) end with it: a tunnel bound later is its
		// owner's only, as before any session.
		c.sink, c.opts = nil, options{}
	}
}

// logging reports whether a session wants request log lines.
func (c *conn) logging() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sink != nil && !c.opts.quiet
}

// logLine gives a request log line to the session, unless it is quiet.
func (c *conn) logLine(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sink != nil && !c.opts.quiet {
		c.sink.line(line)
	}
}

// counts reports how many tunnels the connection has, had, was refused, and has asked for
// without an answer yet.
func (c *conn) counts() (live int, had bool, refused, pending int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.tunnels), c.hadTunnels, len(c.refused), c.pending
}

// hostOf is the host of a host:port address.
func hostOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i > 0 {
		return strings.Trim(addr[:i], "[]")
	}
	return addr
}

// maxLogLines bounds the request log lines waiting for a session that reads slowly: past it
// they are dropped (and counted), never waited for: visitors must not wait for the owner's
// terminal.
const maxLogLines = 256

// sink is what a session has yet to print: notes (tunnels, refusals) and request log lines.
type sink struct {
	mu      sync.Mutex
	out     []string      // for stdout
	errs    []string      // for stderr
	noted   int           // stderr notes so far
	shown   int           // stderr notes written
	told    chan struct{} // closed and replaced each time the session has written stderr notes
	lines   int           // request lines in out
	dropped int
	wake    chan struct{}
}

func newSink() *sink { return &sink{wake: make(chan struct{}, 1), told: make(chan struct{})} }

// written records that n more stderr notes, taken before, are written, and tells those
// waiting in errsShown.
func (s *sink) written(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shown += n
	close(s.told)
	s.told = make(chan struct{})
}

// errsNoted is how many stderr notes there have been.
func (s *sink) errsNoted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.noted
}

// errsShown reports whether the first n stderr notes are written, and the channel closed at
// the next write.
func (s *sink) errsShown(n int) (bool, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shown >= n, s.told
}

func (s *sink) note(text string, stderr bool) {
	s.mu.Lock()
	if stderr {
		s.errs = append(s.errs, text)
		s.noted++
	} else {
		s.out = append(s.out, text)
	}
	s.mu.Unlock()
	s.wakeUp()
}

func (s *sink) line(text string) {
	s.mu.Lock()
	if s.lines >= maxLogLines {
		s.dropped++
	} else {
		s.lines++
		s.out = append(s.out, text)
	}
	s.mu.Unlock()
	s.wakeUp()
}

func (s *sink) wakeUp() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take returns and clears what is waiting.
func (s *sink) take() (out, errs []string, dropped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out, errs, dropped = s.out, s.errs, s.dropped
	s.out, s.errs, s.lines, s.dropped = nil, nil, 0, 0
	return out, errs, dropped
}
