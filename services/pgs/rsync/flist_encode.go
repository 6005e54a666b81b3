package rsync

import (
	"encoding/binary"
	"io/fs"
	"math"
)

// File-list flag bits at protocol 27 (the first and only flags byte).
const (
	xmitTopDir   = 0x01
	xmitSameMode = 0x02
	xmitSameRdev = 0x04
	xmitSameUID  = 0x08
	xmitSameGID  = 0x10
	xmitSameName = 0x20
	xmitLongName = 0x40
	xmitSameTime = 0x80
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
	name   string // name on the wire: "." or a relative path
	path   string // path in the FS
	mode   uint32 // st_mode
	size   int64  // length; for symlinks the target's length
	mtime  int64
	uid    uint32
	gid    uint32
	rdev   uint32
	link   string   // symlink target
	sum    [16]byte // unseeded MD4 of the content, with -c
	topDir bool
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

// flistFields says which optional fields the file list carries (from the command line).
type flistFields struct {
	uid, gid  bool // -o, -g
	devices   bool // -D: rdev of devices (and specials' place holder)
	links     bool // -l: symlink targets
	checksums bool // -c: 16-byte MD4 per entry
}

// flistEncoder writes protocol-27 file-list entries the way rsync's send_file_entry does,
// reusing fields of the previous entry.
type flistEncoder struct {
	fields   flistFields
	lastName string
	mode     uint32
	mtime    uint32
	uid, gid uint32
	rdev     uint32
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

// appendEntry appends the encoding of f.
func (e *flistEncoder) appendEntry(b []byte, f *sendEntry) []byte {
	var flags byte
	if f.isDir() && f.topDir {
		flags |= xmitTopDir
	}
	if f.mode == e.mode {
		flags |= xmitSameMode
	} else {
		e.mode = f.mode
	}
	switch {
	case e.fields.devices && f.isDevice():
		if f.rdev == e.rdev {
			flags |= xmitSameRdev
		} else {
			e.rdev = f.rdev
		}
	case e.fields.devices && f.isSpecial():
		flags |= xmitSameRdev
	default:
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
	mtime := uint32(f.mtime)
	if mtime == e.mtime {
		flags |= xmitSameTime
	} else {
		e.mtime = mtime
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
	// A zero flags byte would end the list.
	if flags == 0 {
		if f.isDir() {
			flags = xmitLongName
		} else {
			flags = xmitTopDir
		}
	}
	b = append(b, flags)
	if flags&xmitSameName != 0 {
		b = append(b, byte(l1))
	}
	if flags&xmitLongName != 0 {
		b = appendInt32(b, int32(len(suffix)))
	} else {
		b = append(b, byte(len(suffix)))
	}
	b = append(b, suffix...)
	b = appendLongint(b, f.size)
	if flags&xmitSameTime == 0 {
		b = appendInt32(b, int32(mtime))
	}
	if flags&xmitSameMode == 0 {
		b = appendInt32(b, int32(f.mode))
	}
	if e.fields.uid && flags&xmitSameUID == 0 {
		b = appendInt32(b, int32(f.uid))
	}
	if e.fields.gid && flags&xmitSameGID == 0 {
		b = appendInt32(b, int32(f.gid))
	}
	if e.fields.devices && (f.isDevice() || f.isSpecial()) && flags&xmitSameRdev == 0 {
		b = appendInt32(b, int32(f.rdev))
	}
	if e.fields.links && f.isLink() {
		b = appendInt32(b, int32(len(f.link)))
		b = append(b, f.link...)
	}
	if e.fields.checksums {
		if f.isRegular() {
			b = append(b, f.sum[:]...)
		} else {
			b = append(b, make([]byte, 16)...)
		}
	}
	e.lastName = f.name
	return b
}
