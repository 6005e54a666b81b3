package rsync

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portico-sh/portico/services/pgs/rsync/internal/delta"
	"github.com/portico-sh/portico/services/pgs/rsync/internal/token"
)

func TestVarintEncoding(t *testing.T) {
	// Encodings checked against rsync's write_varint / write_varlong.
	tests := []struct {
		v    int64
		min  int // 0: varint
		want []byte
	}{
		{0, 0, []byte{0}},
		{0x7f, 0, []byte{0x7f}},
		{0x80, 0, []byte{0x80, 0x80}},
		{0x3fff, 0, []byte{0xbf, 0xff}},
		{0x4000, 0, []byte{0xc0, 0x00, 0x40}},
		{-1, 0, []byte{0xf0, 0xff, 0xff, 0xff, 0xff}},
		{5, 3, []byte{0, 5, 0}},
		{1_700_000_000, 4, []byte{0x65, 0x00, 0xf1, 0x53}},
		{5 << 30, 3, []byte{0xc1, 0, 0, 0, 0x40}},
	}
	for _, tt := range tests {
		var got []byte
		if tt.min == 0 {
			got = appendVarint(nil, int32(tt.v))
		} else {
			got = appendVarlong(nil, tt.v, tt.min)
		}
		if !bytes.Equal(got, tt.want) {
			t.Errorf("encode %d (min %d) = % x, want % x", tt.v, tt.min, got, tt.want)
		}
	}
}

// FuzzVarint checks that every varint and varlong decodes to what was encoded, and that
// arbitrary bytes decode without panicking.
func FuzzVarint(f *testing.F) {
	f.Add(int64(0), []byte{0xff, 0xff})
	f.Add(int64(-1), []byte{0xfc, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(int64(math.MaxInt64), []byte{0x80})
	f.Fuzz(func(t *testing.T, v int64, wire []byte) {
		r := newWireReader(bytes.NewReader(appendVarint(nil, int32(v))))
		if got, err := r.varint(); err != nil || got != int32(v) {
			t.Fatalf("varint %d: got %d, %v", int32(v), got, err)
		}
		for _, m := range []int{3, 4} {
			if v < 0 {
				break // rsync sends no negative varlongs but mtimes, which the next case covers
			}
			r := newWireReader(bytes.NewReader(appendVarlong(nil, v, m)))
			if got, err := r.varlong(m); err != nil || got != v {
				t.Fatalf("varlong %d/%d: got %d, %v", v, m, got, err)
			}
		}
		r = newWireReader(bytes.NewReader(appendVarlong(nil, int64(int32(v)), 4)))
		if got, err := r.varlong(4); err != nil || got != int64(int32(v)) {
			t.Fatalf("varlong %d/4: got %d, %v", int32(v), got, err)
		}
		in := newWireReader(bytes.NewReader(wire))
		in.varint()
		in = newWireReader(bytes.NewReader(wire))
		in.varlong(3)
		in = newWireReader(bytes.NewReader(wire))
		in.vstring(maxNegotiationString)
	})
}

// FuzzNDX checks that file indexes survive the protocol-30 difference encoding in any order and
// that arbitrary bytes never decode to an index below NDX_DONE other than the known ones.
func FuzzNDX(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff}, []byte{0xfe, 0x80, 1, 2, 3})
	f.Fuzz(func(t *testing.T, seq []byte, wire []byte) {
		var ndxs []int32
		for len(seq) >= 4 {
			v := int32(binary.LittleEndian.Uint32(seq))
			seq = seq[4:]
			if v < -101 || v == math.MinInt32 {
				continue
			}
			ndxs = append(ndxs, v)
		}
		w, r := newNDXCodec(30), newNDXCodec(30)
		var b []byte
		for _, v := range ndxs {
			b = w.append(b, v)
		}
		in := newWireReader(bytes.NewReader(b))
		for _, v := range ndxs {
			got, err := r.read(in)
			if err != nil || got != v {
				t.Fatalf("ndx %d: got %d, %v", v, got, err)
			}
		}
		rr := newNDXCodec(31)
		in = newWireReader(bytes.NewReader(wire))
		for {
			if _, err := rr.read(in); err != nil {
				break
			}
		}
	})
}

func TestNegotiationChoice(t *testing.T) {
	tests := []struct {
		list string
		sum  delta.Checksum
		ok   bool
	}{
		{"xxh128 xxh3 xxh64 md5 md4 sha1 none", delta.XXH128, true},
		{"sha1 md5 xxh128", delta.MD5, true},
		{"xxhash", delta.XXH64, true},
		{"sha1 none", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, ok := chooseChecksum(tt.list)
		if ok != tt.ok || got != tt.sum {
			t.Errorf("chooseChecksum(%q) = %v, %v", tt.list, got, ok)
		}
	}
	if c, ok := chooseCompression("zstd lz4 zlibx zlib"); !ok || c != token.Zstd {
		t.Errorf("compression %v %v", c, ok)
	}
	if c, ok := chooseCompression("brotli zlib"); !ok || c != token.Zlib {
		t.Errorf("compression %v %v", c, ok)
	}
	if got := subProtocol(32, "."); got != 32 {
		t.Errorf("release client: %d", got)
	}
	if got := subProtocol(32, "32.1iLsfxCIvu"); got != 31 {
		t.Errorf("pre-release client: %d", got)
	}
}

// client32 builds what a protocol-32 client (rsync 3.2+) sends to a receiving server: version,
// checksum list, then a multiplexed stream.
type client32 struct {
	head bytes.Buffer // before multiplexing
	data []byte       // the DATA payload
	enc  flistEncoder
	ndx  ndxCodec
}

func newClient32() *client32 {
	c := &client32{enc: flistEncoder{proto: testProto(32)}, ndx: newNDXCodec(32)}
	binary.Write(&c.head, binary.LittleEndian, int32(32))
	c.head.Write(appendVstring(nil, "xxh128 xxh3 md5 md4"))
	return c
}

func (c *client32) entry(name string, mode uint32, size int64) {
	c.data = c.enc.appendEntry(c.data, &sendEntry{name: name, mode: mode, size: size, mtime: 1_700_000_000})
}

func (c *client32) file(ndx int32, data []byte) {
	c.data = c.ndx.append(c.data, ndx)
	c.data = append(c.data, 0, 0x80) // ITEM_TRANSFER
	c.data = append(c.data, make([]byte, 16)...)
	if len(data) > 0 {
		c.data = appendInt32(c.data, int32(len(data)))
		c.data = append(c.data, data...)
	}
	c.data = appendInt32(c.data, 0)
	h := delta.NewFileHash(delta.XXH128, testSeed)
	h.Write(data)
	c.data = h.Sum(c.data)
}

func (c *client32) bytes() []byte {
	b := append([]byte(nil), c.head.Bytes()...)
	for p := c.data; len(p) > 0; {
		n := min(len(p), 0xffffff)
		b = binary.LittleEndian.AppendUint32(b, uint32(7)<<24|uint32(n))
		b = append(b, p[:n]...)
		p = p[n:]
	}
	return b
}

func TestServeProtocol32Receiver(t *testing.T) {
	c := newClient32()
	c.entry(".", sIFDIR|0o755, 0)
	c.entry("f.txt", sIFREG|0o644, 5)
	c.data = c.enc.appendEndOfList(c.data, 0)
	c.file(1, []byte("hello"))
	c.data = append(c.data, 0, 0, 0, 0) // three phases and the goodbye
	root := t.TempDir()
	code, out, stderr := serveBytes(t, root, "rsync --server -re.iLsfxCIvu --checksum-seed=4242 . dest/", c.bytes())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got, err := os.ReadFile(filepath.Join(root, "dest/f.txt")); err != nil || string(got) != "hello" {
		t.Fatalf("f.txt: %q, %v", got, err)
	}
	// Version, compat flags (safe flist, avoid-xattr, seed fix, inplace, id0 names, varint),
	// the server's checksum list, the seed.
	want := appendInt32(nil, 32)
	want = appendVarint(want, cfSafeFlist|cfAvoidXattrOptim|cfChksumSeedFix|cfInplacePartialDir|cfID0Names|cfVarintFlistFlags)
	want = appendVstring(want, offeredList(true))
	want = appendInt32(want, testSeed)
	if !bytes.HasPrefix([]byte(out), want) {
		t.Errorf("handshake % x, want % x", out[:min(len(out), len(want))], want)
	}
}

// FuzzServeReceiver32 feeds arbitrary client bytes to a protocol-32 receiving session: whatever
// they are, nothing is written outside the root.
func FuzzServeReceiver32(f *testing.F) {
	c := newClient32()
	c.entry(".", sIFDIR|0o755, 0)
	c.entry("d", sIFDIR|0o755, 0)
	c.entry("d/f.txt", sIFREG|0o644, 5)
	c.data = c.enc.appendEndOfList(c.data, 0)
	c.file(2, []byte("hello"))
	c.data = append(c.data, 0, 0, 0, 0)
	f.Add(c.bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		parent := t.TempDir()
		root := filepath.Join(parent, "root")
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		serveBytes(t, root, "rsync --server -rlptDc --delete -e.iLsfxCIvu --checksum-seed=4242 . dest/", in)
		entries, err := os.ReadDir(parent)
		if err != nil || len(entries) != 1 {
			t.Fatalf("wrote outside the root: %v", entries)
		}
	})
}

// FuzzNegotiation reads a negotiation string as the client sends it (a vstring) and chooses from
// it: a choice is always one of the names in the list.
func FuzzNegotiation(f *testing.F) {
	f.Add(appendVstring(nil, "xxh128 xxh3 xxh64 md5 md4 sha1 none"))
	f.Add(appendVstring(nil, "zstd lz4 zlibx zlib"))
	f.Add([]byte{0xff, 0xff, 'a'})
	f.Fuzz(func(t *testing.T, wire []byte) {
		list, err := newWireReader(bytes.NewReader(wire)).vstring(maxNegotiationString)
		if err != nil {
			return
		}
		names := map[string]bool{}
		for name := range strings.FieldsSeq(strings.ToLower(list)) {
			names[name] = true
		}
		if c, ok := chooseChecksum(list); ok && !names[c.String()] && !(c == delta.XXH64 && names["xxhash"]) {
			t.Fatalf("checksum %v chosen from %q", c, list)
		}
		if c, ok := chooseCompression(list); ok && !names[c.String()] {
			t.Fatalf("compression %v chosen from %q", c, list)
		}
	})
}
