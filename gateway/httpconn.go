package gateway

import (
	"errors"
	"io"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// progressListener hands out progressConns, at most max at once (0: no bound). Past it, a
// connection is closed as soon as it is accepted, and refused is told: HTTP connections cost a
// file descriptor each, shared with SSH, and without a bound one client could take them all.
type progressListener struct {
	net.Listener
	idle    time.Duration
	max     int
	open    *atomic.Int64
	refused func(remote net.Addr)
}

func (l progressListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.max <= 0 {
			return newProgressConn(c, l.idle, nil), nil
		}
		if l.open.Add(1) > int64(l.max) {
			l.open.Add(-1)
			c.Close()
			if l.refused != nil {
				l.refused(c.RemoteAddr())
			}
			continue
		}
		return newProgressConn(c, l.idle, func() { l.open.Add(-1) }), nil
	}
}

// progressConn is an HTTP connection that fails a read or write that has waited idle while
// nothing moved on the connection either way: as nginx's client_body_timeout and send_timeout. net/http sets
// deadlines only for a request's headers and between requests; in the middle of one it reads
// and writes without any, so a client that announces a body and never sends it, or never reads
// the response, held its connection and goroutine for good. A whole-request timeout would cut
// long uploads, downloads and tunnelled streams; this one only ends connections that stand
// still. The deadlines net/http sets still apply, whichever comes first.
//
// Setting a deadline on the connection costs a lock and a timer update in the runtime, and
// net/http already sets several per request, so the deadline set on the connection (armed) is
// not moved on each read and write: it stays while it is no later than the one due and at
// least idle/8 away. Such a deadline can pass early; a read or write it ends is then resumed
// with the exact deadline, so that what fails is the same as with a deadline set on every
// call: an operation that has itself waited idle while nothing moved, or whose asked deadline
// has passed.
type progressConn struct {
	net.Conn
	idle time.Duration
	last atomic.Int64 // clock() of the last byte read or written

	mu          sync.Mutex // orders the deadlines set on Conn
	read, write direction

	closeOnce sync.Once
	release   func() // gives the listener's slot back; nil: none

	owned atomic.Bool // hijacked: its new owner decides how long it may stand still

	// pending is what the fast path read and handed over with the connection: Read returns it
	// first. Only the connection's one reader touches it.
	pending []byte
	// headDue is when the head of the request the fast path handed over begun is due (zero:
	// none): the first read deadline asked after it, net/http's header deadline, is no later.
	headDue time.Time
}

// direction is the deadline of reads or of writes.
type direction struct {
	asked time.Time // the deadline net/http asked for; zero: none
	armed int64     // clock() of the deadline set on the connection; noDeadline: none
}

// noDeadline is the clock() value of no deadline.
const noDeadline = math.MaxInt64

// clockBase is what clock() counts from.
var clockBase = time.Now()

// clock is monotonic nanoseconds since clockBase: one clock read where time.Now makes two.
func clock() int64 { return int64(time.Since(clockBase)) }

// toClock is t on clock()'s scale; noDeadline for the zero time.
func toClock(t time.Time) int64 {
	if t.IsZero() {
		return noDeadline
	}
	return int64(t.Sub(clockBase))
}

func fromClock(c int64) time.Time {
	if c == noDeadline {
		return time.Time{}
	}
	return clockBase.Add(time.Duration(c))
}

// hijacked lifts the idle limit: the connection was hijacked (an Upgrade), and its new owner
// keeps it as long as both ends are alive.
func (c *progressConn) hijacked() { c.owned.Store(true) }

func newProgressConn(c net.Conn, idle time.Duration, release func()) *progressConn {
	p := &progressConn{Conn: c, idle: idle, release: release}
	p.read.armed, p.write.armed = noDeadline, noDeadline
	p.moved()
	return p
}

// Close closes the connection and gives its slot back, once; net/http or whoever hijacked
// it closes it.
func (c *progressConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		if c.release != nil {
			c.release()
		}
	})
	return err
}

func (c *progressConn) moved() { c.last.Store(clock()) }

// due is the deadline of an operation that began at start: the earlier of the asked one and
// idle after start or the last movement, whichever is later; once hijacked, the asked one.
func (c *progressConn) due(d *direction, start int64) int64 {
	asked := toClock(d.asked)
	if c.owned.Load() {
		return asked
	}
	return min(asked, max(start, c.last.Load())+int64(c.idle))
}

// armLocked sets d's deadline on the connection for an operation that began at start, unless
// the one armed may stay (see progressConn); exact sets it in any case. c.mu is held, so that
// a deadline net/http sets meanwhile (to abort a read, say) is not overwritten by an older one.
func (c *progressConn) armLocked(d *direction, start, now int64, exact bool) error {
	due := c.due(d, start)
	if d.armed == due {
		return nil
	}
	if !exact && !c.owned.Load() && d.armed <= due && d.armed-now >= int64(c.idle/8) {
		return nil
	}
	d.armed = due
	if d == &c.read {
		return c.Conn.SetReadDeadline(fromClock(due))
	}
	return c.Conn.SetWriteDeadline(fromClock(due))
}

func (c *progressConn) armRead(start int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.armLocked(&c.read, start, start, false)
}

func (c *progressConn) armWrite(start int64, exact bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.armLocked(&c.write, start, start, exact)
}

// resumes reports whether an operation that began at start and timed out may go on: the
// deadline that passed was armed early, or the other direction moved meanwhile, and neither
// the asked deadline nor idle without movement has passed. It then arms the exact deadline.
func (c *progressConn) resumes(err error, d *direction, start int64) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	now := clock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.due(d, start) <= now {
		return false
	}
	return c.armLocked(d, start, now, true) == nil
}

func (c *progressConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		if len(c.pending) == 0 {
			c.pending = nil
		}
		return n, nil
	}
	start := clock()
	for {
		if err := c.armRead(start); err != nil {
			return 0, err
		}
		n, err := c.Conn.Read(p)
		if n > 0 {
			c.moved()
			return n, err
		}
		if err != nil && c.resumes(err, &c.read, start) {
			continue
		}
		return n, err
	}
}

func (c *progressConn) Write(p []byte) (int, error) {
	var written int
	err := c.writeMoving(func() (int, error) {
		n, err := c.Conn.Write(p[written:])
		written += n
		return n, err
	})
	return written, err
}

// writeBuffers writes bufs as Write does, in one vectored write where the connection can.
func (c *progressConn) writeBuffers(bufs *net.Buffers) (int64, error) {
	var written int64
	err := c.writeMoving(func() (int, error) {
		n, err := bufs.WriteTo(c.Conn)
		written += n
		return int(n), err
	})
	return written, err
}

// writeMoving calls write, which carries on from where the last call stopped, under the write
// deadline until it succeeds or fails for good: a call that timed out after some bytes moved
// is tried again with the deadline moved on.
func (c *progressConn) writeMoving(write func() (int, error)) error {
	start := clock()
	for {
		if err := c.armWrite(start, false); err != nil {
			return err
		}
		n, err := write()
		if n > 0 {
			c.moved()
		}
		if err != nil && c.resumes(err, &c.write, start) {
			continue
		}
		return err
	}
}

// progressChunk is how much ReadFrom sends between two checks of the write deadline: a
// response must move at least this much per idle period.
const progressChunk = 64 << 10

// ReadFrom sends a file with sendfile (sendFile). Otherwise it keeps the connection's own
// ReadFrom, in chunks after each of which the write deadline moves on. A chunk that times out
// ends it: what was read from r and not written could not be given back. A size limit around r
// (http.ServeContent's) is folded in, so that sendfile and the connection see the file itself.
func (c *progressConn) ReadFrom(r io.Reader) (int64, error) {
	remain := int64(-1) // -1: to the end of r
	lr, limited := r.(*io.LimitedReader)
	if limited {
		if lr.N <= 0 {
			return 0, nil // as io.Copy: nothing to send (a negative limit is not "to the end")
		}
		r, remain = lr.R, lr.N
	}
	n, err := c.readFrom(r, remain)
	if limited {
		lr.N -= n
	}
	return n, err
}

// readFrom sends remain bytes of r (-1: all of it).
func (c *progressConn) readFrom(r io.Reader, remain int64) (int64, error) {
	if f, ok := r.(*os.File); ok {
		if n, err, handled := c.sendFile(f, remain); handled {
			return n, err
		}
	}
	rf, ok := c.Conn.(io.ReaderFrom)
	if !ok {
		if remain >= 0 {
			r = io.LimitReader(r, remain)
		}
		return io.Copy(struct{ io.Writer }{c}, r)
	}
	var total int64
	for remain != 0 {
		chunk := int64(progressChunk)
		if remain > 0 {
			chunk = min(chunk, remain)
		}
		// Exact: what a chunk read from r and could not write is lost, so that a chunk cannot
		// be resumed after a deadline armed early.
		if err := c.armWrite(clock(), true); err != nil {
			return total, err
		}
		n, err := rf.ReadFrom(&io.LimitedReader{R: r, N: chunk})
		total += n
		if remain > 0 {
			remain -= n
		}
		if n > 0 {
			c.moved()
		}
		switch {
		case err != nil:
			return total, err
		case n < chunk:
			return total, nil // r has ended
		}
	}
	return total, nil
}

// CloseWrite lets net/http close its side gracefully, as it does on a TCP connection.
func (c *progressConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

func (c *progressConn) SetDeadline(t time.Time) error {
	now := clock()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.read.asked, c.write.asked = t, t
	return errors.Join(c.armLocked(&c.read, now, now, false),
		c.armLocked(&c.write, now, now, false))
}

func (c *progressConn) SetReadDeadline(t time.Time) error {
	now := clock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.headDue.IsZero() {
		if t.IsZero() || t.After(c.headDue) {
			t = c.headDue
		}
		c.headDue = time.Time{}
	}
	c.read.asked = t
	return c.armLocked(&c.read, now, now, false)
}

func (c *progressConn) SetWriteDeadline(t time.Time) error {
	now := clock()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.write.asked = t
	return c.armLocked(&c.write, now, now, false)
}
