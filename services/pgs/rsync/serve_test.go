package rsync

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/portico-sh/portico/services/pgs/rsync/internal/delta"
	"github.com/portico-sh/portico/services/pgs/rsync/internal/token"
)

// testSeed is the --checksum-seed the crafted sessions use, so that their file checksums can be
// computed in advance.
const testSeed = 4242

// fakeClient builds what a protocol-27 client sends to a receiving server, for inputs the real
// client never produces.
type fakeClient struct {
	buf bytes.Buffer
	enc flistEncoder
}

func newFakeClient() *fakeClient {
	c := &fakeClient{enc: flistEncoder{proto: testProto(27)}}
	c.int32(27) // the client's protocol version: the crafted sessions speak 27
	return c
}

func (c *fakeClient) int32(v int32) {
	binary.Write(&c.buf, binary.LittleEndian, v)
}

func (c *fakeClient) entry(name string, mode uint32, size int64) {
	c.buf.Write(c.enc.appendEntry(nil, &sendEntry{name: name, mode: mode, size: size, mtime: 1_600_000_000}))
}

// endList ends the file list and sends io_error 0.
func (c *fakeClient) endList() {
	c.buf.WriteByte(0)
	c.int32(0)
}

// file sends one requested file as a single literal, with a correct or a wrong checksum.
func (c *fakeClient) file(ndx int32, data []byte, goodSum bool) {
	c.int32(ndx)
	for range 4 {
		c.int32(0) // the echoed empty sum head
	}
	if len(data) > 0 {
		c.int32(int32(len(data)))
		c.buf.Write(data)
	}
	c.int32(0)
	h := delta.NewFileHash(delta.MD4Old, testSeed)
	h.Write(data)
	sum := h.Sum(nil)
	if !goodSum {
		sum[0] ^= 0xff
	}
	c.buf.Write(sum)
}

// serveBytes runs Serve as a receiver over DirFS(root) with the given client bytes.
func serveBytes(t *testing.T, root, command string, in []byte) (code int, out, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = Serve(ctx, command, bytes.NewReader(in), &o, &e, DirFS(root))
	return code, o.String(), e.String()
}

const recvCommand = "rsync --server -re.iLsfxCIvu --checksum-seed=4242 . dest/"

func TestServeHandshake(t *testing.T) {
	c := newFakeClient()
	c.endList()
	c.int32(-1)
	c.int32(-1)
	code, out, _ := serveBytes(t, t.TempDir(), recvCommand, c.buf.Bytes())
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if len(out) < 8 {
		t.Fatalf("output %q", out)
	}
	if v := binary.LittleEndian.Uint32([]byte(out[:4])); v != maxProtocol {
		t.Errorf("protocol version %d, want %d", v, maxProtocol)
	}
	if seed := binary.LittleEndian.Uint32([]byte(out[4:8])); seed != testSeed {
		t.Errorf("seed %d, want the --checksum-seed %d", seed, testSeed)
	}
	// Without --checksum-seed the seed is random and never 0.
	seeds := map[uint32]bool{}
	for range 3 {
		_, out, _ = serveBytes(t, t.TempDir(), "rsync --server -r . dest/", c.buf.Bytes())
		seed := binary.LittleEndian.Uint32([]byte(out[4:8]))
		if seed == 0 {
			t.Error("seed 0")
		}
		seeds[seed] = true
	}
	if len(seeds) < 2 {
		t.Errorf("the seed does not change between sessions: %v", seeds)
	}
}

func TestServeCommitsOnlyVerifiedFiles(t *testing.T) {
	t.Run("checksum fails twice", func(t *testing.T) {
		root := t.TempDir()
		c := newFakeClient()
		c.entry(".", sIFDIR|0o755, 0)
		c.entry("bad.txt", sIFREG|0o644, 5)
		c.endList()
		c.file(1, []byte("hello"), false)
		c.int32(-1)
		c.file(1, []byte("hello"), false) // the redo phase
		c.int32(-1)
		code, out, _ := serveBytes(t, root, recvCommand, c.buf.Bytes())
		if code != exitPartial {
			t.Errorf("exit %d, want %d", code, exitPartial)
		}
		if !strings.Contains(out, "failed verification") {
			t.Errorf("no verification error in %q", out)
		}
		diffTrees(t, readTree(t, root), map[string]string{"dest/": ""})
	})
	t.Run("redo succeeds", func(t *testing.T) {
		root := t.TempDir()
		c := newFakeClient()
		c.entry(".", sIFDIR|0o755, 0)
		c.entry("ok.txt", sIFREG|0o644, 5)
		c.endList()
		c.file(1, []byte("hello"), false)
		c.int32(-1)
		c.file(1, []byte("hello"), true)
		c.int32(-1)
		if code, out, _ := serveBytes(t, root, recvCommand, c.buf.Bytes()); code != 0 {
			t.Errorf("exit %d: %q", code, out)
		}
		diffTrees(t, readTree(t, root), map[string]string{"dest/ok.txt": "hello"})
	})
}

func TestServeAbortedTransferLeavesNothing(t *testing.T) {
	root := t.TempDir()
	c := newFakeClient()
	c.entry(".", sIFDIR|0o755, 0)
	c.entry("done.txt", sIFREG|0o644, 4)
	c.entry("half.txt", sIFREG|0o644, 1000)
	c.endList()
	c.file(1, []byte("done"), true)
	c.int32(2)
	for range 4 {
		c.int32(0)
	}
	c.int32(1000)
	c.buf.Write(bytes.Repeat([]byte("x"), 500)) // the connection breaks here
	code, _, _ := serveBytes(t, root, recvCommand, c.buf.Bytes())
	if code == 0 {
		t.Error("exit 0 for a broken stream")
	}
	// The verified file stays; nothing of the broken one, not even a temporary file.
	diffTrees(t, readTree(t, root), map[string]string{"dest/done.txt": "done"})
}

func TestServeRejectsUnsafeFileNames(t *testing.T) {
	for _, name := range []string{"../evil", "/etc/evil", "a/../../evil", "a//b", "a/./b", "..", "a/.."} {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			root := filepath.Join(parent, "root")
			if err := os.Mkdir(root, 0o755); err != nil {
				t.Fatal(err)
			}
			c := newFakeClient()
			c.entry(".", sIFDIR|0o755, 0)
			c.entry(name, sIFREG|0o644, 4)
			c.endList()
			c.file(1, []byte("evil"), true)
			c.int32(-1)
			c.int32(-1)
			code, out, _ := serveBytes(t, root, recvCommand, c.buf.Bytes())
			if code != exitProtocol || !strings.Contains(out, "unsafe pathname") {
				t.Errorf("exit %d, output %q; want %d and an unsafe pathname error", code, out, exitProtocol)
			}
			diffTrees(t, readTree(t, parent), map[string]string{"root/": ""})
		})
	}
}

// TestServeBoundsClientSizes sends lengths that would allocate gigabytes if trusted.
func TestServeBoundsClientSizes(t *testing.T) {
	le := func(v int32) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(v)) }
	version := le(32)
	tests := []struct {
		name    string
		command string
		in      []byte
	}{
		{"long file name", recvCommand, bytes.Join([][]byte{version, {xmitLongName}, le(1 << 30)}, nil)},
		{"negative file name length", recvCommand, bytes.Join([][]byte{version, {xmitLongName}, le(-5)}, nil)},
		{"filter rule", "rsync --server -r --delete . dest/", bytes.Join([][]byte{version, le(1 << 30)}, nil)},
		{"symlink target", "rsync --server -rl . dest/", bytes.Join([][]byte{version, {xmitTopDir}, {1}, []byte("l"), le(0), le(0), le(sIFLNK | 0o777), le(1 << 30)}, nil)},
		{"name prefix longer than the previous name", recvCommand, bytes.Join([][]byte{version, {xmitSameName}, {200}, {1}, []byte("x")}, nil)},
		{"literal token", recvCommand, func() []byte {
			c := newFakeClient()
			c.entry(".", sIFDIR|0o755, 0)
			c.entry("f", sIFREG|0o644, 10)
			c.endList()
			c.int32(1)
			for range 4 {
				c.int32(0)
			}
			c.int32(0x7fffffff)
			return c.buf.Bytes()
		}()},
		{"block beyond the sums", recvCommand, func() []byte {
			c := newFakeClient()
			c.entry(".", sIFDIR|0o755, 0)
			c.entry("f", sIFREG|0o644, 10)
			c.endList()
			c.int32(1)
			for range 4 {
				c.int32(0)
			}
			c.int32(-1000) // block 999 of none
			return c.buf.Bytes()
		}()},
		{"sum head not as sent", recvCommand, func() []byte {
			c := newFakeClient()
			c.entry(".", sIFDIR|0o755, 0)
			c.entry("f", sIFREG|0o644, 10)
			c.endList()
			c.int32(1)
			c.int32(1 << 30)
			c.int32(1 << 29)
			c.int32(16)
			c.int32(0)
			return c.buf.Bytes()
		}()},
		{"file not requested", recvCommand, func() []byte {
			c := newFakeClient()
			c.entry(".", sIFDIR|0o755, 0)
			c.endList()
			c.file(0, []byte("x"), true)
			return c.buf.Bytes()
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			code, _, _ := serveBytes(t, root, tt.command, tt.in)
			if code == 0 {
				t.Errorf("exit 0")
			}
			for name := range readTree(t, root) {
				if !strings.HasSuffix(name, "/") {
					t.Errorf("wrote %s", name)
				}
			}
		})
	}
}

func TestServeCommandLine(t *testing.T) {
	tests := []struct {
		command string
		code    int // 0: accepted
		msg     string
	}{
		{`rsync --server -vre.iLsfxCIvu --delete . /site/`, 0, ""},
		{`rsync --server -vlogDtprze.iLsfxCIvu --delete-after --log-format=%i --stats --partial . /site/`, 0, ""},
		{`rsync --server -vrze.iLsfxCIvu --max-alloc=1M --skip-compress=gz/jpg . /site/`, 0, ""},
		{`rsync --server -de.LsfxCIvu --list-only . /site/`, exitUnsupported, "--list-only"},
		{`rsync --server -vre.iLsfxCIvu --inplace . /site/`, exitUnsupported, "--inplace"},
		{`rsync --server -vre.iLsfxCIvu --append . /site/`, exitUnsupported, "--append"},
		{`rsync --server -vHre.iLsfxCIvu . /site/`, exitUnsupported, "-H"},
		{`rsync --server -vre.iLsfxCIvu --backup-dir old . /site/`, exitUnsupported, "--backup-dir"},
		{`rsync --server -vre.iLsfxCIvu --compress-choice=zstd . /site/`, 0, ""},
		{`rsync --server -vre.iLsfxCIvu --checksum-choice=xxh128 . /site/`, 0, ""},
		{`rsync --server -vre.iLsfxCIvu --compress-choice=brotli . /site/`, exitUnsupported, "brotli"},
		{`rsync --server -vre.iLsfxCIvu --checksum-choice=sha1 . /site/`, exitUnsupported, "sha1"},
		{`rsync --server -vre.iLsfxCIvu --checksum-choice=md5,sha1 . /site/`, exitUnsupported, "sha1"},
		{`rsync --server -vre.iLsfxCIvu --frobnicate . /site/`, exitSyntax, "unknown option --frobnicate"},
		{`rsync --server -vQr . /site/`, exitSyntax, "unknown option -Q"},
		{`ls -la`, exitSyntax, "not an rsync command"},
		{`rsync --daemon`, exitSyntax, "--server"},
		{`rsync --server -r . '/site`, exitSyntax, "quote"},
	}
	for _, tt := range tests {
		t.Run(tt.command, func(t *testing.T) {
			c := newFakeClient()
			if strings.Contains(tt.command, "--delete") {
				c.int32(0) // no filter rules
			}
			c.endList()
			if strings.Contains(tt.command, "-vlogD") {
				c.buf.Truncate(c.buf.Len() - 4)
				c.int32(0) // no uid names
				c.int32(0) // no gid names
				c.int32(0) // io_error
			}
			c.int32(-1)
			c.int32(-1)
			code, out, stderr := serveBytes(t, t.TempDir(), tt.command, c.buf.Bytes())
			if tt.code == 0 {
				if code != 0 {
					t.Errorf("exit %d, stderr %q", code, stderr)
				}
				return
			}
			if code != tt.code || !strings.Contains(stderr, tt.msg) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.msg)
			}
			if out != "" {
				t.Errorf("a refused session wrote %q to the client", out)
			}
		})
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`rsync --server -vre.iLsfxCIvu . /site/`, []string{"rsync", "--server", "-vre.iLsfxCIvu", ".", "/site/"}},
		{`rsync . /my\ site/`, []string{"rsync", ".", "/my site/"}},
		{`rsync . "/a \"b\" \$c"`, []string{"rsync", ".", `/a "b" $c`}},
		{`rsync . '/it''s'`, []string{"rsync", ".", "/its"}},
		{"rsync  \t .  x", []string{"rsync", ".", "x"}},
		{`rsync . ''`, []string{"rsync", ".", ""}},
		{`rsync . ./-dash`, []string{"rsync", ".", "./-dash"}},
		{`a\\b`, []string{`a\b`}},
	}
	for _, tt := range tests {
		got, err := splitCommand(tt.in)
		if err != nil || strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{`'open`, `"open`, `trailing\`} {
		if _, err := splitCommand(bad); err == nil {
			t.Errorf("splitCommand(%q) accepted", bad)
		}
	}
}

func TestParseDeleteVariantsTurnOnDeleteMode(t *testing.T) {
	for _, opt := range []string{"--delete", "--del", "--delete-before", "--delete-during", "--delete-delay", "--delete-after", "--delete-excluded"} {
		o, err := parseCommand([]string{"rsync", "--server", "-r", opt, ".", "x"})
		if err != nil || !o.deleteMode {
			t.Errorf("%s: delete mode %v, err %v", opt, o != nil && o.deleteMode, err)
		}
	}
}

func TestServeSkipsDeletionAfterClientIOError(t *testing.T) {
	root := t.TempDir()
	writeTree(t, filepath.Join(root, "dest"), map[string]string{"extra.txt": "maybe only unreadable on the client\n"})
	c := newFakeClient()
	c.int32(0) // no filter rules
	c.entry(".", sIFDIR|0o755, 0)
	c.buf.WriteByte(0)
	c.int32(1) // io_error: the client could not read something
	c.int32(-1)
	c.int32(-1)
	code, out, _ := serveBytes(t, root, "rsync --server -vre.iLsfxCIvu --delete . dest/", c.buf.Bytes())
	if code != 0 || !strings.Contains(out, "IO error encountered -- skipping file deletion") {
		t.Errorf("exit %d, output %q", code, out)
	}
	diffTrees(t, readTree(t, root), map[string]string{"dest/extra.txt": "maybe only unreadable on the client\n"})
}

// FuzzServeReceiver feeds arbitrary client bytes to a receiving session: it must neither panic
// nor hang, and must write nothing outside its root.
func FuzzServeReceiver(f *testing.F) {
	c := newFakeClient()
	c.entry(".", sIFDIR|0o755, 0)
	c.entry("d", sIFDIR|0o755, 0)
	c.entry("d/f.txt", sIFREG|0o644, 5)
	c.endList()
	c.file(2, []byte("hello"), true)
	c.int32(-1)
	c.int32(-1)
	f.Add(c.buf.Bytes(), false)
	f.Add(c.buf.Bytes(), true)
	f.Fuzz(func(t *testing.T, in []byte, compress bool) {
		parent := t.TempDir()
		root := filepath.Join(parent, "root")
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		command := "rsync --server -rlptDc --delete . dest/"
		if compress {
			command = "rsync --server -rz . dest/"
		}
		serveBytes(t, root, command, in)
		entries, err := os.ReadDir(parent)
		if err != nil || len(entries) != 1 {
			t.Fatalf("wrote outside the root: %v", entries)
		}
	})
}

// checksumFS answers Checksum from a table and counts the calls.
type checksumFS struct {
	FS
	sums  map[string][16]byte
	calls int
}

func (c *checksumFS) Checksum(name string) ([16]byte, error) {
	c.calls++
	return c.sums[name], nil
}

func TestServeUsesStoredChecksums(t *testing.T) {
	root := t.TempDir()
	writeTree(t, filepath.Join(root, "dest"), map[string]string{"f.txt": "stored"})
	stored := [16]byte{1, 2, 3}
	fsys := &checksumFS{FS: DirFS(root), sums: map[string][16]byte{"dest/f.txt": stored}}
	c := newFakeClient()
	c.enc.fields.checksums = true
	c.buf.Write(c.enc.appendEntry(nil, &sendEntry{name: ".", mode: sIFDIR | 0o755}))
	c.buf.Write(c.enc.appendEntry(nil, &sendEntry{name: "f.txt", mode: sIFREG | 0o644, size: 6, sum: stored}))
	c.endList()
	c.int32(-1)
	c.int32(-1)
	var out, stderr bytes.Buffer
	code := Serve(context.Background(), "rsync --server -rc . dest/", bytes.NewReader(c.buf.Bytes()), &out, &stderr, fsys)
	if code != 0 || fsys.calls != 1 {
		t.Errorf("exit %d, %d Checksum calls; want 0 and 1 (%q)", code, fsys.calls, stderr.String())
	}
}

// TestServeBoundsFilterRules sends more filter rules, or longer ones in total, than a session
// keeps: each is refused as a protocol error, when receiving (--delete) and when sending.
func TestServeBoundsFilterRules(t *testing.T) {
	rules := func(n, size int) []byte {
		c := newFakeClient()
		for range n {
			c.int32(int32(size))
			c.buf.Write(bytes.Repeat([]byte("x"), size))
		}
		c.int32(0)
		return c.buf.Bytes()
	}
	receiverRest := func() []byte {
		c := &fakeClient{enc: flistEncoder{proto: testProto(27)}}
		c.entry(".", sIFDIR|0o755, 0)
		c.endList()
		c.int32(-1)
		c.int32(-1)
		return c.buf.Bytes()
	}()
	senderRest := bytes.Repeat(int32Bytes(-1), 3)
	tests := []struct {
		name, command string
		in            []byte
		msg           string
	}{
		{"receiver count", "rsync --server -r --delete . dest/", append(rules(maxFilterRules+1, 1), receiverRest...), "more than"},
		{"receiver bytes", "rsync --server -r --delete . dest/", append(rules(maxFilterBytes/4000+1, 4000), receiverRest...), "longer than"},
		{"sender count", "rsync --server --sender -r . dest/", append(rules(maxFilterRules+1, 1), senderRest...), "more than"},
		{"sender bytes", "rsync --server --sender -r . dest/", append(rules(maxFilterBytes/4000+1, 4000), senderRest...), "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.Mkdir(filepath.Join(root, "dest"), 0o755); err != nil {
				t.Fatal(err)
			}
			code, out, _ := serveBytes(t, root, tt.command, tt.in)
			if code != exitProtocol || !strings.Contains(out, "filter rules") || !strings.Contains(out, tt.msg) {
				t.Errorf("exit %d, output %q; want %d and an error about the filter rules", code, out, exitProtocol)
			}
		})
	}
}

// TestModifyWindowMinusOne: --modify-window=-1 (-@-1, "compare nanoseconds") must still let the
// quick check skip a file whose whole-second mtime and size match.
func TestModifyWindowMinusOne(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(p, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(1_600_000_000, 0)
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, opt := range []string{"-r@-1", "--modify-window=-1"} {
		o, err := parseCommand([]string{"rsync", "--server", "-r", opt, ".", "x"})
		if err != nil {
			t.Fatal(err)
		}
		s := &recvSession{o: o}
		if !s.upToDate(&fileEntry{name: "f.txt", mode: sIFREG | 0o644, size: 5, mtime: 1_600_000_000}, "f.txt", st) {
			t.Errorf("%s: an unchanged file is not up to date", opt)
		}
	}
}

// TestServeRefusesDeepNames: a name or destination with more directories than maxPathDepth is
// refused before anything is written (every file operation walks the path).
func TestServeRefusesDeepNames(t *testing.T) {
	deep := strings.Repeat("d/", maxPathDepth) + "f"
	ok := strings.Repeat("d/", maxPathDepth-1) + "f"
	for _, tt := range []struct {
		name, dest string
		code       int
	}{
		{deep, "dest/", exitProtocol},
		{"f", strings.Repeat("d/", maxPathDepth+1), exitStream},
		{ok, "dest/", 0},
	} {
		root := t.TempDir()
		c := newFakeClient()
		c.entry(".", sIFDIR|0o755, 0)
		c.entry(tt.name, sIFREG|0o644, 4)
		c.endList()
		c.file(1, []byte("data"), true)
		c.int32(-1)
		c.int32(-1)
		code, out, _ := serveBytes(t, root, "rsync --server -re.iLsfxCIvu --checksum-seed=4242 . "+tt.dest, c.buf.Bytes())
		if code != tt.code {
			t.Errorf("%d directories, destination of %d: exit %d, want %d (%q)", strings.Count(tt.name, "/"), strings.Count(tt.dest, "/"), code, tt.code, out)
		}
		if tt.code != 0 && len(readTree(t, root)) != 0 {
			t.Errorf("refused session wrote %d entries", len(readTree(t, root)))
		}
	}
}

// TestDirFSDeepPathsAreLinear makes, writes and removes a file 2,000 directories down: each
// operation walks the path once (checking every parent from the root took hours).
func TestDirFSDeepPathsAreLinear(t *testing.T) {
	d := DirFS(t.TempDir())
	dir := strings.TrimSuffix(strings.Repeat("a/", 2000), "/")
	start := time.Now()
	s := &recvSession{o: &options{}, fsys: d}
	if err := s.mkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	up, err := d.Create(dir + "/f")
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Commit(time.Unix(1, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Chmod(dir+"/f", 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(dir + "/f"); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("took %v", elapsed)
	}
}

// TestMessagesFitTheClientsBuffer: a message longer than an rsync client's message buffer
// (5,120 bytes) goes out in several frames, each short enough, together the whole text.
func TestMessagesFitTheClientsBuffer(t *testing.T) {
	var out bytes.Buffer
	m := newMuxWriter(&out)
	text := strings.Repeat(`rsync: "\x01\x02" not written `, 1000) + "\n"
	m.message(msgErrorXfer, text)
	var got strings.Builder
	for b := out.Bytes(); len(b) > 0; {
		h := binary.LittleEndian.Uint32(b)
		n := int(h & 0xffffff)
		if tag := int(h>>24) - 7; tag != msgErrorXfer {
			t.Fatalf("tag %d", tag)
		}
		if n >= 5120 {
			t.Errorf("message frame of %d bytes", n)
		}
		got.Write(b[4 : 4+n])
		b = b[4+n:]
	}
	if got.String() != text {
		t.Error("the frames do not add up to the message")
	}
}

// TestServeKeepsDirectoriesAccessible: with -p a directory gets the client's permissions, but
// never without the owner's rwx, or the server could lock itself out of the user's tree.
func TestServeKeepsDirectoriesAccessible(t *testing.T) {
	root := t.TempDir()
	c := newFakeClient()
	c.entry(".", sIFDIR|0o500, 0)
	c.entry("d", sIFDIR|0o055, 0)
	c.endList()
	c.int32(-1)
	c.int32(-1)
	if code, out, _ := serveBytes(t, root, "rsync --server -rpe.iLsfxCIvu . dest/", c.buf.Bytes()); code != 0 {
		t.Fatalf("exit %d: %q", code, out)
	}
	for name, want := range map[string]os.FileMode{"dest": 0o700, "dest/d": 0o755} {
		st, err := os.Stat(filepath.Join(root, name))
		if err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want %v", name, st.Mode().Perm(), err, want)
		}
	}
}

// countingFS records the largest single write and the bytes written to uploads.
type countingFS struct {
	FS
	largest, total int
}

func (c *countingFS) Create(name string) (Upload, error) {
	up, err := c.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &countingUpload{Upload: up, fs: c}, nil
}

type countingUpload struct {
	Upload
	fs *countingFS
}

func (u *countingUpload) Write(p []byte) (int, error) {
	u.fs.largest = max(u.fs.largest, len(p))
	u.fs.total += len(p)
	return u.Upload.Write(p)
}

// TestServeStreamsCompressedBomb: 128 MiB of zeros deflate to about 128 KiB with -z; the
// receiver streams them to the upload in bounded pieces, never holding the file in memory.
func TestServeStreamsCompressedBomb(t *testing.T) {
	const size = 128 << 20
	c := newFakeClient()
	c.entry(".", sIFDIR|0o755, 0)
	c.entry("bomb", sIFREG|0o644, size)
	c.endList()
	c.int32(1)
	for range 4 {
		c.int32(0)
	}
	tw, err := token.NewCompressedWriter(&c.buf, 9)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	h := delta.NewFileHash(delta.MD4Old, testSeed)
	for range size / len(zeros) {
		tw.Literal(zeros)
		h.Write(zeros)
	}
	tw.End()
	c.buf.Write(h.Sum(nil))
	c.int32(-1)
	c.int32(-1)
	if c.buf.Len() > 1<<20 {
		t.Fatalf("the compressed stream is %d bytes", c.buf.Len())
	}
	root := t.TempDir()
	fsys := &countingFS{FS: DirFS(root)}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var out, stderr bytes.Buffer
	code := Serve(context.Background(), "rsync --server -rze.iLsfxCIvu --checksum-seed=4242 . dest/", bytes.NewReader(c.buf.Bytes()), &out, &stderr, fsys)
	runtime.ReadMemStats(&after)
	if code != 0 || fsys.total != size {
		t.Fatalf("exit %d, %d bytes written (%q)", code, fsys.total, stderr.String())
	}
	if fsys.largest > 1<<20 {
		t.Errorf("a write of %d bytes", fsys.largest)
	}
	if grown := int64(after.HeapSys) - int64(before.HeapSys); grown > 32<<20 {
		t.Errorf("the heap grew by %d MiB", grown>>20)
	}
}

// limitFS refuses to write more than max bytes to any upload (as pgs's file size limit).
type limitFS struct {
	FS
	max int
}

func (l limitFS) Create(name string) (Upload, error) {
	up, err := l.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &limitUpload{Upload: up, left: l.max}, nil
}

type limitUpload struct {
	Upload
	left int
}

func (u *limitUpload) Write(p []byte) (int, error) {
	if len(p) > u.left {
		return 0, errors.New("file larger than the limit")
	}
	u.left -= len(p)
	return u.Upload.Write(p)
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestServeBoundsDiscardedData: once files are refused (here: over the FS's size limit), their
// data is read and dropped only up to maxDiscard over the session; compressed bombs do not keep
// the server inflating after that — the session ends, reporting the refusal. Several files each
// under the bound do not add up past it either.
func TestServeBoundsDiscardedData(t *testing.T) {
	for _, tt := range []struct {
		name        string
		files, size int
	}{
		{"one file", 1, 8 * maxDiscard},
		{"many files", 8, maxDiscard / 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeClient()
			c.entry(".", sIFDIR|0o755, 0)
			for i := range tt.files {
				c.entry(fmt.Sprintf("bomb%d", i), sIFREG|0o644, int64(tt.size))
			}
			c.endList()
			zeros := make([]byte, 1<<20)
			for i := range tt.files {
				c.int32(int32(1 + i))
				for range 4 {
					c.int32(0)
				}
				tw, err := token.NewCompressedWriter(&c.buf, 1)
				if err != nil {
					t.Fatal(err)
				}
				for range tt.size / len(zeros) {
					tw.Literal(zeros)
				}
				tw.End()
				c.buf.Write(make([]byte, 16)) // the file is refused: its checksum is never checked
			}
			c.int32(-1)
			c.int32(-1)
			in := &countingReader{r: bytes.NewReader(c.buf.Bytes())}
			var out, stderr bytes.Buffer
			code := Serve(context.Background(), "rsync --server -rze.iLsfxCIvu --checksum-seed=4242 . dest/", in, &out, &stderr, limitFS{FS: DirFS(t.TempDir()), max: 1 << 20})
			if in.n > c.buf.Len()/2 {
				t.Fatalf("exit %d: the server read %d of the %d bytes (all the refused data)", code, in.n, c.buf.Len())
			}
			if code == exitOK || !strings.Contains(out.String(), "file larger than the limit") {
				t.Errorf("exit %d, output %q", code, out.String())
			}
		})
	}
}

// listLimitFS accepts at most n file-list entries.
type listLimitFS struct {
	FS
	n int
}

func (l listLimitFS) MaxListEntries() int { return l.n }

// TestServeListLimiterBoundsFileList: an FS that implements ListLimiter lowers how many
// file-list entries an uploading client may send, at protocol 27 and 32 alike.
func TestServeListLimiterBoundsFileList(t *testing.T) {
	for _, v := range []int{27, 32} {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			var in []byte
			if v == 27 {
				c := newFakeClient()
				c.entry(".", sIFDIR|0o755, 0)
				for i := range 20 {
					c.entry(fmt.Sprintf("f%02d", i), sIFREG|0o644, 0)
				}
				c.endList()
				in = c.buf.Bytes()
			} else {
				c := newClient32()
				c.entry(".", sIFDIR|0o755, 0)
				for i := range 20 {
					c.entry(fmt.Sprintf("f%02d", i), sIFREG|0o644, 0)
				}
				c.data = c.enc.appendEndOfList(c.data, 0)
				in = c.bytes()
			}
			var out, stderr bytes.Buffer
			code := Serve(context.Background(), recvCommand, bytes.NewReader(in), &out, &stderr, listLimitFS{FS: DirFS(t.TempDir()), n: 10})
			if code != exitProtocol || !strings.Contains(out.String(), "file list longer than 10 entries") {
				t.Fatalf("exit %d, output %q, stderr %q", code, out.String(), stderr.String())
			}
		})
	}
}
