package gateway

import (
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tcpPairs returns n connected loopback pairs: the server's end and the client's.
func tcpPairs(t *testing.T, n int) (server, client []net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for range n {
		s, c := dialPair(t, ln)
		server, client = append(server, s), append(client, c)
	}
	return server, client
}

// dialPair connects to ln: the server's end and the client's, closed when the test ends.
func dialPair(t *testing.T, ln net.Listener) (server, client net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return s, c
}

// waitForWaiters returns once want connections are registered in q, failing after 5 s.
func waitForWaiters(t *testing.T, q *readyQueue, want int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		q.mu.Lock()
		n := len(q.wait)
		q.mu.Unlock()
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections in the readyQueue, want %d", n, want)
		}
	}
}

func startReadyQueue(t *testing.T) *readyQueue {
	t.Helper()
	q := newReadyQueue()
	if q == nil {
		t.Fatal("no readyQueue on Linux")
	}
	t.Cleanup(q.close)
	return q
}

// waitEnds reports how long wait took, failing when it took more than limit.
func waitEnds(t *testing.T, what string, limit time.Duration, wait func()) time.Duration {
	t.Helper()
	done := make(chan time.Duration, 1)
	start := time.Now()
	go func() {
		wait()
		done <- time.Since(start)
	}()
	select {
	case d := <-done:
		return d
	case <-time.After(limit):
		t.Fatalf("%s: the wait did not end within %v", what, limit)
		return 0
	}
}

// TestReadyWaitEnds: each way a wait ends, and that it reads nothing.
func TestReadyWaitEnds(t *testing.T) {
	q := startReadyQueue(t)
	tests := []struct {
		name string
		// act makes the wait end; until is its deadline from now
		act   func(client net.Conn, stop chan struct{})
		until time.Duration
	}{
		{"bytes arrive", func(c net.Conn, _ chan struct{}) { c.Write([]byte("GET / HTTP/1.1\r\n")) }, time.Minute},
		{"the client closes", func(c net.Conn, _ chan struct{}) { c.Close() }, time.Minute},
		{"the client half-closes", func(c net.Conn, _ chan struct{}) { c.(*net.TCPConn).CloseWrite() }, time.Minute},
		{"shutdown", func(_ net.Conn, stop chan struct{}) { close(stop) }, time.Minute},
		{"the idle deadline", func(net.Conn, chan struct{}) {}, 50 * time.Millisecond},
		{"a deadline already past", func(net.Conn, chan struct{}) {}, -time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, client := tcpPairs(t, 1)
			w := q.waiter(server[0])
			defer w.release()
			stop := make(chan struct{})
			go func() {
				time.Sleep(30 * time.Millisecond)
				tt.act(client[0], stop)
			}()
			d := waitEnds(t, tt.name, 10*time.Second, func() { w.wait(time.Now().Add(tt.until), stop) })
			if tt.until > 0 && tt.until < time.Minute && d < tt.until {
				t.Fatalf("ended after %v, before its deadline %v", d, tt.until)
			}
			if tt.name == "bytes arrive" {
				// Nothing was read: the bytes are the connection's.
				server[0].SetReadDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 64)
				m, err := server[0].Read(buf)
				if err != nil || string(buf[:m]) != "GET / HTTP/1.1\r\n" {
					t.Fatalf("read %q, %v after the wait", buf[:m], err)
				}
			}
		})
	}
}

// TestReadyWaitAgain: a connection waits once per request, and bytes that arrived before it
// waits end the wait at once.
func TestReadyWaitAgain(t *testing.T) {
	q := startReadyQueue(t)
	server, client := tcpPairs(t, 1)
	w := q.waiter(server[0])
	defer w.release()
	buf := make([]byte, 16)
	for i := range 50 {
		if i%2 == 0 {
			client[0].Write([]byte("x")) // before the wait
		} else {
			go func() { time.Sleep(time.Millisecond); client[0].Write([]byte("x")) }()
		}
		waitEnds(t, "request "+string(rune('0'+i%10)), 10*time.Second, func() { w.wait(time.Now().Add(time.Minute), nil) })
		if _, err := server[0].Read(buf); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReadyWaitReusedDescriptor: a connection closed without leaving the queue, whose
// descriptor a new connection then takes, neither wakes the new one's waits wrongly nor takes
// its place away when it leaves late.
func TestReadyWaitReusedDescriptor(t *testing.T) {
	q := startReadyQueue(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	oldServer, oldClient := dialPair(t, ln)
	old := q.waiter(oldServer)
	waitEnds(t, "old", 10*time.Second, func() {
		go func() { time.Sleep(10 * time.Millisecond); oldClient.Write([]byte("x")) }()
		old.wait(time.Now().Add(time.Minute), nil)
	})
	oldFd := old.fd
	oldServer.Close() // closed while still in the queue, as shutdown closes an idle connection
	oldClient.Close()

	newServer, newClient := dialPair(t, ln)
	w := q.waiter(newServer)
	defer w.release()
	if w.arm(); w.fd != oldFd {
		t.Logf("the new connection took descriptor %d, not %d: the reuse is not exercised", w.fd, oldFd)
	}
	old.release() // late: must leave the new connection registered
	go func() { time.Sleep(20 * time.Millisecond); newClient.Write([]byte("x")) }()
	d := waitEnds(t, "new", 10*time.Second, func() { w.wait(time.Now().Add(time.Minute), nil) })
	if d > 5*time.Second {
		t.Fatalf("the new connection waited %v", d)
	}
}

// TestReadyQueueClosed: once the queue is closed, waits end at once, and a queue's close
// ends its goroutine.
func TestReadyQueueClosed(t *testing.T) {
	q := newReadyQueue()
	server, _ := tcpPairs(t, 1)
	w := q.waiter(server[0])
	closed := make(chan struct{})
	go func() {
		time.Sleep(30 * time.Millisecond)
		q.close()
		close(closed)
	}()
	waitEnds(t, "closing the queue", 10*time.Second, func() { w.wait(time.Now().Add(time.Minute), nil) })
	waitEnds(t, "a wait after the close", time.Second, func() { w.wait(time.Now().Add(time.Minute), nil) })
	w.release()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("close did not return")
	}
	select {
	case <-q.done:
	default:
		t.Fatal("the queue's goroutine is still running after close returned")
	}
}

// TestReadyWaitNone: a connection without a descriptor (net.Pipe) has no place in the queue
// and its waits end at once.
func TestReadyWaitNone(t *testing.T) {
	q := startReadyQueue(t)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	w := q.waiter(a)
	if w != nil {
		t.Fatal("a pipe has a place in the queue")
	}
	waitEnds(t, "nil waiter", time.Second, func() { w.wait(time.Now().Add(time.Minute), nil) })
	w.release()
	var none *readyQueue
	if none.waiter(a) != nil {
		t.Fatal("a nil queue gave a place")
	}
}

// TestReadyQueueClosedTouchesNoDescriptor: a wait after the queue was closed must not use the
// queue's old descriptor number, which the next descriptor opened takes: here another epoll
// instance, in which the connection would be registered.
func TestReadyQueueClosedTouchesNoDescriptor(t *testing.T) {
	q := newReadyQueue()
	server, _ := tcpPairs(t, 1)
	w := q.waiter(server[0])
	var old int
	q.rc.Control(func(fd uintptr) { old = int(fd) })
	q.close()
	other, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(other)
	if other != old {
		t.Skipf("the new epoll instance took descriptor %d, not the queue's %d", other, old)
	}
	waitEnds(t, "a wait after the close", time.Second, func() { w.wait(time.Now().Add(time.Minute), nil) })
	w.release()
	waitEnds(t, "a wait after the release", time.Second, func() { w.wait(time.Now().Add(time.Minute), nil) })
	rc, err := server[0].(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) {
		if err := unix.EpollCtl(other, unix.EPOLL_CTL_DEL, int(fd), nil); err != unix.ENOENT {
			t.Errorf("the connection was registered in another epoll instance (EPOLL_CTL_DEL: %v)", err)
		}
	})
}
