package rsync

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestFileListRoundTrip(t *testing.T) {
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
	enc := flistEncoder{fields: flistFields{uid: true, gid: true, devices: true, links: true, checksums: true}}
	var b []byte
	for _, e := range in {
		b = enc.appendEntry(b, e)
	}
	b = append(b, 0)
	got, err := readFileList(newWireReader(bytes.NewReader(b)), o)
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
		case f.mode != e.mode || f.size != e.size || int64(f.mtime) != e.mtime || f.link != e.link:
			t.Errorf("%q: got mode %o size %d mtime %d link %q, want %o %d %d %q", e.name, f.mode, f.size, f.mtime, f.link, e.mode, e.size, e.mtime, e.link)
		case uint32(f.uid) != e.uid || uint32(f.gid) != e.gid || f.sum != e.sum:
			t.Errorf("%q: uid %d gid %d sum %x", e.name, f.uid, f.gid, f.sum)
		case e.isDevice() && uint32(f.rdev) != e.rdev:
			t.Errorf("%q: rdev %x", e.name, f.rdev)
		case f.topDir != e.topDir:
			t.Errorf("%q: topDir %v", e.name, f.topDir)
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].name >= got[i].name {
			t.Errorf("not sorted: %q before %q", got[i-1].name, got[i].name)
		}
	}
}

func TestFileListMarksDuplicates(t *testing.T) {
	enc := flistEncoder{}
	var b []byte
	for _, name := range []string{"b", "a", "b"} {
		b = enc.appendEntry(b, &sendEntry{name: name, mode: sIFREG | 0o644})
	}
	got, err := readFileList(newWireReader(bytes.NewReader(append(b, 0))), &options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].name != "a" || got[1].dup || !got[2].dup {
		t.Errorf("got %v", got)
	}
}

// FuzzReadFileList feeds arbitrary bytes to the file-list decoder. The first byte selects the
// optional fields (bits: 1 -o, 2 -g, 4 -D, 8 -l, 16 -c); the rest is the list.
func FuzzReadFileList(f *testing.F) {
	enc := flistEncoder{fields: flistFields{uid: true, gid: true, devices: true, links: true, checksums: true}}
	b := []byte{31}
	b = enc.appendEntry(b, &sendEntry{name: ".", mode: sIFDIR | 0o755, topDir: true})
	b = enc.appendEntry(b, &sendEntry{name: "a/b.txt", mode: sIFREG | 0o644, size: 3 << 30})
	b = enc.appendEntry(b, &sendEntry{name: "a/l", mode: sIFLNK | 0o777, link: "x"})
	f.Add(append(b, 0))
	f.Add([]byte{0, xmitLongName, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, wire []byte) {
		if len(wire) == 0 {
			return
		}
		sel := wire[0]
		o := &options{
			owner: sel&1 != 0, group: sel&2 != 0, devices: sel&4 != 0, specials: sel&4 != 0,
			links: sel&8 != 0, checksum: sel&16 != 0,
		}
		list, err := readFileList(newWireReader(bytes.NewReader(wire[1:])), o)
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
			if i > 0 && list[i-1].name > e.name {
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
	err := readIDList(newWireReader(&b))
	if !errors.Is(err, errProtocolData) {
		t.Errorf("err %v, want a protocol error", err)
	}
}
