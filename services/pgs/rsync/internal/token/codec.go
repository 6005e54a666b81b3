package token

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Compression is a token-stream format (rsync's compression choices).
type Compression uint8

const (
	// None is the plain format.
	None Compression = iota
	// Zlib is "zlib": deflate with matched blocks added to the history.
	Zlib
	// Zlibx is "zlibx": deflate without the matched-block history.
	Zlibx
	// Zstd is "zstd": one zstd stream for the whole session, flushed before every token.
	Zstd
	// LZ4 is "lz4": every data frame an independent LZ4 block.
	LZ4
)

// String returns rsync's name of the format.
func (c Compression) String() string {
	switch c {
	case None:
		return "none"
	case Zlib:
		return "zlib"
	case Zlibx:
		return "zlibx"
	case Zstd:
		return "zstd"
	case LZ4:
		return "lz4"
	}
	return fmt.Sprintf("Compression(%d)", uint8(c))
}

// Options choose a token format.
type Options struct {
	Compression Compression
	// Level is the compression level for writers (0: the format's default).
	Level int
	// Protocol is the session's protocol version (it changes how zlib feeds long blocks into
	// the history).
	Protocol int
}

// zstdMaxWindow bounds the history a peer's zstd stream may ask the receiver to keep (levels up
// to 19 use at most 8 MiB).
const zstdMaxWindow = 8 << 20

// zstdOutSize is the decoder's output buffer: a zstd block decodes to at most 128 KiB, so one
// Read drains a whole block.
const zstdOutSize = 128 << 10

// lz4OutSize is the largest block an LZ4 data frame may decode to (rsync's receive buffer).
var lz4OutSize = max(lz4.CompressBlockBound(ChunkSize), maxDataCount+2)

// NewWriterOptions returns a Writer of the format o chooses.
func NewWriterOptions(w io.Writer, o Options) (*Writer, error) {
	switch o.Compression {
	case None:
		return NewWriter(w), nil
	case Zlib, Zlibx:
		level := o.Level
		if level == 0 {
			level = 6
		}
		// As rsync: out-of-range levels are clamped.
		level = min(max(level, 1), 9)
		tw, err := NewCompressedWriter(w, level)
		if err != nil {
			return nil, err
		}
		tw.z.noHistory = o.Compression == Zlibx
		tw.z.advance = o.Protocol >= 31
		return tw, nil
	case Zstd:
		level := zstd.SpeedDefault
		if o.Level != 0 {
			level = zstd.EncoderLevelFromZstd(o.Level)
		}
		zw := &zstdWriter{w: w}
		enc, err := zstd.NewWriter(&zw.out, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(false), zstd.WithWindowSize(2<<20))
		if err != nil {
			return nil, err
		}
		zw.enc = enc
		return &Writer{w: w, f: zw}, nil
	case LZ4:
		return &Writer{w: w, f: &lz4Writer{w: w, buf: make([]byte, lz4.CompressBlockBound(maxDataCount)+2)}}, nil
	}
	return nil, fmt.Errorf("unknown compression %v", o.Compression)
}

// NewReaderOptions returns a Reader of the format o chooses.
func NewReaderOptions(r io.Reader, o Options) (*Reader, error) {
	switch o.Compression {
	case None:
		return NewReader(r), nil
	case Zlib, Zlibx:
		tr := NewCompressedReader(r)
		tr.z.noHistory = o.Compression == Zlibx
		tr.z.advance = o.Protocol >= 31
		return tr, nil
	case Zstd:
		in := newByteReader(r)
		zr := &frameReader{in: in, out: make([]byte, zstdOutSize)}
		zr.src.in = in
		dec, err := zstd.NewReader(&zr.src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, err
		}
		zr.zstd = dec
		return &Reader{in: in, f: zr}, nil
	case LZ4:
		in := newByteReader(r)
		return &Reader{in: in, f: &frameReader{in: in, out: make([]byte, lz4OutSize)}}, nil
	}
	return nil, fmt.Errorf("unknown compression %v", o.Compression)
}

// frameWriter is a compressed format other than zlib.
type frameWriter interface {
	literal(p []byte) error
	block(i int32) error
	end() error
}

// frameReader is a compressed format other than zlib.
type frameReaderI interface {
	next() (Token, error)
}

// runs encodes block tokens as rsync's compressed formats do: runs of consecutive blocks, each
// relative to the end of the previous run when close enough.
type runs struct {
	have       bool
	start, end int32
	lastEnd    int32
	hdr        [7]byte
}

// add records block i, writing the previous run first when i does not continue it.
func (r *runs) add(w io.Writer, i int32) error {
	if r.have && i == r.end+1 && i-r.start < 65536 {
		r.end = i
		return nil
	}
	if err := r.flush(w); err != nil {
		return err
	}
	r.have, r.start, r.end = true, i, i
	return nil
}

// flush writes the pending run.
func (r *runs) flush(w io.Writer) error {
	if !r.have {
		return nil
	}
	h := r.hdr[:0]
	rel := r.start - r.lastEnd
	n := r.end - r.start
	switch {
	case rel >= 0 && rel <= 63 && n == 0:
		h = append(h, flagTokenRel|byte(rel))
	case rel >= 0 && rel <= 63:
		h = append(h, flagTokenRunRel|byte(rel))
	case n == 0:
		h = append(h, flagTokenLong)
		h = binary.LittleEndian.AppendUint32(h, uint32(r.start))
	default:
		h = append(h, flagTokenRunLong)
		h = binary.LittleEndian.AppendUint32(h, uint32(r.start))
	}
	if n != 0 {
		h = append(h, byte(n), byte(n>>8))
	}
	r.lastEnd = r.end
	r.have = false
	_, err := w.Write(h)
	return err
}

// endFile writes the pending run and the end flag, and starts the next file's numbering.
func (r *runs) endFile(w io.Writer) error {
	if err := r.flush(w); err != nil {
		return err
	}
	r.lastEnd = 0
	_, err := w.Write([]byte{flagEnd})
	return err
}

// writeDataFrames sends p in data frames of at most maxDataCount bytes.
func writeDataFrames(w io.Writer, p []byte, frame []byte) error {
	for len(p) > 0 {
		n := min(len(p), maxDataCount)
		frame = append(frame[:0], flagData|byte(n>>8), byte(n))
		frame = append(frame, p[:n]...)
		if _, err := w.Write(frame); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// zstdWriter is the zstd side of Writer. The encoder's state (and history) lasts for the whole
// session; before every token the stream is flushed so that the receiver can decode all data
// sent so far.
type zstdWriter struct {
	w     io.Writer
	enc   *zstd.Encoder
	out   bytes.Buffer
	runs  runs
	dirty bool
	frame []byte
}

func (z *zstdWriter) send() error {
	err := writeDataFrames(z.w, z.out.Bytes(), z.frame)
	z.out.Reset()
	return err
}

func (z *zstdWriter) literal(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if err := z.runs.flush(z.w); err != nil {
		return err
	}
	z.dirty = true
	if _, err := z.enc.Write(p); err != nil {
		return err
	}
	if z.out.Len() >= maxDataCount {
		return z.send()
	}
	return nil
}

func (z *zstdWriter) flushData() error {
	if !z.dirty {
		return nil
	}
	z.dirty = false
	if err := z.enc.Flush(); err != nil {
		return err
	}
	return z.send()
}

func (z *zstdWriter) block(i int32) error {
	if err := z.flushData(); err != nil {
		return err
	}
	return z.runs.add(z.w, i)
}

func (z *zstdWriter) end() error {
	if err := z.flushData(); err != nil {
		return err
	}
	return z.runs.endFile(z.w)
}

// lz4Writer is the LZ4 side of Writer: each data frame is one LZ4 block of at most
// maxDataCount compressed bytes.
type lz4Writer struct {
	w    io.Writer
	buf  []byte
	runs runs
}

func (l *lz4Writer) literal(p []byte) error {
	if err := l.runs.flush(l.w); err != nil {
		return err
	}
	for len(p) > 0 {
		in := min(len(p), maxDataCount)
		for {
			n, err := lz4.CompressBlock(p[:in], l.buf[2:], nil)
			if err != nil {
				return fmt.Errorf("lz4: %w", err)
			}
			if n > 0 && n <= maxDataCount {
				l.buf[0], l.buf[1] = flagData|byte(n>>8), byte(n)
				if _, err := l.w.Write(l.buf[:2+n]); err != nil {
					return err
				}
				break
			}
			// Incompressible: as rsync, try half as much input.
			in /= 2
			if in == 0 {
				return fmt.Errorf("lz4: cannot compress")
			}
		}
		p = p[in:]
	}
	return nil
}

func (l *lz4Writer) block(i int32) error { return l.runs.add(l.w, i) }
func (l *lz4Writer) end() error          { return l.runs.endFile(l.w) }

// frameReader is the zstd and LZ4 side of Reader.
type frameReader struct {
	in   *byteReader
	zstd *zstd.Decoder // nil for LZ4
	src  zstdSource
	out  []byte
	buf  [maxDataCount]byte

	pending  []byte // decoded data not yet returned (it goes out in ChunkSize pieces)
	decoding bool   // zstd: data frames were read that are not decoded yet
	token    int32
	run      int32
}

// zstdSource feeds the payloads of data frames to the zstd decoder. A zstd block may span
// several frames; the decoder asks for exactly the bytes it needs, so it is only asked to decode
// while data is pending, and running dry inside a block reads the next frame from the wire.
type zstdSource struct {
	in   *byteReader
	data [maxDataCount]byte
	cur  []byte
}

func (s *zstdSource) Read(p []byte) (int, error) {
	for len(s.cur) == 0 {
		flag, err := s.in.ReadByte()
		if err != nil {
			return 0, err
		}
		if flag&0xc0 != flagData {
			return 0, invalid("zstd block cut by flag byte %#02x", flag)
		}
		n, err := readDataLen(s.in, flag)
		if err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(s.in, s.data[:n]); err != nil {
			return 0, noEOF(err)
		}
		s.cur = s.data[:n]
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}

func readDataLen(in *byteReader, flag byte) (int, error) {
	lo, err := in.ReadByte()
	if err != nil {
		return 0, err
	}
	return int(flag&0x3f)<<8 | int(lo), nil
}

func (z *frameReader) next() (Token, error) {
	for {
		if len(z.pending) > 0 {
			n := min(len(z.pending), ChunkSize)
			data := z.pending[:n]
			z.pending = z.pending[n:]
			return Token{Kind: Literal, Data: data}, nil
		}
		if z.decoding {
			if len(z.src.cur) == 0 {
				z.decoding = false
				continue
			}
			before := len(z.src.cur)
			n, err := z.zstd.Read(z.out)
			if n > 0 {
				z.pending = z.out[:n]
				continue
			}
			if err != nil {
				return Token{}, fmt.Errorf("%w: zstd: %w", ErrInvalid, err)
			}
			if len(z.src.cur) == before {
				return Token{}, invalid("zstd decoder made no progress")
			}
			continue
		}
		if z.run > 0 {
			if z.token >= MaxBlockIndex {
				return Token{}, invalid("block run past the largest index")
			}
			z.token++
			z.run--
			return Token{Kind: Block, Block: z.token}, nil
		}
		flag, err := z.in.ReadByte()
		if err != nil {
			return Token{}, err
		}
		switch {
		case flag == flagEnd:
			z.token, z.run = 0, 0
			return Token{Kind: End}, nil
		case flag&0xc0 == flagData:
			n, err := readDataLen(z.in, flag)
			if err != nil {
				return Token{}, err
			}
			if z.zstd != nil {
				if _, err := io.ReadFull(z.in, z.src.data[:n]); err != nil {
					return Token{}, noEOF(err)
				}
				z.src.cur = z.src.data[:n]
				z.decoding = true
				continue
			}
			if _, err := io.ReadFull(z.in, z.buf[:n]); err != nil {
				return Token{}, noEOF(err)
			}
			m, err := lz4.UncompressBlock(z.buf[:n], z.out)
			if err != nil {
				return Token{}, fmt.Errorf("%w: lz4: %w", ErrInvalid, err)
			}
			z.pending = z.out[:m]
		case flag&flagTokenRel != 0 || flag == flagTokenLong || flag == flagTokenRunLong:
			return readBlockToken(z.in, flag, &z.token, &z.run)
		default:
			return Token{}, invalid("flag byte %#02x", flag)
		}
	}
}

// readBlockToken reads the block reference that flag starts — relative to *token, or a long
// one that follows — and the run of blocks after it when flag says there is one, updating
// *token and *run.
func readBlockToken(in *byteReader, flag byte, token, run *int32) (Token, error) {
	if flag&flagTokenRel != 0 {
		incr := int32(flag & 0x3f)
		if *token > MaxBlockIndex-incr {
			return Token{}, invalid("relative block token past the largest index")
		}
		*token += incr
	} else {
		t, err := in.int32()
		if err != nil {
			return Token{}, err
		}
		if t < 0 || t > MaxBlockIndex {
			return Token{}, invalid("block token %d", t)
		}
		*token = t
	}
	if (flag&flagTokenRel != 0 && flag&0x40 != 0) || flag == flagTokenRunLong {
		var b [2]byte
		if _, err := io.ReadFull(in, b[:]); err != nil {
			return Token{}, noEOF(err)
		}
		*run = int32(binary.LittleEndian.Uint16(b[:]))
		if *run == 0 || *token > MaxBlockIndex-*run {
			return Token{}, invalid("block run of %d from %d", *run, *token)
		}
	}
	return Token{Kind: Block, Block: *token}, nil
}
