package rsync

import (
	"bytes"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeTree creates files (name → content; a name ending in "/" is a directory).
func writeTree(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readTree returns every file and directory below root (directories with a trailing "/").
func readTree(t testing.TB, root string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			got[rel+"/"] = ""
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			got[rel] = "-> " + target
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func diffTrees(t testing.TB, got, want map[string]string) {
	t.Helper()
	want = withParents(want)
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("missing %s", name)
		case g != w:
			t.Errorf("%s: got %d bytes, want %d", name, len(g), len(w))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected %s", name)
		}
	}
}

// withParents adds the directories that tree's names imply.
func withParents(tree map[string]string) map[string]string {
	all := map[string]string{}
	for name, content := range tree {
		all[name] = content
		for dir := path.Dir(strings.TrimSuffix(name, "/")); dir != "."; dir = path.Dir(dir) {
			all[dir+"/"] = ""
		}
	}
	return all
}

// downloadStatus runs `rsync -e WRAPPER args... host:src dst` against Serve over
// DirFS(serverRoot) and returns the combined output and the client's exit status.
func downloadStatus(t testing.TB, serverRoot, src, dst string, args ...string) (string, int) {
	t.Helper()
	return runClient(t, serverRoot, slices.Concat(args, []string{"host:" + src, dst})...)
}

// download runs the real client against Serve over DirFS(serverRoot),
// `rsync -e WRAPPER args... host:src dst`, and fails the test unless it succeeds.
func download(t testing.TB, serverRoot, src, dst string, args ...string) string {
	t.Helper()
	out, code := downloadStatus(t, serverRoot, src, dst, args...)
	if code != 0 {
		t.Fatalf("rsync %s host:%s %s: exit %d\n%s", strings.Join(args, " "), src, dst, code, out)
	}
	return out
}

// stat extracts a number from rsync --stats output, e.g. "Literal data".
func stat(t testing.TB, out, name string) int64 {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(name) + `: ([\d,]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q in rsync output:\n%s", name, out)
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func sampleTree() map[string]string {
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 300_000)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	return map[string]string{
		"index.html":           "<h1>hello</h1>\n",
		"empty.txt":            "",
		"empty dir/":           "",
		"css/site.css":         "body { color: red }\n",
		"img/big.bin":          string(big),
		"deep/a/b/c/d.txt":     "deep\n",
		"with space/ü n ï.txt": "unicode\n",
		"notes.tmp":            "scratch\n",
		"css/drafts/old.tmp":   "old\n",
		"css/drafts/keep.css":  "keep\n",
		"-dash.txt":            "leading dash\n",
		"a-b/x.txt":            "sorts before a/b\n",
		"a/b.txt":              "sorts after a-b\n",
		"zero/":                "",
		"zero/one/":            "",
		"longname" + strings.Repeat("x", 200) + "/" + strings.Repeat("y", 250): "long names\n",
	}
}

func TestDownloadRecursive(t *testing.T) {
	src := t.TempDir()
	tree := sampleTree()
	writeTree(t, src, tree)
	for _, flags := range [][]string{{"-r"}, {"-rv"}, {"-a"}, {"-avz"}, {"-rc"}, {"-rz", "--stats"}} {
		t.Run(strings.Join(flags, " "), func(t *testing.T) {
			dst := t.TempDir()
			download(t, src, "/", dst+"/", flags...)
			diffTrees(t, readTree(t, dst), tree)
		})
	}
}

func TestDownloadDeltaAgainstExistingFiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	old := make([]byte, 2<<20)
	for i := range old {
		old[i] = byte(rng.Uint32() % 32) // compressible, so -z has something to do
	}
	changed := bytes.Clone(old)
	copy(changed[1<<20:], "a few changed bytes")
	changed = append(changed[:500_000], append([]byte("inserted text"), changed[500_000:]...)...)

	// -B100000: blocks over 64 KiB, which -z feeds into its history in 64 KiB pieces that
	// (below protocol 31) all repeat the block's start.
	for _, flags := range [][]string{{"-r"}, {"-rz"}, {"-a"}, {"-azc"}, {"-rz", "-B100000"}} {
		t.Run(strings.Join(flags, " "), func(t *testing.T) {
			src, dst := t.TempDir(), t.TempDir()
			writeTree(t, src, map[string]string{"data.bin": string(changed), "same.txt": "unchanged\n"})
			writeTree(t, dst, map[string]string{"data.bin": string(old), "same.txt": "unchanged\n"})
			// Make the quick check see a change.
			os.Chtimes(filepath.Join(dst, "data.bin"), time.Unix(1e9, 0), time.Unix(1e9, 0))
			out := download(t, src, "/", dst+"/", append(flags, "--stats")...)
			diffTrees(t, readTree(t, dst), map[string]string{"data.bin": string(changed), "same.txt": "unchanged\n"})
			literal, matched := stat(t, out, "Literal data"), stat(t, out, "Matched data")
			// The two changes cost about two blocks each.
			margin := int64(10_000)
			if flags[len(flags)-1] == "-B100000" {
				margin = 400_000
			}
			if literal > margin {
				t.Errorf("literal data %d bytes, want about two blocks\n%s", literal, out)
			}
			if matched < int64(len(old))-margin {
				t.Errorf("matched data %d bytes, want nearly %d", matched, len(old))
			}
		})
	}
}

func TestDownloadTopDirScope(t *testing.T) {
	src := t.TempDir()
	site := map[string]string{"index.html": "home\n", "blog/post.html": "post\n", "blog/empty/": ""}
	serverTree := map[string]string{"other.txt": "not part of the site\n"}
	for name, c := range site {
		serverTree["site/"+name] = c
	}
	writeTree(t, src, serverTree)

	t.Run("contents with trailing slash", func(t *testing.T) {
		dst := t.TempDir()
		writeTree(t, dst, map[string]string{"stale.html": "x", "blog/stale/old.html": "x"})
		download(t, src, "/site/", dst+"/", "-r", "--delete")
		diffTrees(t, readTree(t, dst), site)
	})
	t.Run("directory itself without slash", func(t *testing.T) {
		dst := t.TempDir()
		writeTree(t, dst, map[string]string{"keep.txt": "outside the transfer\n", "site/stale.html": "x"})
		download(t, src, "/site", dst+"/", "-r", "--delete")
		want := map[string]string{"keep.txt": "outside the transfer\n"}
		for name, c := range site {
			want["site/"+name] = c
		}
		diffTrees(t, readTree(t, dst), want)
	})
	t.Run("single file", func(t *testing.T) {
		dst := t.TempDir()
		download(t, src, "/site/index.html", dst+"/", "-r")
		diffTrees(t, readTree(t, dst), map[string]string{"index.html": "home\n"})
	})
}

func TestDownloadExcludes(t *testing.T) {
	src := t.TempDir()
	tree := sampleTree()
	writeTree(t, src, tree)
	dst := t.TempDir()
	download(t, src, "/", dst+"/", "-r", "--exclude", "*.tmp", "--exclude", "drafts/", "--exclude", "i?g")
	want := map[string]string{}
	for name, c := range tree {
		if strings.HasSuffix(name, ".tmp") || strings.Contains(name, "drafts/") || strings.HasPrefix(name, "img/") {
			continue
		}
		want[name] = c
	}
	diffTrees(t, readTree(t, dst), want)
}

func TestDownloadDryRun(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, sampleTree())
	dst := t.TempDir()
	out := download(t, src, "/", dst+"/", "-rvn")
	if got := readTree(t, dst); len(got) != 0 {
		t.Errorf("dry run wrote %d entries", len(got))
	}
	if !strings.Contains(out, "index.html") {
		t.Errorf("dry run did not list index.html:\n%s", out)
	}
}

func TestDownloadArchiveKeepsAttributes(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"script.sh": "#!/bin/sh\n", "dir/file.txt": "x\n"})
	os.Chmod(filepath.Join(src, "script.sh"), 0o750)
	mtime := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(filepath.Join(src, "script.sh"), mtime, mtime)
	if err := os.Symlink("script.sh", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	out := download(t, src, "/", dst+"/", "-av", "--stats")
	info, err := os.Lstat(filepath.Join(dst, "script.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o750 || !info.ModTime().Equal(mtime) {
		t.Errorf("script.sh: mode %v mtime %v, want 0750 %v", info.Mode(), info.ModTime(), mtime)
	}
	if target, err := os.Readlink(filepath.Join(dst, "link")); err != nil || target != "script.sh" {
		t.Errorf("link: %q, %v", target, err)
	}
	// A second run finds nothing to send.
	out = download(t, src, "/", dst+"/", "-av", "--stats")
	if n := stat(t, out, "Number of regular files transferred"); n != 0 {
		t.Errorf("second -a run transferred %d files\n%s", n, out)
	}
}

func TestDownloadPartialFailures(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"ok.txt": "fine\n", "secret.txt": "unreadable\n"})
	t.Run("unreadable file", func(t *testing.T) {
		t.Setenv(failOpenEnv, "secret.txt")
		dst := t.TempDir()
		out, code := downloadStatus(t, src, "/", dst+"/", "-r")
		if code != 23 {
			t.Errorf("exit %d, want 23 (partial transfer)\n%s", code, out)
		}
		if !strings.Contains(out, "secret.txt") {
			t.Errorf("no error naming secret.txt:\n%s", out)
		}
		diffTrees(t, readTree(t, dst), map[string]string{"ok.txt": "fine\n"})
	})
	t.Run("missing source", func(t *testing.T) {
		out, code := downloadStatus(t, src, "/nope/", t.TempDir()+"/", "-r")
		if code != 23 || !strings.Contains(out, "nope") {
			t.Errorf("exit %d, want 23 with an error naming nope\n%s", code, out)
		}
	})
	t.Run("source outside the root", func(t *testing.T) {
		out, code := downloadStatus(t, src, "/../etc/", t.TempDir()+"/", "-r")
		if code == 0 || !strings.Contains(out, "unsafe") {
			t.Errorf("exit %d, want a refusal\n%s", code, out)
		}
	})
}

func TestDownloadOptions(t *testing.T) {
	src := t.TempDir()
	site := map[string]string{"index.html": "home\n", "sub dir/ä.txt": "umlaut\n"}
	tree := map[string]string{}
	for name, c := range site {
		tree["my site/"+name] = c
	}
	writeTree(t, src, tree)
	for _, flags := range [][]string{
		{"-rs"},                 // protect-args: the path with a space arrives on stdin
		{"-a", "--numeric-ids"}, // no uid/gid name lists
		{"-rc", "--checksum-seed=5"},
		{"-rz", "--compress-level=1"},
		{"-rz", "--compress-level=0"}, // level 0 turns -z off: plain tokens
		{"-r", "--delete-after"},      // delete options stay on the client
	} {
		t.Run(strings.Join(flags, " "), func(t *testing.T) {
			dst := t.TempDir()
			download(t, src, "/my site/", dst+"/", flags...)
			diffTrees(t, readTree(t, dst), site)
		})
	}
}

func TestCleanSource(t *testing.T) {
	tests := []struct {
		arg      string
		path     string
		contents bool
		ok       bool
	}{
		{"/site/", "site", true, true},
		{"/site", "site", false, true},
		{"site/sub/", "site/sub", true, true},
		{"/", ".", true, true},
		{"", ".", true, true},
		{".", ".", true, true},
		{"site/.", "site", true, true},
		{"//site//x", "site/x", false, true},
		{"/../etc/", "", false, false},
		{"site/../../x", "", false, false},
	}
	for _, tt := range tests {
		p, contents, ok := cleanSource(tt.arg)
		if p != tt.path || contents != tt.contents || ok != tt.ok {
			t.Errorf("cleanSource(%q) = %q, %v, %v; want %q, %v, %v", tt.arg, p, contents, ok, tt.path, tt.contents, tt.ok)
		}
	}
}

// zlibx (--new-compress, -zz) leaves matched blocks out of the deflate history: a delta against
// an existing file must come out right.
func TestDownloadZlibx(t *testing.T) {
	src := t.TempDir()
	data := randomBytes(300_000, 9)
	writeTree(t, src, map[string]string{"a.bin": string(data)})
	dst := t.TempDir()
	old := append([]byte("prefix"), data[:200_000]...)
	writeTree(t, dst, map[string]string{"a.bin": string(old)})
	download(t, src, "/", dst+"/", "-rz", "--new-compress")
	diffTrees(t, readTree(t, dst), map[string]string{"a.bin": string(data)})
}

// A file over 2 GiB needs the 64-bit size encoding; a dry run lists it without reading it.
func TestDownloadListsFileOver2GiB(t *testing.T) {
	src := t.TempDir()
	f, err := os.Create(filepath.Join(src, "huge.img"))
	if err != nil {
		t.Fatal(err)
	}
	const size = 3<<30 + 5
	if err := f.Truncate(size); err != nil { // sparse
		t.Fatal(err)
	}
	f.Close()
	out := download(t, src, "/", t.TempDir()+"/", "-rvn", "--stats")
	if !strings.Contains(out, "huge.img") {
		t.Errorf("huge.img not listed:\n%s", out)
	}
	if got := stat(t, out, "Total file size"); got != size {
		t.Errorf("total file size %d, want %d", got, size)
	}
}

// TestDownloadNeverReadsThroughSymlinksOutOfTheRoot plants symbolic links that lead out of the
// server's root: listing, -l, sources through them and -L must not reveal what they point to.
func TestDownloadNeverReadsThroughSymlinksOutOfTheRoot(t *testing.T) {
	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"secret.txt": "outside the root\n"})
	root := t.TempDir()
	writeTree(t, root, map[string]string{"site/index.html": "home\n"})
	for name, target := range map[string]string{
		"site/abs":      outside,
		"site/rel":      "../../" + filepath.Base(outside),
		"site/file.txt": filepath.Join(outside, "secret.txt"),
	} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		src  string
		args []string
	}{
		{"/site/", []string{"-r"}},
		{"/site/", []string{"-rL"}},
		{"/site/", []string{"-a"}},
		{"/site/abs/", []string{"-r"}},
		{"/site/rel/", []string{"-r"}},
		{"/site/abs/secret.txt", []string{"-r"}},
		{"/site/rel/secret.txt", []string{"-r"}},
		{"/site/file.txt", []string{"-rL"}},
	} {
		t.Run(tt.src+" "+strings.Join(tt.args, " "), func(t *testing.T) {
			dst := t.TempDir()
			out, _ := downloadStatus(t, root, tt.src, dst+"/", tt.args...)
			for name, content := range readTree(t, dst) {
				if strings.Contains(content, "outside the root") || strings.Contains(name, "secret") {
					t.Errorf("downloaded %s from outside the root\n%s", name, out)
				}
			}
		})
	}
}

// TestDownloadDirs: -d sends a directory's entries without descending (what `rsync host:dir/`,
// the listing without a destination, asks for); "dir" without the slash is the directory alone.
func TestDownloadDirs(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"site/index.html": "home\n", "site/sub/deep.txt": "deep\n"})
	dst := t.TempDir()
	download(t, src, "/site/", dst+"/", "-d")
	diffTrees(t, readTree(t, dst), map[string]string{"index.html": "home\n", "sub/": ""})
	dst = t.TempDir()
	download(t, src, "/site", dst+"/", "-d")
	diffTrees(t, readTree(t, dst), map[string]string{"site/": ""})
	// The listing: no destination.
	for _, args := range [][]string{nil, {"--list-only"}, {"--list-only", "-r"}} {
		argv := append([]string{"-e", uploadWrapper(t, src)}, args...)
		out, err := exec.Command(rsyncClient(t), append(argv, "host:/site/")...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "index.html") || !strings.Contains(string(out), "sub") || strings.Contains(string(out), "deep") != (len(args) == 2) {
			t.Errorf("listing %q: %v\n%s", args, err, out)
		}
	}
}
