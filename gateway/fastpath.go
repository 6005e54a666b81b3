package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-sh/portico/services"
)

// The public HTTP listener's fast path. Each accepted connection is read first by a small
// HTTP/1.1 request-head parser (parseHead): a plain GET or HEAD of a site file, or one that
// revalidates it with If-None-Match, that its services.StaticSiteServer has ready in memory
// is answered here (200 or 304), in one write. Anything else hands the connection to
// net/http for good, with the bytes read so far replayed: net/http then reads the same bytes
// it would have read itself. The fast path costs a fraction of
// net/http's per-request work (its request and header maps, its background reads, its
// response writer), which is most of the CPU time of a small file.
//
// It keeps net/http's limits: a request head must arrive within the header timeout (also
// one handed to net/http half read: net/http's header deadline is no later than the fast
// path's), a connection may wait the idle timeout for its next request, and a head is at most
// fastHeadMax bytes here (a longer one goes to net/http, whose limit is larger).

// fastHeadMax bounds what the fast path reads of a connection before a request is complete.
const fastHeadMax = 4 << 10

// fastCopyMax: a body up to this size is copied behind the headers for one write; a larger one
// is written with them in one vectored write. The buffer for it is kept between requests.
const fastCopyMax = 2 << 10

type fastHTTP struct {
	sites         []fastSite
	domain        string
	headerTimeout time.Duration
	idleTimeout   time.Duration
	ln            net.Listener // hands out *progressConn
	handoff       *handoffListener
	log           *slog.Logger

	mu       sync.Mutex
	conns    map[*fastConn]struct{}
	ready    *readyQueue // where idle connections wait for their next request; nil: in Read. Started by serve, under mu
	closing  atomic.Bool
	stopping chan struct{} // closed by shutdown: idle connections stop waiting in ready
	wg       sync.WaitGroup
}

// fastSite is a site server, with its static answers when it has them.
type fastSite struct {
	site   services.SiteServer
	static services.StaticSiteServer // nil: none
}

func newFastHTTP(ln net.Listener, sites []services.SiteServer, domain string, headerTimeout, idleTimeout time.Duration, log *slog.Logger) *fastHTTP {
	s := &fastHTTP{domain: domain, headerTimeout: headerTimeout, idleTimeout: idleTimeout, ln: ln,
		handoff: newHandoffListener(ln), log: log, conns: map[*fastConn]struct{}{},
		stopping: make(chan struct{})}
	for _, site := range sites {
		st, _ := site.(services.StaticSiteServer)
		s.sites = append(s.sites, fastSite{site: site, static: st})
	}
	return s
}

// fastConn is a connection the fast path owns.
type fastConn struct {
	pc    *progressConn
	wait  *readyWait   // its place in the server's readyQueue; nil: none
	state atomic.Int32 // connReading, connIdle, connBusy or connClosed
	out   []byte       // the response being written
	vec   net.Buffers
}

const (
	connReading = iota // reading a request, its first or one of which bytes have arrived
	connIdle           // waiting for the next request, none of it read: shutdown may close it
	connBusy           // answering one, or handing the connection over
	connClosed         // closed by shutdown
)

// serve accepts connections until the listener fails or is closed, then makes the handoff
// listener fail the same way (http.Server.Serve returns).
func (s *fastHTTP) serve() {
	// The queue is started here, not with the server: a server that never serves (its
	// gateway's Listen failed after binding it) is never shut down, and would leave the
	// queue's descriptor and goroutine behind. A shutdown that came first starts none.
	s.mu.Lock()
	if !s.closing.Load() {
		s.ready = newReadyQueue()
	}
	ready := s.ready
	s.mu.Unlock()
	var delay time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			var te interface{ Temporary() bool }
			if !s.handoff.closed() && errors.As(err, &te) && te.Temporary() {
				// As net/http: out of file descriptors, say; wait and try again.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			s.handoff.fail(err)
			return
		}
		delay = 0
		pc, ok := c.(*progressConn)
		if !ok {
			s.handoff.give(c)
			continue
		}
		fc := &fastConn{pc: pc, wait: ready.waiter(pc.Conn)}
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			pc.Close()
			continue
		}
		s.conns[fc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(fc)
	}
}

// shutdown closes the connections waiting for their next request, lets those reading or
// answering one finish it (they close after it, as net/http's), and waits for them until ctx
// is done; then it closes the rest. A new connection is net/http's StateNew, which its
// Shutdown leaves to read its first request; the header timeout bounds how long.
func (s *fastHTTP) shutdown(ctx context.Context) {
	s.mu.Lock()
	if !s.closing.Swap(true) {
		close(s.stopping)
	}
	for fc := range s.conns {
		if fc.state.CompareAndSwap(connIdle, connClosed) {
			fc.pc.Close()
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for fc := range s.conns {
			fc.state.Store(connClosed)
			fc.pc.Close()
		}
		s.mu.Unlock()
		<-done
	}
	s.mu.Lock()
	ready := s.ready
	s.mu.Unlock()
	if ready != nil {
		ready.close()
	}
}

func (s *fastHTTP) forget(fc *fastConn) {
	s.mu.Lock()
	delete(s.conns, fc)
	s.mu.Unlock()
}

// serveConn answers the requests of a connection until one is declined (the connection then
// goes to net/http), the connection ends or fails, or the server shuts down. A panic (a site
// server's bug) closes the connection, as net/http does with a handler's, and is logged.
func (s *fastHTTP) serveConn(fc *fastConn) {
	defer s.wg.Done()
	pc := fc.pc
	defer fc.wait.release()
	defer func() {
		if r := recover(); r != nil {
			// Logged before the close, so whoever sees the connection end finds the entry.
			s.log.Error("http fast path panicked", "remote", pc.RemoteAddr().String(), "panic", fmt.Sprint(r),
				"stack", string(debug.Stack()))
			s.forget(fc)
			pc.Close()
		}
	}()
	buf := make([]byte, fastHeadMax)
	n, start := 0, 0
	// As net/http: the first request's head must arrive within the header timeout of the
	// connection's start; a later one may wait the idle timeout for its first byte, and then
	// has the header timeout.
	headDue := time.Now().Add(s.headerTimeout) // when the head being read is due
	pc.SetReadDeadline(headDue)
	waiting := false // the idle deadline is set: no byte of the next request is read
	var idleDue time.Time
	var head headParser // parses the head at buf[start:], as it arrives
	for {
		req, used, res := head.parse(buf[start:n])
		switch res {
		case headDecline:
			s.handOff(fc, buf[start:n], headDue)
			return
		case headOK:
			if !fc.state.CompareAndSwap(connReading, connBusy) {
				s.forget(fc)
				return // closed by shutdown
			}
			switch s.answer(fc, req) {
			case answerDeclined:
				s.handOff(fc, buf[start:n], headDue)
				return
			case answerFailed:
				s.forget(fc)
				pc.Close()
				return
			}
			start += used
			if s.closing.Load() {
				s.forget(fc)
				pc.Close()
				return
			}
			if start == n {
				// Idle until the next request's first byte: shutdown may close it now.
				fc.state.Store(connIdle)
				if s.closing.Load() {
					if fc.state.CompareAndSwap(connIdle, connClosed) {
						pc.Close()
					}
					s.forget(fc)
					return
				}
				start, n = 0, 0
				idleDue = time.Now().Add(s.idleTimeout)
				pc.SetReadDeadline(idleDue)
				waiting = true
			} else {
				fc.state.Store(connReading)
				headDue = time.Now().Add(s.headerTimeout)
				pc.SetReadDeadline(headDue)
				waiting = false
			}
			continue
		}
		// Incomplete: read more.
		if start > 0 {
			n = copy(buf, buf[start:n])
			start = 0
		}
		if n == len(buf) {
			s.handOff(fc, buf[:n], headDue) // a head too long for the fast path
			return
		}
		if waiting && n > 0 {
			pc.SetReadDeadline(headDue)
			waiting = false
		}
		if waiting && n == 0 {
			// Until the next request arrives, in turn with the other connections' (readyQueue).
			fc.wait.wait(idleDue, s.stopping)
		}
		m, err := pc.Read(buf[n:])
		if m > 0 && waiting && n == 0 {
			headDue = time.Now().Add(s.headerTimeout)
			if !fc.state.CompareAndSwap(connIdle, connReading) {
				s.forget(fc)
				pc.Close()
				return // closed by shutdown
			}
		}
		n += m
		if err != nil {
			var ne net.Error
			if n == 0 || (errors.As(err, &ne) && ne.Timeout()) || fc.state.Load() == connClosed {
				// As net/http: a connection that ends or times out before a request's
				// head is complete is closed without an answer.
				s.forget(fc)
				pc.Close()
				return
			}
			s.handOff(fc, buf[:n], headDue) // net/http answers the partial head as it would
			return
		}
	}
}

// handOff gives the connection to net/http, with pending to be read first: the start of a
// request whose head is due by headDue, as net/http's header timeout would have had it.
func (s *fastHTTP) handOff(fc *fastConn, pending []byte, headDue time.Time) {
	s.forget(fc)
	fc.wait.release()
	if fc.state.Swap(connBusy) == connClosed {
		fc.state.Store(connClosed)
		return
	}
	if len(pending) > 0 {
		fc.pc.pending = pending
		fc.pc.headDue = headDue
	}
	s.handoff.give(fc.pc)
}

type answer int

const (
	answerSent answer = iota
	answerDeclined
	answerFailed // the write failed
)

// answer writes the response to a plain request when a site server has it ready.
func (s *fastHTTP) answer(fc *fastConn, req fastRequest) answer {
	account, name, ok := siteOf(string(req.host), s.domain)
	if !ok {
		return answerDeclined
	}
	for _, site := range s.sites {
		if site.static == nil {
			// Asked in the router's order: a tunnel holding the name answers it.
			if _, ok := site.site.Site(account, name); ok {
				return answerDeclined
			}
			continue
		}
		out, body, found, ok := site.static.StaticFile(fc.out[:0], account, name, string(req.path),
			string(req.acceptEncoding), string(req.ifNoneMatch))
		if !found {
			continue
		}
		if !ok {
			return answerDeclined
		}
		if s.closing.Load() {
			out = append(out, "Connection: close\r\n"...)
		}
		out = append(out, dateLine(time.Now())...)
		if req.head {
			body = nil
		}
		var err error
		if len(body) <= fastCopyMax {
			out = append(out, body...)
			_, err = fc.pc.Write(out)
		} else {
			fc.vec = append(fc.vec[:0], out, body)
			_, err = fc.pc.writeBuffers(&fc.vec)
			fc.vec = fc.vec[:0]
		}
		if cap(out) <= 2*fastCopyMax {
			fc.out = out[:0] // bounded: no more is kept per connection
		}
		if err != nil {
			return answerFailed
		}
		return answerSent
	}
	return answerDeclined
}

// dateLine is the Date header of a response sent at now, with the blank line that ends the
// header; made once a second.
func dateLine(now time.Time) []byte {
	sec := now.Unix()
	if d := lastDate.Load(); d != nil && d.sec == sec {
		return d.line
	}
	d := &datedLine{sec: sec, line: []byte("Date: " + now.UTC().Format(http.TimeFormat) + "\r\n\r\n")}
	lastDate.Store(d)
	return d.line
}

type datedLine struct {
	sec  int64
	line []byte
}

var lastDate atomic.Pointer[datedLine]

// handoffListener is the listener net/http serves: the connections the fast path hands it.
type handoffListener struct {
	inner net.Listener
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	err   error // what Accept returns once done
}

func newHandoffListener(inner net.Listener) *handoffListener {
	return &handoffListener{inner: inner, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

// Close stops accepting: the listener it wraps too.
func (l *handoffListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.inner.Close()
	})
	return err
}

func (l *handoffListener) Addr() net.Addr { return l.inner.Addr() }

func (l *handoffListener) closed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// fail makes Accept return err.
func (l *handoffListener) fail(err error) {
	l.mu.Lock()
	if l.err == nil && !l.closed() {
		l.err = err
	}
	l.mu.Unlock()
	l.Close()
}

// give hands c to net/http, or closes it when the listener is closed.
func (l *handoffListener) give(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}
