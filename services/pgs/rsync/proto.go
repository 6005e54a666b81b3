package rsync

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/portico-sh/portico/services/pgs/rsync/internal/delta"
	"github.com/portico-sh/portico/services/pgs/rsync/internal/token"
)

// Protocol versions this server speaks.
const (
	minProtocol = 27
	maxProtocol = 32
)

// Compatibility flags the server sends at protocol 30 and later (rsync's CF_*).
const (
	cfIncRecurse         = 1 << 0 // never set: incremental recursion is declined
	cfSymlinkTimes       = 1 << 1
	cfSymlinkIconv       = 1 << 2
	cfSafeFlist          = 1 << 3
	cfAvoidXattrOptim    = 1 << 4
	cfChksumSeedFix      = 1 << 5
	cfInplacePartialDir  = 1 << 6
	cfVarintFlistFlags   = 1 << 7
	cfID0Names           = 1 << 8
	maxNegotiationString = 1024 // rsync's MAX_NSTR_STRLEN
)

// File indexes with a meaning of their own (rsync's NDX_*).
const (
	ndxDone     = -1
	ndxDelStats = -3
)

// Item flags that follow a file index at protocol 29 and later (rsync's ITEM_*).
const (
	itemReportSize       = 1 << 2
	itemReportTime       = 1 << 3
	itemBasisTypeFollows = 1 << 11
	itemXnameFollows     = 1 << 12
	itemIsNew            = 1 << 13
	itemTransfer         = 1 << 15
)

// Message tags beyond the text messages of mux.go (rsync's MSG_*). Those a client may send once
// its output is multiplexed (protocol 30+) are those rsync's own server accepts from it, in
// either direction (the server's process reading the client is its receiver or its sender):
// DATA, the four text messages, IO_ERROR, NOOP, DELETED, SUCCESS, NO_SEND and ERROR_EXIT. The
// others (ERROR_SOCKET, LOG, CLIENT, ERROR_UTF8, REDO, STATS, IO_TIMEOUT) travel only between
// an rsync's own processes or from a server, and any other tag is unknown: both end the session.
const (
	msgErrorSocket = 5
	msgLog         = 6
	msgClient      = 7
	msgErrorUTF8   = 8
	msgRedo        = 9
	msgStats       = 10
	msgIOError     = 22
	msgIOTimeout   = 33
	msgNoop        = 42
	msgErrorExit   = 86
	msgSuccess     = 100
	msgDeleted     = 101
	msgNoSend      = 102
)

// protocol is what the handshake settled for a session.
type protocol struct {
	version     int
	varintFlags bool // file-list flags as varints, negotiation strings exchanged (CF_VARINT_FLIST_FLAGS)
	safeFlist   bool // an I/O error may end the file list (CF_SAFE_FLIST, or protocol 31+)
	id0Names    bool // the id lists name ids 0 (CF_ID0_NAMES)
	seedFix     bool // MD5 block checksums put the seed first (CF_CHKSUM_SEED_FIX)
	xferSum     delta.Checksum
	fileSum     delta.Checksum
	compress    token.Compression
	seed        int32
}

// strong returns how block checksums are made. MD5 puts the seed first: a 3.x client does so
// from protocol 30 on (CF_CHKSUM_SEED_FIX), and a client built with OpenSSL (as Debian's) at
// every protocol. Only a client built without OpenSSL, below protocol 30, puts it last; its MD5
// blocks then never match and files travel whole, still verified.
func (p *protocol) strong() delta.StrongSum {
	return delta.StrongSum{Alg: p.xferSum, Seed: p.seed, SeedFirst: true}
}

// tokenOptions returns the token format of the file data.
func (p *protocol) tokenOptions(level int) token.Options {
	return token.Options{Compression: p.compress, Level: level, Protocol: p.version}
}

// checksumNames are the checksums the server offers, strongest first (rsync's order).
var checksumNames = []struct {
	name string
	sum  delta.Checksum
}{
	{"xxh128", delta.XXH128}, {"xxh3", delta.XXH3}, {"xxh64", delta.XXH64}, {"xxhash", delta.XXH64},
	{"md5", delta.MD5}, {"md4", delta.MD4},
}

// compressionNames are the token formats the server offers, in rsync's order.
var compressionNames = []struct {
	name string
	c    token.Compression
}{
	{"zstd", token.Zstd}, {"lz4", token.LZ4}, {"zlibx", token.Zlibx}, {"zlib", token.Zlib}, {"none", token.None},
}

func lookupChecksum(name string) (delta.Checksum, bool) {
	for _, c := range checksumNames {
		if strings.EqualFold(c.name, name) {
			return c.sum, true
		}
	}
	return 0, false
}

func lookupCompression(name string) (token.Compression, bool) {
	for _, c := range compressionNames {
		if strings.EqualFold(c.name, name) {
			return c.c, true
		}
	}
	return 0, false
}

// offeredList is the negotiation string the server sends.
func offeredList(checksums bool) string {
	var names []string
	if checksums {
		for _, c := range checksumNames {
			if c.name != "xxhash" {
				names = append(names, c.name)
			}
		}
	} else {
		for _, c := range compressionNames {
			names = append(names, c.name)
		}
	}
	return strings.Join(names, " ")
}

// chooseChecksum picks from the client's list: its first name the server has, which is what
// the client picks from the server's list too.
func chooseChecksum(list string) (delta.Checksum, bool) {
	for name := range strings.FieldsSeq(list) {
		if c, ok := lookupChecksum(name); ok {
			return c, true
		}
	}
	return 0, false
}

func chooseCompression(list string) (token.Compression, bool) {
	for name := range strings.FieldsSeq(list) {
		if c, ok := lookupCompression(name); ok {
			return c, true
		}
	}
	return 0, false
}

// parseChecksumChoice parses a --checksum-choice value: "name" or "xfer,file".
func parseChecksumChoice(v string) (xfer, file delta.Checksum, auto bool, err error) {
	a, b, split := strings.Cut(v, ",")
	if !split {
		b = a
	}
	if strings.EqualFold(a, "auto") && strings.EqualFold(b, "auto") {
		return 0, 0, true, nil
	}
	var ok1, ok2 bool
	xfer, ok1 = lookupChecksum(a)
	file, ok2 = lookupChecksum(b)
	if !ok1 || !ok2 {
		return 0, 0, false, unsupported("--checksum-choice=" + v)
	}
	return xfer, file, false, nil
}

// subProtocol applies rsync's pre-release rule to the version: a client_info that starts with
// "VER.SUB" comes from a pre-release whose protocol differs from the final one.
func subProtocol(version int, clientInfo string) int {
	ver, sub, ok := strings.Cut(clientInfo, ".")
	if !ok {
		return version
	}
	their, err1 := strconv.Atoi(ver)
	theirSub, err2 := strconv.Atoi(strings.TrimRightFunc(sub, func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil || their == 0 || theirSub == 0 {
		return version
	}
	if their < version {
		return their - 1
	}
	if their > version {
		return version
	}
	return version - 1
}

// appendVarint appends rsync's varint: the count of extra bytes in the high bits of the first.
func appendVarint(b []byte, x int32) []byte {
	var buf [5]byte
	binary.LittleEndian.PutUint32(buf[1:], uint32(x))
	cnt := 4
	for cnt > 1 && buf[cnt] == 0 {
		cnt--
	}
	bit := byte(1) << (7 - cnt + 1)
	switch {
	case buf[cnt] >= bit:
		cnt++
		buf[0] = ^(bit - 1)
	case cnt > 1:
		buf[0] = buf[cnt] | ^(bit*2 - 1)
	default:
		buf[0] = buf[1]
	}
	return append(b, buf[:cnt]...)
}

// appendVarlong appends rsync's varlong with at least minBytes bytes.
func appendVarlong(b []byte, x int64, minBytes int) []byte {
	var buf [9]byte
	binary.LittleEndian.PutUint64(buf[1:], uint64(x))
	cnt := 8
	for cnt > minBytes && buf[cnt] == 0 {
		cnt--
	}
	bit := byte(1) << (7 - cnt + minBytes)
	switch {
	case buf[cnt] >= bit:
		cnt++
		buf[0] = ^(bit - 1)
	case cnt > minBytes:
		buf[0] = buf[cnt] | ^(bit*2 - 1)
	default:
		buf[0] = buf[cnt]
	}
	return append(b, buf[:cnt]...)
}

// appendVstring appends a short string with a one- or two-byte length.
func appendVstring(b []byte, s string) []byte {
	if len(s) > 0x7f {
		b = append(b, byte(len(s)/0x100+0x80))
	}
	b = append(b, byte(len(s)))
	return append(b, s...)
}

// intByteExtra is how many bytes follow the first byte of a varint, by its top six bits.
var intByteExtra = [64]byte{
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 6,
}

// varint reads rsync's varint.
func (w *wireReader) varint() (int32, error) {
	ch, err := w.ReadByte()
	if err != nil {
		return 0, err
	}
	extra := int(intByteExtra[ch/4])
	if extra == 0 {
		return int32(ch), nil
	}
	if extra > 4 {
		return 0, protocolErrorf("varint overflow")
	}
	var u [8]byte
	if err := w.full(u[:extra]); err != nil {
		return 0, err
	}
	if extra < 4 {
		bit := byte(1) << (8 - extra)
		u[extra] = ch & (bit - 1)
	}
	return int32(binary.LittleEndian.Uint32(u[:4])), nil
}

// varlong reads rsync's varlong with at least minBytes bytes.
func (w *wireReader) varlong(minBytes int) (int64, error) {
	var b2 [8]byte
	if err := w.full(b2[:minBytes]); err != nil {
		return 0, err
	}
	var u [9]byte
	copy(u[:], b2[1:minBytes])
	extra := int(intByteExtra[b2[0]/4])
	if minBytes+extra > 9 {
		return 0, protocolErrorf("varlong overflow")
	}
	if extra > 0 {
		if err := w.full(u[minBytes-1 : minBytes-1+extra]); err != nil {
			return 0, err
		}
		bit := byte(1) << (8 - extra)
		u[minBytes+extra-1] = b2[0] & (bit - 1)
	} else {
		u[minBytes-1] = b2[0]
	}
	return int64(binary.LittleEndian.Uint64(u[:8])), nil
}

// varint30 reads an int32 below protocol 30, a varint from 30 on.
func (w *wireReader) varint30(version int) (int32, error) {
	if version < 30 {
		return w.int32()
	}
	return w.varint()
}

// vstring reads a string with a one- or two-byte length of at most max bytes.
func (w *wireReader) vstring(max int) (string, error) {
	c, err := w.ReadByte()
	if err != nil {
		return "", err
	}
	n := int(c)
	if n&0x80 != 0 {
		lo, err := w.ReadByte()
		if err != nil {
			return "", err
		}
		n = (n&^0x80)*0x100 + int(lo)
	}
	if n > max {
		return "", protocolErrorf("string of %d bytes (at most %d)", n, max)
	}
	b, err := w.bytes(n)
	return string(b), err
}

// shortint reads a 16-bit little-endian value.
func (w *wireReader) shortint() (int, error) {
	if err := w.full(w.b[:2]); err != nil {
		return 0, err
	}
	return int(binary.LittleEndian.Uint16(w.b[:2])), nil
}

// ndxCodec encodes file indexes in one direction: int32 below protocol 30, from 30 on a
// difference to the previous index of the same sign.
type ndxCodec struct {
	version      int
	prevPositive int32
	prevNegative int32
}

func newNDXCodec(version int) ndxCodec {
	return ndxCodec{version: version, prevPositive: -1, prevNegative: 1}
}

func (c *ndxCodec) append(b []byte, ndx int32) []byte {
	if c.version < 30 {
		return appendInt32(b, ndx)
	}
	var diff int32
	switch {
	case ndx >= 0:
		diff = ndx - c.prevPositive
		c.prevPositive = ndx
	case ndx == ndxDone:
		return append(b, 0)
	default:
		b = append(b, 0xff)
		ndx = -ndx
		diff = ndx - c.prevNegative
		c.prevNegative = ndx
	}
	switch {
	case diff > 0 && diff < 0xfe:
		return append(b, byte(diff))
	case diff < 0 || diff > 0x7fff:
		return append(b, 0xfe, byte(ndx>>24)|0x80, byte(ndx), byte(ndx>>8), byte(ndx>>16))
	}
	return append(b, 0xfe, byte(diff>>8), byte(diff))
}

func (c *ndxCodec) read(r *wireReader) (int32, error) {
	if c.version < 30 {
		return r.int32()
	}
	b, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	prev := &c.prevPositive
	switch b {
	case 0:
		return ndxDone, nil
	case 0xff:
		if b, err = r.ReadByte(); err != nil {
			return 0, err
		}
		prev = &c.prevNegative
	}
	var num uint32
	if b == 0xfe {
		var x [4]byte
		if err := r.full(x[:2]); err != nil {
			return 0, err
		}
		if x[0]&0x80 != 0 {
			x[3] = x[0] &^ 0x80
			x[0] = x[1]
			if err := r.full(x[1:3]); err != nil {
				return 0, err
			}
			num = binary.LittleEndian.Uint32(x[:])
		} else {
			num = uint32(x[0])<<8 + uint32(x[1]) + uint32(*prev)
		}
	} else {
		num = uint32(b) + uint32(*prev)
	}
	if num > 1<<31-1 {
		return 0, protocolErrorf("invalid file index %d", num)
	}
	*prev = int32(num)
	if prev == &c.prevNegative {
		return -int32(num), nil
	}
	return int32(num), nil
}

// demux reads the client's multiplexed stream (protocol 30+): DATA payloads are returned,
// other messages are acted on or dropped, and a message no client sends ends the session.
type demux struct {
	r       *bufio.Reader
	left    int // DATA bytes of the current frame not yet returned
	ioError int32
	hdr     [4]byte
	msg     []byte
}

// maxClientMessage bounds the payload of a text message from the client: rsync reads one into
// a buffer of BIGPATHBUFLEN (5,120) bytes and calls a longer one an overflow.
const maxClientMessage = 5120

// errClientMessage wraps the errors about a message that no client sends (an unknown tag, one
// meant for another process, or a wrong length); as with rsync, they end the session with
// exit status 12.
var errClientMessage = errors.New("error in the multiplexed stream")

func (d *demux) Read(p []byte) (int, error) {
	for d.left == 0 {
		if _, err := io.ReadFull(d.r, d.hdr[:]); err != nil {
			return 0, err
		}
		h := binary.LittleEndian.Uint32(d.hdr[:])
		tag := int(h>>24) - 7
		n := int(h & 0xffffff)
		if tag == msgData {
			d.left = n
			continue
		}
		if err := checkClientMessage(tag, n); err != nil {
			return 0, err
		}
		if cap(d.msg) < n {
			d.msg = make([]byte, n)
		}
		msg := d.msg[:n]
		if _, err := io.ReadFull(d.r, msg); err != nil {
			return 0, unexpectedEOF(err)
		}
		switch tag {
		case msgIOError:
			d.ioError |= int32(binary.LittleEndian.Uint32(msg))
		case msgErrorExit:
			return 0, fmt.Errorf("the client ended the session with an error")
		}
		// The rest needs nothing here: NOOP is a keep-alive, NO_SEND names a file the client
		// could not open (it sends no data for it), SUCCESS and DELETED are for logging, and
		// a client's text messages were shown on its own side.
	}
	n, err := d.r.Read(p[:min(len(p), d.left)])
	d.left -= n
	return n, unexpectedEOF(err)
}

// checkClientMessage refuses a message a client never sends, or one of the wrong length.
func checkClientMessage(tag, n int) error {
	var ok bool
	switch tag {
	case msgIOError, msgSuccess, msgNoSend:
		ok = n == 4
	case msgNoop:
		ok = n == 0
	case msgErrorExit:
		ok = n == 0 || n == 4
	case msgInfo, msgError, msgErrorXfer, msgWarning, msgDeleted:
		if n >= maxClientMessage {
			return fmt.Errorf("%w: message %d of %d bytes from the client (at most %d)", errClientMessage, tag, n, maxClientMessage-1)
		}
		ok = true
	default:
		return fmt.Errorf("%w: unexpected message %d (%d bytes) from the client", errClientMessage, tag, n)
	}
	if !ok {
		return fmt.Errorf("%w: invalid message %d of %d bytes from the client", errClientMessage, tag, n)
	}
	return nil
}

// startDemux makes the reader read through the client's multiplexing (protocol 30+).
func (w *wireReader) startDemux() {
	w.dmx = &demux{r: w.r}
	w.r = bufio.NewReaderSize(w.dmx, 64<<10)
}

// clientIOError returns the I/O error flags the client sent as messages.
func (w *wireReader) clientIOError() int32 {
	if w.dmx == nil {
		return 0
	}
	return w.dmx.ioError
}
