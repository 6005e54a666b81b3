package pgs

import (
	"strings"
	"testing"
)

// TestSiteRules: a deploy's _redirects and _headers shape its responses; a deploy with a bad
// line in either is refused with every error and its line, and the previous deploy stays live.
func TestSiteRules(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"index.html": "home", "404.html": "lost", "app/index.html": "spa", "about.html": "about",
		"closed.html": "closed", "assets/app.css": "body{}", "old.html": "old page",
		"_redirects": "# rules\n/gone /new 302\n/old /shadowed-by-old.html 302\n/old-forced /about 301!\n/news/* /blog/:splat 301\n" +
			"/shut /closed.html 404\n/app/* /app/index.html 200\n/about /elsewhere 301\n/ghost /missing.html 200\n" +
			"/old.html /forced-away 308!\n",
		"_headers": "/*\n  X-Frame-Options: DENY\n/assets/*\n  Cache-Control: public, max-age=31536000, immutable\n  ! X-Frame-Options\n",
	})
	h.mustRsync("-r", src+"/", remote+"/blog/")
	for _, c := range []struct {
		path     string
		code     int
		body     string
		location string
	}{
		{"/gone?x=1", 302, "", "/new?x=1"},
		{"/old", 200, "old page", ""}, // old.html shadows the rule
		{"/news/2024/hello", 301, "", "/blog/2024/hello"},
		{"/shut", 404, "closed", ""},
		{"/app/settings/profile", 200, "spa", ""},
		{"/about", 200, "about", ""},           // a file shadows a rule that is not forced
		{"/old.html", 308, "", "/forced-away"}, // a forced rule wins over the file
		{"/ghost", 404, "lost", ""},            // a rewrite to nothing: the not-found page
		{"/_redirects", 404, "lost", ""},
		{"/_headers", 404, "lost", ""},
	} {
		code, body, hdr := h.get("blog", c.path)
		if code != c.code || (c.body != "" && body != c.body) || hdr.Get("Location") != c.location {
			t.Errorf("GET %s = %d %q Location %q; want %d %q %q", c.path, code, body, hdr.Get("Location"), c.code, c.body, c.location)
		}
	}
	_, _, hdr := h.get("blog", "/")
	if hdr.Get("X-Frame-Options") != "DENY" || hdr.Get("Cache-Control") != cacheControl {
		t.Errorf("GET / headers %v", hdr)
	}
	_, _, hdr = h.get("blog", "/assets/app.css")
	if _, ok := hdr["X-Frame-Options"]; ok || hdr.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Errorf("GET /assets/app.css headers %v", hdr)
	}

	// A bad line in each file: nothing is published, every error is told with its line.
	writeTree(t, src, map[string]string{
		"index.html": "home v2",
		"_redirects": "/a /b 301\n/c /d 299\n/e\n",
		"_headers":   "/*\n  Set-Cookie: x=y\n",
	})
	_, stderr, code := h.rsync("-r", src+"/", remote+"/blog/")
	for _, want := range []string{"_redirects:2: status 299 is not a redirect status", "_redirects:3: a rule is FROM TO",
		"_headers:2: Set-Cookie is set by the server", "nothing was published"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("rsync stderr lacks %q:\n%s", want, stderr)
		}
	}
	if code == 0 {
		t.Errorf("rsync exited 0")
	}
	if code, body, _ := h.get("blog", "/"); code != 200 || body != "home" {
		t.Errorf("after the refused deploy: %d %q", code, body)
	}
	if out, _, _ := h.ssh("deploys", "blog", "--json"); strings.Count(out, `"id"`) != 1 {
		t.Errorf("deploys: %s", out)
	}
}

// TestSiteRulesLongRequests: a long request path meets the rules bounded: past 8 KiB (nginx's
// default) the request is refused with 414 before any rule is matched, and a rule whose
// placeholders would expand past the bound answers 414 rather than a giant Location.
func TestSiteRulesLongRequests(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	src := t.TempDir()
	many := strings.Repeat(":splat", 1000)
	writeTree(t, src, map[string]string{
		"index.html": "home",
		"_redirects": "/r/* /" + many + " 302\n",
		"_headers":   "/*\n  X-P: :splat\n",
	})
	h.mustRsync("-r", src+"/", remote+"/blog/")
	for _, c := range []struct {
		path string
		code int
	}{
		{"/r/" + strings.Repeat("a", 100), 414},   // 1000 × 100 bytes: past the bound
		{"/r/" + strings.Repeat("a", 9<<10), 414}, // past 8 KiB
		{"/" + strings.Repeat("b", 9<<10), 414},
		{"/r/a", 302},
	} {
		code, _, hdr := h.get("blog", c.path)
		if code != c.code || len(hdr.Get("Location")) > 16<<10 {
			t.Errorf("GET %.20s... (%d bytes) = %d, Location %d bytes; want %d", c.path, len(c.path), code, len(hdr.Get("Location")), c.code)
		}
	}
}
