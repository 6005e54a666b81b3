package pgs

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// rawResponse sends req alone on a new connection to the gateway and returns the response's
// bytes, with the Date line's value blanked.
func rawResponse(t *testing.T, addr, method, req string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	var raw bytes.Buffer
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(io.TeeReader(conn, &raw)), &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return dateLine.ReplaceAllString(raw.String(), "Date: -\r\n")
}

// TestStaticFileNotForPrivateSites: once a site is behind a password or for listed accounts,
// the fast path leaves it to the handler (401, 404), from the next request on; public again,
// it answers it again.
func TestStaticFileNotForPrivateSites(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.html": "home", "a.txt": "a"})
	h.mustRsync("-a", src+"/", remote+"/blog/")
	addr := strings.TrimPrefix(h.http, "http://")
	req := "GET /a.txt HTTP/1.1\r\nHost: " + siteHost("alice", "blog") + "\r\n\r\n"
	status := func() string {
		t.Helper()
		line, _, _ := strings.Cut(rawResponse(t, addr, "GET", req), "\r\n")
		return line
	}
	if got := status(); got != "HTTP/1.1 200 OK" {
		t.Fatalf("public: %s", got)
	}
	if _, _, _, ok := h.svc.StaticFile(nil, "alice", "blog", "/a.txt", "", ""); !ok {
		t.Fatal("public: StaticFile declines")
	}
	if _, stderr, code := h.run(strings.NewReader("correct horse battery\n"), "ssh", append(h.sshArgs(), "pgs@127.0.0.1", "acl", "blog", "password")...); code != 0 {
		t.Fatalf("acl password: %s", stderr)
	}
	if got := status(); got != "HTTP/1.1 401 Unauthorized" {
		t.Errorf("behind a password: %s", got)
	}
	h.accountClient("bob")
	if _, stderr, code := h.ssh("acl", "blog", "accounts", "bob"); code != 0 {
		t.Fatalf("acl accounts: %s", stderr)
	}
	if got := status(); got != "HTTP/1.1 404 Not Found" {
		t.Errorf("for listed accounts: %s", got)
	}
	if _, stderr, code := h.ssh("acl", "blog", "public"); code != 0 {
		t.Fatalf("acl public: %s", stderr)
	}
	if got := status(); got != "HTTP/1.1 200 OK" {
		t.Errorf("public again: %s", got)
	}
}

var dateLine = regexp.MustCompile(`(?m)^Date: [^\r\n]*\r\n`)

// TestStaticFileAsHandler: what StaticFile answers is, byte for byte but the Date, what the
// gateway sends for the same request through the site's handler, from the first request on;
// and it answers only a public site's file of up to memFileMax bytes, without rules.
func TestStaticFileAsHandler(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	noise := make([]byte, 1<<10)
	rand.Read(noise)
	big := make([]byte, memFileMax+1)
	rand.Read(big)
	page := strings.Repeat("<p>hello, static world</p>\n", 100)
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"index.html": page, "about.html": "<p>about</p>", "docs/index.html": "<p>docs</p>", "1k.bin": string(noise),
		"big.bin": string(big), "404.html": "lost", "style.css": strings.Repeat("a{color:red}\n", 100), ".env": "secret",
		"noise.txt": string(noise), "epoch.txt": "from 1970\n",
	})
	// A file whose mtime is 0 has no Last-Modified.
	if err := os.Chtimes(filepath.Join(src, "epoch.txt"), time.Unix(0, 0), time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	h.mustRsync("-a", src+"/", remote+"/blog/")
	rules := t.TempDir()
	writeTree(t, rules, map[string]string{"1k.bin": string(noise), "_headers": "/*\n  X-Frame-Options: DENY\n"})
	h.mustRsync("-a", rules+"/", remote+"/ruled/")

	addr := strings.TrimPrefix(h.http, "http://")
	for _, tt := range []struct {
		project, method, target, ae string
		fast                        bool
	}{
		{"blog", "GET", "/1k.bin", "", true},
		{"blog", "HEAD", "/1k.bin", "", true},
		{"blog", "GET", "/1k.bin?v=2", "gzip, br", true}, // not compressible: the same for every client
		{"blog", "GET", "/", "", true},
		{"blog", "GET", "/", "identity", true},
		{"blog", "GET", "/", "gzip", true}, // compressed, once the copy is in memory
		{"blog", "HEAD", "/", "gzip, deflate, br", true},
		{"blog", "GET", "/style.css", "gzip;q=0.5, br;q=0.4", true},
		{"blog", "GET", "/noise.txt", "br", true}, // its copy is no smaller: the file as it is
		{"blog", "GET", "/about", "", true},
		{"blog", "GET", "/about.html", "", true},
		{"blog", "GET", "/docs/", "", true},
		{"blog", "GET", "/style.css", "br;q=0", true},
		{"blog", "GET", "/epoch.txt", "", true},
		{"blog", "HEAD", "/epoch.txt", "", true},
		{"blog", "GET", "/404.html", "", true}, // a 404 page asked for by name is a file like any other
		{"blog", "GET", "/docs/index.html", "", true},
		{"blog", "GET", "/./1k.bin", "", false},       // "." segment: not found
		{"blog", "GET", "/docs/../1k.bin", "", false}, // ".." segment: not found, never resolved
		{"blog", "GET", "/1k.bin/", "", false},        // a folder request: not found
		{"blog", "GET", "/1k.bin;x", "", false},
		{"blog", "GET", "/_headers", "", false},
		{"blog", "GET", "/docs", "", false},    // a redirect
		{"blog", "GET", "/nope", "", false},    // 404.html
		{"blog", "GET", "/.env", "", false},    // hidden
		{"blog", "GET", "//1k.bin", "", false}, // not a path a site holds
		{"blog", "GET", "/big.bin", "", false}, // not held in memory
		{"ruled", "GET", "/1k.bin", "", false}, // _headers
		{"nope", "GET", "/1k.bin", "", false},
	} {
		t.Run(tt.project+" "+tt.method+" "+tt.target+" "+tt.ae, func(t *testing.T) {
			head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\n", tt.method, tt.target, siteHost("alice", tt.project))
			if tt.ae != "" {
				head += "Accept-Encoding: " + tt.ae + "\r\n"
			}
			// Asked first: the deploy, its rules and the file are loaded by StaticFile itself
			// for the first rows (nothing has asked for them yet).
			path, _, _ := strings.Cut(tt.target, "?")
			_, _, found, ok := h.svc.StaticFile(nil, "alice", tt.project, path, tt.ae, "")
			if ok != tt.fast || found != (tt.project != "nope") {
				t.Fatalf("StaticFile found %v ok %v, want ok %v", found, ok, tt.fast)
			}
			fast := rawResponse(t, addr, tt.method, head+"\r\n")
			// Authorization leaves the request to net/http and the handler, which ignore it on a public site.
			slow := rawResponse(t, addr, tt.method, head+"Authorization: Basic eDp5\r\n\r\n")
			if fast != slow {
				t.Errorf("fast path:\n%s\nhandler:\n%s", fast, slow)
			}
			if !strings.HasPrefix(fast, "HTTP/1.1 200 ") && tt.fast {
				t.Errorf("not a 200: %s", fast)
			}
		})
	}
}

// TestStaticFileRevalidation: a request whose only condition is If-None-Match is answered by
// StaticFile as the handler (http.ServeContent) answers it, byte for byte but the Date: a 304
// when the list names the ETag of what would be sent (the file's, or the compressed copy's),
// by net/http's rules (weak comparison, "*", lists with or without spaces), else the 200 of a
// plain GET; lists net/http stops reading before a match are left to the handler.
func TestStaticFileRevalidation(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	noise := make([]byte, 1<<10)
	rand.Read(noise)
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"index.html": strings.Repeat("<p>hello, static world</p>\n", 100), "1k.bin": string(noise), "epoch.txt": "from 1970\n",
	})
	if err := os.Chtimes(filepath.Join(src, "epoch.txt"), time.Unix(0, 0), time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	h.mustRsync("-a", src+"/", remote+"/blog/")
	addr := strings.TrimPrefix(h.http, "http://")
	host := "Host: " + siteHost("alice", "blog") + "\r\n"
	etagOf := regexp.MustCompile(`(?m)^Etag: "([^"\r\n]*)"\r$`)
	// hashOf is the file's ETag, without its quotes, from a plain GET.
	hashOf := func(target string) string {
		resp := rawResponse(t, addr, "GET", "GET "+target+" HTTP/1.1\r\n"+host+"\r\n")
		m := etagOf.FindStringSubmatch(resp)
		if m == nil {
			t.Fatalf("no ETag: %s", resp)
		}
		return m[1]
	}
	for _, tt := range []struct {
		method, target, ae, inm string // $H in inm: the file's ETag without its quotes
		fast, notModified       bool
	}{
		{"GET", "/1k.bin", "", `"$H"`, true, true},
		{"HEAD", "/1k.bin", "", `"$H"`, true, true},
		{"GET", "/1k.bin", "", `W/"$H"`, true, true},
		{"GET", "/1k.bin", "", `*`, true, true},
		{"GET", "/1k.bin", "", `"a", "$H"`, true, true},
		{"GET", "/1k.bin", "", `"a",W/"b" ,  "$H" , "c"`, true, true},
		{"GET", "/1k.bin", "", `"a""$H"`, true, true},
		{"GET", "/1k.bin", "", `,"a", *`, true, true},
		{"GET", "/1k.bin", "", `"$H", junk`, true, true}, // net/http stops at the match
		{"GET", "/1k.bin", "", `"a"`, true, false},
		{"HEAD", "/1k.bin", "", `"a", W/"b"`, true, false},
		{"GET", "/1k.bin", "", `,`, true, false},
		{"GET", "/1k.bin", "", `"$H-gzip"`, true, false},
		{"GET", "/1k.bin", "", `"$h"`, true, false}, // not the same in another case
		{"GET", "/1k.bin", "", `junk, "$H"`, false, false},
		{"GET", "/1k.bin", "", `"a", W/`, false, false},
		{"GET", "/1k.bin", "", `"$H`, false, false},
		{"GET", "/1k.bin", "", `$H`, false, false},
		{"GET", "/", "gzip", `"$H-gzip"`, true, true}, // the compressed copy's own ETag
		{"HEAD", "/", "gzip", `W/"$H-gzip"`, true, true},
		{"GET", "/", "gzip", `"$H"`, true, false}, // the file's, not the copy sent
		{"GET", "/", "gzip", `"x"`, true, false},
		{"HEAD", "/", "br", `"x"`, true, false},
		{"GET", "/", "", `"$H"`, true, true},
		{"GET", "/", "", `"$H-gzip"`, true, false},
		{"GET", "/", "", `*`, true, true},
		{"GET", "/epoch.txt", "", `"$H"`, true, true},
		{"GET", "/epoch.txt", "", `"x"`, true, false},
		// Hostile lists: odd separators, tabs, a lone W/, "*" after what net/http cannot
		// read, and a list near the head limit whose match is last.
		{"GET", "/1k.bin", "", `,,,,`, true, false},
		{"GET", "/1k.bin", "", "\"a\"\t,\t\"$H\"", true, true},
		{"GET", "/1k.bin", "", `W/`, false, false},
		{"GET", "/1k.bin", "", `junk, *`, false, false},
		{"GET", "/1k.bin", "", `"a" junk *`, false, false},
		{"GET", "/1k.bin", "", `W/"$H`, false, false},
		{"GET", "/1k.bin", "", `""`, true, false},
		{"HEAD", "/1k.bin", "", strings.Repeat(`"a",`, 900) + `"$H"`, true, true},
		{"GET", "/1k.bin", "", strings.Repeat(`,`, 3800) + `*`, true, true},
	} {
		hash := hashOf(tt.target)
		inm := strings.ReplaceAll(strings.ReplaceAll(tt.inm, "$H", hash), "$h", strings.ToUpper(hash))
		t.Run(tt.method+" "+tt.target+" "+tt.ae+" "+tt.inm, func(t *testing.T) {
			head := fmt.Sprintf("%s %s HTTP/1.1\r\n%sIf-None-Match: %s\r\n", tt.method, tt.target, host, inm)
			if tt.ae != "" {
				head += "Accept-Encoding: " + tt.ae + "\r\n"
			}
			// Twice: the compressed copy is made by the first.
			for range 2 {
				rawResponse(t, addr, tt.method, head+"\r\n")
			}
			_, _, found, ok := h.svc.StaticFile(nil, "alice", "blog", tt.target, tt.ae, inm)
			if !found || ok != tt.fast {
				t.Fatalf("StaticFile found %v ok %v, want ok %v", found, ok, tt.fast)
			}
			fast := rawResponse(t, addr, tt.method, head+"\r\n")
			slow := rawResponse(t, addr, tt.method, head+"Authorization: Basic eDp5\r\n\r\n")
			if fast != slow {
				t.Errorf("fast path:\n%s\nhandler:\n%s", fast, slow)
			}
			want := "HTTP/1.1 200 OK\r\n"
			if tt.notModified {
				want = "HTTP/1.1 304 Not Modified\r\n"
			}
			if !strings.HasPrefix(fast, want) {
				t.Errorf("not a %s: %s", want, fast)
			}
			if tt.fast && !tt.notModified {
				plain := rawResponse(t, addr, tt.method, fmt.Sprintf("%s %s HTTP/1.1\r\n%sAccept-Encoding: %s\r\n\r\n", tt.method, tt.target, host, tt.ae))
				if tt.ae == "" {
					plain = rawResponse(t, addr, tt.method, fmt.Sprintf("%s %s HTTP/1.1\r\n%s\r\n", tt.method, tt.target, host))
				}
				if fast != plain {
					t.Errorf("not the plain GET's 200:\n%s\nplain:\n%s", fast, plain)
				}
			}
		})
	}
}

// FuzzEtagListed: what etagListed decides for an If-None-Match value is what
// http.ServeContent answers a GET with it: 304 for a match, 200 for none; a list it says it
// cannot read (StaticFile declines it) is one net/http answers 200, never 304.
func FuzzEtagListed(f *testing.F) {
	for _, s := range [][2]string{
		{`"a"`, `"a"`}, {`W/"a"`, `"a"`}, {`*`, `"a"`}, {`"b", "a"`, `"a"`}, {` ,"b" ,W/"a"`, `"a"`},
		{`"b""a"`, `"a"`}, {`junk, "a"`, `"a"`}, {`"a", junk`, `"a"`}, {`W/`, `"a"`}, {`"a`, `"a"`},
		{`"a-gzip"`, `"a"`}, {"\t\"a\"\t", `"a"`}, {`"\x80"`, "\"\x80\""}, {`""`, `""`},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, list, etag string) {
		if list == "" || !strings.HasPrefix(etag, `"`) {
			return // the fast path never asks without a value; pgs's ETags are strong
		}
		match, read := etagListed(list, etag)
		w := httptest.NewRecorder()
		w.Header()["Etag"] = []string{etag}
		r := &http.Request{Method: "GET", Header: http.Header{"If-None-Match": {list}}}
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader("x"))
		switch {
		case match && !read:
			t.Fatalf("%q, %q: a match in a list not read", list, etag)
		case !read && w.Code == http.StatusNotModified:
			t.Fatalf("%q, %q: declined, net/http answers 304", list, etag)
		case read && match != (w.Code == http.StatusNotModified):
			t.Fatalf("%q, %q: match %v, net/http %d", list, etag, match, w.Code)
		}
	})
}
