package pgs

import (
	"testing"
)

// TestForwardRefusesServiceWorkers: every site seen through ssh -L 8000:SITE:80 is the one
// browser origin http://localhost:8000, so a service worker that one site (a stranger's, with
// its ACL listing you) installed there would control the pages of every site forwarded to that
// port later, private ones included, and could send their contents away. Over a forward the
// script of a service worker is not served; the same file as a plain script is.
func TestForwardRefusesServiceWorkers(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.html": "home", "sw.js": "self.addEventListener('fetch', e => {})"})
	h.mustRsync("-r", src+"/", remote+"/blog/")
	alice, _ := h.goSSH("pgs")
	if code, body, err := forwardGet(t, alice, "alice-blog:80", "/sw.js"); err != nil || code != 200 || body == "" {
		t.Fatalf("sw.js as a script: %d %q %v", code, body, err)
	}
	if code, body, err := forwardGet(t, alice, "alice-blog:80", "/sw.js", "Service-Worker", "script"); err != nil || code == 200 {
		t.Fatalf("sw.js as a service worker over a forward: %d %q %v, want a refusal", code, body, err)
	}
	// On the site's own host name it is its own origin: its service worker is its own business.
	if code, _, _ := h.get("blog", "/sw.js", "Service-Worker", "script"); code != 200 {
		t.Fatalf("sw.js as a service worker on the site's host: %d", code)
	}
}
