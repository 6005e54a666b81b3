package pgs

import (
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func treeWith(t *testing.T, paths ...string) *tree {
	t.Helper()
	tr := newTree(time.Now())
	for _, p := range paths {
		if err := tr.put(p, File{Hash: sha256.Sum256([]byte(p)), Size: int64(len(p)), Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

func TestResolve(t *testing.T) {
	tr := treeWith(t, "index.html", "about.html", "docs/index.html", "docs/guide/intro.html", "docs/404.html",
		"404.html", "blog/post", "blog/post.html", ".env", ".well-known/security.txt", ".well-known/index.html",
		"assets/.hidden/x.css", "_redirects", "_headers", "plain/file.txt")
	for _, tt := range []struct {
		path string
		want resolution
	}{
		{"/", resolution{file: "index.html", status: 200}},
		{"/index.html", resolution{file: "index.html", status: 200}},
		{"/about", resolution{file: "about.html", status: 200}},
		{"/about.html", resolution{file: "about.html", status: 200}},
		{"/docs", resolution{redirect: "/docs/"}},
		{"/docs/", resolution{file: "docs/index.html", status: 200}},
		{"/docs/guide/intro", resolution{file: "docs/guide/intro.html", status: 200}},
		// The file P wins over P.html.
		{"/blog/post", resolution{file: "blog/post", status: 200}},
		// Nearest 404.html going up from P's folder.
		{"/docs/guide/missing", resolution{file: "docs/404.html", status: 404}},
		{"/docs/guide/", resolution{file: "docs/404.html", status: 404}},
		{"/docs/nope/deeper/x", resolution{file: "docs/404.html", status: 404}},
		{"/missing", resolution{file: "404.html", status: 404}},
		{"/plain/", resolution{file: "404.html", status: 404}}, // no listings
		// Hidden names and site rule files are not served.
		{"/.env", resolution{file: "404.html", status: 404}},
		{"/assets/.hidden/x.css", resolution{file: "404.html", status: 404}},
		{"/_redirects", resolution{file: "404.html", status: 404}},
		{"/_headers", resolution{file: "404.html", status: 404}},
		{"/.well-known/security.txt", resolution{file: ".well-known/security.txt", status: 200}},
		{"/.well-known/", resolution{file: ".well-known/index.html", status: 200}},
		// Paths no site may hold.
		{"/../index.html", resolution{file: "404.html", status: 404}},
		{"/docs/../index.html", resolution{file: "404.html", status: 404}},
		{"//index.html", resolution{file: "404.html", status: 404}},
		{"/index.html\x00", resolution{file: "404.html", status: 404}},
		{"/\xff", resolution{file: "404.html", status: 404}},
		{"index.html", resolution{file: "404.html", status: 404}},
		{"/" + strings.Repeat("a", 256), resolution{file: "404.html", status: 404}},
	} {
		if got := resolve(tr, tt.path); got != tt.want {
			t.Errorf("resolve(%q) = %+v, want %+v", tt.path, got, tt.want)
		}
	}
	// Without any 404.html, a plain 404.
	if got := resolve(treeWith(t, "index.html"), "/nope"); got != (resolution{}) {
		t.Errorf("resolve without 404.html = %+v", got)
	}
}

func TestContentType(t *testing.T) {
	for name, want := range map[string]string{
		"index.html":       "text/html; charset=utf-8",
		"A.HTML":           "text/html; charset=utf-8",
		"app.js":           "text/javascript; charset=utf-8",
		"mod.mjs":          "text/javascript; charset=utf-8",
		"app.wasm":         "application/wasm",
		"data.json":        "application/json; charset=utf-8",
		"site.webmanifest": "application/manifest+json; charset=utf-8",
		"logo.svg":         "image/svg+xml; charset=utf-8",
		"font.woff2":       "font/woff2",
		"photo.jpeg":       "image/jpeg",
		"clip.mp4":         "video/mp4",
		"style.css":        "text/css; charset=utf-8",
		"LICENSE":          "application/octet-stream",
		"x.unknownext":     "application/octet-stream",
	} {
		if got := contentType(name); got != want {
			t.Errorf("contentType(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestHTTPServing(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"index.html": "<h1>home</h1>", "404.html": "<h1>lost</h1>", "app.mjs": "export{}",
		"big.txt": strings.Repeat("0123456789", 100), "docs/index.html": "docs",
	})
	h.mustRsync("-a", src+"/", remote+"/blog/")

	code, body, hdr := h.get("blog", "/")
	if code != 200 || body != "<h1>home</h1>" || hdr.Get("Content-Type") != "text/html; charset=utf-8" ||
		hdr.Get("Cache-Control") != cacheControl || hdr.Get("Last-Modified") == "" {
		t.Fatalf("GET / = %d %q %v", code, body, hdr)
	}
	etag := hdr.Get("ETag")
	if want := `"` + sha256hex("<h1>home</h1>") + `"`; etag != want {
		t.Fatalf("ETag %s, want %s", etag, want)
	}
	if code, _, _ := h.get("blog", "/", "If-None-Match", etag); code != 304 {
		t.Fatalf("If-None-Match: %d, want 304", code)
	}
	if code, _, _ := h.get("blog", "/", "If-Modified-Since", hdr.Get("Last-Modified")); code != 304 {
		t.Fatalf("If-Modified-Since: %d, want 304", code)
	}
	code, body, hdr = h.get("blog", "/big.txt", "Range", "bytes=10-19")
	if code != 206 || body != "0123456789" || hdr.Get("Content-Range") != "bytes 10-19/1000" {
		t.Fatalf("Range: %d %q %v", code, body, hdr)
	}
	if _, _, hdr := h.get("blog", "/app.mjs"); hdr.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Fatalf(".mjs served as %q", hdr.Get("Content-Type"))
	}
	if code, body, _ := h.get("blog", "/nope"); code != 404 || body != "<h1>lost</h1>" {
		t.Fatalf("missing page: %d %q", code, body)
	}
	if code, _, hdr := h.get("blog", "/docs?x=1"); code != 301 || hdr.Get("Location") != "/docs/?x=1" {
		t.Fatalf("directory without slash: %d %v", code, hdr)
	}
	// HEAD, and methods other than GET and HEAD.
	req, _ := http.NewRequest("HEAD", h.http+"/", nil)
	req.Host = siteHost("alice", "blog")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 || resp.ContentLength != int64(len("<h1>home</h1>")) {
		t.Fatalf("HEAD: %v %+v", err, resp)
	}
	resp.Body.Close()
	for _, m := range []string{"POST", "PUT", "DELETE", "OPTIONS"} {
		req, _ := http.NewRequest(m, h.http+"/", nil)
		req.Host = siteHost("alice", "blog")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Fatalf("%s: %v %+v", m, err, resp)
		}
		resp.Body.Close()
	}
	// Another account's host and an unknown project are not found.
	req, _ = http.NewRequest("GET", h.http+"/", nil)
	req.Host = "bob-blog.localhost"
	resp, _ = http.DefaultClient.Do(req)
	if resp.StatusCode != 404 {
		t.Fatalf("bob-blog: %d", resp.StatusCode)
	}
	resp.Body.Close()
	if code, _, _ := h.get("nope", "/"); code != 404 {
		t.Fatalf("unknown project: %d", code)
	}
	// The project named like the account is served at {account}.{domain}.
	h.mustRsync("-a", src+"/", remote+"/alice/")
	if code, body, _ := h.get("alice", "/"); code != 200 || body != "<h1>home</h1>" {
		t.Fatalf("alice.localhost: %d %q", code, body)
	}
}

func sha256hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return File{Hash: h}.Hash.String()
}

// A deploy's manifest is cached by its id: ids are never reused, so a project deployed after
// another was removed never serves the removed one's files.
func TestHTTPAfterRemove(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	one, two := t.TempDir(), t.TempDir()
	writeTree(t, one, map[string]string{"index.html": "one"})
	writeTree(t, two, map[string]string{"index.html": "two"})
	h.mustRsync("-r", one+"/", remote+"/one/")
	if code, body, _ := h.get("one", "/"); code != 200 || body != "one" {
		t.Fatalf("one: %d %q", code, body)
	}
	if _, errOut, code := h.ssh("rm", "one", "--yes"); code != 0 {
		t.Fatalf("rm: %s", errOut)
	}
	h.mustRsync("-r", two+"/", remote+"/two/")
	if code, body, _ := h.get("two", "/"); code != 200 || body != "two" {
		t.Fatalf("two: %d %q", code, body)
	}
}

// TestSameContentsOwnTimes: two files with the same contents are one blob, held in memory
// once, but each is served with its own Last-Modified, however the requests alternate; and
// the header values made once per blob are not changed by a response's site rules.
func TestSameContentsOwnTimes(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	in := "T1000000000 0 1000000000 0\nC0644 4 a.txt\nsame\x00" +
		"T1500000000 0 1500000000 0\nC0644 4 b.txt\nsame\x00"
	if _, errOut, code := rawSCP(t, h, "scp -p -t /blog/", in); code != 0 {
		t.Fatalf("transfer: %d %s", code, errOut)
	}
	want := map[string]string{"/a.txt": "Sun, 09 Sep 2001 01:46:40 GMT", "/b.txt": "Fri, 14 Jul 2017 02:40:00 GMT"}
	for _, p := range []string{"/a.txt", "/b.txt", "/a.txt", "/a.txt", "/b.txt"} {
		code, body, hdr := h.get("blog", p)
		if code != 200 || body != "same" || hdr.Get("Last-Modified") != want[p] || hdr.Get("Content-Length") != "4" ||
			hdr.Get("Content-Type") != "text/plain; charset=utf-8" || hdr.Get("ETag") != `"`+sha256hex("same")+`"` {
			t.Fatalf("GET %s: %d %q %v; want Last-Modified %s", p, code, body, hdr, want[p])
		}
	}
}

// TestPlainGet: a request is served by the one-write path only without a condition or range,
// as http.ServeContent would treat it (an empty value is no condition, as Header.Get reads it).
func TestPlainGet(t *testing.T) {
	for _, tc := range []struct {
		header string
		value  string
		want   bool
	}{
		{"", "", true},
		{"Accept-Encoding", "gzip", true},
		{"Range", "bytes=0-1", false},
		{"Range", "", true},
		{"If-None-Match", `"x"`, false},
		{"If-Modified-Since", "Mon, 07 Dec 2026 10:00:00 GMT", false},
		{"If-Match", "*", false},
		{"If-Unmodified-Since", "Mon, 07 Dec 2026 10:00:00 GMT", false},
		{"if-none-match", `"x"`, false}, // Header.Set canonicalises, as net/http's parser does
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if tc.header != "" {
			r.Header.Set(tc.header, tc.value)
		}
		if got := plainGet(r); got != tc.want {
			t.Errorf("%s: %q: plainGet = %v, want %v", tc.header, tc.value, got, tc.want)
		}
	}
}
