package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestSiteOf(t *testing.T) {
	tests := []struct {
		host, domain  string
		account, name string
		ok            bool
	}{
		{"alice-blog.example.com", "example.com", "alice", "blog", true},
		{"alice-blog.example.com:8080", "example.com", "alice", "blog", true},
		{"Alice-Blog.Example.COM.", "example.com", "alice", "blog", true},
		{"alice-my-blog.example.com", "example.com", "alice", "my-blog", true},
		{"alice-blog.localhost", "localhost", "alice", "blog", true},
		{"example.com", "example.com", "", "", false},
		{"alice.example.com", "example.com", "alice", "alice", true},
		{"alice.example.com:8080", "example.com", "alice", "alice", true},
		{"admin.example.com", "example.com", "", "", false},
		{"alice-.example.com", "example.com", "", "", false},
		{"-blog.example.com", "example.com", "", "", false},
		{"admin-blog.example.com", "example.com", "", "", false}, // reserved account name
		{"a.alice-blog.example.com", "example.com", "", "", false},
		{"alice-blog.example.org", "example.com", "", "", false},
		{"alice-blogexample.com", "example.com", "", "", false},
		{"[::1]:8080", "example.com", "", "", false},
	}
	for _, tt := range tests {
		account, name, ok := siteOf(tt.host, tt.domain)
		if account != tt.account || name != tt.name || ok != tt.ok {
			t.Errorf("siteOf(%q, %q) = %q, %q, %v; want %q, %q, %v", tt.host, tt.domain, account, name, ok, tt.account, tt.name, tt.ok)
		}
	}
}

func TestSoftwareVersion(t *testing.T) {
	for in, want := range map[string]string{
		"":                 "",
		"v1.2.3":           "v1.2.3",
		"(devel)":          "devel",
		"v0.0.0-2026-abc":  "v0.0.0_2026_abc",
		"v1.0.0+dirty x\r": "v1.0.0+dirtyx",
	} {
		if got := softwareVersion(in); got != want {
			t.Errorf("softwareVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

// tcpPair returns the two ends of a loopback TCP connection, the server's wrapped in a
// progressConn with the given idle time.
func tcpPair(t *testing.T, idle time.Duration) (*progressConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return progressPair(t, ln, &net.Dialer{}, idle)
}

// progressPair dials ln with d and accepts the connection as a progressConn; ln is closed.
func progressPair(t *testing.T, ln net.Listener, d *net.Dialer, idle time.Duration) (*progressConn, net.Conn) {
	t.Helper()
	defer ln.Close()
	client, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := progressListener{Listener: ln, idle: idle, open: new(atomic.Int64)}.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return server.(*progressConn), client
}

// smallBufferPair is tcpPair with the server's send buffer and the client's receive buffer set
// to size before they connect, so that little is in flight between them.
func smallBufferPair(t *testing.T, idle time.Duration, size int) (*progressConn, net.Conn) {
	t.Helper()
	setBuf := func(opt int) func(string, string, syscall.RawConn) error {
		return func(_, _ string, rc syscall.RawConn) error {
			var err error
			if cerr := rc.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, size) }); cerr != nil {
				return cerr
			}
			return err
		}
	}
	ln, err := (&net.ListenConfig{Control: setBuf(syscall.SO_SNDBUF)}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return progressPair(t, ln, &net.Dialer{Control: setBuf(syscall.SO_RCVBUF)}, idle)
}

// readSlowly reads c, at most size bytes every pause, until it ends; the channel gets all it read.
func readSlowly(c net.Conn, size int, pause time.Duration) <-chan []byte {
	got := make(chan []byte, 1)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, size)
		for {
			n, err := c.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
			time.Sleep(pause)
		}
		got <- b.Bytes()
	}()
	return got
}

// TestProgressConn: a read or write fails once it has waited the idle time with nothing moving
// either way, and not while the connection moves, however long it takes; deadlines set on the
// connection still apply.
func TestProgressConn(t *testing.T) {
	const idle = 300 * time.Millisecond
	big := make([]byte, 64<<20)

	t.Run("a write to a client that reads nothing fails", func(t *testing.T) {
		s, _ := tcpPair(t, idle)
		begin := time.Now()
		n, err := s.Write(big)
		if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(begin) > idle+2*time.Second {
			t.Fatalf("write of %d bytes to a client that reads nothing: %d written, %v after %v", len(big), n, err, time.Since(begin))
		}
	})

	t.Run("a write to a slow reader goes on", func(t *testing.T) {
		s, c := tcpPair(t, idle)
		go func() {
			buf := make([]byte, 256<<10)
			for {
				time.Sleep(idle / 10)
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		}()
		const size = 16 << 20
		begin := time.Now()
		if n, err := s.Write(big[:size]); err != nil || n != size {
			t.Fatalf("write to a slow reader: %d of %d bytes, %v after %v", n, size, err, time.Since(begin))
		}
		t.Logf("%d MiB to a client reading 256 KiB every %v: %v", size>>20, idle/10, time.Since(begin))
		if time.Since(begin) < idle {
			t.Errorf("the write took %v, less than the idle time %v: it tests nothing", time.Since(begin), idle)
		}
	})

	t.Run("a read waits while the response moves", func(t *testing.T) {
		// The property holds only while writes keep coming: on a loaded machine the writer can
		// be descheduled for longer than the idle time, which stops the response moving. Such
		// a try proves nothing either way and is made again.
		for try := 1; ; try++ {
			at, last, maxGap := readWhileWriting(t, idle)
			if maxGap > idle/2 && try < 5 {
				t.Logf("try %d: the writer stalled for %v; again", try, maxGap)
				continue
			}
			if at.Before(last) {
				t.Fatalf("the read ended %v before the writes stopped (longest pause between writes %v)", last.Sub(at), maxGap)
			}
			if d := at.Sub(last); d < idle/2 || d > idle+time.Second {
				t.Errorf("the read ended %v after the last write, want about %v", d, idle)
			}
			return
		}
	})

	t.Run("a file goes whole to a reader, and stops for a client that reads nothing", func(t *testing.T) {
		name := t.TempDir() + "/file"
		for i := range 251 {
			big[i] = byte(i)
		}
		for n := 251; n < len(big); n *= 2 {
			copy(big[n:], big[:n])
		}
		if err := os.WriteFile(name, big[:32<<20], 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		s, c := tcpPair(t, 5*time.Second) // room for a busy machine: this part is not about time
		got := make(chan []byte, 1)
		go func() {
			var b bytes.Buffer
			b.Grow(32 << 20)
			io.Copy(&b, c)
			got <- b.Bytes()
		}()
		const size = 20 << 20 // as http.ServeContent sends a range: a limit around the file
		if n, err := s.ReadFrom(&io.LimitedReader{R: f, N: size}); n != size || err != nil {
			t.Fatalf("ReadFrom: %d of %d bytes, %v", n, size, err)
		}
		s.Close()
		if b := <-got; !bytes.Equal(b, big[:size]) {
			t.Fatalf("the client got %d bytes, not the file's first %d", len(b), size)
		}

		f.Seek(0, io.SeekStart)
		s, _ = tcpPair(t, idle)
		begin := time.Now()
		if n, err := s.ReadFrom(f); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(begin) > idle+2*time.Second {
			t.Fatalf("ReadFrom to a client that reads nothing: %d bytes, %v after %v", n, err, time.Since(begin))
		}
	})

	t.Run("a file goes on to a reader slower than 64 KiB per idle time", func(t *testing.T) {
		// As nginx's send_timeout: what must move within the idle time is a byte, not a chunk.
		// (ReadFrom once sent a file in 64 KiB chunks that each had to finish within it.)
		// Socket buffers of 4 KiB, set before the connection, make the reader's pace the
		// response's: the few KiB they hold drain well within the idle time.
		const slowIdle = time.Second
		const size = 192 << 10
		f, data := readFromTestFile(t, size)
		s, c := smallBufferPair(t, slowIdle, 4<<10)
		got := readSlowly(c, 2<<10, 40*time.Millisecond) // 50 KiB per idle time, never still for long
		begin := time.Now()
		n, err := s.ReadFrom(&io.LimitedReader{R: f, N: size})
		if n != size || err != nil {
			t.Fatalf("ReadFrom to a slow reader: %d of %d bytes, %v after %v", n, size, err, time.Since(begin))
		}
		t.Logf("%d KiB to a client reading 2 KiB every 40 ms: %v", size>>10, time.Since(begin))
		s.Close()
		if b := <-got; !bytes.Equal(b, data) {
			t.Fatalf("the client got %d bytes, not the file's %d", len(b), size)
		}
	})

	t.Run("a deadline set on the connection ends a waiting read", func(t *testing.T) {
		s, _ := tcpPair(t, time.Hour)
		done := make(chan error, 1)
		go func() {
			_, err := s.Read(make([]byte, 1))
			done <- err
		}()
		time.Sleep(50 * time.Millisecond)
		s.SetReadDeadline(time.Unix(1, 0)) // as net/http aborts its background read
		select {
		case err := <-done:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("read: %v, want a timeout", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a deadline in the past did not end the read")
		}
	})
}

// TestHijackedConnectionsMayStandStill: a connection hijacked for an Upgrade (a WebSocket
// through a tunnel) is its new owner's, and may stay silent longer than the HTTP idle time.
func TestHijackedConnectionsMayStandStill(t *testing.T) {
	const idle = 200 * time.Millisecond
	g := &Gateway{o: Options{HTTPIdleTimeout: idle}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	got := make(chan string, 1)
	srv := g.newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			got <- "hijack: " + err.Error()
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n")
		buf.Flush()
		line, err := buf.ReadString('\n')
		if err != nil {
			got <- "read: " + err.Error()
			return
		}
		got <- line
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(progressListener{Listener: ln, idle: idle, open: new(atomic.Int64)})
	defer srv.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v, %v", resp, err)
	}
	time.Sleep(4 * idle) // silence both ways
	fmt.Fprintf(c, "still here\n")
	select {
	case line := <-got:
		if line != "still here\n" {
			t.Errorf("the hijacked connection's owner got %q after a silence, want the line", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the owner got nothing")
	}
}

// readWhileWriting writes a little every idle/10 for 3×idle to a client that reads everything,
// while a read on the server side waits for a byte that never comes. It returns when that read
// ended, when the last write was made, and the longest pause between two writes.
func readWhileWriting(t *testing.T, idle time.Duration) (readEnded, lastWrite time.Time, maxGap time.Duration) {
	t.Helper()
	s, c := tcpPair(t, idle)
	go io.Copy(io.Discard, c)
	read := make(chan time.Time, 1)
	go func() {
		s.Read(make([]byte, 1)) // as net/http's background read: the client sends nothing
		read <- time.Now()
	}()
	stop := time.Now().Add(3 * idle)
	for time.Now().Before(stop) {
		if _, err := s.Write([]byte("data")); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if !lastWrite.IsZero() && now.Sub(lastWrite) > maxGap {
			maxGap = now.Sub(lastWrite)
		}
		lastWrite = now
		time.Sleep(idle / 10)
	}
	select {
	case readEnded = <-read:
	case <-time.After(5 * time.Second):
		t.Fatal("the read still waits 5 s after the connection stopped moving")
	}
	s.Close()
	return readEnded, lastWrite, maxGap
}

// deadlineCounter counts the deadlines set on a connection.
type deadlineCounter struct {
	net.Conn
	sets atomic.Int64
}

func (c *deadlineCounter) SetReadDeadline(t time.Time) error {
	c.sets.Add(1)
	return c.Conn.SetReadDeadline(t)
}

func (c *deadlineCounter) SetWriteDeadline(t time.Time) error {
	c.sets.Add(1)
	return c.Conn.SetWriteDeadline(t)
}

// TestProgressConnArmsLazily: reads and writes on a moving connection do not set a deadline
// each, and a deadline left armed from before an operation, which passes before the operation
// has waited idle, does not end it: it goes on until it has waited idle itself.
func TestProgressConnArmsLazily(t *testing.T) {
	t.Run("a moving connection sets few deadlines", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		raw, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		counter := &deadlineCounter{Conn: raw}
		s := newProgressConn(counter, time.Minute, nil)
		defer s.Close()
		buf := make([]byte, 64)
		const rounds = 200
		for i := range rounds {
			if _, err := client.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(s, buf[:4]); err != nil {
				t.Fatalf("round %d: read: %v", i, err)
			}
			if _, err := s.Write([]byte("pong")); err != nil {
				t.Fatalf("round %d: write: %v", i, err)
			}
			if _, err := io.ReadFull(client, buf[:4]); err != nil {
				t.Fatal(err)
			}
		}
		if n := counter.sets.Load(); n > 4 {
			t.Errorf("%d reads and writes set %d deadlines, want one per direction", 2*rounds, n)
		}
	})

	t.Run("an early deadline does not end a read that has not waited idle", func(t *testing.T) {
		const idle = time.Second
		for try := 1; ; try++ {
			s, c := tcpPair(t, idle)
			s.SetReadDeadline(time.Time{}) // arms idle from now, as net/http does before a request's body
			time.Sleep(idle / 2)
			begin := time.Now()
			go func() {
				time.Sleep(time.Until(begin.Add(idle * 6 / 10)))
				c.Write([]byte("x"))
			}()
			// The deadline armed above passes about idle/2 into this read.
			n, err := s.Read(make([]byte, 1))
			waited := time.Since(begin)
			if err == nil && n == 1 {
				return
			}
			if waited < idle {
				t.Fatalf("the read ended after %v with %v, before it had waited idle (%v)", waited, err, idle)
			}
			if try == 5 {
				t.Fatalf("the client's byte never came within idle in %d tries: %v", try, err)
			}
			t.Logf("try %d: the byte came late (%v); again", try, waited)
		}
	})
}
