package rsync

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/portico-sh/portico/services/pgs/rsync/internal/delta"
	"github.com/portico-sh/portico/services/pgs/rsync/internal/filter"
	"github.com/portico-sh/portico/services/pgs/rsync/internal/token"
)

// excluder turns the filter rules a client sent into a name matcher (for the sender).
func excluder(rules []string, modern bool) (func(name string, isDir bool) bool, error) {
	l, err := filter.ParseFor(rules, modern, filter.Sender)
	if err != nil {
		return nil, err
	}
	return l.Excluded, nil
}

// recvSession is one upload: the generator (which asks the client for files and writes their
// block checksums) runs concurrently with the receiver (which reads the file data), as in
// rsync; a generator that sent every request before reading would deadlock on a full SSH
// window.
type recvSession struct {
	o    *options
	p    *protocol
	fsys FS
	in   *wireReader
	mux  *muxWriter
	seed int32

	filters *filter.List
	list    []*fileEntry
	names   map[string]*fileEntry
	ioError int32  // the client's io_error flag: deletion is skipped when set
	dest    string // FS path of the destination directory
	single  string // FS path of the one file of a single-file upload into a new name

	mu           sync.Mutex
	requested    *sync.Cond              // signalled when pending or genPhases change
	pending      map[int32]delta.SumHead // files requested and not yet received
	genPhases    int                     // phases the generator ended (-1 sent)
	redo         []int32                 // files whose checksum failed in the first phase
	errors       int                     // files or deletions that failed
	ioErrorNoted bool                    // the skipped deletion was reported
	deleted      int
	deletedDirs  int
	delLimitN    int   // deletions skipped by --max-delete
	discarded    int64 // data of refused files read and dropped (bounded by maxDiscard)

	phaseDone chan struct{} // the receiver read the client's end of the first phase
	recvExit  chan struct{} // the receiver returned

	ndxOut ndxCodec // file indexes the server writes
	ndxIn  ndxCodec // file indexes the client writes

	sink  fileSink // writes and hashes received data, reused for every file
	block []byte   // the receiver's block of zeros (matched blocks whose data is dropped)
}

// fatal ends the session: the error reaches the client as an in-band message.
func (s *recvSession) fatal(err error) int {
	s.mux.message(msgError, fmt.Sprintf("rsync: %v\n", err))
	s.mux.Flush()
	if errors.Is(err, errProtocolData) || errors.Is(err, token.ErrInvalid) {
		return exitProtocol
	}
	return exitStream
}

// fileError reports a per-file failure and makes the exit status partial.
func (s *recvSession) fileError(format string, args ...any) {
	s.mu.Lock()
	s.errors++
	s.mu.Unlock()
	s.mux.message(msgErrorXfer, fmt.Sprintf("rsync: "+format+"\n", args...))
}

func (s *recvSession) info(format string, args ...any) {
	s.mux.message(msgInfo, fmt.Sprintf(format, args...))
}

func receive(ctx context.Context, s *recvSession) int {
	o := s.o
	if len(o.args) > 2 {
		return s.fatal(fmt.Errorf("%w: a receiver takes one destination, got %d", errProtocolData, len(o.args)-1))
	}
	s.ndxOut, s.ndxIn = newNDXCodec(s.p.version), newNDXCodec(s.p.version)
	// The client sends its filter rules to a receiver only in delete mode; below protocol 29
	// not with --delete-excluded (then every extraneous file goes, excluded or not).
	if o.deleteMode && (!o.deleteExcluded || s.p.version >= 29) {
		rules, err := readFilterRules(s.in)
		if err != nil {
			return s.fatal(err)
		}
		if s.filters, err = filter.ParseFor(rules, s.p.version >= 29, filter.Receiver); err != nil {
			return s.fatal(fmt.Errorf("%w: %w", errProtocolData, err))
		}
	}
	var err error
	if s.list, s.ioError, err = readFileList(s.in, o, s.p); err != nil {
		return s.fatal(err)
	}
	if !o.numericIDs {
		if o.owner {
			if err := readIDList(s.in, s.p); err != nil {
				return s.fatal(err)
			}
		}
		if o.group {
			if err := readIDList(s.in, s.p); err != nil {
				return s.fatal(err)
			}
		}
	}
	if s.p.version < 30 {
		if s.ioError, err = s.in.int32(); err != nil {
			return s.fatal(err)
		}
	}
	s.names = make(map[string]*fileEntry, len(s.list))
	for _, f := range s.list {
		if !f.dup {
			s.names[f.name] = f
		}
	}
	destArg := "."
	if len(o.args) == 2 {
		destArg = o.args[1]
	}
	if err := s.resolveDest(destArg); err != nil {
		return s.fatal(err)
	}

	if o.deleteMode && o.deleteWhen == deleteBefore {
		s.deletePass()
	}
	s.pending = map[int32]delta.SumHead{}
	s.requested = sync.NewCond(&s.mu)
	s.phaseDone = make(chan struct{})
	s.recvExit = make(chan struct{})
	genErr := make(chan error, 1)
	go func() {
		err := s.generate(ctx)
		s.mu.Lock()
		s.genPhases = 1 << 30 // no more requests
		s.requested.Broadcast()
		s.mu.Unlock()
		genErr <- err
	}()
	rerr := s.receiveFiles(ctx)
	gerr := <-genErr
	if rerr != nil {
		return s.fatal(rerr)
	}
	if gerr != nil {
		return s.fatal(gerr)
	}
	if o.deleteMode && o.deleteWhen == deleteAfter {
		s.deletePass()
	}
	if s.p.version >= 31 && s.lateDelete() {
		// The deletion statistics and the end of the late-delete phase.
		s.writeDelStats()
		s.writeNDX(ndxDone)
	}
	s.setDirAttrs()
	if s.delLimitN > 0 {
		s.mux.message(msgWarning, fmt.Sprintf("Deletions stopped due to --max-delete limit (%d skipped)\n", s.delLimitN))
	}
	// The final goodbye the client waits for.
	s.writeNDX(ndxDone)
	if err := s.mux.Flush(); err != nil {
		return exitStream
	}
	if s.p.version >= 31 {
		// The client answers the goodbye with one of its own; read it so that the session
		// ends cleanly. Everything is written by now: a client that is gone, or that does not
		// answer within goodbyeTimeout, changes nothing.
		awaitGoodbye(ctx, func() error {
			_, err := s.ndxIn.read(s.in)
			return err
		})
	}
	switch {
	case s.errors > 0:
		return exitPartial
	case s.delLimitN > 0:
		return exitDelLimit
	}
	return exitOK
}

func int32Bytes(v int32) []byte {
	return binary.LittleEndian.AppendUint32(nil, uint32(v))
}

// writeNDX writes a file index (or an NDX_* value) to the client.
func (s *recvSession) writeNDX(ndx int32) {
	s.mux.Write(s.ndxOut.append(nil, ndx))
}

// lateDelete says whether deletion happens after the transfer (--delete-after, --delete-delay).
func (s *recvSession) lateDelete() bool {
	return s.o.deleteMode && s.o.deleteWhen == deleteAfter
}

// writeDelStats sends the deletion counts (protocol 31+, rsync's NDX_DEL_STATS) in delete mode.
func (s *recvSession) writeDelStats() {
	if !s.o.deleteMode && !s.o.force {
		return
	}
	s.mu.Lock()
	files, dirs := s.deleted-s.deletedDirs, s.deletedDirs
	s.mu.Unlock()
	b := s.ndxOut.append(nil, ndxDelStats)
	for _, n := range []int{files, dirs, 0, 0, 0} {
		b = appendVarint(b, int32(n))
	}
	s.mux.Write(b)
}

// readFilterRules reads {int32 len, rule}... ended by a zero length (the client sends them to a
// sender, and to a receiver in delete mode).
func readFilterRules(r *wireReader) ([]string, error) {
	var rules []string
	total := 0
	for {
		n, err := r.int32()
		if err != nil {
			return nil, fmt.Errorf("read filter rules: %w", err)
		}
		if n == 0 {
			return rules, nil
		}
		if n < 0 || n >= maxFilterRule {
			return nil, protocolErrorf("filter rule of %d bytes", n)
		}
		if len(rules) == maxFilterRules {
			return nil, protocolErrorf("more than %d filter rules", maxFilterRules)
		}
		if total += int(n); total > maxFilterBytes {
			return nil, protocolErrorf("filter rules longer than %d bytes", maxFilterBytes)
		}
		b, err := r.bytes(int(n))
		if err != nil {
			return nil, err
		}
		rules = append(rules, string(b))
	}
}

// cleanDest turns the destination argument into an FS path: leading slashes, empty and "."
// components are dropped ("/site/" is "site" in the FS), ".." is refused.
func cleanDest(arg string) (string, error) {
	var parts []string
	for part := range strings.SplitSeq(arg, "/") {
		switch part {
		case "", ".":
		case "..":
			return "", fmt.Errorf("unsafe destination %q: it may not contain ..", arg)
		default:
			parts = append(parts, part)
		}
	}
	if len(parts) == 0 {
		return ".", nil
	}
	if len(parts) > maxPathDepth {
		return "", fmt.Errorf("unsafe destination: deeper than %d directories", maxPathDepth)
	}
	return strings.Join(parts, "/"), nil
}

// resolveDest decides where the list goes, as rsync's get_local_name does: into an existing
// directory; to the destination name itself for a single file; else into a new directory.
func (s *recvSession) resolveDest(arg string) error {
	p, err := cleanDest(arg)
	if err != nil {
		return err
	}
	var files []*fileEntry
	for _, f := range s.list {
		if !f.dup {
			files = append(files, f)
		}
	}
	single := len(files) == 1 && !files[0].isDir() && !strings.HasSuffix(arg, "/") && p != "."
	st, err := s.fsys.Lstat(p)
	switch {
	case err == nil && st.IsDir():
		s.dest = p
	case err == nil && st.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("destination %q is a symbolic link", arg)
	case err == nil && single:
		s.dest, s.single = path.Dir(p), p
	case err == nil:
		return fmt.Errorf("destination %q exists and is not a directory", arg)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("destination %q: %w", arg, err)
	case single:
		s.dest, s.single = path.Dir(p), p
	default:
		s.dest = p
		if !s.o.dryRun {
			if err := s.mkdirAll(p); err != nil {
				return fmt.Errorf("create destination %q: %w", arg, err)
			}
		}
		if s.o.verbose > 0 {
			s.info("created directory %s\n", arg)
		}
	}
	return nil
}

// fsPath is where entry f lives in the FS.
func (s *recvSession) fsPath(f *fileEntry) string {
	return s.join(f.name)
}

// join maps a name relative to the transfer root to an FS path.
func (s *recvSession) join(name string) string {
	switch {
	case s.single != "":
		return s.single
	case name == ".":
		return s.dest
	case s.dest == ".":
		return name
	}
	return s.dest + "/" + name
}

// mkdirAll creates p and its missing parents; it never goes through a symbolic link. It looks
// at p first and goes up only while directories are missing: looking at every parent from the
// top for every directory would cost time quadratic in the depth.
func (s *recvSession) mkdirAll(p string) error {
	if p == "." {
		return nil
	}
	if m, ok := s.fsys.(mkdirAllFS); ok {
		return m.MkdirAll(p, 0o755)
	}
	st, err := s.fsys.Lstat(p)
	switch {
	case err == nil && st.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("%s is not a directory", p)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err := s.mkdirAll(path.Dir(p)); err != nil {
		return err
	}
	if err := s.fsys.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// generate walks the sorted list: it creates directories, skips what is up to date, and asks
// for the rest (index and block checksums). Then it ends the first phase, asks again for the
// files whose checksum failed, and ends the second.
func (s *recvSession) generate(ctx context.Context) error {
	for i, f := range s.list {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if f.dup {
			continue
		}
		if err := s.generateEntry(int32(i), f); err != nil {
			return err
		}
	}
	s.endPhase()
	if err := s.mux.Flush(); err != nil {
		return err
	}
	select {
	case <-s.phaseDone:
	case <-s.recvExit:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	s.mu.Lock()
	redo := s.redo
	s.redo = nil
	for _, ndx := range redo {
		s.pending[ndx] = delta.SumHead{}
	}
	s.mu.Unlock()
	for _, ndx := range redo {
		// The whole file again: its block checksums were not enough.
		s.writeRequest(ndx, itemTransfer)
		s.mux.Write(make([]byte, 16))
	}
	s.endPhase()
	if s.p.version >= 29 {
		// The end of the (unused) delay-updates phase.
		s.writeNDX(ndxDone)
		if s.p.version >= 31 && !s.lateDelete() {
			s.writeDelStats()
			s.writeNDX(ndxDone)
		}
	}
	return s.mux.Flush()
}

// writeRequest writes a file index and, from protocol 29 on, its item flags.
func (s *recvSession) writeRequest(ndx int32, iflags int) {
	b := s.ndxOut.append(nil, ndx)
	if s.p.version >= 29 {
		b = append(b, byte(iflags), byte(iflags>>8))
	}
	s.mux.Write(b)
}

// endPhase tells the client (and the receiver) that the generator's current phase is over.
func (s *recvSession) endPhase() {
	s.mu.Lock()
	s.genPhases++
	s.requested.Broadcast()
	s.mu.Unlock()
	s.writeNDX(ndxDone)
}

func (s *recvSession) generateEntry(ndx int32, f *fileEntry) error {
	target := s.fsPath(f)
	switch {
	case f.isDir():
		if s.single != "" {
			return nil
		}
		s.makeDir(f, target)
		if s.o.deleteMode && s.o.deleteWhen == deleteDuring && s.inDeleteScope(f) {
			s.deleteIn(f.name, target)
		}
		return nil
	case f.isRegular():
		return s.generateFile(ndx, f, target)
	case f.isLink():
		s.mux.message(msgInfo, fmt.Sprintf("skipping symlink %q: symbolic links are not stored\n", f.name))
	default:
		s.mux.message(msgInfo, fmt.Sprintf("skipping non-regular file %q\n", f.name))
	}
	return nil
}

// makeDir makes sure a directory of the list exists, replacing a non-directory in its way.
func (s *recvSession) makeDir(f *fileEntry, target string) {
	st, err := s.fsys.Lstat(target)
	if err == nil && st.IsDir() {
		return
	}
	// --existing creates nothing new, directories included (as rsync).
	if s.o.dryRun || (s.o.existing && err != nil) {
		return
	}
	if err == nil {
		if err := s.fsys.Remove(target); err != nil {
			s.fileError("cannot replace %q with a directory: %v", f.name, err)
			return
		}
	}
	if err := s.mkdirAll(target); err != nil {
		s.fileError("mkdir %q failed: %v", f.name, err)
	}
}

// generateFile decides whether a regular file needs the client's data and asks for it.
func (s *recvSession) generateFile(ndx int32, f *fileEntry, target string) error {
	o := s.o
	st, err := s.fsys.Lstat(target)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.fileError("stat %q failed: %v", f.name, err)
		return nil
	}
	if exists && st.IsDir() {
		switch {
		case o.dryRun:
		case !o.force && !o.deleteMode:
			s.fileError("cannot replace directory %q with a file (use --force or --delete)", f.name)
			return nil
		default:
			if !s.removeTree(f.name, target, false) {
				s.fileError("cannot replace directory %q with a file", f.name)
				return nil
			}
		}
		exists = false
	}
	basis := exists && st.Mode().IsRegular()
	switch {
	case o.existing && !exists, o.ignoreExist && exists:
		return nil
	case basis && o.update && s.mtimeRule().compare(st.ModTime(), s.keptTime(f)) > 0:
		return nil
	case basis && s.upToDate(f, target, st):
		if !o.dryRun {
			s.touch(f, target, st)
		}
		return nil
	}
	iflags := itemTransfer
	if !exists {
		iflags |= itemIsNew
	} else {
		if st.Size() != f.size {
			iflags |= itemReportSize
		}
		if s.mtimeRule().compare(st.ModTime(), s.keptTime(f)) != 0 {
			iflags |= itemReportTime
		}
	}
	if o.dryRun {
		s.request(ndx, iflags, delta.SumHead{}, nil)
		return nil
	}
	var head delta.SumHead
	var sums []byte
	if basis && !o.wholeFile && st.Size() > 0 {
		head = delta.NewSumHead(st.Size(), s.p.xferSum.Len())
		var buf bytes.Buffer
		if err := s.writeSums(&buf, target, head); err != nil {
			// Without usable checksums the file comes whole.
			head = delta.SumHead{}
		} else {
			sums = buf.Bytes()
		}
	}
	s.request(ndx, iflags, head, sums)
	if len(sums) > 0 {
		return s.mux.Flush()
	}
	return nil
}

func (s *recvSession) writeSums(w io.Writer, target string, head delta.SumHead) error {
	f, err := s.fsys.Open(target)
	if err != nil {
		return err
	}
	defer f.Close()
	return delta.WriteSums(w, f, head, s.p.strong())
}

// request asks the client for file ndx: the index, then (unless dry run) the sum head and
// block checksums.
func (s *recvSession) request(ndx int32, iflags int, head delta.SumHead, sums []byte) {
	s.mu.Lock()
	s.pending[ndx] = head
	s.requested.Broadcast()
	s.mu.Unlock()
	s.writeRequest(ndx, iflags)
	if s.o.dryRun {
		return
	}
	var b []byte
	for _, v := range []int32{head.Count, head.BlockLen, head.S2Len, head.Remainder} {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	s.mux.Write(b)
	s.mux.Write(sums)
}

// upToDate is rsync's quick check for an existing regular file.
func (s *recvSession) upToDate(f *fileEntry, target string, st fs.FileInfo) bool {
	o := s.o
	if st.Size() != f.size {
		return false
	}
	switch {
	case o.checksum:
		sum, err := s.checksum(target)
		return err == nil && sum == f.sum
	case o.sizeOnly:
		return true
	case o.ignoreTimes:
		return false
	}
	return s.mtimeRule().compare(st.ModTime(), s.keptTime(f)) == 0
}

// mtimeRule is how this session compares modification times.
func (s *recvSession) mtimeRule() mtimeRule {
	v := 0
	if s.p != nil {
		v = s.p.version
	}
	return mtimeRuleOf(s.o, v)
}

// keptTime is the modification time the FS would store for f: the client's, unless the FS is a
// TimeKeeper that cannot keep it as sent. Stored times are compared with it.
func (s *recvSession) keptTime(f *fileEntry) time.Time {
	if k, ok := s.fsys.(TimeKeeper); ok {
		return k.KeptTime(f.modTime())
	}
	return f.modTime()
}

// checksum returns the unseeded MD4 of a stored file (what -c compares).
func (s *recvSession) checksum(target string) ([16]byte, error) {
	if c, ok := s.fsys.(ChecksumFS); ok && (s.p.fileSum == delta.MD4 || s.p.fileSum == delta.MD4Old) {
		return c.Checksum(target)
	}
	var sum [16]byte
	f, err := s.fsys.Open(target)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := delta.NewChecksumHash(s.p.fileSum)
	if _, err := io.Copy(h, f); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// touch brings the attributes of an up-to-date file in line: the client's mtime (always kept,
// so that the next quick check skips the file) and, with -p, its permissions.
func (s *recvSession) touch(f *fileEntry, target string, st fs.FileInfo) {
	if s.mtimeRule().needsSet(st.ModTime(), s.keptTime(f)) {
		if err := s.fsys.Chtimes(target, f.modTime()); err != nil {
			s.fileError("failed to set times on %q: %v", f.name, err)
		}
	}
	if s.o.perms && st.Mode().Perm() != fileMode(f.perm()) {
		if err := s.fsys.Chmod(target, fileMode(f.perm())); err != nil {
			s.fileError("failed to set permissions on %q: %v", f.name, err)
		}
	}
}

// fileMode converts wire permission bits; setuid, setgid and sticky bits are never stored.
func fileMode(perm uint32) fs.FileMode { return fs.FileMode(perm & 0o777) }

// receiveFiles reads the client's answers: per file its index, the echoed sum head, the tokens
// and the whole-file MD4. The client's first -1 ends the first phase, the second the transfer.
func (s *recvSession) receiveFiles(ctx context.Context) error {
	defer close(s.recvExit)
	tr, err := token.NewReaderOptions(s.in, s.p.tokenOptions(0))
	if err != nil {
		return err
	}
	maxPhase := 1
	if s.p.version >= 29 {
		maxPhase = 2
	}
	phase := 0
	for {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		ndx, err := s.ndxIn.read(s.in)
		if err != nil {
			return fmt.Errorf("read file index: %w", err)
		}
		if ndx == ndxDone {
			if phase++; phase == 1 {
				close(s.phaseDone)
			}
			if phase > maxPhase {
				return nil
			}
			continue
		}
		if ndx < 0 || int(ndx) >= len(s.list) {
			return protocolErrorf("invalid file index %d", ndx)
		}
		if s.p.version >= 29 {
			iflags, err := s.readAttrs()
			if err != nil {
				return err
			}
			if iflags&itemTransfer == 0 {
				// An itemized entry without data.
				continue
			}
		}
		// A client answers requests, so the request was normally registered long ago; a
		// client that runs ahead waits for the generator to get there (or end its phase).
		s.mu.Lock()
		head, ok := s.pending[ndx]
		for !ok && s.genPhases <= phase {
			s.requested.Wait()
			head, ok = s.pending[ndx]
		}
		delete(s.pending, ndx)
		s.mu.Unlock()
		if !ok {
			return protocolErrorf("file index %d was not requested", ndx)
		}
		if s.o.dryRun {
			continue
		}
		var echo delta.SumHead
		for _, v := range []*int32{&echo.Count, &echo.BlockLen, &echo.S2Len, &echo.Remainder} {
			if *v, err = s.in.int32(); err != nil {
				return err
			}
		}
		if echo != head {
			return protocolErrorf("sum head %+v for file %d, sent %+v", echo, ndx, head)
		}
		if err := s.receiveFile(ndx, s.list[ndx], head, tr, phase); err != nil {
			return err
		}
	}
}

// maxDiscard bounds the data of files that could not be written which the receiver reads and
// drops to go on with the next file, over the whole session; past it the session ends.
const maxDiscard = 64 << 20

// receiveFile writes one file's data to a new upload and commits it only if the whole-file
// checksum matches. It returns an error only when the stream cannot go on.
func (s *recvSession) receiveFile(ndx int32, f *fileEntry, head delta.SumHead, tr *token.Reader, phase int) error {
	target := s.fsPath(f)
	var problem error // a local failure: the data is read to the end and dropped
	var basis File
	if head.Count > 0 {
		var err error
		if basis, err = s.fsys.Open(target); err != nil {
			problem = fmt.Errorf("open basis file: %w", err)
		} else {
			defer basis.Close()
		}
	}
	up, err := s.create(target)
	if err != nil && problem == nil {
		problem = err
	}
	aborted := false
	abort := func() {
		if up != nil && !aborted {
			aborted = true
			up.Abort()
		}
	}
	defer abort()
	sum := delta.NewFileHash(s.p.xferSum, s.seed)
	sink := &s.sink
	if up != nil {
		sink.reset(up, sum, s.p.xferSum.Fast())
		defer sink.stop()
	}
	// Once there is a problem the data is only read: the file is not written and not verified.
	// What is read and dropped is bounded (maxDiscard, per session): a few bytes of block tokens or
	// compressed data stand for far more, and without a bound a client could keep the server
	// decompressing and copying blocks for as long as it likes after the file was refused.
	write := func(p []byte) {
		if problem == nil {
			if err := sink.write(p); err != nil {
				problem = fmt.Errorf("write: %w", err)
			}
			return
		}
		s.discarded += int64(len(p))
	}
	for {
		t, err := tr.Next()
		if err != nil {
			return fmt.Errorf("read data of %q: %w", f.name, err)
		}
		if t.Kind == token.End {
			break
		}
		if s.discarded > maxDiscard {
			return fmt.Errorf("%q not written: %v (and more than %d MiB of its data were dropped)", f.name, problem, maxDiscard>>20)
		}
		if t.Kind == token.Literal {
			write(t.Data)
			continue
		}
		if t.Block >= head.Count {
			return protocolErrorf("block %d of %q is beyond the %d sent", t.Block, f.name, head.Count)
		}
		off, n := head.Block(t.Block)
		var b []byte
		if basis != nil && problem == nil {
			// Straight from the basis file into the file's data.
			if b, err = sink.copyFrom(basis, off, int(n), head.Size()); err != nil {
				problem, b = err, nil
			}
		}
		if b == nil {
			// The data is dropped: what it is matters only to the compressed stream's
			// history, which goes on being read.
			if int(n) > cap(s.block) {
				s.block = make([]byte, n)
			}
			b = s.block[:n]
			clear(b)
			write(b)
		}
		tr.AddHistory(b)
	}
	var wantBuf [16]byte
	want := wantBuf[:s.p.xferSum.Len()]
	if err := s.in.full(want); err != nil {
		return fmt.Errorf("read checksum of %q: %w", f.name, err)
	}
	var got []byte
	if problem == nil {
		if got, err = sink.finish(); err != nil {
			problem = fmt.Errorf("write: %w", err)
		}
	}
	if problem != nil {
		s.fileError("%q not written: %v", f.name, problem)
		return nil
	}
	if !bytes.Equal(got, want) {
		abort()
		if phase == 0 {
			s.mu.Lock()
			s.redo = append(s.redo, ndx)
			s.mu.Unlock()
			return nil
		}
		s.fileError("ERROR: %q failed verification -- update discarded", f.name)
		return nil
	}
	aborted = true
	if err := up.Commit(f.modTime(), s.newPerm(f, target)); err != nil {
		s.fileError("%v", err)
	}
	return nil
}

// create starts an upload, making missing parent directories (a list may omit them).
func (s *recvSession) create(target string) (Upload, error) {
	up, err := s.fsys.Create(target)
	if errors.Is(err, fs.ErrNotExist) && target != "." {
		if err := s.mkdirAll(path.Dir(target)); err != nil {
			return nil, err
		}
		up, err = s.fsys.Create(target)
	}
	return up, err
}

// newPerm is the permission of a received file: the client's with -p, else an existing file's,
// else the client's masked with 022.
func (s *recvSession) newPerm(f *fileEntry, target string) fs.FileMode {
	if s.o.perms {
		return fileMode(f.perm())
	}
	if st, err := s.fsys.Lstat(target); err == nil && st.Mode().IsRegular() {
		return st.Mode().Perm()
	}
	return fileMode(f.perm()) &^ 0o022
}

// setDirAttrs applies -t and -p to the list's directories once their contents are written.
func (s *recvSession) setDirAttrs() {
	o := s.o
	if o.dryRun || s.single != "" || (!o.perms && !o.times) {
		return
	}
	for _, f := range s.list {
		if f.dup || !f.isDir() {
			continue
		}
		target := s.fsPath(f)
		st, err := s.fsys.Lstat(target)
		if err != nil || !st.IsDir() {
			continue
		}
		// The owner (the server) keeps full access to its directories: without it a later
		// session could not list, write or delete in them, nor open the root itself.
		if perm := fileMode(f.perm()) | 0o700; o.perms && st.Mode().Perm() != perm {
			if err := s.fsys.Chmod(target, perm); err != nil {
				s.fileError("failed to set permissions on %q: %v", f.name, err)
			}
		}
		if o.times && !o.omitDirTimes && s.mtimeRule().needsSet(st.ModTime(), s.keptTime(f)) {
			if err := s.fsys.Chtimes(target, f.modTime()); err != nil {
				s.fileError("failed to set times on %q: %v", f.name, err)
			}
		}
	}
}

// readAttrs reads the item flags after a file index (protocol 29+) and what they announce.
func (s *recvSession) readAttrs() (int, error) {
	iflags, err := s.in.shortint()
	if err != nil {
		return 0, err
	}
	if iflags&itemBasisTypeFollows != 0 {
		if _, err := s.in.ReadByte(); err != nil {
			return 0, err
		}
	}
	if iflags&itemXnameFollows != 0 {
		if _, err := s.in.vstring(maxPathLen); err != nil {
			return 0, err
		}
	}
	return iflags, nil
}
