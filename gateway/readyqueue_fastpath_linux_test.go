package gateway

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

// okSite answers every GET of alice's sites with "ok", through StaticFile.
type okSite struct{}

func (okSite) Site(account, name string) (http.Handler, bool) {
	return http.NotFoundHandler(), account == "alice"
}

func (okSite) StaticFile(dst []byte, account, name, urlPath, acceptEncoding, ifNoneMatch string) ([]byte, []byte, bool, bool) {
	if account != "alice" {
		return dst, nil, false, false
	}
	return append(dst, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"...), []byte("ok"), true, true
}

// TestFastPathIdleWaitsInReadyQueue: a keep-alive connection the fast path answered waits for
// its next request in the readyQueue, is answered when it comes, and leaves the queue when
// the client closes it.
func TestFastPathIdleWaitsInReadyQueue(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fast := newFastHTTP(progressListener{Listener: raw, idle: time.Hour}, nil, "example.test", time.Minute, time.Hour, slog.New(slog.DiscardHandler))
	fast.sites = []fastSite{{site: okSite{}, static: okSite{}}}
	go fast.serve()
	t.Cleanup(func() {
		raw.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		fast.shutdown(ctx)
	})
	waiting := func(want int) {
		t.Helper()
		var q *readyQueue // serve starts it
		for deadline := time.Now().Add(5 * time.Second); q == nil; time.Sleep(time.Millisecond) {
			fast.mu.Lock()
			q = fast.ready
			fast.mu.Unlock()
			if q == nil && time.Now().After(deadline) {
				t.Fatal("the fast path has no readyQueue")
			}
		}
		waitForWaiters(t, q, want)
	}
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for i := range 3 {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: alice-docs.example.test\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		waiting(1)
	}
	c.Close()
	waiting(0)
}
