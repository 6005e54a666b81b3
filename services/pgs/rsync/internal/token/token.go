package token

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ChunkSize is the most literal bytes a plain token carries as written by Writer (rsync's
// CHUNK_SIZE) and the most a Reader returns in one Literal token.
const ChunkSize = 32 << 10

// MaxBlockIndex is the largest block index either format can carry.
const MaxBlockIndex = 0x7ffffffe

// Kind is what a token says.
type Kind uint8

const (
	// Literal tokens carry file data the receiver does not have.
	Literal Kind = iota + 1
	// Block tokens say the next block of the file is block Token.Block of the basis file.
	Block
	// End ends a file's tokens.
	End
)

func (k Kind) String() string {
	switch k {
	case Literal:
		return "literal"
	case Block:
		return "block"
	case End:
		return "end"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Token is one decoded token.
type Token struct {
	Kind  Kind
	Data  []byte // Literal: the data, valid until the next call to Next
	Block int32  // Block: the basis block index, 0..MaxBlockIndex (not checked against the count)
}

// ErrInvalid is wrapped by every error about a malformed token stream.
var ErrInvalid = errors.New("invalid token stream")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Writer writes the tokens of one file after another.
type Writer struct {
	w   io.Writer
	z   *deflater
	f   frameWriter // zstd, lz4
	buf [4]byte
}

// NewWriter returns a Writer of plain tokens.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// NewCompressedWriter returns a Writer of -z tokens deflated at level (zlib levels, 1..9; 6 is
// rsync's default).
func NewCompressedWriter(w io.Writer, level int) (*Writer, error) {
	z, err := newDeflater(w, level)
	if err != nil {
		return nil, err
	}
	return &Writer{w: w, z: z}, nil
}

// Literal writes data the receiver does not have.
func (w *Writer) Literal(p []byte) error {
	if w.z != nil {
		return w.z.literal(p)
	}
	if w.f != nil {
		return w.f.literal(p)
	}
	for len(p) > 0 {
		n := min(len(p), ChunkSize)
		if err := w.int32(int32(n)); err != nil {
			return err
		}
		if _, err := w.w.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// Block writes a reference to basis block i, whose bytes are data (only used with -z, where the
// receiver adds them to the decompressor's history).
func (w *Writer) Block(i int32, data []byte) error {
	if i < 0 || i > MaxBlockIndex {
		return fmt.Errorf("block index %d out of range", i)
	}
	if w.z != nil {
		return w.z.block(i, data)
	}
	if w.f != nil {
		return w.f.block(i)
	}
	return w.int32(-(i + 1))
}

// End ends the current file's tokens and resets the per-file state.
func (w *Writer) End() error {
	if w.z != nil {
		return w.z.end()
	}
	if w.f != nil {
		return w.f.end()
	}
	return w.int32(0)
}

func (w *Writer) int32(v int32) error {
	binary.LittleEndian.PutUint32(w.buf[:], uint32(v))
	_, err := w.w.Write(w.buf[:])
	return err
}

// Reader reads the tokens of one file after another.
type Reader struct {
	in      *byteReader
	z       *inflater
	f       frameReaderI // zstd, lz4
	pending int64        // plain: literal bytes of the current token still to return
	buf     []byte
}

// NewReader returns a Reader of plain tokens.
func NewReader(r io.Reader) *Reader {
	return &Reader{in: newByteReader(r), buf: make([]byte, ChunkSize)}
}

// NewCompressedReader returns a Reader of -z tokens.
func NewCompressedReader(r io.Reader) *Reader {
	in := newByteReader(r)
	return &Reader{in: in, z: newInflater(in)}
}

// Next returns the next token. A literal token longer than ChunkSize comes back in pieces.
func (r *Reader) Next() (Token, error) {
	if r.z != nil {
		return r.z.next()
	}
	if r.f != nil {
		return r.f.next()
	}
	if r.pending == 0 {
		t, err := r.in.int32()
		if err != nil {
			return Token{}, err
		}
		switch {
		case t == 0:
			return Token{Kind: End}, nil
		case t < 0:
			i := -(t + 1)
			if i > MaxBlockIndex {
				return Token{}, invalid("block token %d", t)
			}
			return Token{Kind: Block, Block: i}, nil
		}
		r.pending = int64(t)
	}
	n := int(min(r.pending, ChunkSize))
	if _, err := io.ReadFull(r.in, r.buf[:n]); err != nil {
		return Token{}, noEOF(err)
	}
	r.pending -= int64(n)
	return Token{Kind: Literal, Data: r.buf[:n]}, nil
}

// AddHistory tells a -z Reader the bytes of the basis block the last Block token referred to,
// so that later data can refer back to them. It must be called after every Block token of a
// compressed stream; plain Readers ignore it.
func (r *Reader) AddHistory(block []byte) {
	if r.z != nil {
		r.z.addHistory(block)
	}
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// byteReader reads single bytes cheaply when the underlying reader can.
type byteReader struct {
	r  io.Reader
	br io.ByteReader
	b  [4]byte
}

func newByteReader(r io.Reader) *byteReader {
	br, _ := r.(io.ByteReader)
	return &byteReader{r: r, br: br}
}

func (b *byteReader) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *byteReader) ReadByte() (byte, error) {
	if b.br != nil {
		c, err := b.br.ReadByte()
		return c, noEOF(err)
	}
	if _, err := io.ReadFull(b.r, b.b[:1]); err != nil {
		return 0, noEOF(err)
	}
	return b.b[0], nil
}

func (b *byteReader) int32() (int32, error) {
	if _, err := io.ReadFull(b.r, b.b[:4]); err != nil {
		return 0, noEOF(err)
	}
	return int32(binary.LittleEndian.Uint32(b.b[:4])), nil
}
