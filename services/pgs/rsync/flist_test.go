package rsync

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/portico-sh/portico/services/pgs/rsync/internal/delta"
)

// testProto returns the protocol a real client of that version settles on (compat flags of
// rsync 3.2+ from 30 on; md4 below 30, xxh128 from 30 on).
func testProto(v int) *protocol {
	p := &protocol{version: v, xferSum: delta.MD4Old, fileSum: delta.MD4Old, seed: testSeed}
	if v >= 30 {
		p.varintFlags, p.safeFlist, p.id0Names, p.seedFix = true, true, true, true
		p.xferSum, p.fileSum = delta.XXH128, delta.XXH128
	}
	return p
}

func TestFileListRoundTrip(t *testing.T) {
	for v := minProtocol; v <= maxProtocol; v++ {
		t.Run(fmt.Sprint(v), func(t *testing.T) { testFileListRoundTrip(t, testProto(v)) })
	}
	for v := 30; v <= maxProtocol; v++ {
		// A client without the varint capability (rsync 3.0 and 3.1): one or two flag bytes.
		p := testProto(v)
		p.varintFlags = false
		t.Run(fmt.Sprintf("%d-bytes", v), func(t *testing.T) { testFileListRoundTrip(t, p) })
	}
}

func testFileListRoundTrip(t *testing.T, p *protocol) {
	o := &options{owner: true, group: true, devices: true, specials: true, links: true, checksum: true}
	in := []*sendEntry{
		{name: ".", mode: sIFDIR | 0o755, size: 4096, mtime: 1_700_000_000, topDir: true},
		{name: "big.iso", mode: sIFREG | 0o644, size: 5 << 30, mtime: 1_700_000_000, uid: 1000, gid: 1000, sum: [16]byte{1, 2, 3}},
		{name: "future.txt", mode: sIFREG | 0o644, size: 3, mtime: 4_000_000_000, uid: 1000, gid: 100},
		{name: strings.Repeat("n", 300), mode: sIFREG | 0o600, size: 0, mtime: 1},
		{name: "dir", mode: sIFDIR | 0o700, mtime: 1},
		{name: "dir/link", mode: sIFLNK | 0o777, size: 6, link: "target", mtime: 1},
		{name: "dir/null", mode: sIFCHR | 0o666, rdev: 0x0103, mtime: 1},
		{name: "dir/fifo", mode: sIFIFO | 0o644, mtime: 1},
		{name: "dir/zz", mode: sIFREG | 0o644, size: 1, mtime: 1},
	}
	enc := flistEncoder{proto: p, fields: flistFields{uid: true, gid: true, devices: true, links: true, checksums: true}}
	var b []byte
	for _, e := range in {
		b = enc.appendEntry(b, e)
	}
	b = enc.appendEndOfList(b, 0)
	got, _, err := readFileList(newWireReader(bytes.NewReader(b)), o, p)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*fileEntry{}
	for _, f := range got {
		byName[f.name] = f
	}
	for _, e := range in {
		f := byName[e.name]
		switch {
		case f == nil:
			t.Errorf("%q missing", e.name)
		case f.mode != e.mode || f.size != e.size || f.mtime != e.mtime || f.link != e.link:
			t.Errorf("%q: got mode %o size %d mtime %d link %q, want %o %d %d %q", e.name, f.mode, f.size, f.mtime, f.link, e.mode, e.size, e.mtime, e.link)
		case uint32(f.uid) != e.uid || uint32(f.gid) != e.gid || f.sum != e.sum:
			t.Errorf("%q: uid %d gid %d sum %x", e.name, f.uid, f.gid, f.sum)
		case e.isDevice() && uint32(f.rdev)&0xffff != e.rdev&0xffff:
			t.Errorf("%q: rdev %x", e.name, f.rdev)
		case f.topDir != e.topDir:
			t.Errorf("%q: topDir %v", e.name, f.topDir)
		}
	}
	for i := 1; i < len(got); i++ {
		if compareNames(got[i-1].name, got[i-1].isDir(), got[i].name, got[i].isDir(), p.version) >= 0 {
			t.Errorf("not sorted: %q before %q", got[i-1].name, got[i].name)
		}
	}
}

func TestCompareNamesProtocol29(t *testing.T) {
	// rsync's order from protocol 29: "." first, then in each directory its files, then its
	// subdirectories (compared with a trailing "/", so "a-b" before "a"), each subdirectory
	// before its contents.
	want := []struct {
		name string
		dir  bool
	}{
		{".", true}, {"a.txt", false}, {"z", false}, {"a-b", true}, {"a-b/c", false}, {"a", true},
		{"a/x", false}, {"a/sub", true}, {"a/sub/y", false}, {"b", true},
	}
	for i := range want {
		for j := range want {
			got := compareNames(want[i].name, want[i].dir, want[j].name, want[j].dir, 29)
			if exp := cmpInt(i, j); got != exp {
				t.Errorf("compareNames(%q, %q) = %d, want %d", want[i].name, want[j].name, got, exp)
			}
		}
	}
}

// FuzzCompareNames checks the protocol-29 order against a simple model: each name as its
// components, directories (and inner components) with a trailing "/", compared level by level
// with files first.
func FuzzCompareNames(f *testing.F) {
	f.Add("a-b/c", false, "a/x", true)
	f.Add("a", true, "a.txt", false)
	f.Fuzz(func(t *testing.T, a string, aDir bool, b string, bDir bool) {
		if !safeName(a) || !safeName(b) {
			return
		}
		got := compareNames(a, aDir, b, bDir, 29)
		if want := modelCompare(a, aDir, b, bDir); got != want {
			t.Fatalf("compareNames(%q %v, %q %v) = %d, model %d", a, aDir, b, bDir, got, want)
		}
	})
}

func modelCompare(a string, aDir bool, b string, bDir bool) int {
	key := func(name string, dir bool) []string {
		if name == "." {
			return nil
		}
		parts := strings.Split(name, "/")
		for i := range parts {
			if i < len(parts)-1 || dir {
				parts[i] = "1" + parts[i] + "/"
			} else {
				parts[i] = "0" + parts[i]
			}
		}
		return parts
	}
	ka, kb := key(a, aDir), key(b, bDir)
	for i := 0; i < len(ka) && i < len(kb); i++ {
		if c := strings.Compare(ka[i], kb[i]); c != 0 {
			return c
		}
	}
	return cmpInt(len(ka), len(kb))
}

func TestFileListMarksDuplicates(t *testing.T) {
	enc := flistEncoder{proto: testProto(27)}
	var b []byte
	for _, name := range []string{"b", "a", "b"} {
		b = enc.appendEntry(b, &sendEntry{name: name, mode: sIFREG | 0o644})
	}
	got, _, err := readFileList(newWireReader(bytes.NewReader(append(b, 0))), &options{}, testProto(27))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].name != "a" || got[1].dup || !got[2].dup {
		t.Errorf("got %v", got)
	}
}

// FuzzReadFileList feeds arbitrary bytes to the file-list decoder. The first byte selects the
// optional fields (bits: 1 -o, 2 -g, 4 -D, 8 -l, 16 -c) and, in its top three bits, the
// protocol (27 + n, at most 32); the rest is the list.
func FuzzReadFileList(f *testing.F) {
	for v := minProtocol; v <= maxProtocol; v++ {
		enc := flistEncoder{proto: testProto(v), fields: flistFields{uid: true, gid: true, devices: true, links: true, checksums: true}}
		b := []byte{31 | byte(v-minProtocol)<<5}
		b = enc.appendEntry(b, &sendEntry{name: ".", mode: sIFDIR | 0o755, topDir: true})
		b = enc.appendEntry(b, &sendEntry{name: "a/b.txt", mode: sIFREG | 0o644, size: 3 << 30, mtime: -5, nsec: 7})
		b = enc.appendEntry(b, &sendEntry{name: "a/l", mode: sIFLNK | 0o777, link: "x"})
		b = enc.appendEntry(b, &sendEntry{name: "a/dev", mode: sIFCHR | 0o600, rdev: 0x10305})
		f.Add(enc.appendEndOfList(b, 1))
	}
	f.Add([]byte{0, xmitLongName, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{0xa0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, wire []byte) {
		if len(wire) == 0 {
			return
		}
		sel := wire[0]
		o := &options{
			owner: sel&1 != 0, group: sel&2 != 0, devices: sel&4 != 0, specials: sel&4 != 0,
			links: sel&8 != 0, checksum: sel&16 != 0,
		}
		p := testProto(min(minProtocol+int(sel>>5), maxProtocol))
		list, _, err := readFileList(newWireReader(bytes.NewReader(wire[1:])), o, p)
		if err != nil {
			return
		}
		for i, e := range list {
			if !safeName(e.name) {
				t.Fatalf("unsafe name %q accepted", e.name)
			}
			if e.size < 0 {
				t.Fatalf("negative size accepted")
			}
			if i > 0 && compareNames(list[i-1].name, list[i-1].isDir(), e.name, e.isDir(), p.version) > 0 {
				t.Fatalf("not sorted")
			}
		}
	})
}

func TestReadIDListBounded(t *testing.T) {
	var b bytes.Buffer
	for range maxIDEntries + 1 {
		b.Write([]byte{1, 0, 0, 0, 1, 'x'})
	}
	err := readIDList(newWireReader(&b), testProto(27))
	if !errors.Is(err, errProtocolData) {
		t.Errorf("err %v, want a protocol error", err)
	}
}
