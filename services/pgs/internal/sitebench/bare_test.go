package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startBareTest serves a site of a small and a large file with the bare Go server on a
// loopback port.
func startBareTest(t *testing.T) (addr string, small, large []byte) {
	t.Helper()
	site := t.TempDir()
	small = bytes.Repeat([]byte("s"), 1<<10)
	large = make([]byte, 300<<10+12345)
	for i := range large {
		large[i] = byte(i * 7)
	}
	for name, b := range map[string][]byte{"small.bin": small, "large.bin": large} {
		if err := os.WriteFile(filepath.Join(site, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := bareFiles(site)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go serveBare(ln, files)
	return ln.Addr().String(), small, large
}

// dialBare connects to the bare server at addr, with a deadline of d for the whole exchange;
// the connection is closed when the test ends.
func dialBare(t *testing.T, addr string, d time.Duration) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(d))
	return c
}

func get(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: alice-web.localhost\r\n\r\n"
}

// readBare reads one response and returns its status and body.
func readBare(t *testing.T, br *bufio.Reader) (int, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, body
}

// TestBareFraming: the bare Go server answers each request head once and in order however the
// heads arrive: pipelined in one write, a byte at a time (the blank line split across reads),
// a head ending exactly at its buffer's end, small and large files mixed; a head
// longer than its buffer ends the connection.
func TestBareFraming(t *testing.T) {
	addr, small, large := startBareTest(t)
	want := map[string][]byte{"/small.bin": small, "/large.bin": large}
	for _, tt := range []struct {
		name  string
		paths []string
		write func(c net.Conn, reqs string)
	}{
		{"pipelined", []string{"/small.bin", "/large.bin", "/nope", "/small.bin", "/large.bin"}, func(c net.Conn, reqs string) { io.WriteString(c, reqs) }},
		{"a byte at a time", []string{"/small.bin", "/large.bin", "/small.bin"}, func(c net.Conn, reqs string) {
			for i := range len(reqs) {
				io.WriteString(c, reqs[i:i+1])
				time.Sleep(100 * time.Microsecond)
			}
		}},
		{"split in the blank line", []string{"/small.bin", "/small.bin"}, func(c net.Conn, reqs string) {
			i := strings.Index(reqs, "\r\n\r\n") + 3
			io.WriteString(c, reqs[:i])
			time.Sleep(20 * time.Millisecond)
			io.WriteString(c, reqs[i:])
		}},
		{"many pipelined, more than a buffer", slicesRepeat([]string{"/small.bin", "/large.bin"}, 100), func(c net.Conn, reqs string) { go io.WriteString(c, reqs) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialBare(t, addr, 20*time.Second)
			var reqs strings.Builder
			for _, p := range tt.paths {
				reqs.WriteString(get(p))
			}
			tt.write(c, reqs.String())
			br := bufio.NewReader(c)
			for i, p := range tt.paths {
				status, body := readBare(t, br)
				if w, ok := want[p]; !ok && status != 404 || ok && (status != 200 || !bytes.Equal(body, w)) {
					t.Fatalf("response %d (%s): %d, %d bytes", i, p, status, len(body))
				}
			}
		})
	}

	t.Run("a head ending at the buffer's end", func(t *testing.T) {
		c := dialBare(t, addr, 10*time.Second)
		head := "GET /small.bin HTTP/1.1\r\nX: "
		head += strings.Repeat("x", bareHeadMax-len(head)-4) + "\r\n\r\n"
		io.WriteString(c, head+get("/large.bin"))
		br := bufio.NewReader(c)
		if status, body := readBare(t, br); status != 200 || !bytes.Equal(body, small) {
			t.Fatalf("%d, %d bytes", status, len(body))
		}
		if status, body := readBare(t, br); status != 200 || !bytes.Equal(body, large) {
			t.Fatalf("after it: %d, %d bytes", status, len(body))
		}
	})

	t.Run("a head longer than the buffer", func(t *testing.T) {
		c := dialBare(t, addr, 10*time.Second)
		io.WriteString(c, "GET /small.bin HTTP/1.1\r\nX: "+strings.Repeat("x", bareHeadMax)+"\r\n\r\n")
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("read %d bytes; want the connection closed", n)
		}
	})
}

func slicesRepeat(s []string, n int) []string {
	var out []string
	for range n {
		out = append(out, s...)
	}
	return out
}
