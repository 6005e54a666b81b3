package gateway

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"net/http"
)

func TestParseHead(t *testing.T) {
	const host = "Host: alice-docs.example.test\r\n"
	for _, tt := range []struct {
		name, in string
		res      headResult
		head     bool
		path     string
		host     string
		ae       string
	}{
		{"get", "GET /a.css HTTP/1.1\r\n" + host + "\r\n", headOK, false, "/a.css", "alice-docs.example.test", ""},
		{"head", "HEAD / HTTP/1.1\r\n" + host + "\r\n", headOK, true, "/", "alice-docs.example.test", ""},
		{"query left out", "GET /a?b=c/d?e HTTP/1.1\r\n" + host + "\r\n", headOK, false, "/a", "alice-docs.example.test", ""},
		{"names in any case, spaces around values", "GET / HTTP/1.1\r\nhOST:  a.example.test:8080 \t\r\naccept-encoding:gzip, br\r\nconnection: Keep-Alive\r\nUser-Agent: x/1 (y; z)\r\n\r\n",
			headOK, false, "/", "a.example.test:8080", "gzip, br"},
		{"empty accept-encoding", "GET / HTTP/1.1\r\n" + host + "Accept-Encoding:\r\n\r\n", headOK, false, "/", "alice-docs.example.test", ""},

		{"incomplete request line", "GET / HTTP/1.1", headIncomplete, false, "", "", ""},
		{"incomplete head", "GET / HTTP/1.1\r\n" + host, headIncomplete, false, "", "", ""},
		{"incomplete header line", "GET / HTTP/1.1\r\nHost: a", headIncomplete, false, "", "", ""},
		{"empty", "", headIncomplete, false, "", "", ""},

		{"post", "POST / HTTP/1.1\r\n" + host + "\r\n", headDecline, false, "", "", ""},
		{"lower-case method", "get / HTTP/1.1\r\n" + host + "\r\n", headDecline, false, "", "", ""},
		{"HTTP/1.0", "GET / HTTP/1.0\r\n" + host + "\r\n", headDecline, false, "", "", ""},
		{"HTTP/2", "GET / HTTP/2.0\r\n" + host + "\r\n", headDecline, false, "", "", ""},
		{"two spaces", "GET  / HTTP/1.1\r\n" + host + "\r\n", headDecline, false, "", "", ""},
		{"trailing space", "GET / HTTP/1.1 \r\n" + host + "\r\n", headDecline, false, "", "", ""},
		{"absolute form", "GET http://alice-docs.example.test/ HTTP/1.1\r\n" + host + "\r\n", headDecline, false, "", "", ""},
		{"asterisk", "GET * HTTP/1.1\r\n" + host + "\r\n", headDecline, false, "", "", ""},
		{"percent-encoded", "GET /%61 HTTP/1.1\r\n" + host + "\r\n", headDecline, false, "", "", ""},
		{"fragment", "GET /a#b HTTP/1.1\r\n" + host + "\r\n", headDecline, false, "", "", ""},
		{"non-ASCII target", "GET /\xc3\xa9 HTTP/1.1\r\n" + host + "\r\n", headDecline, false, "", "", ""},
		{"leading blank line", "\r\nGET / HTTP/1.1\r\n" + host + "\r\n", headDecline, false, "", "", ""},
		{"bare LF", "GET / HTTP/1.1\n" + host + "\r\n", headDecline, false, "", "", ""},
		{"bare LF at the end", "GET / HTTP/1.1\r\n" + host + "\n", headDecline, false, "", "", ""},
		{"CR inside a value", "GET / HTTP/1.1\r\n" + host + "X: a\rb\r\n\r\n", headDecline, false, "", "", ""},
		{"folded line", "GET / HTTP/1.1\r\n" + host + "X: a\r\n b\r\n\r\n", headDecline, false, "", "", ""},
		{"space before the colon", "GET / HTTP/1.1\r\nHost : a.example.test\r\n\r\n", headDecline, false, "", "", ""},
		{"no colon", "GET / HTTP/1.1\r\n" + host + "X\r\n\r\n", headDecline, false, "", "", ""},
		{"empty name", "GET / HTTP/1.1\r\n" + host + ": x\r\n\r\n", headDecline, false, "", "", ""},
		{"non-ASCII value", "GET / HTTP/1.1\r\n" + host + "X: \xff\r\n\r\n", headDecline, false, "", "", ""},
		{"NUL in a value", "GET / HTTP/1.1\r\n" + host + "X: a\x00\r\n\r\n", headDecline, false, "", "", ""},
		{"no host", "GET / HTTP/1.1\r\n\r\n", headDecline, false, "", "", ""},
		{"empty host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", headDecline, false, "", "", ""},
		{"two hosts", "GET / HTTP/1.1\r\n" + host + "host: b.example.test\r\n\r\n", headDecline, false, "", "", ""},
		{"odd host", "GET / HTTP/1.1\r\nHost: a_b.example.test\r\n\r\n", headDecline, false, "", "", ""},
		{"IPv6 host", "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", headDecline, false, "", "", ""},
		{"two accept-encodings", "GET / HTTP/1.1\r\n" + host + "Accept-Encoding: gzip\r\nAccept-Encoding: br\r\n\r\n", headDecline, false, "", "", ""},
		{"connection close", "GET / HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n", headDecline, false, "", "", ""},
		{"connection upgrade", "GET / HTTP/1.1\r\n" + host + "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n", headDecline, false, "", "", ""},
		{"content-length", "GET / HTTP/1.1\r\n" + host + "Content-Length: 0\r\n\r\n", headDecline, false, "", "", ""},
		{"chunked", "GET / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", headDecline, false, "", "", ""},
		{"expect", "GET / HTTP/1.1\r\n" + host + "Expect: 100-continue\r\n\r\n", headDecline, false, "", "", ""},
		{"range", "GET / HTTP/1.1\r\n" + host + "Range: bytes=0-1\r\n\r\n", headDecline, false, "", "", ""},
		{"if-none-match twice", "GET / HTTP/1.1\r\n" + host + "If-None-Match: \"x\"\r\nif-none-match: \"y\"\r\n\r\n", headDecline, false, "", "", ""},
		{"empty if-none-match", "GET / HTTP/1.1\r\n" + host + "If-None-Match: \t\r\n\r\n", headDecline, false, "", "", ""},
		{"if-match", "GET / HTTP/1.1\r\n" + host + "If-Match: \"x\"\r\n\r\n", headDecline, false, "", "", ""},
		{"if-range", "GET / HTTP/1.1\r\n" + host + "If-Range: \"x\"\r\n\r\n", headDecline, false, "", "", ""},
		{"if-unmodified-since", "GET / HTTP/1.1\r\n" + host + "If-Unmodified-Since: x\r\n\r\n", headDecline, false, "", "", ""},
		{"if-none-match and if-modified-since", "GET / HTTP/1.1\r\n" + host + "If-None-Match: \"x\"\r\nIf-Modified-Since: x\r\n\r\n", headDecline, false, "", "", ""},
		{"if-modified-since", "GET / HTTP/1.1\r\n" + host + "IF-MODIFIED-SINCE: x\r\n\r\n", headDecline, false, "", "", ""},
		{"authorization", "GET / HTTP/1.1\r\n" + host + "Authorization: Basic eDp5\r\n\r\n", headDecline, false, "", "", ""},
		// A head declined as soon as a line says so, before it is complete: net/http reads the rest.
		{"declined before its end", "GET / HTTP/1.1\r\nRange: bytes=0-1\r\n", headDecline, false, "", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, used, res := parseHead([]byte(tt.in))
			if res != tt.res {
				t.Fatalf("result %d, want %d", res, tt.res)
			}
			if res != headOK {
				return
			}
			if used != len(tt.in) || req.head != tt.head || string(req.path) != tt.path || string(req.host) != tt.host || string(req.acceptEncoding) != tt.ae {
				t.Errorf("got used %d head %v path %q host %q accept-encoding %q", used, req.head, req.path, req.host, req.acceptEncoding)
			}
		})
	}
}

// TestParseHeadIfNoneMatch: one If-None-Match, the only condition, is the fast path's (the
// site server reads its value, trimmed as net/http trims it); two, or an empty one, are not.
func TestParseHeadIfNoneMatch(t *testing.T) {
	const start = "GET / HTTP/1.1\r\nHost: alice-docs.example.test\r\n"
	for _, tt := range []struct {
		name, in string
		res      headResult
		inm      string
	}{
		{"one tag", start + "If-None-Match: \"x\"\r\n\r\n", headOK, `"x"`},
		{"a list, any case, spaces", start + "if-NONE-match: \t W/\"a\" ,\"b\", * \t\r\nAccept-Encoding: gzip\r\n\r\n", headOK, `W/"a" ,"b", *`},
		{"unparsable: for the site server", start + "If-None-Match: x\r\n\r\n", headOK, "x"},
		{"none", start + "\r\n", headOK, ""},
		{"twice", start + "If-None-Match: \"x\"\r\nIf-None-Match: \"y\"\r\n\r\n", headDecline, ""},
		{"twice, the same", start + "If-None-Match: \"x\"\r\nIf-None-Match: \"x\"\r\n\r\n", headDecline, ""},
		{"empty", start + "If-None-Match:\r\n\r\n", headDecline, ""},
		{"with if-modified-since", start + "If-None-Match: \"x\"\r\nIf-Modified-Since: x\r\n\r\n", headDecline, ""},
		{"with range", start + "If-None-Match: \"x\"\r\nRange: bytes=0-1\r\n\r\n", headDecline, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, used, res := parseHead([]byte(tt.in))
			if res != tt.res {
				t.Fatalf("result %d, want %d", res, tt.res)
			}
			if res == headOK && (used != len(tt.in) || string(req.ifNoneMatch) != tt.inm) {
				t.Errorf("used %d, If-None-Match %q; want %d, %q", used, req.ifNoneMatch, len(tt.in), tt.inm)
			}
			sameSplit(t, []byte(tt.in))
		})
	}
}

// TestParseHeadPipelined: a head's length leaves the next request's bytes alone.
func TestParseHeadPipelined(t *testing.T) {
	first := "GET /a HTTP/1.1\r\nHost: a.example.test\r\n\r\n"
	in := first + "GET /b HTTP/1.1\r\nHost: a.example.test\r\n\r\n"
	req, used, res := parseHead([]byte(in))
	if res != headOK || used != len(first) || string(req.path) != "/a" {
		t.Fatalf("got %d, %d bytes, %q", res, used, req.path)
	}
	req, used, res = parseHead([]byte(in[used:]))
	if res != headOK || used != len(first) || string(req.path) != "/b" {
		t.Fatalf("second: got %d, %d bytes, %q", res, used, req.path)
	}
}

// sameSplit: a parser fed b a byte at a time, as a client may send it, answers at each step what
// parsing that much at once answers.
func sameSplit(t *testing.T, b []byte) {
	t.Helper()
	var p headParser
	for i := 1; i <= len(b); i++ {
		req, used, res := p.parse(b[:i])
		wreq, wused, wres := parseHead(b[:i])
		if res != wres || used != wused || req.head != wreq.head || string(req.path) != string(wreq.path) ||
			string(req.host) != string(wreq.host) || string(req.acceptEncoding) != string(wreq.acceptEncoding) ||
			string(req.ifNoneMatch) != string(wreq.ifNoneMatch) {
			t.Fatalf("%q a byte at a time: %d, %d bytes, %+v; at once %d, %d bytes, %+v", b[:i], res, used, req, wres, wused, wreq)
		}
		if res != headIncomplete {
			return
		}
	}
}

// TestHeadParserReadsOnce: a head sent a byte at a time is parsed as one sent at once, and the
// lines parsed are not read again as the rest arrives (a later change to them goes unseen):
// parsing the whole head again on each read made a head of 4 KiB sent a byte per read cost
// thousands of times the work of its bytes. The head here is declined when its second line is
// read again once changed.
func TestHeadParserReadsOnce(t *testing.T) {
	head := "GET /a?b HTTP/1.1\r\nHost: alice-docs.example.test\r\n" + strings.Repeat("X-A: b\r\n", 100) +
		"Accept-Encoding:  gzip \r\nConnection: keep-alive\r\n\r\n"
	sameSplit(t, []byte(head))

	b := []byte(head)
	var p headParser
	second := strings.Index(head, "X-A")
	for i := 1; i < len(b); i++ {
		if _, _, res := p.parse(b[:i]); res != headIncomplete {
			t.Fatalf("%q: %d", b[:i], res)
		}
		if i == second+len("X-A: b\r\n") {
			b[second+len("X-A: ")] = 0 // parsed already
		}
	}
	req, used, res := p.parse(b)
	if res != headOK || used != len(b) || string(req.path) != "/a" || string(req.host) != "alice-docs.example.test" || string(req.acceptEncoding) != "gzip" {
		t.Fatalf("got %d, %d bytes, %q %q %q", res, used, req.path, req.host, req.acceptEncoding)
	}
}

// BenchmarkHeadParserByteByByte: a head of 4 KiB of short lines read a byte per read.
func BenchmarkHeadParserByteByByte(b *testing.B) {
	head := []byte("GET / HTTP/1.1\r\nHost: a.example.test\r\n" + strings.Repeat("a:b\r\n", 800) + "\r\n")
	b.SetBytes(int64(len(head)))
	for b.Loop() {
		var p headParser
		for i := 1; i <= len(head); i++ {
			p.parse(head[:i])
		}
	}
}

// FuzzParseHead: whatever the parser accepts, net/http reads as the same GET or HEAD: the same
// method, path, query-less target, host, Accept-Encoding and If-None-Match (one at most), without body, with keep-alive,
// and none of the headers that would make pgs answer differently.
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a.example.test\r\n\r\n",
		"HEAD /x.css?v=1 HTTP/1.1\r\nhost: a-b.example.test:80\r\nAccept-Encoding: gzip\r\nConnection: keep-alive\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nX: y\r\n z\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /%2e%2e/ HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nIf-None-Match: W/\"x\", \"y\"\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nIf-None-Match: *\r\nif-none-match: \"x\"\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, used, res := parseHead(b)
		sameSplit(t, b)
		if res != headOK {
			return
		}
		if used <= 0 || used > len(b) {
			t.Fatalf("used %d of %d bytes", used, len(b))
		}
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b[:used])))
		if err != nil {
			t.Fatalf("accepted %q, which net/http refuses: %v", b[:used], err)
		}
		method := "GET"
		if req.head {
			method = "HEAD"
		}
		switch {
		case r.Method != method:
			t.Fatalf("method %q, net/http %q", method, r.Method)
		case r.URL.Path != string(req.path) || r.URL.EscapedPath() != string(req.path):
			// EscapedPath, not RawPath == "": net/http keeps a RawPath for a path with a
			// sub-delim it would escape ("/!"), and EscapedPath (what pgs reads) is it.
			t.Fatalf("path %q, net/http %q (escaped %q)", req.path, r.URL.Path, r.URL.EscapedPath())
		case r.Host != string(req.host):
			t.Fatalf("host %q, net/http %q", req.host, r.Host)
		case r.Header.Get("Accept-Encoding") != string(req.acceptEncoding):
			t.Fatalf("accept-encoding %q, net/http %q", req.acceptEncoding, r.Header.Get("Accept-Encoding"))
		case len(r.Header.Values("If-None-Match")) > 1 || r.Header.Get("If-None-Match") != string(req.ifNoneMatch):
			t.Fatalf("if-none-match %q, net/http %q", req.ifNoneMatch, r.Header.Values("If-None-Match"))
		case r.ContentLength != 0 || len(r.TransferEncoding) != 0 || r.Close || r.ProtoMinor != 1:
			t.Fatalf("%q: net/http sees a body, a close or another version", b[:used])
		}
		for _, name := range []string{"Range", "If-Range", "If-Match", "If-Modified-Since", "If-Unmodified-Since",
			"Authorization", "Expect", "Upgrade", "Content-Length", "Transfer-Encoding"} {
			if _, ok := r.Header[name]; ok {
				t.Fatalf("%q: net/http sees %s", b[:used], name)
			}
		}
		if c := r.Header.Values("Connection"); len(c) > 0 && !strings.EqualFold(strings.Join(c, ","), "keep-alive") {
			t.Fatalf("%q: Connection %q", b[:used], c)
		}
	})
}
