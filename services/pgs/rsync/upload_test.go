package rsync

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portico-sh/portico/services/pgs/rsync/internal/delta"
)

// clientProtocolEnv, when set, makes every real-client run of the tests ask for that protocol.
const clientProtocolEnv = "PORTICO_RSYNC_TEST_PROTOCOL"

// uploadWrapper writes an -e wrapper that runs this test binary as Serve over DirFS(root).
// Like ssh, it hands the server the remote command line as one space-joined string.
func uploadWrapper(t testing.TB, root string) string {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	w := filepath.Join(t.TempDir(), "wrapper")
	script := fmt.Sprintf("#!/bin/sh\nshift\nexec env %s=%q %q \"$@\"\n", uploadServeEnv, root, bin)
	if err := os.WriteFile(w, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return w
}

// uploadStatus runs `rsync -e WRAPPER args... src host:dest` against Serve over DirFS(root)
// and returns the combined output and the client's exit status.
func uploadStatus(t testing.TB, root, src, dest string, args ...string) (string, int) {
	t.Helper()
	return runClient(t, root, slices.Concat(args, []string{src, "host:" + dest})...)
}

// runClient runs the real client as `rsync -e WRAPPER args...`, the wrapper serving Serve over
// DirFS(root), and returns its combined output and exit status.
func runClient(t testing.TB, root string, args ...string) (string, int) {
	t.Helper()
	argv := append([]string{"-e", uploadWrapper(t, root)}, args...)
	if v := os.Getenv(clientProtocolEnv); v != "" {
		// The whole suite at an older protocol: PORTICO_RSYNC_TEST_PROTOCOL=27 go test.
		argv = append([]string{"--protocol=" + v}, argv...)
	}
	out, err := exec.Command(rsyncClient(t), argv...).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	}
	t.Fatal(err)
	return "", 0
}

// upload is uploadStatus for runs that must succeed.
func upload(t testing.TB, root, src, dest string, args ...string) string {
	t.Helper()
	out, code := uploadStatus(t, root, src, dest, args...)
	if code != 0 {
		t.Fatalf("rsync %s %s host:%s: exit %d\n%s", strings.Join(args, " "), src, dest, code, out)
	}
	return out
}

func TestUploadBasic(t *testing.T) {
	src := t.TempDir()
	tree := sampleTree()
	writeTree(t, src, tree)
	for _, flags := range [][]string{
		{"-r"}, {"-rv"}, {"-a"}, {"-av"},
		{"-a", "--numeric-ids"},
		{"-r", "--checksum-choice=md4"}, // whole-file checksums without the seed
		{"-a", "--compress-level=9"},    // compresses without -z
		{"-az", "--compress-level=0"},   // does not compress despite -z
	} {
		t.Run(strings.Join(flags, " "), func(t *testing.T) {
			root := t.TempDir()
			// Into an empty destination (created), then again into the existing one.
			upload(t, root, src+"/", "/site/", flags...)
			diffTrees(t, readTree(t, filepath.Join(root, "site")), tree)
			upload(t, root, src+"/", "/site/", flags...)
			diffTrees(t, readTree(t, filepath.Join(root, "site")), tree)
		})
	}
}

// setTime gives a file a fixed modification time.
func setTime(t testing.TB, p string, mtime time.Time) {
	t.Helper()
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestUploadKeepsAttributes(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"bin/run.sh": "#!/bin/sh\n", "dir/": ""})
	mtime := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := os.Chmod(filepath.Join(src, "bin/run.sh"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	setTime(t, filepath.Join(src, "bin/run.sh"), mtime)
	setTime(t, filepath.Join(src, "dir"), mtime)
	root := t.TempDir()
	upload(t, root, src+"/", "site/", "-a")
	for _, name := range []string{"bin/run.sh", "dir"} {
		st, err := os.Stat(filepath.Join(root, "site", name))
		if err != nil {
			t.Fatal(err)
		}
		wantPerm := os.FileMode(0o750)
		if name == "dir" {
			wantPerm = 0o700
		}
		if st.Mode().Perm() != wantPerm || !st.ModTime().Equal(mtime) {
			t.Errorf("%s: mode %v mtime %v, want %v %v", name, st.Mode(), st.ModTime(), wantPerm, mtime)
		}
	}
	// -O leaves directory times alone.
	root = t.TempDir()
	upload(t, root, src+"/", "site/", "-aO")
	if st, err := os.Stat(filepath.Join(root, "site/dir")); err != nil || st.ModTime().Equal(mtime) {
		t.Errorf("-O: dir mtime %v (%v), want the time of its creation", st.ModTime(), err)
	}
	// Without -t the file keeps the client's mtime anyway, so the quick check works with -r.
	root = t.TempDir()
	upload(t, root, src+"/", "site/", "-r")
	if st, err := os.Stat(filepath.Join(root, "site/bin/run.sh")); err != nil || !st.ModTime().Equal(mtime) {
		t.Errorf("-r: run.sh mtime %v (%v), want %v", st.ModTime(), err, mtime)
	}
	out := upload(t, root, src+"/", "site/", "-r", "--stats")
	if n := stat(t, out, "Number of regular files transferred"); n != 0 {
		t.Errorf("unchanged -r re-upload transferred %d files", n)
	}
}

func TestUploadUnchangedSendsNoData(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, sampleTree())
	root := t.TempDir()
	upload(t, root, src+"/", "site/", "-a")
	out := upload(t, root, src+"/", "site/", "-a", "--stats")
	if !strings.Contains(out, "Literal data: 0 bytes") {
		t.Errorf("unchanged re-upload sent literal data:\n%s", out)
	}
	if n := stat(t, out, "Number of regular files transferred"); n != 0 {
		t.Errorf("unchanged re-upload transferred %d files", n)
	}
}

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestUploadSmallChangeSendsAboutOneBlock(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("z=%v", compress), func(t *testing.T) {
			src := t.TempDir()
			data := randomBytes(4<<20, 7)
			p := filepath.Join(src, "big.bin")
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			args := []string{"-a", "--stats"}
			if compress {
				args = append(args, "-z")
			}
			upload(t, root, src+"/", "site/", args...)
			copy(data[2<<20:], "a few changed bytes")
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			// Same size: a new mtime makes the quick check see the change.
			setTime(t, p, time.Now().Add(time.Hour))
			out := upload(t, root, src+"/", "site/", args...)
			got, err := os.ReadFile(filepath.Join(root, "site/big.bin"))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("big.bin differs after delta upload (%v)", err)
			}
			blockLen := int64(delta.BlockLength(int64(len(data))))
			literal, matched := stat(t, out, "Literal data"), stat(t, out, "Matched data")
			if literal > 2*blockLen || matched < int64(len(data))-2*blockLen {
				t.Errorf("literal %d, matched %d bytes; want at most two blocks of %d literal\n%s", literal, matched, blockLen, out)
			}
		})
	}
}

func TestUploadCompressed(t *testing.T) {
	src := t.TempDir()
	tree := sampleTree()
	tree["text.txt"] = strings.Repeat("compressible text ", 50000)
	writeTree(t, src, tree)
	root := t.TempDir()
	out := upload(t, root, src+"/", "site/", "-avz", "--stats")
	diffTrees(t, readTree(t, filepath.Join(root, "site")), tree)
	if sent := stat(t, out, "Total bytes sent"); sent > 500_000 {
		t.Errorf("-z sent %d bytes for a tree of mostly compressible data", sent)
	}
}

func TestUploadLargeFileOver2GiB(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 2 GiB through MD4 twice")
	}
	src := t.TempDir()
	const size = 2<<30 + 4096 + 5
	p := filepath.Join(src, "huge.bin")
	if err := os.WriteFile(p, []byte("start"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	upload(t, root, src+"/", "site/", "-a")
	st, err := os.Stat(filepath.Join(root, "site/huge.bin"))
	if err != nil || st.Size() != size {
		t.Fatalf("huge.bin: %v, %v; want %d bytes", st, err, int64(size))
	}
	f, err := os.Open(filepath.Join(root, "site/huge.bin"))
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 5)
	f.Read(head)
	f.Close()
	if string(head) != "start" {
		t.Errorf("huge.bin starts with %q", head)
	}
	// The quick check compares the > 2 GiB size from the file list with the stored one.
	out := upload(t, root, src+"/", "site/", "-a", "--stats")
	if n := stat(t, out, "Number of regular files transferred"); n != 0 {
		t.Errorf("unchanged huge file transferred again")
	}
}

// extras puts files into the destination that the source does not have.
func deleteFixture(t *testing.T) (src string, tree map[string]string) {
	src = t.TempDir()
	tree = map[string]string{"index.html": "hi\n", "css/a.css": "a\n", "empty/": ""}
	writeTree(t, src, tree)
	return src, tree
}

func TestUploadDeleteVariants(t *testing.T) {
	src, tree := deleteFixture(t)
	extras := map[string]string{
		"old.html":        "old\n",
		"css/old.css":     "old\n",
		"gone/deep/x.txt": "x\n",
		"debug.log":       "kept by exclude\n",
		"css/app.log":     "kept by exclude\n",
		"cache/blob":      "kept: dir exclude\n",
		"keep.txt":        "kept: anchored exclude\n",
	}
	kept := map[string]string{
		"debug.log":   "kept by exclude\n",
		"css/app.log": "kept by exclude\n",
		"cache/blob":  "kept: dir exclude\n",
		"keep.txt":    "kept: anchored exclude\n",
	}
	excludes := []string{"--exclude=*.log", "--exclude=cache/", "--exclude=/keep.txt"}
	for _, variant := range []string{"--delete", "--delete-before", "--delete-during", "--delete-delay", "--delete-after", "--del"} {
		t.Run(variant, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, filepath.Join(root, "site"), extras)
			out := upload(t, root, src+"/", "site/", append([]string{"-rv", variant}, excludes...)...)
			want := maps.Clone(tree)
			maps.Copy(want, kept)
			diffTrees(t, readTree(t, filepath.Join(root, "site")), want)
			for _, msg := range []string{"deleting old.html", "deleting css/old.css", "deleting gone/"} {
				if !strings.Contains(out, msg) {
					t.Errorf("output lacks %q:\n%s", msg, out)
				}
			}
		})
	}
	t.Run("--delete-excluded", func(t *testing.T) {
		root := t.TempDir()
		writeTree(t, filepath.Join(root, "site"), extras)
		upload(t, root, src+"/", "site/", append([]string{"-r", "--delete-excluded"}, excludes...)...)
		diffTrees(t, readTree(t, filepath.Join(root, "site")), tree)
	})
	t.Run("exclude without delete keeps everything", func(t *testing.T) {
		root := t.TempDir()
		writeTree(t, filepath.Join(root, "site"), extras)
		upload(t, root, src+"/", "site/", append([]string{"-r"}, excludes...)...)
		want := maps.Clone(tree)
		maps.Copy(want, extras)
		diffTrees(t, readTree(t, filepath.Join(root, "site")), want)
	})
	t.Run("include overrides a later exclude", func(t *testing.T) {
		root := t.TempDir()
		writeTree(t, filepath.Join(root, "site"), extras)
		upload(t, root, src+"/", "site/", "-r", "--delete", "--include=debug.log", "--exclude=*.log")
		want := maps.Clone(tree)
		want["css/app.log"] = extras["css/app.log"]
		diffTrees(t, readTree(t, filepath.Join(root, "site")), want)
	})
	t.Run("dry run deletes nothing", func(t *testing.T) {
		root := t.TempDir()
		writeTree(t, filepath.Join(root, "site"), extras)
		before := readTree(t, filepath.Join(root, "site"))
		out := upload(t, root, src+"/", "site/", "-rvn", "--delete")
		diffTrees(t, readTree(t, filepath.Join(root, "site")), before)
		if !strings.Contains(out, "deleting old.html") {
			t.Errorf("dry run does not report deletions:\n%s", out)
		}
	})
}

func TestUploadDeleteScopeIsTheTopDir(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"public/index.html": "hi\n"})
	root := t.TempDir()
	writeTree(t, filepath.Join(root, "site"), map[string]string{"other.txt": "not in scope\n", "public/old.txt": "old\n"})
	// `rsync -r --delete public host:site/` syncs site/public only.
	upload(t, root, filepath.Join(src, "public"), "site/", "-r", "--delete")
	diffTrees(t, readTree(t, filepath.Join(root, "site")), map[string]string{"other.txt": "not in scope\n", "public/index.html": "hi\n"})
}

func TestUploadQuickCheckOptions(t *testing.T) {
	mtime := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	// setup writes src/f.txt and site/f.txt with the same size; sameTime gives them the same mtime.
	setup := func(t *testing.T, sameTime bool) (src, root string) {
		src, root = t.TempDir(), t.TempDir()
		writeTree(t, src, map[string]string{"f.txt": "new content\n"})
		writeTree(t, filepath.Join(root, "site"), map[string]string{"f.txt": "old content\n"})
		setTime(t, filepath.Join(src, "f.txt"), mtime)
		if sameTime {
			setTime(t, filepath.Join(root, "site/f.txt"), mtime)
		}
		return src, root
	}
	tests := []struct {
		name     string
		sameTime bool
		args     []string
		want     string
	}{
		{"same size and time is skipped", true, []string{"-a"}, "old content\n"},
		{"-c compares content", true, []string{"-ac"}, "new content\n"},
		{"-I ignores times", true, []string{"-aI"}, "new content\n"},
		{"different time is sent", false, []string{"-a"}, "new content\n"},
		{"--size-only skips same size", false, []string{"-a", "--size-only"}, "old content\n"},
		{"--ignore-existing", false, []string{"-a", "--ignore-existing"}, "old content\n"},
		{"--checksum-seed", false, []string{"-a", "--checksum-seed=12345"}, "new content\n"},
		{"-W whole file", false, []string{"-aW"}, "new content\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, root := setup(t, tt.sameTime)
			upload(t, root, src+"/", "site/", tt.args...)
			got, err := os.ReadFile(filepath.Join(root, "site/f.txt"))
			if err != nil || string(got) != tt.want {
				t.Errorf("f.txt = %q (%v), want %q", got, err, tt.want)
			}
		})
	}
	t.Run("-c matches content despite times", func(t *testing.T) {
		src, root := t.TempDir(), t.TempDir()
		writeTree(t, src, map[string]string{"f.txt": "same\n"})
		writeTree(t, filepath.Join(root, "site"), map[string]string{"f.txt": "same\n"})
		setTime(t, filepath.Join(src, "f.txt"), mtime)
		out := upload(t, root, src+"/", "site/", "-ac", "--stats")
		if n := stat(t, out, "Number of regular files transferred"); n != 0 {
			t.Errorf("-c transferred an identical file")
		}
	})
	t.Run("--existing", func(t *testing.T) {
		src, root := setup(t, false)
		writeTree(t, src, map[string]string{"new.txt": "new\n", "new dir/f.txt": "new\n"})
		upload(t, root, src+"/", "site/", "-a", "--existing")
		for _, name := range []string{"new.txt", "new dir"} {
			if _, err := os.Stat(filepath.Join(root, "site", name)); err == nil {
				t.Errorf("--existing created %s", name)
			}
		}
	})
}

// TestUploadKeptTimes: an FS that cannot keep the client's time (a TimeKeeper storing no time
// after 2030) still skips an unchanged file on the next upload, and leaves its time alone: the
// quick check compares the time the FS would keep.
func TestUploadKeptTimes(t *testing.T) {
	until := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	t.Setenv(keepUntilEnv, strconv.FormatInt(until.Unix(), 10))
	src, root := t.TempDir(), t.TempDir()
	writeTree(t, src, map[string]string{"late.txt": "from 2035\n", "early.txt": "from 2020\n"})
	setTime(t, filepath.Join(src, "late.txt"), time.Date(2035, 6, 1, 0, 0, 0, 0, time.UTC))
	setTime(t, filepath.Join(src, "early.txt"), time.Date(2020, 6, 1, 0, 0, 0, 0, time.UTC))
	out := upload(t, root, src+"/", "site/", "-a", "--stats")
	if n := stat(t, out, "Number of regular files transferred"); n != 2 {
		t.Fatalf("first upload transferred %d files, want 2\n%s", n, out)
	}
	st, err := os.Stat(filepath.Join(root, "site/late.txt"))
	if err != nil || !st.ModTime().Equal(until) {
		t.Fatalf("late.txt kept %v (%v), want %v", st.ModTime(), err, until)
	}
	for _, args := range [][]string{{"-a"}, {"-a", "--modify-window=1"}, {"-au"}} {
		out = upload(t, root, src+"/", "site/", append(args, "--stats", "-i")...)
		if n := stat(t, out, "Number of regular files transferred"); n != 0 {
			t.Errorf("rsync %v: an unchanged upload transferred %d files\n%s", args, n, out)
		}
		if strings.Contains(out, "late.txt") {
			t.Errorf("rsync %v: late.txt itemized as changed\n%s", args, out)
		}
	}
	writeTree(t, src, map[string]string{"late.txt": "changed 2035\n"})
	setTime(t, filepath.Join(src, "late.txt"), time.Date(2035, 6, 2, 0, 0, 0, 0, time.UTC))
	out = upload(t, root, src+"/", "site/", "-a", "--stats")
	if n := stat(t, out, "Number of regular files transferred"); n != 1 {
		t.Errorf("a changed size was not sent: %d files\n%s", n, out)
	}
}

func TestUploadDryRunWritesNothing(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, sampleTree())
	root := t.TempDir()
	out := upload(t, root, src+"/", "site/", "-avn")
	if got := readTree(t, root); len(got) != 0 {
		t.Errorf("dry run wrote %v", got)
	}
	if !strings.Contains(out, "index.html") {
		t.Errorf("dry run does not list the files:\n%s", out)
	}
	writeTree(t, filepath.Join(root, "site"), map[string]string{"index.html": "old\n"})
	before := readTree(t, root)
	upload(t, root, src+"/", "site/", "-avn", "--delete")
	diffTrees(t, readTree(t, root), before)
}

func TestUploadProtectArgs(t *testing.T) {
	src := t.TempDir()
	tree := map[string]string{"a b.txt": "spaces\n"}
	writeTree(t, src, tree)
	root := t.TempDir()
	writeTree(t, filepath.Join(root, "my site"), map[string]string{"stale.txt": "x\n"})
	upload(t, root, src+"/", "/my site/", "-rs", "--delete")
	diffTrees(t, readTree(t, filepath.Join(root, "my site")), tree)
	// Without -s the client escapes shell characters in the command line.
	for _, dest := range []string{"my site", `it's "$HOME" & ü; *`} {
		root = t.TempDir()
		upload(t, root, src+"/", "/"+dest+"/", "-r")
		diffTrees(t, readTree(t, filepath.Join(root, dest)), tree)
	}
}

func TestUploadRefusedOptions(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a.txt": "a\n"})
	for _, args := range [][]string{
		{"-r", "--inplace"},
		{"-r", "--append"},
		{"-rH"},
		{"-r", "--backup-dir=old"},
		{"-rb"},
		{"-r", "--partial-dir=.p"},
		{"-r", "--delay-updates"},
		{"-r", "--remove-source-files"},
		{"-rC"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			root := t.TempDir()
			out, code := uploadStatus(t, root, src+"/", "site/", args...)
			if code == 0 {
				t.Errorf("exit 0, want a refusal\n%s", out)
			}
			if !strings.Contains(out, "not supported by this server") {
				t.Errorf("no refusal message:\n%s", out)
			}
			if got := readTree(t, root); len(got) != 0 {
				t.Errorf("refused run wrote %v", got)
			}
		})
	}
}

func TestUploadUnsafeDestination(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a.txt": "a\n"})
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dest := range []string{"../x", "/../../etc", "site/../../x", ".."} {
		t.Run(dest, func(t *testing.T) {
			out, code := uploadStatus(t, root, src+"/", dest, "-r")
			if code == 0 || !strings.Contains(out, "unsafe destination") {
				t.Errorf("exit %d, want a refusal naming the unsafe destination\n%s", code, out)
			}
			if got := readTree(t, parent); len(got) != 1 {
				t.Errorf("wrote %v", got)
			}
		})
	}
}

func TestUploadSymlinks(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a.txt": "a\n"})
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	out := upload(t, root, src+"/", "site/", "-av")
	diffTrees(t, readTree(t, filepath.Join(root, "site")), map[string]string{"a.txt": "a\n"})
	if !strings.Contains(out, `skipping symlink "link"`) {
		t.Errorf("no warning about the skipped symlink:\n%s", out)
	}

	// A symlink in the destination is never written through.
	outside := t.TempDir()
	root = t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "site"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "site/dir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "f.txt"), filepath.Join(root, "site/f.txt")); err != nil {
		t.Fatal(err)
	}
	src = t.TempDir()
	writeTree(t, src, map[string]string{"dir/x.txt": "x\n", "f.txt": "f\n"})
	upload(t, root, src+"/", "site/", "-r")
	if got := readTree(t, outside); len(got) != 0 {
		t.Errorf("wrote through a symlink: %v", got)
	}
	diffTrees(t, readTree(t, filepath.Join(root, "site")), map[string]string{"dir/x.txt": "x\n", "f.txt": "f\n"})
}

func TestUploadSingleFile(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"one.txt": "1\n"})
	root := t.TempDir()
	upload(t, root, filepath.Join(src, "one.txt"), "renamed.txt", "-a")
	upload(t, root, filepath.Join(src, "one.txt"), "dir/", "-a")
	diffTrees(t, readTree(t, root), map[string]string{"renamed.txt": "1\n", "dir/one.txt": "1\n"})
}

func TestUploadReplacesTypes(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"was-dir": "now a file\n", "was-file/x.txt": "now a dir\n"})
	setup := func(t *testing.T) string {
		root := t.TempDir()
		writeTree(t, filepath.Join(root, "site"), map[string]string{"was-dir/old.txt": "old\n", "was-file": "old\n"})
		return root
	}
	t.Run("--force", func(t *testing.T) {
		root := setup(t)
		upload(t, root, src+"/", "site/", "-r", "--force")
		diffTrees(t, readTree(t, filepath.Join(root, "site")), map[string]string{"was-dir": "now a file\n", "was-file/x.txt": "now a dir\n"})
	})
	t.Run("no --force keeps a non-empty directory", func(t *testing.T) {
		root := setup(t)
		out, code := uploadStatus(t, root, src+"/", "site/", "-r")
		if code != exitPartial || !strings.Contains(out, "was-dir") {
			t.Errorf("exit %d, want %d with an error naming was-dir\n%s", code, exitPartial, out)
		}
		diffTrees(t, readTree(t, filepath.Join(root, "site")), map[string]string{"was-dir/old.txt": "old\n", "was-file/x.txt": "now a dir\n"})
	})
}

func TestUploadMaxDelete(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"keep.txt": "k\n"})
	root := t.TempDir()
	writeTree(t, filepath.Join(root, "site"), map[string]string{"a": "", "b": "", "c": ""})
	out, code := uploadStatus(t, root, src+"/", "site/", "-r", "--delete", "--max-delete=1")
	if code != exitDelLimit || !strings.Contains(out, "--max-delete") {
		t.Errorf("exit %d, want %d and a note about --max-delete\n%s", code, exitDelLimit, out)
	}
	if got := readTree(t, filepath.Join(root, "site")); len(got) != 3 {
		t.Errorf("after --max-delete=1: %v, want keep.txt and two of a, b, c", got)
	}
}

func TestUploadUpdateSkipsNewerFiles(t *testing.T) {
	src, root := t.TempDir(), t.TempDir()
	writeTree(t, src, map[string]string{"f.txt": "older\n"})
	writeTree(t, filepath.Join(root, "site"), map[string]string{"f.txt": "newer\n"})
	setTime(t, filepath.Join(src, "f.txt"), time.Now().Add(-time.Hour))
	upload(t, root, src+"/", "site/", "-au")
	diffTrees(t, readTree(t, filepath.Join(root, "site")), map[string]string{"f.txt": "newer\n"})
}

func TestUploadSkipsSpecialFiles(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a.txt": "a\n", "z.txt": "z\n"})
	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	for _, args := range [][]string{{"-av"}, {"-av", "--numeric-ids"}, {"-rlptDv", "--no-specials"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			root := t.TempDir()
			upload(t, root, src+"/", "site/", args...)
			diffTrees(t, readTree(t, filepath.Join(root, "site")), map[string]string{"a.txt": "a\n", "z.txt": "z\n"})
		})
	}
}

// TestUploadManyChangedFiles changes every file of a tree: checksums flow to the client while
// file data flows back. A server that wrote every request before reading would fill both pipes
// and hang.
func TestUploadManyChangedFiles(t *testing.T) {
	src := t.TempDir()
	tree := map[string]string{}
	for i := range 100 {
		tree[fmt.Sprintf("d%d/f%03d.bin", i%7, i)] = string(randomBytes(100_000, uint64(i)))
	}
	writeTree(t, src, tree)
	root := t.TempDir()
	upload(t, root, src+"/", "site/", "-a")
	later := time.Now().Add(time.Hour)
	for name, content := range tree {
		b := []byte(content)
		b[50_000] ^= 0xff
		tree[name] = string(b)
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		setTime(t, p, later)
	}
	out := upload(t, root, src+"/", "site/", "-a", "--stats")
	diffTrees(t, readTree(t, filepath.Join(root, "site")), tree)
	if n := stat(t, out, "Number of regular files transferred"); n != 100 {
		t.Errorf("%d files transferred, want 100", n)
	}
	if literal := stat(t, out, "Literal data"); literal > 100*2*700 {
		t.Errorf("literal data %d bytes for one changed byte per file", literal)
	}
}

// TestUploadInterruptedLeavesNothing kills the client in the middle of a file: the server must
// drop the partial data (no file under its name, no temporary file left).
func TestUploadInterruptedLeavesNothing(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"big.bin": string(randomBytes(8<<20, 3))})
	root := t.TempDir()
	cmd := exec.Command(rsyncClient(t), "-e", uploadWrapper(t, root), "-r", "--bwlimit=1000", src+"/", "host:site/")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The files in site/ while the server may be removing some.
	list := func() []string {
		ents, _ := os.ReadDir(filepath.Join(root, "site"))
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	// Wait until the server has its temporary file open (unnamed where the file system has
	// O_TMPFILE, so it shows only among the server's descriptors), then break the connection.
	site := filepath.Join(root, "site") + "/"
	writing := func() bool {
		fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
		for _, fd := range fds {
			if target, err := os.Readlink(fd); err == nil && strings.HasPrefix(target, site) {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(10 * time.Second)
	for !writing() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !writing() {
		t.Fatal("the server never opened a file in site/")
	}
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Kill()
	cmd.Wait()
	for names := list(); len(names) > 0; names = list() {
		if time.Now().After(deadline) {
			t.Fatalf("after the interrupted upload site/ holds %q, want nothing", names)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUploadDeleteNeverFollowsSymlinks deletes around symbolic links that lead out of the
// destination: only the links go, never what they point to.
func TestUploadDeleteNeverFollowsSymlinks(t *testing.T) {
	for _, variant := range []string{"--delete", "--delete-during", "--delete-after"} {
		t.Run(variant, func(t *testing.T) {
			outside := t.TempDir()
			writeTree(t, outside, map[string]string{"keep.txt": "outside\n", "sub/keep.txt": "outside\n"})
			root := t.TempDir()
			writeTree(t, filepath.Join(root, "site"), map[string]string{"old.txt": "old\n"})
			for name, target := range map[string]string{"site/gone": outside, "site/dir": outside, "site/sub": filepath.Join(outside, "sub")} {
				if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
					t.Fatal(err)
				}
			}
			src := t.TempDir()
			// "dir" and "sub" are directories in the upload, "gone" is not there at all.
			writeTree(t, src, map[string]string{"dir/new.txt": "new\n", "sub/x/y.txt": "y\n"})
			upload(t, root, src+"/", "site/", "-r", variant)
			diffTrees(t, readTree(t, outside), map[string]string{"keep.txt": "outside\n", "sub/keep.txt": "outside\n"})
			diffTrees(t, readTree(t, filepath.Join(root, "site")), map[string]string{"dir/new.txt": "new\n", "sub/x/y.txt": "y\n"})
		})
	}
}
