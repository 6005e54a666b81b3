package pgs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// TestRsyncTimesOutOfRange: a file whose time pgs cannot keep (after year 9999 or before year
// 1, kept as the nearest it can) is deployed once, and an unchanged re-upload sends nothing.
// The source is on tmpfs, which keeps such times.
func TestRsyncTimesOutOfRange(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	src, err := os.MkdirTemp("/dev/shm", "portico-times-")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("tmpfs at /dev/shm needed: %v", err)
		}
		t.Skipf("no tmpfs at /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(src) })
	for name, sec := range map[string]int64{"late.html": maxMTime + 3600, "early.html": minMTime - 3600} {
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, []byte(name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// os.Chtimes goes through nanoseconds since 1970, which stop in 2262.
		ts := []unix.Timespec{{Sec: sec}, {Sec: sec}}
		if err := unix.UtimesNano(p, ts); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil || st.Mtim.Sec != sec {
			t.Fatalf("tmpfs did not keep %s's time %d: %d %v", name, sec, st.Mtim.Sec, err)
		}
	}
	if out := h.mustRsync("-a", "--stats", src+"/", remote+"/blog/"); !strings.Contains(out, "Number of regular files transferred: 2") {
		t.Fatalf("first upload:\n%s", out)
	}
	if out := h.mustRsync("-a", "-i", src+"/", remote+"/blog/"); !strings.Contains(out, "nothing changed") || strings.Contains(out, "<f") || strings.Contains(out, ".t") {
		t.Fatalf("unchanged re-upload:\n%s", out)
	}
}

// TestRsyncSubSecondMTimes: pgs keeps the nanoseconds of an rsync upload's mtimes, so that a
// same-size edit within the second of the stored version is deployed by plain -r; an
// unchanged re-upload still transfers nothing, and so does one over a file stored with whole
// seconds (as scp -p and files from before nanoseconds were kept); -t downloads keep them.
func TestRsyncSubSecondMTimes(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	src := t.TempDir()
	index := filepath.Join(src, "index.html")
	base := time.Unix(1_700_000_000, 0)
	write := func(content string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(index, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(index, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	write("home v1\n", base.Add(100*time.Millisecond))
	h.mustRsync("-r", src+"/", remote+"/blog/")
	write("home v2\n", base.Add(600*time.Millisecond))
	if out := h.mustRsync("-r", "--stats", src+"/", remote+"/blog/"); !strings.Contains(out, "Number of regular files transferred: 1") {
		t.Fatalf("same-size edit within the second:\n%s", out)
	}
	mustEqualTree(t, "live files", h.liveFiles("blog"), map[string]string{"index.html": "home v2\n"})
	if out := h.mustRsync("-r", "-i", src+"/", remote+"/blog/"); !strings.Contains(out, "nothing changed") || strings.Contains(out, "<f") {
		t.Fatalf("unchanged re-upload:\n%s", out)
	}
	// An explicit --modify-window=0 compares whole seconds, as rsync's default does.
	write("home v3\n", base.Add(900*time.Millisecond))
	if out := h.mustRsync("-r", "-i", "--modify-window=0", src+"/", remote+"/blog/"); strings.Contains(out, "<f") {
		t.Fatalf("--modify-window=0 transferred a file of the same second:\n%s", out)
	}
	if out := h.mustRsync("-r", "-i", src+"/", remote+"/blog/"); !strings.Contains(out, "<f") {
		t.Fatalf("the edit was not transferred:\n%s", out)
	}
	// -t downloads carry the nanoseconds.
	dst := t.TempDir()
	h.mustRsync("-rt", remote+"/blog/", dst+"/")
	if st, err := os.Stat(filepath.Join(dst, "index.html")); err != nil || !st.ModTime().Equal(base.Add(900*time.Millisecond)) {
		t.Fatalf("downloaded mtime %v, %v; want %v", st.ModTime(), err, base.Add(900*time.Millisecond))
	}
	// A file stored with whole seconds (scp -p) is compared in whole seconds.
	write("home v4\n", base.Add(2*time.Second))
	if _, errOut, code := h.scp("-p", index, "pgs@127.0.0.1:/blog/index.html"); code != 0 {
		t.Fatalf("scp -p: exit %d\n%s", code, errOut)
	}
	write("home v4\n", base.Add(2*time.Second+300*time.Millisecond))
	if out := h.mustRsync("-r", "-i", src+"/", remote+"/blog/"); !strings.Contains(out, "nothing changed") || strings.Contains(out, "<f") {
		t.Fatalf("re-upload over a whole-second time:\n%s", out)
	}
}
