package pgs

import (
	"strings"
	"testing"
)

func TestRsyncUploadAndDownload(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	src := t.TempDir()
	files := map[string]string{"index.html": "<h1>hi</h1>", "assets/app.css": "body{}", "a/b/c.txt": "deep"}
	writeTree(t, src, files)
	out := h.mustRsync("-rv", src+"/", remote+"/blog/")
	if !strings.Contains(out, "deploy d1 is live") || !strings.HasSuffix(strings.TrimSpace(out), h.urlOf("blog")) {
		t.Fatalf("rsync output does not end with the URL:\n%s", out)
	}
	mustEqualTree(t, "live files", h.liveFiles("blog"), files)
	// An unchanged re-upload makes no deploy.
	out = h.mustRsync("-rv", src+"/", remote+"/blog/")
	if !strings.Contains(out, "nothing changed") {
		t.Fatalf("re-upload:\n%s", out)
	}
	// Download.
	dst := t.TempDir()
	h.mustRsync("-rv", remote+"/blog/", dst+"/")
	mustEqualTree(t, "downloaded", readTree(t, dst), files)
	// --delete, -a, -z, -c, --exclude.
	writeTree(t, src, map[string]string{"index.html": "<h1>v2</h1>"})
	for _, args := range [][]string{{"-a", "--delete"}, {"-az"}, {"-rc"}, {"-r", "--delete", "--exclude=a/"}} {
		h.mustRsync(append(args, src+"/", remote+"/blog/")...)
	}
}

// A session that fails while the client waits for the server (here: a directory the
// generator cannot make) ends at once instead of waiting for input that never comes.
func TestRsyncFailureDoesNotHang(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	src := t.TempDir()
	long := strings.Repeat(strings.Repeat("d", 200)+"/", 6) + "f"
	writeTree(t, src, map[string]string{long: "x", "index.html": "i"})
	out, errOut, code := h.rsync("-r", src+"/", remote+"/blog/")
	if code == 0 || !strings.Contains(errOut, "longer than 1024 bytes") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if got := h.liveFiles("blog"); got != nil {
		t.Fatalf("published %v", got)
	}
}
