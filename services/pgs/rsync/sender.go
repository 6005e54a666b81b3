package rsync

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/portico-sh/portico/services/pgs/rsync/internal/delta"
	"github.com/portico-sh/portico/services/pgs/rsync/internal/token"
)

// senderFS is the part of an FS the sender reads. Names are clean, relative, slash-separated
// paths ("." for the root).
type senderFS interface {
	Lstat(name string) (fs.FileInfo, error)
	ReadDir(name string) ([]fs.DirEntry, error)
	Open(name string) (io.ReadCloser, error)
	Readlink(name string) (string, error)
}

// sendOptions are the command-line options the sender acts on.
type sendOptions struct {
	recursive     bool // -r
	dirs          bool // -d: directories without their contents, unless named "dir/" or "."
	links         bool // -l
	owner, group  bool // -o, -g
	devices       bool // -D
	checksum      bool // -c
	dryRun        bool // -n
	compress      bool // -z
	compressLevel int  // --compress-level, 0 for the default
	numericIDs    bool // --numeric-ids
}

// sendParams is what a sender session needs once the handshake (versions and seed) is done.
type sendParams struct {
	opts sendOptions
	args []string // source paths after the "." argument
	fsys senderFS
	in   *wireReader // client → server, raw at protocol 27
	out  io.Writer   // the DATA channel to the client
	// flush pushes buffered DATA to the client; the sender calls it before waiting for input.
	flush func() error
	// message sends a text message (msgErrorXfer, msgInfo, msgError) to the client.
	message func(tag int, text string)
	// exclude compiles the filter rules the client sent into a function that reports whether a
	// name (relative to the transfer root; isDir for directories) is excluded.
	exclude func(rules []string, modern bool) (func(name string, isDir bool) bool, error)
	proto   *protocol
	// written returns the bytes written to the client so far, for the final stats.
	written func() int64
}

// ioErrorGeneral is rsync's IOERR_GENERAL: some file could not be read.
const ioErrorGeneral = 1

// Limits on the filter rules a client sends: the length of one rule (rsync's BIGPATHBUFLEN),
// how many and their total length. Every name of a transfer is matched against every rule.
const (
	maxFilterRule  = 4096 + 1024
	maxFilterRules = 4096
	maxFilterBytes = 1 << 20
)

// sendSession is one sender run.
type sendSession struct {
	sendParams
	ndxOut  ndxCodec
	ndxIn   ndxCodec
	w       *bufio.Writer
	excl    func(name string, isDir bool) bool
	list    []*sendEntry // sorted: the client's ndx indexes this
	ioError int32
	// gaveUp is set, under replies, once the wait for the client's goodbye gave up: the read
	// left running in the background (awaitGoodbye) then answers nothing, so that it never
	// writes the output alongside the session's own error message, or after Serve returned.
	replies sync.Mutex
	gaveUp  bool
	size    int64
	// listIOError is the io_error the client has been told with the file list.
	listIOError int32
}

// send runs the sender side of a download (`rsync --server --sender`): it reads the filter
// rules, sends the file list, answers the client's requests with deltas and sends the stats.
// It returns the exit status: 0, 23 when some files could not be read, 2 when the client broke
// the protocol, 12 when the stream broke.
func send(ctx context.Context, p sendParams) int {
	s := &sendSession{sendParams: p, ndxOut: newNDXCodec(p.proto.version), ndxIn: newNDXCodec(p.proto.version)}
	s.w = bufio.NewWriterSize(p.out, 64<<10)
	if err := s.run(ctx); err != nil {
		s.w.Flush()
		s.message(msgError, fmt.Sprintf("rsync: %v\n", err))
		s.flush()
		if errors.Is(err, errProtocolData) {
			return exitProtocol
		}
		return exitStream
	}
	if s.ioError != 0 {
		return exitPartial
	}
	return exitOK
}

func (s *sendSession) run(ctx context.Context) error {
	rules, err := s.readFilterRules()
	if err != nil {
		return err
	}
	s.excl = func(string, bool) bool { return false }
	if len(rules) > 0 && s.exclude != nil {
		if s.excl, err = s.exclude(rules, s.proto.version >= 29); err != nil {
			return protocolErrorf("filter rules: %v", err)
		}
	}
	if err := s.buildList(ctx); err != nil {
		return err
	}
	if err := s.sendList(); err != nil {
		return err
	}
	if len(s.list) == 0 {
		// As rsync: with nothing to send the sender exits at once; the client does too.
		return nil
	}
	if err := s.sendFiles(ctx); err != nil {
		return err
	}
	// Stats: total read, total written, total size (and from protocol 29 the file-list build
	// and transfer times, here 0), then the client's goodbye.
	if err := s.w.Flush(); err != nil {
		return err
	}
	written := s.written()
	v := s.proto.version
	var b []byte
	b = appendVarlong30(b, s.in.n, 3, v)
	b = appendVarlong30(b, written, 3, v)
	b = appendVarlong30(b, s.size, 3, v)
	if v >= 29 {
		b = appendVarlong30(b, 0, 3, v)
		b = appendVarlong30(b, 0, 3, v)
	}
	s.w.Write(b)
	if err := s.flushOut(); err != nil {
		return err
	}
	ndx, err := s.readGoodbye(ctx)
	if err != nil {
		return err
	}
	if v >= 31 && ndx == ndxDone {
		// The extended goodbye: answer, then the client's last word.
		s.writeNDX(ndxDone)
		if err := s.flushOut(); err != nil {
			return err
		}
		if ndx, err = s.readGoodbye(ctx); err != nil {
			return err
		}
	}
	if ndx != ndxDone {
		return protocolErrorf("invalid packet at end of run (%d)", ndx)
	}
	return nil
}

// readGoodbye reads a file index of the client's goodbye, waiting at most goodbyeTimeout: the
// server has sent everything by then (its output is flushed, so the read writes nothing).
func (s *sendSession) readGoodbye(ctx context.Context) (int32, error) {
	var ndx int32
	err := awaitGoodbye(ctx, func() error {
		n, _, err := s.readNDXAndAttrs()
		ndx = n
		return err
	})
	if err != nil {
		// The read may go on: from now on it writes nothing (see reply), and ndx is its own.
		s.replies.Lock()
		s.gaveUp = true
		s.replies.Unlock()
		return 0, err
	}
	return ndx, nil
}

// reply writes what readNDXAndAttrs answers the client with, unless the session gave up
// waiting for the client's goodbye (then the read runs in the background, and the output is
// no longer its own).
func (s *sendSession) reply(write func() error) error {
	s.replies.Lock()
	defer s.replies.Unlock()
	if s.gaveUp {
		return nil
	}
	return write()
}

// itemAttrs are the item flags and what follows them after a file index (protocol 29+).
type itemAttrs struct {
	iflags    int
	basisType byte
	xname     string
}

// readNDXAndAttrs reads the next file index and, from protocol 29 on, its item flags. Deletion
// statistics (protocol 31+) are answered in kind and skipped.
func (s *sendSession) readNDXAndAttrs() (int32, itemAttrs, error) {
	var a itemAttrs
	for {
		if s.in.r.Buffered() == 0 {
			if err := s.reply(s.flushOut); err != nil {
				return 0, a, err
			}
		}
		ndx, err := s.ndxIn.read(s.in)
		if err != nil {
			return 0, a, fmt.Errorf("read from client: %w", err)
		}
		if ndx == ndxDelStats && s.proto.version >= 31 {
			var stats [5]int32
			for i := range stats {
				if stats[i], err = s.in.varint(); err != nil {
					return 0, a, err
				}
			}
			s.reply(func() error {
				b := s.ndxOut.append(nil, ndxDelStats)
				for _, n := range stats {
					b = appendVarint(b, n)
				}
				_, err := s.w.Write(b)
				return err
			})
			continue
		}
		if ndx < 0 {
			if ndx != ndxDone {
				return 0, a, protocolErrorf("invalid file index %d", ndx)
			}
			return ndx, a, nil
		}
		if s.proto.version < 29 {
			a.iflags = itemTransfer
			return ndx, a, nil
		}
		if a.iflags, err = s.in.shortint(); err != nil {
			return 0, a, err
		}
		if a.iflags&itemBasisTypeFollows != 0 {
			if a.basisType, err = s.in.ReadByte(); err != nil {
				return 0, a, err
			}
		}
		if a.iflags&itemXnameFollows != 0 {
			if a.xname, err = s.in.vstring(maxPathLen); err != nil {
				return 0, a, err
			}
		}
		return ndx, a, nil
	}
}

// writeNDX writes a file index (or NDX_* value).
func (s *sendSession) writeNDX(ndx int32) {
	s.w.Write(s.ndxOut.append(nil, ndx))
}

// writeNDXAndAttrs echoes a file index with its item flags (protocol 29+).
func (s *sendSession) writeNDXAndAttrs(ndx int32, a itemAttrs) {
	b := s.ndxOut.append(nil, ndx)
	if s.proto.version >= 29 {
		b = append(b, byte(a.iflags), byte(a.iflags>>8))
		if a.iflags&itemBasisTypeFollows != 0 {
			b = append(b, a.basisType)
		}
		if a.iflags&itemXnameFollows != 0 {
			b = appendVstring(b, a.xname)
		}
	}
	s.w.Write(b)
}

func (s *sendSession) flushOut() error {
	if err := s.w.Flush(); err != nil {
		return err
	}
	return s.flush()
}

// readInt reads an int32, flushing our output first if the client may be waiting for it.
func (s *sendSession) readInt() (int32, error) {
	if s.in.r.Buffered() < 4 {
		if err := s.flushOut(); err != nil {
			return 0, err
		}
	}
	v, err := s.in.int32()
	if err != nil {
		return 0, fmt.Errorf("read from client: %w", err)
	}
	return v, nil
}

func (s *sendSession) writeInt(v int32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(v))
	s.w.Write(b[:])
}

// readFilterRules reads the {int32 len, rule} list ended by 0 that a client always sends to a
// sender.
func (s *sendSession) readFilterRules() ([]string, error) {
	if err := s.flushOut(); err != nil {
		return nil, err
	}
	return readFilterRules(s.in)
}

// xferError reports a per-file problem to the client and marks the run partial.
func (s *sendSession) xferError(format string, args ...any) {
	s.ioError |= ioErrorGeneral
	s.message(msgErrorXfer, fmt.Sprintf("rsync: "+format+"\n", args...))
}

// cleanSource turns a source argument into an FS path and whether it named a directory's
// contents (trailing slash, "." or empty). ok is false for names outside the FS.
func cleanSource(arg string) (p string, contents bool, ok bool) {
	contents = arg == "" || strings.HasSuffix(arg, "/") || arg == "." || strings.HasSuffix(arg, "/.")
	p = strings.TrimLeft(arg, "/")
	if p == "" {
		return ".", true, true
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", false, false
		}
	}
	return path.Clean(p), contents, true
}

// buildList walks the sources into s.list, sorted as the client sorts it.
func (s *sendSession) buildList(ctx context.Context) error {
	seen := map[string]bool{}
	add := func(e *sendEntry) {
		if !seen[e.name] {
			seen[e.name] = true
			s.list = append(s.list, e)
		}
	}
	for _, arg := range s.args {
		src, contents, ok := cleanSource(arg)
		if !ok {
			s.xferError("unsafe source path %q (contains ..)", arg)
			continue
		}
		info, err := s.fsys.Lstat(src)
		if err != nil {
			s.xferError("link_stat %q failed: %v", arg, err)
			continue
		}
		var top *sendEntry
		if contents && info.IsDir() {
			top = s.entry(".", src, info)
		} else {
			name := path.Base(src)
			if s.excl(name, info.IsDir()) {
				continue
			}
			top = s.entry(name, src, info)
		}
		if top == nil {
			continue
		}
		if top.isDir() {
			switch {
			case s.opts.recursive || (s.opts.dirs && contents):
				top.topDir = true
			case s.opts.dirs:
				// -d and "dir": the directory itself (rsync host:dir lists it so).
				top.noContent = true
				add(top)
				continue
			default:
				s.message(msgInfo, fmt.Sprintf("skipping directory %s\n", top.name))
				continue
			}
		}
		add(top)
		if top.isDir() {
			if err := s.walk(ctx, top, add); err != nil {
				return err
			}
		}
	}
	v := s.proto.version
	slices.SortFunc(s.list, func(a, b *sendEntry) int { return compareNames(a.name, a.isDir(), b.name, b.isDir(), v) })
	return nil
}

// walk adds the tree below dir, or only dir's entries without -r.
func (s *sendSession) walk(ctx context.Context, dir *sendEntry, add func(*sendEntry)) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	ents, err := s.fsys.ReadDir(dir.path)
	if err != nil {
		s.xferError("opendir %q failed: %v", dir.name, err)
		return nil
	}
	for _, de := range ents {
		name := de.Name()
		if dir.name != "." {
			name = dir.name + "/" + name
		}
		if s.excl(name, de.IsDir()) {
			continue
		}
		info, err := de.Info()
		if err != nil {
			s.xferError("readdir %q: %v", name, err)
			continue
		}
		e := s.entry(name, path.Join(dir.path, de.Name()), info)
		if e == nil {
			continue
		}
		if e.isDir() && !s.opts.recursive {
			e.noContent = true
		}
		add(e)
		if e.isDir() && s.opts.recursive {
			if err := s.walk(ctx, e, add); err != nil {
				return err
			}
		}
	}
	return nil
}

// entry describes one file, or returns nil (with a message) for what the options do not send.
func (s *sendSession) entry(name, fsPath string, info fs.FileInfo) *sendEntry {
	e := &sendEntry{
		name:  name,
		path:  fsPath,
		mode:  wireMode(info.Mode()),
		mtime: info.ModTime().Unix(),
		nsec:  int32(info.ModTime().Nanosecond()),
	}
	e.uid, e.gid, e.rdev = fileOwner(info)
	switch {
	case e.isRegular():
		e.size = info.Size()
		if s.opts.checksum {
			if err := s.checksum(e); err != nil {
				s.xferError("checksum %q: %v", name, err)
				return nil
			}
		}
	case e.isDir():
	case e.isLink():
		if !s.opts.links {
			s.message(msgInfo, fmt.Sprintf("skipping non-regular file %q\n", name))
			return nil
		}
		target, err := s.fsys.Readlink(fsPath)
		if err != nil {
			s.xferError("readlink %q failed: %v", name, err)
			return nil
		}
		e.link = target
		e.size = int64(len(target))
	case e.isDevice() || e.isSpecial():
		if !s.opts.devices {
			s.message(msgInfo, fmt.Sprintf("skipping non-regular file %q\n", name))
			return nil
		}
	}
	if e.isRegular() || e.isLink() {
		s.size += e.size
	}
	return e
}

func (s *sendSession) checksum(e *sendEntry) error {
	f, err := s.fsys.Open(e.path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := delta.NewChecksumHash(s.proto.fileSum)
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	copy(e.sum[:], h.Sum(nil))
	return nil
}

// sendList writes the file list, the id lists and the io_error flag.
func (s *sendSession) sendList() error {
	enc := flistEncoder{proto: s.proto, fields: flistFields{
		uid:       s.opts.owner,
		gid:       s.opts.group,
		devices:   s.opts.devices,
		links:     s.opts.links,
		checksums: s.opts.checksum,
	}}
	var b []byte
	for _, e := range s.list {
		b = enc.appendEntry(b[:0], e)
		if _, err := s.w.Write(b); err != nil {
			return err
		}
	}
	v := s.proto.version
	s.listIOError = s.ioError
	sentIOError := v >= 30 && s.ioError != 0 && (s.proto.varintFlags || s.proto.safeFlist)
	if sentIOError {
		s.w.Write(enc.appendEndOfList(nil, s.ioError))
	} else {
		s.w.Write(enc.appendEndOfList(nil, 0))
	}
	// uid and gid name lists: names are not mapped, so each list is only its terminator (and,
	// with CF_ID0_NAMES, the names of id 0).
	if !s.opts.numericIDs {
		for _, want := range []bool{s.opts.owner, s.opts.group} {
			if !want {
				continue
			}
			b = appendVarint30(b[:0], 0, v)
			if s.proto.id0Names {
				b = append(b, 4)
				b = append(b, "root"...)
			}
			s.w.Write(b)
		}
	}
	switch {
	case v < 30:
		s.writeInt(s.ioError)
	case s.ioError != 0 && !sentIOError:
		if err := s.flushOut(); err != nil {
			return err
		}
		s.message(msgIOError, string(int32Bytes(s.ioError)))
	}
	return s.flushOut()
}

// sendFiles answers the client's requests: file index (with item flags from protocol 29), sum
// head and sums in; index, flags, sum head, tokens and the file checksum out. The client ends
// each phase with NDX_DONE (two phases, three from protocol 29) and the sender echoes each.
func (s *sendSession) sendFiles(ctx context.Context) error {
	level := s.opts.compressLevel
	if !s.opts.compress {
		s.proto.compress = token.None
	}
	tw, err := token.NewWriterOptions(s.w, s.proto.tokenOptions(level))
	if err != nil {
		return err
	}
	maxPhase := 1
	if s.proto.version >= 29 {
		maxPhase = 2
	}
	phase := 0
	for {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		ndx, attrs, err := s.readNDXAndAttrs()
		if err != nil {
			return err
		}
		if ndx == ndxDone {
			if phase++; phase > maxPhase {
				break
			}
			s.writeNDX(ndxDone)
			continue
		}
		if int(ndx) >= len(s.list) {
			return protocolErrorf("invalid file index %d", ndx)
		}
		e := s.list[ndx]
		if attrs.iflags&itemTransfer == 0 {
			// Itemized without data: echo.
			s.writeNDXAndAttrs(ndx, attrs)
			continue
		}
		if !e.isRegular() {
			return protocolErrorf("request to transfer non-regular file %d", ndx)
		}
		if phase == 2 {
			return protocolErrorf("transfer request in phase 2")
		}
		if s.opts.dryRun {
			s.writeNDXAndAttrs(ndx, attrs)
			continue
		}
		if err := s.sendFile(ndx, e, attrs, tw); err != nil {
			return err
		}
	}
	if s.ioError != s.listIOError && s.proto.version >= 30 {
		if err := s.flushOut(); err != nil {
			return err
		}
		s.message(msgIOError, string(int32Bytes(s.ioError)))
	}
	s.writeNDX(ndxDone)
	return nil
}

func (s *sendSession) sendFile(ndx int32, e *sendEntry, attrs itemAttrs, tw *token.Writer) error {
	var head delta.SumHead
	for _, v := range []*int32{&head.Count, &head.BlockLen, &head.S2Len, &head.Remainder} {
		var err error
		if *v, err = s.readInt(); err != nil {
			return err
		}
	}
	if err := head.Validate(); err != nil {
		return protocolErrorf("%s: %v", e.name, err)
	}
	if int(head.S2Len) > s.proto.xferSum.Len() {
		return protocolErrorf("%s: checksum length %d for %s", e.name, head.S2Len, s.proto.xferSum)
	}
	sums, err := delta.ReadSums(s.in, head)
	if err != nil {
		return fmt.Errorf("%s: %w", e.name, err)
	}
	f, err := s.fsys.Open(e.path)
	if err != nil {
		s.xferError("send_files failed to open %q: %v", e.name, err)
		if s.proto.version >= 30 {
			// Tell the client not to wait for this file.
			if err := s.flushOut(); err != nil {
				return err
			}
			s.message(msgNoSend, string(int32Bytes(ndx)))
		}
		return nil
	}
	defer f.Close()
	s.writeNDXAndAttrs(ndx, attrs)
	for _, v := range []int32{head.Count, head.BlockLen, head.S2Len, head.Remainder} {
		s.writeInt(v)
	}
	sum := delta.NewFileHash(s.proto.xferSum, s.proto.seed)
	if err := delta.Match(sums, s.proto.strong(), io.TeeReader(f, sum), tokenSink{tw}); err != nil {
		// The tokens already sent cannot be taken back: the stream is broken.
		return fmt.Errorf("read %s: %w", e.name, err)
	}
	if err := tw.End(); err != nil {
		return err
	}
	_, err = s.w.Write(sum.Sum(nil))
	return err
}

// tokenSink feeds the delta of a file to the token writer.
type tokenSink struct{ w *token.Writer }

func (t tokenSink) Literal(p []byte) error           { return t.w.Literal(p) }
func (t tokenSink) Match(i int32, data []byte) error { return t.w.Block(i, data) }
