package gateway_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/gateway"
	"github.com/portico-sh/portico/services"
)

// staticService serves the site alice-docs, from files, through its handler and through
// StaticFile, with the same headers; it counts which of them answered. StaticFile declines
// /declined. Both answer If-None-Match: "e" with a 304.
type staticService struct {
	testService
	files   map[string]string
	static  atomic.Int32 // answers by StaticFile
	handled atomic.Int32 // requests its handler saw
}

func (s *staticService) headerOf(body string) string {
	return "Content-Length: " + strconv.Itoa(len(body)) + "\r\nContent-Type: text/plain; charset=utf-8\r\nEtag: \"e\"\r\n"
}

func (s *staticService) Site(account, name string) (http.Handler, bool) {
	if account != "alice" || (name != "docs" && name != "blog") {
		return nil, false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.handled.Add(1)
		body, ok := s.files[r.URL.Path]
		if !ok || (r.Method != "GET" && r.Method != "HEAD") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Etag", `"e"`)
		if r.Header.Get("If-None-Match") == `"e"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if r.Method == "GET" {
			io.WriteString(w, body)
		}
	}), true
}

func (s *staticService) StaticFile(dst []byte, account, name, urlPath, acceptEncoding, ifNoneMatch string) ([]byte, []byte, bool, bool) {
	if account != "alice" || (name != "docs" && name != "blog") {
		return dst, nil, false, false
	}
	if urlPath == "/panic" {
		panic("a site server's bug")
	}
	body, ok := s.files[urlPath]
	if !ok || urlPath == "/declined" {
		return dst, nil, true, false
	}
	s.static.Add(1)
	if ifNoneMatch == `"e"` {
		return append(dst, "HTTP/1.1 304 Not Modified\r\nEtag: \"e\"\r\n"...), nil, true, true
	}
	return append(dst, "HTTP/1.1 200 OK\r\n"+s.headerOf(body)...), []byte(body), true, true
}

var _ services.StaticSiteServer = (*staticService)(nil)

// sitesTunnel holds the host name alice-blog, as an HTTP tunnel does.
type sitesTunnel struct{ testService }

func (s *sitesTunnel) Site(account, name string) (http.Handler, bool) {
	if account != "alice" || name != "blog" {
		return nil, false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "alice's tunnel") }), true
}

// startStatic starts a gateway whose router has a tunnel service (alice-blog) first, then a
// static site service (alice-docs and alice-blog).
func startStatic(t *testing.T, tweak ...func(*fixture, *gateway.Options)) (*fixture, *staticService) {
	t.Helper()
	st := &staticService{testService: testService{name: auth.PGS}, files: map[string]string{
		"/a.txt":    "a file\n",
		"/big.txt":  strings.Repeat("0123456789abcdef", 64<<10/16),
		"/declined": "declined\n",
	}}
	f := start(t, append([]func(*fixture, *gateway.Options){func(_ *fixture, o *gateway.Options) {
		router, err := services.NewRouter(&testService{name: auth.Admin}, &sitesTunnel{testService{name: auth.Tuns}}, st)
		if err != nil {
			t.Fatal(err)
		}
		o.Router = router
	}}, tweak...)...)
	return f, st
}

func dialHTTP(t *testing.T, f *fixture) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.httpURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	return conn, bufio.NewReader(conn)
}

type response struct {
	status int
	header http.Header
	body   string
	date   string
}

func readResponse(t *testing.T, br *bufio.Reader, method string) response {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	date := resp.Header.Get("Date")
	resp.Header.Del("Date")
	return response{resp.StatusCode, resp.Header, string(body), date}
}

// TestFastPathAnswersAsNetHTTP: plain GETs and HEADs of a static site's files are answered by
// the fast path (StaticFile, not the handler) with what net/http sends for the same request
// through the handler: the same status, headers (but Date) and body. The reference is the
// same request with an Authorization header, which the fast path leaves to net/http.
func TestFastPathAnswersAsNetHTTP(t *testing.T) {
	f, st := startStatic(t)
	const host = "alice-docs." + domain
	for _, tt := range []struct{ name, method, target, headers string }{
		{"get", "GET", "/a.txt", ""},
		{"head", "HEAD", "/a.txt", ""},
		{"query", "GET", "/a.txt?v=1&x=/y", ""},
		{"a body written with the headers", "GET", "/big.txt", ""},
		{"head of a big one", "HEAD", "/big.txt", ""},
		{"host in upper case with a port", "GET", "/a.txt", ""},
		{"odd header names and keep-alive", "GET", "/a.txt", "accept: */*\r\nconnection: keep-alive\r\nX-Y_Z: 1\r\n"},
		{"accept-encoding", "GET", "/a.txt", "Accept-Encoding: gzip, br\r\n"},
		{"if-none-match, matching", "GET", "/a.txt", "If-None-Match: \"e\"\r\n"},
		{"if-none-match, matching, head", "HEAD", "/a.txt", "if-none-match:\t\"e\" \r\n"},
		{"if-none-match, not matching", "GET", "/a.txt", "If-None-Match: \"x\"\r\nAccept-Encoding: gzip\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := "Host: " + host + "\r\n"
			if tt.name == "host in upper case with a port" {
				h = "host: ALICE-DOCS." + strings.ToUpper(domain) + ":8080\r\n"
			}
			conn, br := dialHTTP(t, f)
			static, handled := st.static.Load(), st.handled.Load()
			fmt.Fprintf(conn, "%s %s HTTP/1.1\r\n%s%s\r\n", tt.method, tt.target, h, tt.headers)
			fast := readResponse(t, br, tt.method)
			if _, err := http.ParseTime(fast.date); err != nil {
				t.Errorf("Date %q: %v", fast.date, err)
			}
			if st.static.Load() != static+1 || st.handled.Load() != handled {
				t.Fatalf("not answered by the fast path")
			}
			// The same connection, then, for net/http's answer.
			fmt.Fprintf(conn, "%s %s HTTP/1.1\r\n%s%sAuthorization: Basic eDp5\r\n\r\n", tt.method, tt.target, h, tt.headers)
			slow := readResponse(t, br, tt.method)
			if st.handled.Load() != handled+1 {
				t.Fatalf("the reference was not answered by net/http")
			}
			if fast.status != slow.status || fast.body != slow.body || fmt.Sprint(fast.header) != fmt.Sprint(slow.header) {
				t.Errorf("fast path:\n%d %v %d bytes\nnet/http:\n%d %v %d bytes", fast.status, fast.header, len(fast.body), slow.status, slow.header, len(slow.body))
			}
		})
	}
}

// revalidation is a request with its expected answer: a method, its extra header lines, and
// the status and body it gets.
type revalidation struct {
	method, headers string
	status          int
	body            string
}

// TestFastPathKeepsRevalidations: a browser revalidates with If-None-Match; the fast path
// answers the 304 and keeps the connection, so the requests after it are its own too. Before,
// If-None-Match handed the connection to net/http for good, and every later request went to
// the handler.
func TestFastPathKeepsRevalidations(t *testing.T) {
	f, st := startStatic(t)
	const host = "Host: alice-docs." + domain + "\r\n"
	conn, br := dialHTTP(t, f)
	for i, tt := range []revalidation{
		{"GET", "If-None-Match: \"e\"\r\n", 304, ""},
		{"GET", "", 200, "a file\n"},
		{"HEAD", "If-None-Match: \"e\"\r\n", 304, ""},
		{"GET", "If-None-Match: \"old\"\r\n", 200, "a file\n"},
		{"GET", "", 200, "a file\n"},
	} {
		fmt.Fprintf(conn, "%s /a.txt HTTP/1.1\r\n%s%s\r\n", tt.method, host, tt.headers)
		r := readResponse(t, br, tt.method)
		if r.status != tt.status || r.body != tt.body {
			t.Fatalf("request %d: %d %q, want %d %q", i, r.status, r.body, tt.status, tt.body)
		}
	}
	if s, h := st.static.Load(), st.handled.Load(); s != 5 || h != 0 {
		t.Errorf("fast path answered %d, handler %d; want 5 and 0", s, h)
	}
}

// TestFastPathPanic: a site server that panics answering the fast path takes down its
// connection, as a handler's panic does under net/http, not the whole server (before, the
// gateway process died, SSH sessions and all); the panic is logged.
func TestFastPathPanic(t *testing.T) {
	f, st := startStatic(t)
	conn, br := dialHTTP(t, f)
	io.WriteString(conn, "GET /panic HTTP/1.1\r\nHost: alice-docs."+domain+"\r\n\r\n")
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after a panic: read %d, %v; want the connection closed", n, err)
	}
	conn, br = dialHTTP(t, f)
	io.WriteString(conn, "GET /a.txt HTTP/1.1\r\nHost: alice-docs."+domain+"\r\n\r\n")
	if r := readResponse(t, br, "GET"); r.status != 200 || st.static.Load() != 1 {
		t.Fatalf("after a panic: %d, fast path answers %d", r.status, st.static.Load())
	}
	if !strings.Contains(f.logs.String(), "a site server's bug") {
		t.Errorf("the panic is not logged:\n%s", f.logs.String())
	}
}

// TestFastPathDeclines: requests the fast path does not answer get net/http's answer, on the
// connection they came on, from the bytes the fast path had read: those it cannot parse or
// that are not plain, another host's, a tunnel's host name (the tunnel comes first in the
// router), and what the site server declines.
func TestFastPathDeclines(t *testing.T) {
	f, st := startStatic(t)
	const host = "Host: alice-docs." + domain + "\r\n"
	for _, tt := range []struct {
		name, req string
		status    int
		body      string
	}{
		{"healthz", "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n", 200, "ok\n"},
		{"tunnel first", "GET /a.txt HTTP/1.1\r\nHost: alice-blog." + domain + "\r\n\r\n", 200, "alice's tunnel"},
		{"declined by the site", "GET /declined HTTP/1.1\r\n" + host + "\r\n", 200, "declined\n"},
		{"no such file", "GET /nope HTTP/1.1\r\n" + host + "\r\n", 404, "404 page not found\n"},
		{"percent-encoded", "GET /a%2Etxt HTTP/1.1\r\n" + host + "\r\n", 200, "a file\n"},
		{"HTTP/1.0", "GET /a.txt HTTP/1.0\r\n" + host + "\r\n", 200, "a file\n"},
		{"absolute form", "GET http://alice-docs." + domain + "/a.txt HTTP/1.1\r\n" + host + "\r\n", 200, "a file\n"},
		{"bare LF", "GET /a.txt HTTP/1.1\n" + host + "\n", 200, "a file\n"},
		{"folded header", "GET /a.txt HTTP/1.1\r\n" + host + "X: a\r\n b\r\n\r\n", 200, "a file\n"},
		{"two hosts", "GET /a.txt HTTP/1.1\r\n" + host + host + "\r\n", 400, ""},
		{"space before a colon", "GET /a.txt HTTP/1.1\r\nHost : x\r\n\r\n", 400, ""},
		{"post with a body", "POST /a.txt HTTP/1.1\r\n" + host + "Content-Length: 3\r\n\r\nabc", 404, "404 page not found\n"},
		{"range", "GET /a.txt HTTP/1.1\r\n" + host + "Range: bytes=0-1\r\n\r\n", 200, "a file\n"},
		{"if-match", "GET /a.txt HTTP/1.1\r\n" + host + "If-Match: \"e\"\r\n\r\n", 200, "a file\n"},
		{"if-none-match twice", "GET /a.txt HTTP/1.1\r\n" + host + "If-None-Match: \"x\"\r\nIf-None-Match: \"e\"\r\n\r\n", 200, "a file\n"},
		{"if-none-match empty", "GET /a.txt HTTP/1.1\r\n" + host + "If-None-Match:\r\n\r\n", 200, "a file\n"},
		{"if-none-match and if-modified-since", "GET /a.txt HTTP/1.1\r\n" + host + "If-None-Match: \"x\"\r\nIf-Modified-Since: Mon, 07 Dec 2026 00:00:00 GMT\r\n\r\n", 200, "a file\n"},
		{"a head longer than the fast path reads", "GET /a.txt HTTP/1.1\r\n" + host + "X: " + strings.Repeat("x", 8<<10) + "\r\n\r\n", 200, "a file\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, br := dialHTTP(t, f)
			static := st.static.Load()
			io.WriteString(conn, tt.req)
			method, _, _ := strings.Cut(tt.req, " ")
			r := readResponse(t, br, method)
			if r.status != tt.status || (tt.body != "" && r.body != tt.body) {
				t.Errorf("%d %q, want %d %q", r.status, r.body, tt.status, tt.body)
			}
			if st.static.Load() != static {
				t.Errorf("answered by the fast path")
			}
		})
	}
}

// TestFastPathPipelined: pipelined requests are answered in order; once one is declined, net/http
// answers it and every later one, from the bytes the fast path had read past it.
func TestFastPathPipelined(t *testing.T) {
	f, st := startStatic(t)
	const host = "Host: alice-docs." + domain + "\r\n"
	conn, br := dialHTTP(t, f)
	get := "GET /a.txt HTTP/1.1\r\n" + host + "\r\n"
	io.WriteString(conn, get+get+"POST /a.txt HTTP/1.1\r\n"+host+"Content-Length: 5\r\n\r\nhello"+get+"HEAD /a.txt HTTP/1.1\r\n"+host+"\r\n")
	for i, want := range []struct {
		method string
		status int
		body   string
	}{{"GET", 200, "a file\n"}, {"GET", 200, "a file\n"}, {"POST", 404, "404 page not found\n"}, {"GET", 200, "a file\n"}, {"HEAD", 200, ""}} {
		r := readResponse(t, br, want.method)
		if r.status != want.status || r.body != want.body {
			t.Fatalf("response %d: %d %q, want %d %q", i, r.status, r.body, want.status, want.body)
		}
	}
	if s, h := st.static.Load(), st.handled.Load(); s != 2 || h != 3 {
		t.Errorf("fast path answered %d, handler %d; want 2 and 3", s, h)
	}
	// A request declined while its head is incomplete: net/http reads the rest.
	io.WriteString(conn, "GET /a.txt HTTP/1.1\r\nRange: bytes=0-1\r\n")
	conn2, br2 := dialHTTP(t, f)
	io.WriteString(conn2, "GET /a.txt HTTP/1.1\r\nIf-Match: \"x\"\r\n")
	time.Sleep(50 * time.Millisecond)
	io.WriteString(conn2, host+"\r\n")
	if r := readResponse(t, br2, "GET"); r.status != 200 || r.body != "a file\n" {
		t.Errorf("a head completed after it was declined: %d %q", r.status, r.body)
	}
}

// TestFastPathTimeouts: a connection the fast path holds is closed after the idle timeout,
// after a response as before its first request; one whose head stops half way too.
func TestFastPathTimeouts(t *testing.T) {
	f, st := startStatic(t, func(_ *fixture, o *gateway.Options) { o.HTTPIdleTimeout = 300 * time.Millisecond })
	const host = "Host: alice-docs." + domain + "\r\n"
	conn, br := dialHTTP(t, f)
	io.WriteString(conn, "GET /a.txt HTTP/1.1\r\n"+host+"\r\n")
	if r := readResponse(t, br, "GET"); r.status != 200 || st.static.Load() != 1 {
		t.Fatalf("%d, fast path answers %d", r.status, st.static.Load())
	}
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("an idle connection was not closed: read %d, %v", n, err)
	}
	// Half a head, then nothing: closed by the progress timeout (the idle timeout with nothing
	// moving), well before the header timeout, as net/http's connections are.
	conn, br = dialHTTP(t, f)
	io.WriteString(conn, "GET /a.txt HTTP/1.1\r\n")
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("a stalled head was not closed: read %d, %v", n, err)
	}
}

// TestFastPathShutdown: at shutdown, a connection waiting for its next request on the fast
// path is closed at once, not left to its idle timeout, and Serve returns.
func TestFastPathShutdown(t *testing.T) {
	f, st := startStatic(t, func(_ *fixture, o *gateway.Options) {
		o.HTTPIdleTimeout = time.Hour
		o.DrainTimeout = time.Hour
	})
	conn, br := dialHTTP(t, f)
	io.WriteString(conn, "GET /a.txt HTTP/1.1\r\nHost: alice-docs."+domain+"\r\n\r\n")
	if r := readResponse(t, br, "GET"); r.status != 200 || st.static.Load() != 1 {
		t.Fatalf("%d, fast path answers %d", r.status, st.static.Load())
	}
	stopped := make(chan error, 1)
	go func() { stopped <- f.stop() }()
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("an idle fast-path connection was not closed at shutdown: read %d, %v", n, err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

// TestFastPathShutdownAnswersHeadsBegun: at shutdown, a connection whose request head has begun
// to arrive is not closed under it, as net/http leaves a new connection reading its first
// request: the request is answered, with Connection: close, and then the connection closes.
// Before, the fast path closed every connection reading a request at once, so a client that
// had just connected and sent its request got the connection closed without an answer.
func TestFastPathShutdownAnswersHeadsBegun(t *testing.T) {
	f, _ := startStatic(t, func(_ *fixture, o *gateway.Options) {
		o.HTTPIdleTimeout = time.Hour
		o.DrainTimeout = time.Hour
	})
	get := "GET /a.txt HTTP/1.1\r\nHost: alice-docs." + domain + "\r\n\r\n"
	begun, br := dialHTTP(t, f)
	io.WriteString(begun, get[:20])
	// An idle connection, closed at shutdown with every other one the fast path closes then.
	idle, ibr := dialHTTP(t, f)
	io.WriteString(idle, get)
	readResponse(t, ibr, "GET")

	stopped := make(chan error, 1)
	go func() { stopped <- f.stop() }()
	if n, err := ibr.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("an idle connection was not closed at shutdown: read %d, %v", n, err)
	}
	io.WriteString(begun, get[20:])
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("a request begun before shutdown: %v", err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !resp.Close {
		t.Errorf("a request begun before shutdown: %d, close %v", resp.StatusCode, resp.Close)
	}
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after its answer at shutdown: read %d, %v; want the connection closed", n, err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

// TestFastPathConnectionsCounted: connections on the fast path count towards the bound of HTTP
// connections, and give their place back when they end.
func TestFastPathConnectionsCounted(t *testing.T) {
	const most = 4
	f, _ := startStatic(t, withLimits(func(l *gateway.Limits) { l.MaxHTTPConnections = most }))
	var conns []net.Conn
	for range most {
		conn, br := dialHTTP(t, f)
		io.WriteString(conn, "GET /a.txt HTTP/1.1\r\nHost: alice-docs."+domain+"\r\n\r\n")
		readResponse(t, br, "GET")
		conns = append(conns, conn)
	}
	extra, br := dialHTTP(t, f)
	if n, err := br.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection past the bound: read %d, %v", n, err)
	}
	extra.Close()
	conns[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, br := dialHTTP(t, f)
		io.WriteString(conn, "GET /a.txt HTTP/1.1\r\nHost: alice-docs."+domain+"\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no place given back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFastPathLeavesNothingBehind: connections that end after a fast answer, after a declined
// request, half way through a head or before sending anything leave no goroutine behind.
func TestFastPathLeavesNothingBehind(t *testing.T) {
	f, _ := startStatic(t)
	get := "GET /a.txt HTTP/1.1\r\nHost: alice-docs." + domain + "\r\n\r\n"
	// One connection first, so that what the server starts once is in the baseline.
	conn, br := dialHTTP(t, f)
	io.WriteString(conn, get)
	readResponse(t, br, "GET")
	conn.Close()
	time.Sleep(100 * time.Millisecond)
	base := runtime.NumGoroutine()
	for i := range 60 {
		conn, br := dialHTTP(t, f)
		switch i % 4 {
		case 0:
			io.WriteString(conn, get)
			readResponse(t, br, "GET")
		case 1:
			io.WriteString(conn, get+"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
			readResponse(t, br, "GET")
			readResponse(t, br, "GET")
		case 2:
			io.WriteString(conn, "GET /a.txt HTTP/1.1\r\nHost: alice")
		}
		conn.Close()
	}
	for i := 0; ; i++ {
		n := runtime.NumGoroutine()
		if n <= base {
			break
		}
		if i == 200 {
			t.Fatalf("%d goroutines, %d before the connections", n, base)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFastPathPipelinedRevalidations: revalidations written in one go, interleaved with a
// request the fast path declines (If-None-Match twice), are each answered once, in order:
// the fast path's 304s and 200s before it, net/http's after it (the connection is its own
// from the declined request on), with nothing lost or answered twice.
func TestFastPathPipelinedRevalidations(t *testing.T) {
	f, st := startStatic(t)
	const host = "Host: alice-docs." + domain + "\r\n"
	reqs := []revalidation{
		{"GET", "If-None-Match: \"e\"\r\n", 304, ""},
		{"HEAD", "iF-nOnE-mAtCh:\t\"e\"\t\r\n", 304, ""},
		{"GET", "If-None-Match: \"x\", W/\r\n", 200, "a file\n"},
		{"GET", "If-None-Match: \"x\"\r\nIf-None-Match: \"e\"\r\n", 200, "a file\n"}, // declined
		{"GET", "If-None-Match: \"e\"\r\n", 304, ""},
		{"GET", "", 200, "a file\n"},
	}
	var all strings.Builder
	for _, r := range reqs {
		fmt.Fprintf(&all, "%s /a.txt HTTP/1.1\r\n%s%s\r\n", r.method, host, r.headers)
	}
	conn, br := dialHTTP(t, f)
	io.WriteString(conn, all.String())
	for i, tt := range reqs {
		r := readResponse(t, br, tt.method)
		if r.status != tt.status || r.body != tt.body {
			t.Fatalf("request %d: %d %q, want %d %q", i, r.status, r.body, tt.status, tt.body)
		}
	}
	if s, h := st.static.Load(), st.handled.Load(); s != 3 || h != 3 {
		t.Errorf("fast path answered %d, handler %d; want 3 and 3 (the last 3 by the handler)", s, h)
	}
}
