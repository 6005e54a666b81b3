package rsync

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
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

// wireReader reads protocol values from the client's stream.
type wireReader struct {
	r   *bufio.Reader
	b   [8]byte
	n   int64  // bytes read
	dmx *demux // from protocol 30 on: the multiplexing under r
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
	mtime    int64
	nsec     int32 // protocol 31+: nanoseconds of mtime
	uid, gid int32
	rdev     int32
	link     string   // symlink target, with -l
	sum      [16]byte // unseeded whole-file checksum (the negotiated one), with -c
	dup      bool     // a later entry of the same name: ignored
}

func (f *fileEntry) isDir() bool     { return f.mode&sIFMT == sIFDIR }
func (f *fileEntry) isRegular() bool { return f.mode&sIFMT == sIFREG }
func (f *fileEntry) isLink() bool    { return f.mode&sIFMT == sIFLNK }

// perm returns the permission bits, setuid/setgid/sticky included.
func (f *fileEntry) perm() uint32 { return f.mode & 0o7777 }

// modTime is the entry's modification time.
func (f *fileEntry) modTime() time.Time { return time.Unix(f.mtime, int64(f.nsec)) }

// readFileList decodes a file list up to its end mark, checks every name and returns the
// entries sorted as the client sorts them (the order file indexes refer to), duplicates marked,
// and the I/O error flags that protocol 30+ sends with the end of the list.
func readFileList(r *wireReader, o *options, p *protocol) ([]*fileEntry, int32, error) {
	var (
		list      []*fileEntry
		total     int
		lastName  string
		mode      uint32
		mtime     int64
		uid, gid  int32
		rdev      int32
		rdevMajor int32
		ioError   int32
	)
	v := p.version
	limit := maxFiles
	if o.maxEntries > 0 {
		limit = min(o.maxEntries, maxFiles)
	}
	for {
		var flags int
		if p.varintFlags {
			x, err := r.varint()
			if err != nil {
				return nil, 0, fmt.Errorf("read file list: %w", err)
			}
			if x == 0 {
				if ioError, err = r.varint(); err != nil {
					return nil, 0, err
				}
				break
			}
			flags = int(x)
		} else {
			b, err := r.ReadByte()
			if err != nil {
				return nil, 0, fmt.Errorf("read file list: %w", err)
			}
			if b == 0 {
				break
			}
			flags = int(b)
			if v >= 28 && flags&xmitExtendedFlags != 0 {
				hi, err := r.ReadByte()
				if err != nil {
					return nil, 0, err
				}
				flags |= int(hi) << 8
				if flags == xmitExtendedFlags|xmitIOErrorEndlist {
					if !p.safeFlist {
						return nil, 0, protocolErrorf("unexpected I/O error mark in the file list")
					}
					if ioError, err = r.varint(); err != nil {
						return nil, 0, err
					}
					break
				}
			}
		}
		if len(list) == limit {
			return nil, 0, protocolErrorf("file list longer than %d entries", limit)
		}
		if v >= 28 && flags&xmitHlinked != 0 {
			return nil, 0, protocolErrorf("hard-link data in the file list (-H is not supported)")
		}
		var l1, l2 int
		if flags&xmitSameName != 0 {
			b, err := r.ReadByte()
			if err != nil {
				return nil, 0, err
			}
			l1 = int(b)
			if l1 > len(lastName) {
				return nil, 0, protocolErrorf("file name prefix of %d bytes after %q", l1, lastName)
			}
		}
		if flags&xmitLongName != 0 {
			n, err := r.varint30(v)
			if err != nil {
				return nil, 0, err
			}
			if n < 0 || int64(n) > maxPathLen {
				return nil, 0, protocolErrorf("file name of %d bytes", n)
			}
			l2 = int(n)
		} else {
			b, err := r.ReadByte()
			if err != nil {
				return nil, 0, err
			}
			l2 = int(b)
		}
		if l1+l2 > maxPathLen {
			return nil, 0, protocolErrorf("file name longer than %d bytes", maxPathLen)
		}
		suffix, err := r.bytes(l2)
		if err != nil {
			return nil, 0, err
		}
		name := lastName[:l1] + string(suffix)
		lastName = name
		if !safeName(name) {
			return nil, 0, protocolErrorf("unsafe pathname %q", name)
		}
		if strings.Count(name, "/") >= maxPathDepth {
			return nil, 0, protocolErrorf("file name %q... is deeper than %d directories", name[:min(len(name), 100)], maxPathDepth)
		}
		f := &fileEntry{name: name}
		if v >= 30 {
			f.size, err = r.varlong(3)
		} else {
			f.size, err = r.longint()
		}
		if err != nil {
			return nil, 0, err
		}
		if f.size < 0 {
			return nil, 0, protocolErrorf("negative size %d for %q", f.size, name)
		}
		if flags&xmitSameTime == 0 {
			if v >= 30 {
				if mtime, err = r.varlong(4); err != nil {
					return nil, 0, err
				}
			} else {
				x, err := r.int32()
				if err != nil {
					return nil, 0, err
				}
				mtime = int64(uint32(x))
			}
		}
		f.mtime = mtime
		if v >= 31 && flags&xmitModNsec != 0 {
			ns, err := r.varint()
			if err != nil {
				return nil, 0, err
			}
			if ns < 0 || ns > 999_999_999 {
				return nil, 0, protocolErrorf("modification time nanoseconds %d for %q", ns, name)
			}
			f.nsec = ns
		}
		if flags&xmitSameMode == 0 {
			x, err := r.int32()
			if err != nil {
				return nil, 0, err
			}
			mode = uint32(x)
		}
		f.mode = mode
		if o.owner && flags&xmitSameUID == 0 {
			if uid, err = r.varint30(v); err != nil {
				return nil, 0, err
			}
			if v >= 30 && flags&xmitUserNameFollows != 0 {
				if err := skipIDName(r); err != nil {
					return nil, 0, err
				}
			}
		}
		if o.group && flags&xmitSameGID == 0 {
			if gid, err = r.varint30(v); err != nil {
				return nil, 0, err
			}
			if v >= 30 && flags&xmitGroupNameFollows != 0 {
				if err := skipIDName(r); err != nil {
					return nil, 0, err
				}
			}
		}
		f.uid, f.gid = uid, gid
		t := mode & sIFMT
		isDevice := t == sIFCHR || t == sIFBLK
		isSpecial := t == sIFIFO || t == sIFSOCK
		switch {
		case (o.devices && isDevice) || (o.specials && isSpecial && v < 31):
			if v < 28 {
				if flags&xmitSameRdevPre28 == 0 {
					if rdev, err = r.int32(); err != nil {
						return nil, 0, err
					}
				}
			} else {
				if flags&xmitSameRdevMajor == 0 {
					if rdevMajor, err = r.varint30(v); err != nil {
						return nil, 0, err
					}
				}
				var minor int32
				switch {
				case v >= 30:
					minor, err = r.varint()
				case flags&xmitRdevMinor8 != 0:
					var b byte
					b, err = r.ReadByte()
					minor = int32(b)
				default:
					minor, err = r.int32()
				}
				if err != nil {
					return nil, 0, err
				}
				rdev = rdevMajor<<8 | minor&0xff
			}
			f.rdev = rdev
		case v < 28 && !isDevice:
			// As rsync below protocol 28: other entries reset the rdev that SAME_RDEV reuses.
			rdev = 0
		}
		if o.links && t == sIFLNK {
			n, err := r.varint30(v)
			if err != nil {
				return nil, 0, err
			}
			if n < 0 || n > maxPathLen {
				return nil, 0, protocolErrorf("symlink target of %d bytes for %q", n, name)
			}
			target, err := r.bytes(int(n))
			if err != nil {
				return nil, 0, err
			}
			f.link = string(target)
		}
		if o.checksum && (f.isRegular() || v < 28) {
			if err := r.full(f.sum[:p.fileSum.Len()]); err != nil {
				return nil, 0, err
			}
		}
		f.topDir = flags&xmitTopDir != 0 && f.isDir()
		if total += len(name) + len(f.link); total > maxListBytes {
			return nil, 0, protocolErrorf("file list names longer than %d bytes", maxListBytes)
		}
		list = append(list, f)
	}
	sortFileList(list, v)
	return list, ioError, nil
}

// skipIDName reads the user or group name that follows an id (one length byte and the name).
func skipIDName(r *wireReader) error {
	n, err := r.ReadByte()
	if err != nil {
		return err
	}
	_, err = r.bytes(int(n))
	return err
}

// sortFileList sorts as the client does and marks repeated names as duplicates, keeping the
// first.
func sortFileList(list []*fileEntry, version int) {
	slices.SortStableFunc(list, func(a, b *fileEntry) int {
		return compareNames(a.name, a.isDir(), b.name, b.isDir(), version)
	})
	seen := make(map[string]bool, len(list))
	for _, f := range list {
		if seen[f.name] {
			f.dup = true
		}
		seen[f.name] = true
	}
}

// compareNames orders file-list names as rsync's f_name_cmp does. Below protocol 29 that is
// bytewise. From 29 on, path components are compared one by one: at each level the entries
// that end there and are not directories come before those that go on or are directories,
// whose names compare as if followed by "/"; "." comes first of all.
func compareNames(a string, aDir bool, b string, bDir bool, version int) int {
	if version < 29 {
		return strings.Compare(a, b)
	}
	if a == "." {
		a = ""
		aDir = false
	}
	if b == "." {
		b = ""
		bDir = false
	}
	for {
		ac, arest, amore := strings.Cut(a, "/")
		bc, brest, bmore := strings.Cut(b, "/")
		if a == "" || b == "" {
			// "." or a name already consumed: the shorter goes first.
			return cmpBool(a != "", b != "")
		}
		aPath := amore || aDir
		bPath := bmore || bDir
		if aPath != bPath {
			return cmpBool(aPath, bPath)
		}
		if c := compareComponents(ac, bc, aPath); c != 0 {
			return c
		}
		if !amore && !bmore {
			return 0
		}
		if !amore {
			arest = ""
		}
		if !bmore {
			brest = ""
		}
		a, b = arest, brest
		if a == "" {
			aDir = false
		}
		if b == "" {
			bDir = false
		}
	}
}

// compareComponents compares two path components of the same kind; directory components
// (slash true) compare as if followed by "/".
func compareComponents(a, b string, slash bool) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return cmpInt(int(a[i]), int(b[i]))
		}
	}
	switch {
	case len(a) == len(b):
		return 0
	case !slash:
		return cmpInt(len(a), len(b))
	case len(a) < len(b):
		return cmpInt('/', int(b[n]))
	}
	return cmpInt(int(a[n]), '/')
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
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

// readIDList reads a uid or gid name list ({id, byte len, name}... ended by id 0, ids as int32
// below protocol 30 and varints from 30 on; with CF_ID0_NAMES the name of id 0 follows). The
// names are not used: ownership is not stored.
func readIDList(r *wireReader, p *protocol) error {
	for i := 0; ; i++ {
		id, err := r.varint30(p.version)
		if err != nil {
			return fmt.Errorf("read id list: %w", err)
		}
		if id == 0 {
			if p.id0Names {
				return skipIDName(r)
			}
			return nil
		}
		if i == maxIDEntries {
			return protocolErrorf("id list longer than %d entries", maxIDEntries)
		}
		if err := skipIDName(r); err != nil {
			return err
		}
	}
}
