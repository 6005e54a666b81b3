package rsync

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Limits on what a client may send.
const (
	maxPathLen   = 4095     // bytes in a file name or symlink target (rsync's MAXPATHLEN - 1)
	maxFiles     = 1 << 20  // entries in one file list
	maxIDEntries = 1 << 16  // entries in a uid or gid name list
	maxListBytes = 64 << 20 // bytes of names and symlink targets in one file list
	// maxPathDepth bounds the directories in a name, and in the destination: every file
	// operation walks the path one directory at a time.
	maxPathDepth = 128
)

// errProtocolData wraps every error about bytes the client sent that break the protocol.
var errProtocolData = errors.New("protocol data error")

func protocolErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errProtocolData, fmt.Sprintf(format, args...))
}

// wireReader reads protocol-27 values from the client's raw stream.
type wireReader struct {
	r *bufio.Reader
	b [8]byte
	n int64 // bytes read
}

func newWireReader(r io.Reader) *wireReader {
	return &wireReader{r: bufio.NewReaderSize(r, 64<<10)}
}

func (w *wireReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	w.n += int64(n)
	return n, err
}

func (w *wireReader) ReadByte() (byte, error) {
	c, err := w.r.ReadByte()
	if err == nil {
		w.n++
	}
	return c, unexpectedEOF(err)
}

func (w *wireReader) full(p []byte) error {
	n, err := io.ReadFull(w.r, p)
	w.n += int64(n)
	return unexpectedEOF(err)
}

func (w *wireReader) int32() (int32, error) {
	if err := w.full(w.b[:4]); err != nil {
		return 0, err
	}
	return int32(binary.LittleEndian.Uint32(w.b[:4])), nil
}

// longint reads rsync's longint: an int32, or -1 followed by an int64.
func (w *wireReader) longint() (int64, error) {
	v, err := w.int32()
	if err != nil || v != -1 {
		return int64(v), err
	}
	if err := w.full(w.b[:8]); err != nil {
		return 0, err
	}
	return int64(binary.LittleEndian.Uint64(w.b[:8])), nil
}

// bytes reads n bytes, n already bounded by the caller.
func (w *wireReader) bytes(n int) ([]byte, error) {
	b := make([]byte, n)
	return b, w.full(b)
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// fileEntry is one file-list entry as received.
type fileEntry struct {
	name     string // "." or a clean relative path
	topDir   bool
	mode     uint32 // st_mode
	size     int64
	mtime    uint32
	uid, gid int32
	rdev     int32
	link     string   // symlink target, with -l
	sum      [16]byte // unseeded MD4, with -c
	dup      bool     // a later entry of the same name: ignored
}

func (f *fileEntry) isDir() bool     { return f.mode&sIFMT == sIFDIR }
func (f *fileEntry) isRegular() bool { return f.mode&sIFMT == sIFREG }
func (f *fileEntry) isLink() bool    { return f.mode&sIFMT == sIFLNK }

// perm returns the permission bits, setuid/setgid/sticky included.
func (f *fileEntry) perm() uint32 { return f.mode & 0o7777 }

// readFileList decodes a protocol-27 file list up to its terminating zero flags byte, checks
// every name and returns the entries sorted as the client sorts them (the order file indexes
// refer to), duplicates marked.
func readFileList(r *wireReader, o *options) ([]*fileEntry, error) {
	var (
		list     []*fileEntry
		total    int
		lastName string
		mode     uint32
		mtime    uint32
		uid, gid int32
		rdev     int32
	)
	for {
		flags, err := r.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("read file list: %w", err)
		}
		if flags == 0 {
			break
		}
		if len(list) == maxFiles {
			return nil, protocolErrorf("file list longer than %d entries", maxFiles)
		}
		var l1, l2 int
		if flags&xmitSameName != 0 {
			b, err := r.ReadByte()
			if err != nil {
				return nil, err
			}
			l1 = int(b)
			if l1 > len(lastName) {
				return nil, protocolErrorf("file name prefix of %d bytes after %q", l1, lastName)
			}
		}
		if flags&xmitLongName != 0 {
			n, err := r.int32()
			if err != nil {
				return nil, err
			}
			if n < 0 || int64(n) > maxPathLen {
				return nil, protocolErrorf("file name of %d bytes", n)
			}
			l2 = int(n)
		} else {
			b, err := r.ReadByte()
			if err != nil {
				return nil, err
			}
			l2 = int(b)
		}
		if l1+l2 > maxPathLen {
			return nil, protocolErrorf("file name longer than %d bytes", maxPathLen)
		}
		suffix, err := r.bytes(l2)
		if err != nil {
			return nil, err
		}
		name := lastName[:l1] + string(suffix)
		lastName = name
		if !safeName(name) {
			return nil, protocolErrorf("unsafe pathname %q", name)
		}
		if strings.Count(name, "/") >= maxPathDepth {
			return nil, protocolErrorf("file name %q... is deeper than %d directories", name[:min(len(name), 100)], maxPathDepth)
		}
		f := &fileEntry{name: name}
		if f.size, err = r.longint(); err != nil {
			return nil, err
		}
		if f.size < 0 {
			return nil, protocolErrorf("negative size %d for %q", f.size, name)
		}
		if flags&xmitSameTime == 0 {
			v, err := r.int32()
			if err != nil {
				return nil, err
			}
			mtime = uint32(v)
		}
		f.mtime = mtime
		if flags&xmitSameMode == 0 {
			v, err := r.int32()
			if err != nil {
				return nil, err
			}
			mode = uint32(v)
		}
		f.mode = mode
		if o.owner && flags&xmitSameUID == 0 {
			if uid, err = r.int32(); err != nil {
				return nil, err
			}
		}
		if o.group && flags&xmitSameGID == 0 {
			if gid, err = r.int32(); err != nil {
				return nil, err
			}
		}
		f.uid, f.gid = uid, gid
		t := mode & sIFMT
		isDevice := t == sIFCHR || t == sIFBLK
		isSpecial := t == sIFIFO || t == sIFSOCK
		if (o.devices && isDevice) || (o.specials && isSpecial) {
			if flags&xmitSameRdev == 0 {
				if rdev, err = r.int32(); err != nil {
					return nil, err
				}
			}
			f.rdev = rdev
		} else if !isDevice {
			// As rsync below protocol 28: other entries reset the rdev that SAME_RDEV reuses.
			rdev = 0
		}
		if o.links && t == sIFLNK {
			n, err := r.int32()
			if err != nil {
				return nil, err
			}
			if n < 0 || n > maxPathLen {
				return nil, protocolErrorf("symlink target of %d bytes for %q", n, name)
			}
			target, err := r.bytes(int(n))
			if err != nil {
				return nil, err
			}
			f.link = string(target)
		}
		if o.checksum {
			if err := r.full(f.sum[:]); err != nil {
				return nil, err
			}
		}
		f.topDir = flags&xmitTopDir != 0 && f.isDir()
		if total += len(name) + len(f.link); total > maxListBytes {
			return nil, protocolErrorf("file list names longer than %d bytes", maxListBytes)
		}
		list = append(list, f)
	}
	sortFileList(list)
	return list, nil
}

// sortFileList sorts as a protocol-27 peer does (bytewise by full name) and marks repeated
// names as duplicates, keeping the first.
func sortFileList(list []*fileEntry) {
	slices.SortStableFunc(list, func(a, b *fileEntry) int { return strings.Compare(a.name, b.name) })
	for i := 1; i < len(list); i++ {
		if list[i].name == list[i-1].name {
			list[i].dup = true
		}
	}
}

// safeName reports whether a received name is "." or a clean relative path: no leading "/",
// no empty, "." or ".." components, no NUL.
func safeName(name string) bool {
	if name == "." {
		return true
	}
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return false
	}
	for part := range strings.SplitSeq(name, "/") {
		if part == "" || part == "." || part == ".." {
			return false
		}
	}
	return true
}

// readIDList reads a uid or gid name list ({int32 id, byte len, name}... ended by id 0). The
// names are not used: ownership is not stored.
func readIDList(r *wireReader) error {
	for i := 0; ; i++ {
		id, err := r.int32()
		if err != nil {
			return fmt.Errorf("read id list: %w", err)
		}
		if id == 0 {
			return nil
		}
		if i == maxIDEntries {
			return protocolErrorf("id list longer than %d entries", maxIDEntries)
		}
		n, err := r.ReadByte()
		if err != nil {
			return err
		}
		if _, err := r.bytes(int(n)); err != nil {
			return err
		}
	}
}
