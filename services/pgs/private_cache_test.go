package pgs

import (
	"bufio"
	"net/http"
	"slices"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

// privateCacheRules are _headers rules a site may well have written for its public life: a
// year in every cache for its assets, a CDN's own cache header, one removing Cache-Control.
const privateCacheRules = "/assets/*\n  Cache-Control: public, max-age=31536000, immutable\n" +
	"  CDN-Cache-Control: max-age=86400\n  Cloudflare-CDN-Cache-Control: max-age=86400\n  Surrogate-Control: max-age=86400\n" +
	"  Akamai-Cache-Control: max-age=86400\n  Edge-Control: cache-maxage=1d\n" +
	"/bare/*\n  ! Cache-Control\n/shared/*\n  Cache-Control: s-maxage=600, proxy-revalidate\n"

// checkPrivateCaching fails unless hdr lets no shared cache keep the response: Cache-Control
// starts with private and has no directive for shared caches, and no header addresses CDNs.
func checkPrivateCaching(t *testing.T, what string, hdr http.Header, wantKept ...string) {
	t.Helper()
	cc := hdr.Values("Cache-Control")
	var ds []string // (no quoted strings in these tests)
	for _, v := range cc {
		for d := range strings.SplitSeq(v, ",") {
			ds = append(ds, strings.TrimSpace(d))
		}
	}
	if len(ds) == 0 || ds[0] != "private" {
		t.Errorf("%s: Cache-Control %q, want private first", what, cc)
	}
	for _, d := range ds {
		name, _, _ := strings.Cut(strings.ToLower(d), "=")
		if name == "public" || name == "s-maxage" || name == "proxy-revalidate" {
			t.Errorf("%s: Cache-Control %q lets a shared cache keep it (%s)", what, cc, d)
		}
	}
	for _, d := range wantKept {
		if !slices.Contains(ds, d) {
			t.Errorf("%s: Cache-Control %q lost the site's %s", what, cc, d)
		}
	}
	for name := range hdr {
		if (name != "Cache-Control" && strings.HasSuffix(name, "Cache-Control")) || name == "Surrogate-Control" || name == "Edge-Control" {
			t.Errorf("%s: %s %q reaches a CDN", what, name, hdr.Values(name))
		}
	}
}

// TestPasswordSiteCachingStaysPrivate: a _headers rule that lets shared caches keep a file
// (Cache-Control public or s-maxage, a CDN's own header) does not on a site behind a password:
// a CDN in front would otherwise hand the file to visitors without the password. The rule's
// directives for the visitor's own cache stay; a public site keeps the rule as written.
func TestPasswordSiteCachingStaysPrivate(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.html": "secret home", "assets/app.js": "secret()",
		"bare/page.html": "bare", "shared/page.html": "shared", "_headers": privateCacheRules})
	h.mustRsync("-r", src+"/", remote+"/blog/")
	if _, _, hdr := h.get("blog", "/assets/app.js"); hdr.Get("Cache-Control") != "public, max-age=31536000, immutable" ||
		hdr.Get("CDN-Cache-Control") != "max-age=86400" {
		t.Fatalf("a public site lost its rule: %v", hdr)
	}
	if _, stderr, code := h.run(strings.NewReader("correct horse battery\n"), "ssh", append(h.sshArgs(), "pgs@127.0.0.1", "acl", "blog", "password")...); code != 0 {
		t.Fatalf("acl password: %s", stderr)
	}
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth("anyone", "correct horse battery")
	pw := req.Header.Get("Authorization")

	code, body, hdr := h.get("blog", "/assets/app.js", "Authorization", pw)
	if code != 200 || body != "secret()" {
		t.Fatalf("GET /assets/app.js with the password: %d %q", code, body)
	}
	checkPrivateCaching(t, "/assets/app.js", hdr, "max-age=31536000", "immutable")
	// a 304 says the same
	code, _, hdr304 := h.get("blog", "/assets/app.js", "Authorization", pw, "If-None-Match", hdr.Get("ETag"))
	if code != http.StatusNotModified {
		t.Fatalf("GET /assets/app.js with its ETag: %d", code)
	}
	checkPrivateCaching(t, "/assets/app.js (304)", hdr304, "max-age=31536000", "immutable")
	for _, path := range []string{"/", "/bare/page.html", "/shared/page.html", "/nothing-here"} {
		_, _, hdr := h.get("blog", path, "Authorization", pw)
		checkPrivateCaching(t, path, hdr)
	}
}

// TestAccountsSiteCachingIsPrivate: a site for listed accounts, seen over an SSH forward, is
// for its visitor only, as a site behind a password is: Cache-Control private, whatever its
// _headers rules say.
func TestAccountsSiteCachingIsPrivate(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.html": "secret home", "assets/app.js": "secret()", "_headers": privateCacheRules})
	h.mustRsync("-r", src+"/", remote+"/blog/")
	bob := h.accountClient("bob")
	if _, stderr, code := h.ssh("acl", "blog", "accounts", "bob"); code != 0 {
		t.Fatalf("acl accounts: %s", stderr)
	}
	for _, path := range []string{"/", "/assets/app.js", "/nothing-here"} {
		code, hdr := forwardHead(t, bob, "alice-blog:80", path)
		if code == 0 {
			t.Fatalf("GET %s through a forward failed", path)
		}
		checkPrivateCaching(t, path, hdr)
	}
}

// forwardHead asks for path through a direct-tcpip channel to target, as ssh -L does, and
// returns the status and header (0 when it failed); header holds name, value pairs to send.
func forwardHead(t *testing.T, c *gossh.Client, target, path string, header ...string) (int, http.Header) {
	t.Helper()
	conn, err := c.Dial("tcp", target)
	if err != nil {
		t.Errorf("forward to %s: %v", target, err)
		return 0, nil
	}
	defer conn.Close()
	req, _ := http.NewRequest("GET", "http://localhost:8000"+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if err := req.Write(conn); err != nil {
		t.Error(err)
		return 0, nil
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// TestPrivateSitesOverForwardsAreNotStored: over a forward, a private site's pages are the
// browser's http://localhost:8000/..., an origin every site forwarded to that port shares: a
// page it keeps (even stale, as private, max-age=0 allows) a site opened there later reads with
// fetch(url, {cache: "only-if-cached", mode: "same-origin"}). So they say no-store; a public
// site's pages, which anyone may read, keep their caching.
func TestPrivateSitesOverForwardsAreNotStored(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.html": "secret home", "assets/app.js": "secret()", "_headers": privateCacheRules})
	h.mustRsync("-r", src+"/", remote+"/blog/")
	alice, _ := h.goSSH("pgs")
	noStore := func(what string, hdr http.Header) {
		t.Helper()
		checkPrivateCaching(t, what, hdr)
		if cc := hdr.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("%s: Cache-Control %q, want no-store", what, cc)
		}
	}
	if _, hdr := forwardHead(t, alice, "alice-blog:80", "/assets/app.js"); hdr.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Errorf("a public site over a forward: Cache-Control %q, want its rule's", hdr.Get("Cache-Control"))
	}
	h.accountClient("bob")
	if _, stderr, code := h.ssh("acl", "blog", "accounts", "bob"); code != 0 {
		t.Fatalf("acl accounts: %s", stderr)
	}
	for _, path := range []string{"/", "/assets/app.js", "/nothing-here"} {
		_, hdr := forwardHead(t, alice, "alice-blog:80", path)
		noStore("accounts "+path, hdr)
	}
	if _, stderr, code := h.run(strings.NewReader("correct horse battery\n"), "ssh", append(h.sshArgs(), "pgs@127.0.0.1", "acl", "blog", "password")...); code != 0 {
		t.Fatalf("acl password: %s", stderr)
	}
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth("anyone", "correct horse battery")
	for _, path := range []string{"/", "/assets/app.js"} {
		code, hdr := forwardHead(t, alice, "alice-blog:80", path, "Authorization", req.Header.Get("Authorization"))
		if code != 200 {
			t.Fatalf("password %s over a forward: %d", path, code)
		}
		noStore("password "+path, hdr)
	}
}
