package rsync

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
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

// protocolVersion is the only protocol this server speaks.
const protocolVersion = 27

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
	if o.sender && o.unseededFileSum {
		// The sender always sends seeded whole-file checksums.
		return refuse(unsupported("--checksum-choice (on downloads)"))
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

	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], protocolVersion)
	if _, err := stdout.Write(b[:]); err != nil {
		return exitStream
	}
	remote, err := in.int32()
	if err != nil {
		return exitStream
	}
	if remote < protocolVersion {
		fmt.Fprintf(stderr, "rsync: protocol version %d is too old (this server speaks %d)\n", remote, protocolVersion)
		return exitProtocol
	}
	seed := o.checksumSeed
	for seed == 0 {
		rand.Read(b[:])
		seed = int32(binary.LittleEndian.Uint32(b[:]) & 0x7fffffff)
	}
	binary.LittleEndian.PutUint32(b[:], uint32(seed))
	if _, err := stdout.Write(b[:]); err != nil {
		return exitStream
	}
	mux := newMuxWriter(stdout)

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
				compress:      o.compress,
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
			seed:    seed,
			written: mux.Written,
		})
	}
	return receive(ctx, &recvSession{o: o, fsys: fsys, in: in, mux: mux, seed: seed})
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
