package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startFast serves ln's connections through a fast path with the given header timeout, and
// net/http with a header timeout of an hour behind it; it returns the address.
func startFast(t *testing.T, headerTimeout time.Duration) string {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fast := newFastHTTP(progressListener{Listener: raw, idle: time.Hour}, nil, "example.test", headerTimeout, time.Hour, slog.New(slog.DiscardHandler))
	srv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Hour, IdleTimeout: time.Hour}
	go fast.serve()
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(fast.handoff)
	}()
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		fast.shutdown(ctx)
		<-served
	})
	return raw.Addr().String()
}

// TestHandOffKeepsHeadDeadline: a request head the fast path hands to net/http before it is
// complete (declined by a line, or longer than the fast path reads) must still arrive within
// the header timeout from its start; net/http's own header timeout began again at the hand-off,
// so that a slow client had twice the time, or more with a longer net/http timeout.
func TestHandOffKeepsHeadDeadline(t *testing.T) {
	addr := startFast(t, 200*time.Millisecond)
	for _, head := range []string{
		"GET / HTTP/1.1\r\nRange: bytes=0-1\r\n",
		"GET / HTTP/1.1\r\nX: " + strings.Repeat("x", fastHeadMax) + "\r\n",
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, head)
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		if n, err := conn.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("%.20q...: a head incomplete past the header timeout: read %d, %v; want the connection closed", head, n, err)
		}
	}
}
