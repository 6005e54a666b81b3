package rsync

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/portico-sh/portico/services/pgs/rsync/internal/delta"
	"github.com/portico-sh/portico/services/pgs/rsync/internal/token"
)

// Exit statuses (rsync's RERR_* codes).
const (
	exitOK          = 0
	exitSyntax      = 1
	exitProtocol    = 2
	exitFileSelect  = 3
	exitUnsupported = 4
	exitFileIO      = 11
	exitStream      = 12
	exitPartial     = 23
	exitDelLimit    = 25
)

// Limits on the arguments -s sends on stdin.
const (
	maxProtectedArgs      = 1024
	maxProtectedArgsBytes = 64 << 10
)

// ReceiveStarter is an FS that learns where an upload goes before the transfer starts: the
// destination argument as the client sent it ("." when it sent none). An error refuses the
// session: it is reported on stderr, and Serve returns 3 (rsync's "errors selecting input/output
// files, dirs") before anything is written to stdout.
type ReceiveStarter interface {
	FS
	StartReceive(dest string) error
}

// ListLimiter is an FS that accepts fewer file-list entries from an uploading client than the
// library's own bound (1,048,576): a longer list ends the session with a protocol error before
// it is held in memory (each entry costs the server about 170 bytes).
type ListLimiter interface {
	FS
	MaxListEntries() int
}

// Serve runs one rsync server session. command is the exec request as the SSH client sent it
// (e.g. `rsync --server -vre.iLsfxCIvu --delete . /site/`), split here with shell rules.
// It returns the exit status to send back (0, or rsync's codes: 1 syntax, 2 protocol,
// 4 unsupported, 11 file I/O, 12 stream, 23 partial).
//
// Refused command lines are reported on stderr before anything is written to stdout. Once the
// session runs, messages travel in-band to the client. Serve does not close its streams;
// cancelling ctx stops the session at its next step (the client is told context.Cause(ctx)),
// and a caller that wants a blocked read to end closes stdin.
func Serve(ctx context.Context, command string, stdin io.Reader, stdout, stderr io.Writer, fsys FS) int {
	refuse := func(err error) int {
		fmt.Fprintf(stderr, "rsync: %v\n", err)
		var u *usageError
		if errors.As(err, &u) {
			return u.code
		}
		return exitSyntax
	}
	argv, err := splitCommand(command)
	if err != nil {
		return refuse(syntaxError("cannot parse command: %v", err))
	}
	o, err := parseCommand(argv)
	if err != nil {
		return refuse(err)
	}
	in := newWireReader(stdin)
	if o.protectArgs {
		args, err := readProtectedArgs(in)
		if err != nil {
			return refuse(err)
		}
		if err := o.parse(args); err != nil {
			return refuse(err)
		}
	}
	if len(o.args) == 0 {
		return refuse(syntaxError("missing path arguments"))
	}
	if o.listOnly && !o.sender {
		return refuse(unsupported("--list-only (on uploads)"))
	}
	if rs, ok := fsys.(ReceiveStarter); ok && !o.sender {
		dest := "."
		if len(o.args) > 1 {
			dest = o.args[1]
		}
		if err := rs.StartReceive(dest); err != nil {
			fmt.Fprintf(stderr, "rsync: %v\n", err)
			return exitFileSelect
		}
	}

	if ll, ok := fsys.(ListLimiter); ok && !o.sender {
		if n := ll.MaxListEntries(); n > 0 && n < maxFiles {
			o.maxEntries = n
		}
	}

	p, code := handshake(o, in, stdout, stderr)
	if p == nil {
		return code
	}
	mux := newMuxWriter(stdout)
	if p.version >= 30 {
		in.startDemux()
	}

	if o.sender {
		return send(ctx, sendParams{
			opts: sendOptions{
				recursive:     o.recursive,
				dirs:          o.dirs,
				links:         o.links,
				owner:         o.owner,
				group:         o.group,
				devices:       o.devices,
				checksum:      o.checksum,
				dryRun:        o.dryRun,
				compress:      p.compress != token.None,
				compressLevel: o.compressLvl,
				numericIDs:    o.numericIDs,
			},
			args:    o.args[1:],
			fsys:    senderView{fsys},
			in:      in,
			out:     mux,
			flush:   mux.Flush,
			message: mux.message,
			exclude: excluder,
			proto:   p,
			written: mux.Written,
		})
	}
	return receive(ctx, &recvSession{o: o, p: p, fsys: fsys, in: in, mux: mux, seed: p.seed})
}

// readProtectedArgs reads the arguments -s sends on stdin: NUL-terminated strings ended by an
// empty one. The first is the program name and is dropped.
func readProtectedArgs(r *wireReader) ([]string, error) {
	var args []string
	var cur strings.Builder
	total := 0
	for {
		c, err := r.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("read protected arguments: %w", err)
		}
		if total++; total > maxProtectedArgsBytes {
			return nil, syntaxError("protected arguments longer than %d bytes", maxProtectedArgsBytes)
		}
		if c != 0 {
			cur.WriteByte(c)
			continue
		}
		if cur.Len() == 0 {
			break
		}
		if len(args) == maxProtectedArgs {
			return nil, syntaxError("more than %d protected arguments", maxProtectedArgs)
		}
		args = append(args, cur.String())
		cur.Reset()
	}
	if len(args) > 0 {
		args = args[1:]
	}
	return args, nil
}

// senderView gives the sender the reading half of an FS.
type senderView struct{ FS }

func (v senderView) Open(name string) (io.ReadCloser, error) { return v.FS.Open(name) }

// handshake exchanges protocol versions, sends the compatibility flags and negotiates the
// checksum and compression (protocol 30+), and sends the checksum seed. It returns nil and the
// exit status when the session cannot go on.
func handshake(o *options, in *wireReader, stdout, stderr io.Writer) (*protocol, int) {
	var b []byte
	b = appendInt32(b, maxProtocol)
	if _, err := stdout.Write(b); err != nil {
		return nil, exitStream
	}
	remote, err := in.int32()
	if err != nil {
		return nil, exitStream
	}
	if remote < minProtocol {
		fmt.Fprintf(stderr, "rsync: protocol version %d is too old (this server speaks %d to %d)\n", remote, minProtocol, maxProtocol)
		return nil, exitProtocol
	}
	p := &protocol{version: min(int(remote), maxProtocol)}
	if p.version == maxProtocol {
		p.version = max(subProtocol(p.version, o.clientInfo), minProtocol)
	}
	info := o.clientInfo
	b = b[:0]
	negotiate := false
	if p.version >= 30 {
		// Incremental recursion (CF_INC_RECURSE) is declined: the whole list comes first, as
		// with --no-inc-recursive. Symbolic link times and iconv are not offered either.
		var flags int32
		for _, f := range []struct {
			c    byte
			flag int32
		}{
			{'f', cfSafeFlist}, {'x', cfAvoidXattrOptim}, {'C', cfChksumSeedFix},
			{'I', cfInplacePartialDir}, {'u', cfID0Names}, {'v', cfVarintFlistFlags},
		} {
			if strings.IndexByte(info, f.c) >= 0 {
				flags |= f.flag
			}
		}
		if strings.IndexByte(info, 'V') >= 0 {
			// A pre-release that read the flags as one byte.
			flags |= cfVarintFlistFlags
			b = append(b, byte(flags))
		} else {
			b = appendVarint(b, flags)
		}
		p.varintFlags = flags&cfVarintFlistFlags != 0
		p.safeFlist = flags&cfSafeFlist != 0 || p.version >= 31
		p.id0Names = flags&cfID0Names != 0
		p.seedFix = flags&cfChksumSeedFix != 0
		negotiate = p.varintFlags
	}
	xfer, file, auto := delta.Checksum(0), delta.Checksum(0), true
	if o.checksumChoice != "" {
		var err error
		if xfer, file, auto, err = parseChecksumChoice(o.checksumChoice); err != nil {
			fmt.Fprintf(stderr, "rsync: %v\n", err)
			return nil, exitUnsupported
		}
	}
	wantSums := negotiate && auto
	wantCompress := negotiate && o.compress && o.compressChoice == ""
	if wantSums {
		b = appendVstring(b, offeredList(true))
	}
	if wantCompress {
		b = appendVstring(b, offeredList(false))
	}
	if _, err := stdout.Write(b); err != nil {
		return nil, exitStream
	}
	switch {
	case wantSums:
		list, err := in.vstring(maxNegotiationString)
		if err != nil {
			return nil, exitStream
		}
		c, ok := chooseChecksum(list)
		if !ok {
			fmt.Fprintf(stderr, "rsync: failed to negotiate a checksum choice (client list: %s; server list: %s)\n", list, offeredList(true))
			return nil, exitUnsupported
		}
		p.xferSum, p.fileSum = c, c
	case !auto:
		p.xferSum, p.fileSum = xfer, file
	case p.version >= 30:
		p.xferSum, p.fileSum = delta.MD5, delta.MD5
	default:
		p.xferSum, p.fileSum = delta.MD4Old, delta.MD4Old
	}
	switch {
	case !o.compress:
		p.compress = token.None
	case wantCompress:
		list, err := in.vstring(maxNegotiationString)
		if err != nil {
			return nil, exitStream
		}
		c, ok := chooseCompression(list)
		if !ok {
			fmt.Fprintf(stderr, "rsync: failed to negotiate a compression choice (client list: %s; server list: %s)\n", list, offeredList(false))
			return nil, exitUnsupported
		}
		p.compress = c
	case o.compressChoice != "":
		p.compress, _ = lookupCompression(o.compressChoice)
	default:
		p.compress = token.Zlib
	}
	if o.compressOff && (p.compress == token.Zlib || p.compress == token.Zlibx) {
		p.compress = token.None
	}
	// The seed: --checksum-seed, else random, never 0 (rsync leaves a 0 seed out of block sums).
	p.seed = o.checksumSeed
	var sb [4]byte
	for p.seed == 0 {
		rand.Read(sb[:])
		p.seed = int32(binary.LittleEndian.Uint32(sb[:]) & 0x7fffffff)
	}
	if _, err := stdout.Write(appendInt32(nil, p.seed)); err != nil {
		return nil, exitStream
	}
	return p, exitOK
}

// goodbyeTimeout bounds how long a session waits for the client's last words once the server
// has sent everything. A real client answers at once; one that does not would otherwise hold the
// session (and, for an upload to pgs, the deploy that follows it) until the SSH connection's
// idle timeout. A variable only so that tests can shorten it.
var goodbyeTimeout = 10 * time.Second

// awaitGoodbye runs read, a read of the client's goodbye, for at most goodbyeTimeout (or until
// ctx ends). After a timeout the read goes on in the background, touching nothing but the
// session's input, until the caller closes the client's stream, as Serve's callers do when a
// session ends.
func awaitGoodbye(ctx context.Context, read func() error) error {
	done := make(chan error, 1)
	go func() { done <- read() }()
	t := time.NewTimer(goodbyeTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("the client did not end the session within %v", goodbyeTimeout)
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
