package pgs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSFTP(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	requireTool(t, "sftp")
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"index.html": "<h1>sftp</h1>", "pub/a.css": "a{}", "pub/sub/b.js": "b()"})
	out, errOut, code := h.sftp(strings.Join([]string{
		"mkdir /blog/assets",
		"put " + dir + "/index.html /blog/index.html",
		"put " + dir + "/pub/a.css /blog/assets/a.css",
		"put -r " + dir + "/pub /blog/pub",
		"rename /blog/assets/a.css /blog/assets/main.css",
		"ls -l /blog",
		"ls /",
	}, "\n") + "\n")
	if code != 0 {
		t.Fatalf("sftp: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "deploy d1 is live") {
		t.Fatalf("sftp did not report the deploy:\n%s", errOut)
	}
	want := map[string]string{"index.html": "<h1>sftp</h1>", "assets/main.css": "a{}", "pub/a.css": "a{}", "pub/sub/b.js": "b()"}
	mustEqualTree(t, "after sftp", h.liveFiles("blog"), want)

	// get, rm, rmdir in a second session.
	got := filepath.Join(t.TempDir(), "got.html")
	out, errOut, code = h.sftp(strings.Join([]string{
		"get /blog/index.html " + got,
		"rm /blog/pub/sub/b.js",
		"rmdir /blog/pub/sub",
	}, "\n") + "\n")
	if code != 0 {
		t.Fatalf("sftp 2: exit %d\n%s%s", code, out, errOut)
	}
	if b, _ := os.ReadFile(got); string(b) != "<h1>sftp</h1>" {
		t.Fatalf("sftp get: %q", b)
	}
	delete(want, "pub/sub/b.js")
	mustEqualTree(t, "after rm", h.liveFiles("blog"), want)

	// scp in its default SFTP mode, up and down.
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.html": "scp", "css/x.css": "x"})
	if out, errOut, code := h.scp("-r", src+"/index.html", src+"/css", remote+"/docs/"); code != 0 {
		t.Fatalf("scp: exit %d\n%s%s", code, out, errOut)
	}
	mustEqualTree(t, "after scp", h.liveFiles("docs"), map[string]string{"index.html": "scp", "css/x.css": "x"})
	dst := t.TempDir()
	if out, errOut, code := h.scp(remote+"/docs/index.html", dst+"/"); code != 0 {
		t.Fatalf("scp download: exit %d\n%s%s", code, out, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "index.html")); string(b) != "scp" {
		t.Fatalf("scp download: %q", b)
	}
}

// TestSCPShorterFile: scp in SFTP mode writes a file in place and then cuts it at its new end
// (fsetstat with a size): a shorter file over a longer one must not keep the old tail.
func TestSCPShorterFile(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	requireTool(t, "scp")
	src := t.TempDir()
	writeTree(t, src, map[string]string{"page.html": strings.Repeat("long old content\n", 100)})
	if _, stderr, code := h.scp(src+"/page.html", remote+"/blog/page.html"); code != 0 {
		t.Fatalf("scp: %s", stderr)
	}
	writeTree(t, src, map[string]string{"page.html": "short\n"})
	_, stderr, code := h.scp(src+"/page.html", remote+"/blog/page.html")
	if code != 0 || strings.Contains(stderr, "fsetstat") {
		t.Fatalf("scp of a shorter file: %d %s", code, stderr)
	}
	if _, body, _ := h.get("blog", "/page.html"); body != "short\n" {
		t.Fatalf("served %q", body)
	}
}
