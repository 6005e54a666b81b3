package gateway

import (
	"errors"
	"io"
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
type progressConn struct {
	net.Conn
	idle time.Duration
	last atomic.Int64 // UnixNano of the last byte read or written

	mu      sync.Mutex // orders the deadlines set on Conn
	readDL  time.Time  // the read deadline net/http asked for; zero: none
	writeDL time.Time  // the write deadline net/http asked for; zero: none

	closeOnce sync.Once
	release   func() // gives the listener's slot back; nil: none
}

func newProgressConn(c net.Conn, idle time.Duration, release func()) *progressConn {
	p := &progressConn{Conn: c, idle: idle, release: release}
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

func (c *progressConn) moved() { c.last.Store(time.Now().UnixNano()) }

func (c *progressConn) lastMoved() time.Time { return time.Unix(0, c.last.Load()) }

// deadline is the earlier of asked (zero: none) and idle from now.
func (c *progressConn) deadline(asked time.Time) time.Time {
	d := time.Now().Add(c.idle)
	if !asked.IsZero() && asked.Before(d) {
		return asked
	}
	return d
}

// armRead sets the read deadline on the connection. It holds mu, so that a deadline net/http
// sets meanwhile (to abort a read, say) is not overwritten by an older one.
func (c *progressConn) armRead() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetReadDeadline(c.deadline(c.readDL))
}

func (c *progressConn) armWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetWriteDeadline(c.deadline(c.writeDL))
}

// stillMoving reports whether a timeout of a read or write is only the idle deadline passing
// while the other direction moved, so that the operation may go on.
func (c *progressConn) stillMoving(err error, asked *time.Time) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	c.mu.Lock()
	dl := *asked
	c.mu.Unlock()
	now := time.Now()
	return (dl.IsZero() || now.Before(dl)) && now.Sub(c.lastMoved()) < c.idle
}

func (c *progressConn) Read(p []byte) (int, error) {
	for {
		if err := c.armRead(); err != nil {
			return 0, err
		}
		n, err := c.Conn.Read(p)
		if n > 0 {
			c.moved()
			return n, err
		}
		if err != nil && c.stillMoving(err, &c.readDL) {
			continue
		}
		return n, err
	}
}

func (c *progressConn) Write(p []byte) (int, error) {
	var written int
	for {
		if err := c.armWrite(); err != nil {
			return written, err
		}
		n, err := c.Conn.Write(p[written:])
		written += n
		if n > 0 {
			c.moved()
		}
		if err != nil && c.stillMoving(err, &c.writeDL) {
			continue
		}
		return written, err
	}
}

// progressChunk is how much ReadFrom sends between two checks of the write deadline: a
// response must move at least this much per idle period.
const progressChunk = 64 << 10

// ReadFrom keeps the connection's own ReadFrom (sendfile for a file), in chunks after each of
// which the write deadline moves on. A chunk that times out ends it: what was read from r and
// not written could not be given back.
func (c *progressConn) ReadFrom(r io.Reader) (int64, error) {
	rf, ok := c.Conn.(io.ReaderFrom)
	if !ok {
		return io.Copy(struct{ io.Writer }{c}, r)
	}
	// A size limit around r (http.ServeContent's) is folded into the chunks, so that the
	// connection still sees the file itself.
	remain := int64(-1)
	if lr, ok := r.(*io.LimitedReader); ok {
		r, remain = lr.R, lr.N
	}
	var total int64
	for remain != 0 {
		chunk := int64(progressChunk)
		if remain > 0 {
			chunk = min(chunk, remain)
		}
		if err := c.armWrite(); err != nil {
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
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readDL, c.writeDL = t, t
	return errors.Join(c.Conn.SetReadDeadline(c.deadline(t)), c.Conn.SetWriteDeadline(c.deadline(t)))
}

func (c *progressConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readDL = t
	return c.Conn.SetReadDeadline(c.deadline(t))
}

func (c *progressConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writeDL = t
	return c.Conn.SetWriteDeadline(c.deadline(t))
}
