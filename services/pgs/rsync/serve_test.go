package rsync

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-sh/portico/services/pgs/rsync/internal/delta"
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
	c := &fakeClient{}
	c.int32(32) // the client's protocol version
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
	h := delta.NewFileHash(testSeed)
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
	if v := binary.LittleEndian.Uint32([]byte(out[:4])); v != 27 {
		t.Errorf("protocol version %d, want 27", v)
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
		{`rsync --server -vre.iLsfxCIvu --inplace . /site/`, exitUnsupported, "--inplace"},
		{`rsync --server -vre.iLsfxCIvu --append . /site/`, exitUnsupported, "--append"},
		{`rsync --server -vHre.iLsfxCIvu . /site/`, exitUnsupported, "-H"},
		{`rsync --server -vre.iLsfxCIvu --backup-dir old . /site/`, exitUnsupported, "--backup-dir"},
		{`rsync --server -vre.iLsfxCIvu --compress-choice=zstd . /site/`, exitUnsupported, "zstd"},
		{`rsync --server -vre.iLsfxCIvu --checksum-choice=xxh128 . /site/`, exitUnsupported, "xxh128"},
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
