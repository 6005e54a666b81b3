package rsync

import (
	"encoding/binary"
	"io/fs"
	"math"
)

// File-list flag bits (rsync's XMIT_*).
const (
	xmitTopDir           = 1 << 0
	xmitSameMode         = 1 << 1
	xmitSameRdevPre28    = 1 << 2 // protocol 27
	xmitExtendedFlags    = 1 << 2 // protocol 28+: a second flags byte follows
	xmitSameUID          = 1 << 3
	xmitSameGID          = 1 << 4
	xmitSameName         = 1 << 5
	xmitLongName         = 1 << 6
	xmitSameTime         = 1 << 7
	xmitSameRdevMajor    = 1 << 8 // devices
	xmitNoContentDir     = 1 << 8 // protocol 30+, directories
	xmitHlinked          = 1 << 9
	xmitUserNameFollows  = 1 << 10 // protocol 30+
	xmitRdevMinor8       = 1 << 11 // protocols 28-29
	xmitGroupNameFollows = 1 << 11 // protocol 30+
	xmitIOErrorEndlist   = 1 << 12 // with xmitExtendedFlags alone: the list ends with an I/O error
	xmitModNsec          = 1 << 13 // protocol 31+
)

// st_mode file-type bits as they travel on the wire (Linux values).
const (
	sIFMT   = 0o170000
	sIFSOCK = 0o140000
	sIFLNK  = 0o120000
	sIFREG  = 0o100000
	sIFBLK  = 0o060000
	sIFDIR  = 0o040000
	sIFCHR  = 0o020000
	sIFIFO  = 0o010000
)

// wireMode converts an fs.FileMode to st_mode as rsync sends it.
func wireMode(m fs.FileMode) uint32 {
	mode := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	switch {
	case m.IsDir():
		mode |= sIFDIR
	case m&fs.ModeSymlink != 0:
		mode |= sIFLNK
	case m&fs.ModeDevice != 0 && m&fs.ModeCharDevice != 0:
		mode |= sIFCHR
	case m&fs.ModeDevice != 0:
		mode |= sIFBLK
	case m&fs.ModeNamedPipe != 0:
		mode |= sIFIFO
	case m&fs.ModeSocket != 0:
		mode |= sIFSOCK
	default:
		mode |= sIFREG
	}
	return mode
}

// sendEntry is one file-list entry on the sending side.
type sendEntry struct {
	name      string // name on the wire: "." or a relative path
	path      string // path in the FS
	mode      uint32 // st_mode
	size      int64  // length; for symlinks the target's length
	mtime     int64
	nsec      int32
	uid       uint32
	gid       uint32
	rdev      uint32
	link      string   // symlink target
	sum       [16]byte // unseeded whole-file checksum, with -c
	topDir    bool
	noContent bool // a directory listed without its contents (-d)
}

func (e *sendEntry) isDir() bool     { return e.mode&sIFMT == sIFDIR }
func (e *sendEntry) isRegular() bool { return e.mode&sIFMT == sIFREG }
func (e *sendEntry) isLink() bool    { return e.mode&sIFMT == sIFLNK }
func (e *sendEntry) isDevice() bool {
	t := e.mode & sIFMT
	return t == sIFCHR || t == sIFBLK
}
func (e *sendEntry) isSpecial() bool {
	t := e.mode & sIFMT
	return t == sIFIFO || t == sIFSOCK
}

// Linux's split of a device number.
func devMajor(rdev uint32) uint32 { return (rdev >> 8) & 0xfff }
func devMinor(rdev uint32) uint32 { return rdev&0xff | (rdev>>12)&0xfff00 }

// flistFields says which optional fields the file list carries (from the command line).
type flistFields struct {
	uid, gid  bool // -o, -g
	devices   bool // -D: rdev of devices (and specials' place holder)
	links     bool // -l: symlink targets
	checksums bool // -c: the whole-file checksum per regular file
}

// flistEncoder writes file-list entries the way rsync's send_file_entry does, reusing fields of
// the previous entry.
type flistEncoder struct {
	fields    flistFields
	proto     *protocol
	lastName  string
	started   bool
	mode      uint32
	mtime     int64
	uid, gid  uint32
	rdev      uint32
	rdevMajor uint32
}

func appendInt32(b []byte, v int32) []byte {
	return binary.LittleEndian.AppendUint32(b, uint32(v))
}

// appendLongint appends rsync's longint: an int32, or -1 and an int64 when it does not fit.
func appendLongint(b []byte, v int64) []byte {
	if v >= 0 && v <= math.MaxInt32 {
		return appendInt32(b, int32(v))
	}
	b = appendInt32(b, -1)
	return binary.LittleEndian.AppendUint64(b, uint64(v))
}

// appendVarint30 appends an int32 below protocol 30, a varint from 30 on.
func appendVarint30(b []byte, v int32, version int) []byte {
	if version < 30 {
		return appendInt32(b, v)
	}
	return appendVarint(b, v)
}

// appendVarlong30 appends a longint below protocol 30, a varlong from 30 on.
func appendVarlong30(b []byte, v int64, minBytes, version int) []byte {
	if version < 30 {
		return appendLongint(b, v)
	}
	return appendVarlong(b, v, minBytes)
}

// appendEntry appends the encoding of f.
func (e *flistEncoder) appendEntry(b []byte, f *sendEntry) []byte {
	v := e.proto.version
	var flags int
	if f.isDir() {
		switch {
		case v < 30:
			if f.topDir {
				flags = xmitTopDir
			}
		case f.noContent:
			flags = xmitNoContentDir
		case f.topDir:
			flags = xmitTopDir
		}
	}
	if f.mode == e.mode && e.started {
		flags |= xmitSameMode
	} else {
		e.mode = f.mode
	}
	switch {
	case e.fields.devices && f.isDevice():
		if v < 28 {
			if f.rdev == e.rdev && e.started {
				flags |= xmitSameRdevPre28
			} else {
				e.rdev = f.rdev
			}
		} else {
			e.rdev = f.rdev
			if devMajor(f.rdev) == e.rdevMajor {
				flags |= xmitSameRdevMajor
			} else {
				e.rdevMajor = devMajor(f.rdev)
			}
			if v < 30 && devMinor(f.rdev) <= 0xff {
				flags |= xmitRdevMinor8
			}
		}
	case e.fields.devices && f.isSpecial() && v < 31:
		if v < 28 {
			flags |= xmitSameRdevPre28
		} else {
			e.rdev = e.rdevMajor << 8
			flags |= xmitSameRdevMajor
			if v < 30 {
				flags |= xmitRdevMinor8
			}
		}
	case v < 28:
		e.rdev = 0
	}
	if !e.fields.uid || (f.uid == e.uid && e.lastName != "") {
		flags |= xmitSameUID
	} else {
		e.uid = f.uid
	}
	if !e.fields.gid || (f.gid == e.gid && e.lastName != "") {
		flags |= xmitSameGID
	} else {
		e.gid = f.gid
	}
	mtime := f.mtime
	if v < 30 {
		mtime = int64(uint32(mtime))
	}
	if mtime == e.mtime && e.started {
		flags |= xmitSameTime
	} else {
		e.mtime = mtime
	}
	if v >= 31 && f.nsec != 0 {
		flags |= xmitModNsec
	}
	l1 := 0
	for l1 < len(e.lastName) && l1 < len(f.name) && l1 < 255 && f.name[l1] == e.lastName[l1] {
		l1++
	}
	suffix := f.name[l1:]
	if l1 > 0 {
		flags |= xmitSameName
	}
	if len(suffix) > 255 {
		flags |= xmitLongName
	}
	switch {
	case e.proto.varintFlags:
		if flags == 0 {
			flags = xmitExtendedFlags
		}
		b = appendVarint(b, int32(flags))
	case v >= 28:
		if flags == 0 && !f.isDir() {
			flags |= xmitTopDir
		}
		if flags&0xff00 != 0 || flags == 0 {
			flags |= xmitExtendedFlags
			b = append(b, byte(flags), byte(flags>>8))
		} else {
			b = append(b, byte(flags))
		}
	default:
		// A zero flags byte would end the list.
		if flags&0xff == 0 {
			if f.isDir() {
				flags |= xmitLongName
			} else {
				flags |= xmitTopDir
			}
		}
		b = append(b, byte(flags))
	}
	if flags&xmitSameName != 0 {
		b = append(b, byte(l1))
	}
	if flags&xmitLongName != 0 {
		b = appendVarint30(b, int32(len(suffix)), v)
	} else {
		b = append(b, byte(len(suffix)))
	}
	b = append(b, suffix...)
	b = appendVarlong30(b, f.size, 3, v)
	if flags&xmitSameTime == 0 {
		if v >= 30 {
			b = appendVarlong(b, mtime, 4)
		} else {
			b = appendInt32(b, int32(uint32(mtime)))
		}
	}
	if flags&xmitModNsec != 0 {
		b = appendVarint(b, f.nsec)
	}
	if flags&xmitSameMode == 0 {
		b = appendInt32(b, int32(f.mode))
	}
	if e.fields.uid && flags&xmitSameUID == 0 {
		b = appendVarint30(b, int32(f.uid), v)
	}
	if e.fields.gid && flags&xmitSameGID == 0 {
		b = appendVarint30(b, int32(f.gid), v)
	}
	if e.fields.devices && (f.isDevice() || (f.isSpecial() && v < 31)) {
		if v < 28 {
			if flags&xmitSameRdevPre28 == 0 {
				b = appendInt32(b, int32(f.rdev))
			}
		} else {
			rdev := e.rdev
			if flags&xmitSameRdevMajor == 0 {
				b = appendVarint30(b, int32(devMajor(rdev)), v)
			}
			switch {
			case v >= 30:
				b = appendVarint(b, int32(devMinor(rdev)))
			case flags&xmitRdevMinor8 != 0:
				b = append(b, byte(devMinor(rdev)))
			default:
				b = appendInt32(b, int32(devMinor(rdev)))
			}
		}
	}
	if e.fields.links && f.isLink() {
		b = appendVarint30(b, int32(len(f.link)), v)
		b = append(b, f.link...)
	}
	if e.fields.checksums && (f.isRegular() || v < 28) {
		n := e.proto.fileSum.Len()
		if f.isRegular() {
			b = append(b, f.sum[:n]...)
		} else {
			b = append(b, make([]byte, n)...)
		}
	}
	e.lastName = f.name
	e.started = true
	return b
}

// appendEndOfList appends the end of a file list: with protocol 30+ the sender's I/O error
// flags go with it (rsync's write_end_of_flist).
func (e *flistEncoder) appendEndOfList(b []byte, ioError int32) []byte {
	switch {
	case e.proto.varintFlags:
		b = appendVarint(b, 0)
		return appendVarint(b, ioError)
	case ioError != 0 && e.proto.safeFlist:
		const mark = xmitExtendedFlags | xmitIOErrorEndlist
		b = append(b, mark&0xff, mark>>8)
		return appendVarint(b, ioError)
	}
	return append(b, 0)
}
