package gateway

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charmbracelet/ssh"

	"github.com/portico-sh/portico/auth"
)

// clientKey holds a connection's *client in its context.
type clientKey struct{}

func clientOf(ctx context.Context) (*client, bool) {
	c, ok := ctx.Value(clientKey{}).(*client)
	return c, ok
}

// admit is the SSH server's ConnCallback: it runs for every accepted connection before the SSH
// handshake. A refused connection is told why in one line before the version exchange (which
// the protocol allows, as sshd's "Exceeded MaxStartups") and closed. An admitted one must
// authenticate within the login grace time; when it ends, what it held is given back and its
// address penalised if it never logged in.
func (g *Gateway) admit(ctx ssh.Context, conn net.Conn) net.Conn {
	src, _ := auth.Source(conn.RemoteAddr())
	c, err := g.admission.connect(src, auth.ListContains(g.limits.Exempt, conn.RemoteAddr()))
	if err != nil {
		g.refuse(err, conn.RemoteAddr())
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		conn.Write([]byte("portico: " + err.Error() + "\r\n"))
		return nil
	}
	ic := &idleConn{Conn: conn}
	ic.lastRead.Store(time.Now().UnixNano())
	ctx.SetValue(clientKey{}, c)
	ctx.SetValue(idleConnKey{}, ic)
	grace := time.AfterFunc(g.o.LoginGraceTime, func() {
		c.graceOverrun()
		conn.Close()
	})
	ctx.SetValue(loginTimerKey{}, grace)
	context.AfterFunc(ctx, func() {
		grace.Stop()
		ic.stopWatch()
		c.close()
	})
	return ic
}

// refuse logs and counts a refusal by a limit. Logging is rate limited per limit, so that a
// flood of refused connections cannot flood the log instead.
func (g *Gateway) refuse(err error, remote net.Addr) {
	l, ok := asLimit(err)
	if !ok {
		return
	}
	g.metrics.limitRefusals.WithLabelValues(string(l.limit)).Inc()
	if n, ok := g.refusals.allow(l.limit, g.o.Now()); ok {
		g.log.Warn("refused by a limit", "limit", string(l.limit), "remote", remote.String(), "reason", l.msg, "refused_since_last_line", n)
	}
}

// refusalLog lets through one log line per limit per refusalLogEvery, counting the others.
type refusalLog struct {
	mu    sync.Mutex
	last  map[limitName]time.Time
	count map[limitName]int
}

const refusalLogEvery = 10 * time.Second

// allow reports whether a refusal by limit is logged now, and how many were not since the
// last line.
func (r *refusalLog) allow(limit limitName, now time.Time) (skipped int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last, r.count = map[limitName]time.Time{}, map[limitName]int{}
	}
	if last, seen := r.last[limit]; seen && now.Sub(last) < refusalLogEvery {
		r.count[limit]++
		return 0, false
	}
	skipped = r.count[limit]
	r.last[limit], r.count[limit] = now, 0
	return skipped, true
}

// idleConnKey holds a connection's *idleConn in its context.
type idleConnKey struct{}

// idleConn is a connection that knows when its client last sent anything, so that an idle
// connection can be closed.
type idleConn struct {
	net.Conn
	lastRead atomic.Int64 // UnixNano

	mu    sync.Mutex
	timer *time.Timer
	done  bool
}

func (c *idleConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.lastRead.Store(time.Now().UnixNano())
	}
	return n, err
}

// watch closes the connection once its client has sent nothing for idle, calling onIdle first.
func (c *idleConn) watch(idle time.Duration, onIdle func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done || c.timer != nil {
		return
	}
	var check func()
	check = func() {
		quiet := time.Since(time.Unix(0, c.lastRead.Load()))
		if quiet < idle {
			c.mu.Lock()
			if !c.done {
				c.timer = time.AfterFunc(idle-quiet, check)
			}
			c.mu.Unlock()
			return
		}
		onIdle()
		c.Conn.Close()
	}
	c.timer = time.AfterFunc(idle, check)
}

// stopWatch stops watching for idleness: the connection has ended.
func (c *idleConn) stopWatch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	if c.timer != nil {
		c.timer.Stop()
	}
}
