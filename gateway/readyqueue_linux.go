package gateway

import (
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The fast path's keep-alive connections wait for their next request in a readyQueue, so that
// the requests that arrive while the server is busy are answered in the order they arrived.
//
// A connection that waits in Read is woken by the Go runtime's network poller, which hands
// over each batch of ready connections newest first (it pushes them on a list as epoll reports
// them, oldest first, and runs the list from its head). On a saturated core, where a batch holds
// most of the connections, the request that arrived first is then answered last: the median
// wait falls and the slowest rises. With 64 connections fetching 64 KiB on one core, p99 was
// 3.1-7.4 ms against nginx's 2.2-3.3 ms, and a Go runtime patched to hand batches over oldest
// first was at nginx's 2.5-4.8 (BENCHMARKS.md). The queue keeps epoll's order: the waiting
// connections are registered in an epoll instance of their own (one-shot, re-armed for each
// wait), whose descriptor the runtime's poller watches; one goroutine takes the ready ones
// from it and wakes them oldest first.
//
// The queue only decides when a connection reads: the read itself, its deadline and its errors
// are the connection's as before. A wait ends when epoll reports the connection readable (data,
// end of stream or error), at the idle deadline, at shutdown, or at once when the queue cannot
// take the connection or has failed: the connection then reads as it would without the queue.

// readyQueue wakes the connections waiting in it in the order their bytes arrived.
type readyQueue struct {
	ep     *os.File        // the epoll instance, watched by the runtime's poller
	rc     syscall.RawConn // ep's: its descriptor is used inside Control, never after the close
	mu     sync.Mutex
	wait   map[int32]*readyWait // by descriptor: the connection waiting on it
	failed chan struct{}        // closed when the queue stops: every wait ends
	once   sync.Once
	done   chan struct{} // closed when the dispatching goroutine has returned
}

// readyBatch is how many ready connections one epoll_wait takes.
const readyBatch = 128

// newReadyQueue starts a queue, or returns nil when the system has none to give (the fast
// path then waits in Read).
func newReadyQueue() *readyQueue {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil
	}
	ep := os.NewFile(uintptr(epfd), "readyqueue") // non-blocking: the runtime's poller watches it
	rc, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return nil
	}
	q := &readyQueue{ep: ep, rc: rc, wait: map[int32]*readyWait{}, failed: make(chan struct{}), done: make(chan struct{})}
	go q.dispatch()
	return q
}

// dispatch wakes the waiting connections epoll reports ready, oldest first, until the queue
// is closed or fails.
func (q *readyQueue) dispatch() {
	defer close(q.done)
	defer q.stop()
	events := make([]unix.EpollEvent, readyBatch)
	var woken []*readyWait
	for {
		var werr error
		err := q.rc.Read(func(fd uintptr) bool {
			// Every connection ready now, in epoll's order: a full batch may have left more,
			// which are taken before any is woken, or the oldest of the first batch would run
			// after the first batch's others (see below). Each epoll_wait must be followed by
			// another until one finds nothing more: the runtime's poller reports the descriptor
			// on each new event only, not while events wait. The loop ends: each connection is
			// reported once (one-shot) until it is woken and waits again.
			for {
				n, err := unix.EpollWait(int(fd), events, 0)
				if err == unix.EINTR {
					continue
				}
				if err != nil {
					werr = err
					return true
				}
				q.mu.Lock()
				for _, ev := range events[:n] {
					if w := q.wait[ev.Fd]; w != nil {
						woken = append(woken, w)
					}
				}
				q.mu.Unlock()
				if n < len(events) {
					return len(woken) > 0
				}
			}
		})
		if err != nil || werr != nil {
			return // closed, or epoll failed: stop, so that every wait ends
		}
		// The runtime runs the goroutine woken last first (it takes the place of the one woken
		// before, which joins the end of the run queue): the oldest is woken last so that the
		// rest follow it in order. Were that to change, one would be out of turn.
		for i := range woken {
			select {
			case woken[(i+1)%len(woken)].ready <- struct{}{}:
			default: // already told
			}
		}
		clear(woken)
		woken = woken[:0]
	}
}

// ctl is epoll_ctl on the queue's instance, an error once the queue is closed (its descriptor
// number may then be another file's).
func (q *readyQueue) ctl(op, fd int, ev *unix.EpollEvent) error {
	var err error
	if cerr := q.rc.Control(func(epfd uintptr) { err = unix.EpollCtl(int(epfd), op, fd, ev) }); cerr != nil {
		return cerr
	}
	return err
}

// stop ends every wait, now and to come.
func (q *readyQueue) stop() { q.once.Do(func() { close(q.failed) }) }

// close stops the queue and waits for its goroutine.
func (q *readyQueue) close() {
	q.stop()
	q.ep.Close() // ends dispatch's Read
	<-q.done
}

// readyWait is one connection's place in a readyQueue.
type readyWait struct {
	q      *readyQueue
	rc     syscall.RawConn
	fd     int32 // the connection's descriptor while it is registered; -1: not registered
	ready  chan struct{}
	timer  *time.Timer
	broken bool // the connection cannot wait here: waits end at once
}

// waiter returns c's place in the queue, or nil when c has no descriptor to poll (q nil, or
// not a socket).
func (q *readyQueue) waiter(c net.Conn) *readyWait {
	if q == nil {
		return nil
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return &readyWait{q: q, rc: rc, fd: -1, ready: make(chan struct{}, 1)}
}

// wait returns when the connection is readable, at until, when stop is closed, or when the
// queue cannot wait for it. Nothing is read.
func (w *readyWait) wait(until time.Time, stop <-chan struct{}) {
	if w == nil || w.broken {
		return
	}
	select {
	case <-w.ready: // a wake-up left from a wait that ended otherwise
	default:
	}
	if !w.arm() {
		w.broken = true
		return
	}
	d := time.Until(until)
	if d <= 0 {
		return
	}
	if w.timer == nil {
		w.timer = time.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	select {
	case <-w.ready:
	case <-w.timer.C:
	case <-stop:
	case <-w.q.failed:
	}
	w.timer.Stop()
}

// arm registers the connection for one wake-up: the first time with EPOLL_CTL_ADD, then by
// re-arming its one-shot registration. A connection already readable is reported at once.
// The descriptor is used inside Control, so it cannot be closed and reused meanwhile.
func (w *readyWait) arm() bool {
	ok := false
	err := w.rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(fd)}
		op := unix.EPOLL_CTL_MOD
		if w.fd < 0 {
			op = unix.EPOLL_CTL_ADD
			w.q.mu.Lock()
			w.q.wait[int32(fd)] = w
			w.q.mu.Unlock()
			w.fd = int32(fd)
		}
		ok = w.q.ctl(op, int(fd), &ev) == nil
	})
	return err == nil && ok
}

// release takes the connection out of the queue; call it before the connection is closed or
// handed on. (After a close, the kernel has dropped the registration with the descriptor.)
func (w *readyWait) release() {
	if w == nil || w.fd < 0 {
		return
	}
	w.rc.Control(func(fd uintptr) {
		w.q.ctl(unix.EPOLL_CTL_DEL, int(fd), nil)
	})
	w.q.mu.Lock()
	if w.q.wait[w.fd] == w {
		delete(w.q.wait, w.fd)
	}
	w.q.mu.Unlock()
	w.fd = -1
	if w.timer != nil {
		w.timer.Stop()
	}
}
