package tuns

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// idleConnTimeout is how long a pooled keep-alive connection to a tunnel's local server (a
// forwarded-tcpip channel) is kept unused. Up to maxOpenChannels are kept: opening a channel
// costs a round trip to the client and a connect on the user's machine.
const idleConnTimeout = 90 * time.Second

// maxResponseHeader bounds the header of a local server's response, which the server reads
// whole: Go's default, 10 MiB, held on each of a connection's maxOpenChannels channels, would
// let one tunnel owner make the server hold gigabytes. nginx refuses past 4-8 KiB by default.
const maxResponseHeader = 64 << 10

// originKey carries the visitor's address to the transport's dialer; recorderKey the
// request's recorder to ModifyResponse.
type (
	originKey   struct{}
	recorderKey struct{}
)

// startHTTP makes the tunnel's reverse proxy: each connection to the local server is a
// forwarded-tcpip channel on the owner's connection, pooled and reused as any keep-alive one.
func (t *Tunnel) startHTTP() {
	t.transport = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			origin, _ := ctx.Value(originKey{}).(string)
			return t.dial(ctx, origin, true)
		},
		MaxIdleConnsPerHost: maxOpenChannels,
		MaxConnsPerHost:     maxOpenChannels,
		IdleConnTimeout:     idleConnTimeout,
		DisableCompression:  true,
		// A response header past it fails the request: the visitor gets a 502 that says so.
		MaxResponseHeaderBytes: maxResponseHeader,
		ForceAttemptHTTP2:      false,
	}
	scheme := t.owner.svc.o.Public.HTTP.Scheme
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = t.Host()
			pr.SetXForwarded()
			pr.Out.Header.Set("X-Forwarded-Proto", scheme)
			if h := t.owner.options().hostHeader; h != "" {
				pr.Out.Host = h
			}
		},
		Transport:  t.transport,
		BufferPool: copyBuffers,
		// Streamed responses (no Content-Length, or text/event-stream) are flushed at once by
		// ReverseProxy itself; others go out as the server's buffer fills, and at their end.
		FlushInterval: 0,
		ErrorHandler:  t.proxyError,
		ErrorLog:      log.New(discard{}, "", 0),
		ModifyResponse: func(resp *http.Response) error {
			// An upgrade's 101 goes out on the hijacked connection, past the recorder.
			if rec, ok := resp.Request.Context().Value(recorderKey{}).(*recorder); ok && resp.StatusCode == http.StatusSwitchingProtocols {
				rec.status = resp.StatusCode
			}
			return nil
		},
	}
	t.proxy = rp
}

// copyBuffers are the proxies' copy buffers, shared: without a pool each response allocated
// its own 32 KiB.
var copyBuffers = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte  { return *p.pool.Get().(*[]byte) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// ServeHTTP proxies one visitor's request through the tunnel and logs it on the owner's session.
func (t *Tunnel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	ctx := context.WithValue(r.Context(), originKey{}, r.RemoteAddr)
	r = r.WithContext(context.WithValue(ctx, recorderKey{}, rec))
	t.proxy.ServeHTTP(rec, r)
	t.requests.Add(1)
	if !t.owner.logging() {
		return
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	t.owner.logLine(fmt.Sprintf("%s %s %s %d %s %d", start.Format("15:04:05"), printable(r.Method),
		printable(r.URL.RequestURI()), status, time.Since(start).Round(time.Millisecond), rec.bytes))
}

// proxyError answers a visitor when the request could not reach the local server.
func (t *Tunnel) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the visitor left
	}
	if errors.Is(err, errBusy) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "503 Service Unavailable\n\nThe tunnel %s has as many connections open as it may; try again.\n", t.Host())
		return
	}
	var oe *gossh.OpenChannelError
	msg := "the tunnel's client did not pass the request on"
	switch {
	case errors.As(err, &oe) && oe.Reason == gossh.ConnectionFailed:
		msg = "the local server refused the connection: is it running on the tunnel owner's machine?"
	case errors.As(err, &oe):
		msg = "the tunnel's client refused the connection: " + printable(oe.Message)
	case errors.Is(err, errTunnelEnded):
		msg = "the tunnel has ended"
	case strings.Contains(err.Error(), "response headers exceeded"):
		msg = fmt.Sprintf("the local server's response header is larger than %d KiB", maxResponseHeader>>10)
	case strings.Contains(err.Error(), "malformed HTTP"):
		msg = "the local server did not answer with HTTP"
	case errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "EOF"):
		msg = "the local server closed the connection without an answer"
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadGateway)
	fmt.Fprintf(w, "502 Bad Gateway\n\nThe tunnel %s is connected, but %s\n", t.Host(), msg)
}

// recorder notes a response's status and body bytes, and lets the proxy reach the connection
// underneath (flushes, and the hijack of an Upgrade).
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Site returns the handler of the account's HTTP tunnel called name (services.SiteServer).
func (s *Service) Site(account, name string) (http.Handler, bool) {
	t, ok := s.reg.Lookup(account, name)
	if !ok || t.Kind != KindHTTP {
		return nil, false
	}
	return t, true
}
