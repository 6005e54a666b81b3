package gateway

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charmbracelet/ssh"

	"github.com/portico-sh/portico/auth"
)

// connKey holds a connection's *connInfo in its context.
type connKey struct{}

// connInfo is everything the gateway keeps in a connection's context, under one key:
// charmbracelet/ssh keeps a connection's context values in a map, which every further key
// makes bigger in every connection (past 8 keys, twice as big).
type connInfo struct {
	client     *client
	state      *connState
	activity   *activity
	loginTimer *time.Timer
	ciphers    []string // chosen from the client's KEXINIT; nil: the configured ones
}

func connInfoOf(ctx context.Context) *connInfo {
	ci, _ := ctx.Value(connKey{}).(*connInfo)
	return ci
}

func clientOf(ctx context.Context) (*client, bool) {
	if ci := connInfoOf(ctx); ci != nil && ci.client != nil {
		return ci.client, true
	}
	return nil, false
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
		tell(conn, err.Error())
		return nil
	}
	act := &activity{close: conn.Close}
	grace := time.AfterFunc(g.o.LoginGraceTime, func() {
		c.graceOverrun()
		conn.Close()
	})
	ci := &connInfo{client: c, state: newConnState(conn), activity: act, loginTimer: grace}
	ctx.SetValue(connKey{}, ci)
	release := func() {
		grace.Stop()
		act.stop()
		c.close()
	}
	context.AfterFunc(ctx, release)
	if g.o.Ciphers != nil {
		return conn
	}
	// The client's KEXINIT picks the ciphers offered (see kexpeek.go). It is read here, after
	// admission, so that a client that stalls holds its startup slot meanwhile.
	peeked, kex, err := peekKEXInit(conn, g.sshVersion, kexPeekTimeout)
	if err != nil {
		// charmbracelet/ssh never ends the context of a connection its ConnCallback drops:
		// give back what it holds here, or a client that resets at once (a port scan) would
		// keep its startup slot for good.
		release()
		return nil
	}
	ci.ciphers = ciphersFor(kex)
	return peeked
}

// refusalDrain bounds how long a refused connection is read from before it is closed.
const refusalDrain = 20 * time.Millisecond

// tell writes one line to a connection refused before its SSH handshake, then closes its
// writing side and reads what the client already sent (its version line), briefly: closing a
// socket with unread data resets it, and the client would lose the line.
func tell(conn net.Conn, msg string) {
	conn.SetDeadline(time.Now().Add(refusalDrain))
	conn.Write([]byte("portico: " + msg + "\r\n"))
	if tc, ok := conn.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	io.Copy(io.Discard, io.LimitReader(conn, 4<<10))
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

// activity knows when a connection's client last typed or sent anything that a session read,
// so that an idle connection can be closed. Keepalives and window changes are not activity:
// a sign-up form nobody types into is idle, whatever the client sends to keep it open.
type activity struct {
	close func() error // closes the connection
	last  atomic.Int64 // UnixNano of the last input read

	mu    sync.Mutex
	timer *time.Timer
	done  bool
}

// input records that a session read its client's input.
func (a *activity) input() { a.last.Store(time.Now().UnixNano()) }

// watch closes the connection once no input has been read for idle, from now on, calling
// onIdle first.
func (a *activity) watch(idle time.Duration, onIdle func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done || a.timer != nil {
		return
	}
	a.input()
	var check func()
	check = func() {
		quiet := time.Since(time.Unix(0, a.last.Load()))
		if quiet < idle {
			a.mu.Lock()
			if !a.done {
				a.timer = time.AfterFunc(idle-quiet, check)
			}
			a.mu.Unlock()
			return
		}
		onIdle()
		a.close()
	}
	a.timer = time.AfterFunc(idle, check)
}

// stop stops watching: the connection has ended.
func (a *activity) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.done = true
	if a.timer != nil {
		a.timer.Stop()
	}
}
