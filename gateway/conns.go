package gateway

import (
	"context"
	"net"
	"sync"
	"time"
)

// How a connection is ended by the gateway (live access, shutdown).
const (
	// endGrace is how long the sessions of an ended connection get to stop (a TUI restores
	// the terminal) and be told why, before the connection closes regardless.
	endGrace = 2 * time.Second
	// closeLinger is how long a connection whose writing side was closed is read from before
	// it is closed: closing a socket with unread data resets it, and the client would lose the
	// last messages.
	closeLinger = 500 * time.Millisecond
)

func connStateOf(ctx context.Context) (*connState, bool) {
	if ci := connInfoOf(ctx); ci != nil && ci.state != nil {
		return ci.state, true
	}
	return nil, false
}

// connState is what the gateway keeps of one connection to end it: its socket and its open
// sessions. It also remembers a refused certificate, after which no sign-up is offered.
type connState struct {
	raw net.Conn

	mu          sync.Mutex
	sessions    map[*sessionChannel]struct{}
	certRefused bool // a certificate was refused on this connection after its key signed
	ended       bool
}

func newConnState(raw net.Conn) *connState {
	return &connState{raw: raw, sessions: map[*sessionChannel]struct{}{}}
}

// addSession adds sc to the connection's sessions, or reports false when the gateway is
// ending the connection: its access ended, and no new session may start on it.
func (c *connState) addSession(sc *sessionChannel) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return false
	}
	c.sessions[sc] = struct{}{}
	return true
}

// ending reports whether the gateway is ending the connection (its access ended): it opens no
// new session, channel or forwarding.
func (c *connState) ending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

func (c *connState) removeSession(sc *sessionChannel) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sessions, sc)
}

func (c *connState) refusedCert() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.certRefused = true
}

func (c *connState) hadRefusedCert() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.certRefused
}

// end ends the connection, telling each open session why: a session whose service is running
// is stopped and, once its service returned, told why on stderr before its exit status (so a
// TUI has restored the terminal first); a session that has not started is told at once. After
// endGrace at most, the connection closes.
func (c *connState) end(reason string) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	sessions := make([]*sessionChannel, 0, len(c.sessions))
	for sc := range c.sessions {
		sessions = append(sessions, sc)
	}
	c.mu.Unlock()
	deadline := time.Now().Add(endGrace)
	var wg sync.WaitGroup
	for _, sc := range sessions {
		wg.Go(func() { sc.end(reason, deadline) })
	}
	wg.Wait()
	c.close()
}

// close closes the connection's writing side, reads what the client still sends for a moment,
// and closes it. The moment is a timer that closes the connection, not a read deadline:
// charmbracelet/ssh clears the deadline before each of the SSH library's reads, so a client
// that sent a byte during the linger and then waited kept the connection open for good.
func (c *connState) close() {
	if tc, ok := c.raw.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
		linger := time.AfterFunc(closeLinger, func() { c.raw.Close() })
		defer linger.Stop()
		buf := make([]byte, 4<<10)
		for {
			if _, err := c.raw.Read(buf); err != nil {
				break
			}
		}
	}
	c.raw.Close()
}

// sessionSet is every open session of the gateway, for telling them all at shutdown.
type sessionSet struct {
	mu sync.Mutex
	m  map[*sessionChannel]struct{}
}

func (s *sessionSet) add(sc *sessionChannel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[*sessionChannel]struct{}{}
	}
	s.m[sc] = struct{}{}
}

func (s *sessionSet) remove(sc *sessionChannel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, sc)
}

func (s *sessionSet) all() []*sessionChannel {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*sessionChannel, 0, len(s.m))
	for sc := range s.m {
		out = append(out, sc)
	}
	return out
}
