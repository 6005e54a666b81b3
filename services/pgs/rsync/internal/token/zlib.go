package token

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
)

// Flag bytes of the -z token format (rsync's token.c).
const (
	flagEnd          = 0x00 // end of file
	flagTokenLong    = 0x20 // + int32 absolute block index
	flagTokenRunLong = 0x21 // + int32 index + 16-bit LE run length
	flagData         = 0x40 // | high 6 bits of length, + low 8 bits, + deflated bytes
	flagTokenRel     = 0x80 // | 6-bit index relative to the end of the previous run
	flagTokenRunRel  = 0xc0 // | 6-bit relative index + 16-bit LE run length
	maxDataCount     = 16383
	windowSize       = 32 << 10 // deflate's history window
	// historyPiece is how many bytes rsync feeds into the history per call; below protocol 31
	// every piece of a longer block repeats the block's first bytes.
	historyPiece = 0xffff
)

// syncTail is what a sync flush ends with; the sender strips it, the receiver puts it back.
var syncTail = []byte{0, 0, 0xff, 0xff}

// eachHistoryPiece calls fn with the bytes that protocol 27 adds to the deflate history for a
// matched block: pieces of up to 64 KiB, each taken from the start of the block.
func eachHistoryPiece(block []byte, fn func([]byte), advance bool) {
	for off, left := 0, len(block); left > 0; {
		n := min(left, historyPiece)
		fn(block[off : off+n])
		left -= n
		if advance {
			// Protocol 31 fixed the repetition: the pieces follow each other.
			off += n
		}
	}
}

// window keeps the last windowSize bytes of a byte sequence.
type window struct{ b []byte }

func (w *window) add(p []byte) {
	if len(p) >= windowSize {
		w.b = append(w.b[:0], p[len(p)-windowSize:]...)
		return
	}
	if len(w.b)+len(p) > 2*windowSize {
		w.b = append(w.b[:0], w.b[len(w.b)-(windowSize-len(p)):]...)
	}
	w.b = append(w.b, p...)
}

func (w *window) bytes() []byte {
	if len(w.b) > windowSize {
		return w.b[len(w.b)-windowSize:]
	}
	return w.b
}

func (w *window) reset() { w.b = w.b[:0] }

// deflater is the -z side of Writer.
type deflater struct {
	w   io.Writer
	fw  *flate.Writer
	out bytes.Buffer // compressed bytes not yet framed
	// discard makes out drop what the compressor writes (history insertion).
	discard bool

	dirty     bool   // literal data written since the last sync flush
	history   window // matched-block bytes not yet fed to the compressor
	runs      runs   // the matched blocks, as runs of block tokens
	frame     [maxDataCount + 2]byte
	noHistory bool // zlibx: matched blocks are not added to the history
	advance   bool // protocol 31+: history pieces of long blocks follow each other
}

type deflaterSink struct{ d *deflater }

func (s deflaterSink) Write(p []byte) (int, error) {
	if !s.d.discard {
		s.d.out.Write(p)
	}
	return len(p), nil
}

func newDeflater(w io.Writer, level int) (*deflater, error) {
	d := &deflater{w: w}
	fw, err := flate.NewWriter(deflaterSink{d}, level)
	if err != nil {
		return nil, fmt.Errorf("compression level %d: %w", level, err)
	}
	d.fw = fw
	return d, nil
}

func (d *deflater) literal(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if err := d.runs.flush(d.w); err != nil {
		return err
	}
	if h := d.history.bytes(); len(h) > 0 {
		// Only the last 32 KiB of matched data can be referred to, so only they are fed.
		d.discard = true
		d.fw.Write(h)
		err := d.fw.Flush()
		d.discard = false
		d.history.reset()
		if err != nil {
			return err
		}
	}
	d.dirty = true
	if _, err := d.fw.Write(p); err != nil {
		return err
	}
	return d.writeFrames(4)
}

// writeFrames sends the compressed bytes in data frames, keeping the last keep bytes back.
func (d *deflater) writeFrames(keep int) error {
	for d.out.Len() > keep {
		n := min(d.out.Len()-keep, maxDataCount)
		d.frame[0] = flagData | byte(n>>8)
		d.frame[1] = byte(n)
		d.out.Read(d.frame[2 : 2+n])
		if _, err := d.w.Write(d.frame[:2+n]); err != nil {
			return err
		}
	}
	if d.out.Len() == 0 {
		d.out.Reset()
	}
	return nil
}

// flushData ends a run of literal data: sync flush, strip the 00 00 ff ff tail, send the rest.
func (d *deflater) flushData() error {
	if !d.dirty {
		return nil
	}
	d.dirty = false
	if err := d.fw.Flush(); err != nil {
		return err
	}
	if !bytes.HasSuffix(d.out.Bytes(), syncTail) {
		return fmt.Errorf("deflate sync flush did not end in 00 00 ff ff")
	}
	d.out.Truncate(d.out.Len() - len(syncTail))
	return d.writeFrames(0)
}

func (d *deflater) block(i int32, data []byte) error {
	if err := d.flushData(); err != nil {
		return err
	}
	if err := d.runs.add(d.w, i); err != nil {
		return err
	}
	if !d.noHistory {
		eachHistoryPiece(data, d.history.add, d.advance)
	}
	return nil
}

func (d *deflater) end() error {
	if err := d.flushData(); err != nil {
		return err
	}
	d.history.reset()
	d.out.Reset()
	d.fw.Reset(deflaterSink{d})
	return d.runs.endFile(d.w)
}

// inflater is the -z side of Reader.
//
// Between two runs of literal data the decompressor only keeps its 32 KiB history, so each run
// is decoded by a decompressor reset onto the history the inflater keeps itself (literal output
// plus the matched blocks given to AddHistory). The run's data frames are fed to it followed by
// the sync tail the sender stripped and a final empty stored block, so it ends with io.EOF.
type inflater struct {
	in  *byteReader
	src runSource
	fr  io.ReadCloser

	inflating bool
	flag      int // a flag read while looking for the end of a data run, or -1
	token     int32
	run       int32
	history   window
	out       []byte
	noHistory bool
	advance   bool
}

func newInflater(in *byteReader) *inflater {
	z := &inflater{in: in, flag: -1, out: make([]byte, ChunkSize)}
	z.src.z = z
	return z
}

// runEnd is fed to the decompressor after a run's data: the stripped sync tail, then an empty
// final stored block.
var runEnd = []byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}

// runSource feeds one data run to the decompressor, reading frames from the wire as needed.
type runSource struct {
	z     *inflater
	data  [maxDataCount]byte
	cur   []byte
	ended bool // the flag after the run was read; cur holds runEnd
}

func (s *runSource) fill() error {
	for len(s.cur) == 0 {
		if s.ended {
			return io.EOF
		}
		flag, err := s.z.in.ReadByte()
		if err != nil {
			return err
		}
		if flag&0xc0 != flagData {
			s.z.flag = int(flag)
			s.cur, s.ended = runEnd, true
			return nil
		}
		lo, err := s.z.in.ReadByte()
		if err != nil {
			return err
		}
		n := int(flag&0x3f)<<8 | int(lo)
		if _, err := io.ReadFull(s.z.in, s.data[:n]); err != nil {
			return noEOF(err)
		}
		s.cur = s.data[:n]
	}
	return nil
}

func (s *runSource) Read(p []byte) (int, error) {
	if err := s.fill(); err != nil {
		return 0, err
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}

func (s *runSource) ReadByte() (byte, error) {
	if err := s.fill(); err != nil {
		return 0, err
	}
	c := s.cur[0]
	s.cur = s.cur[1:]
	return c, nil
}

func (z *inflater) startRun(first []byte) error {
	z.src.cur, z.src.ended = first, false
	if z.fr == nil {
		z.fr = flate.NewReader(&z.src)
	}
	return z.fr.(flate.Resetter).Reset(&z.src, z.history.bytes())
}

func (z *inflater) next() (Token, error) {
	for {
		if z.inflating {
			n, err := z.fr.Read(z.out)
			if n > 0 {
				z.history.add(z.out[:n])
				return Token{Kind: Literal, Data: z.out[:n]}, nil
			}
			if err == io.EOF {
				if !z.src.ended || len(z.src.cur) > 0 {
					return Token{}, invalid("deflate stream ended inside a data run")
				}
				z.inflating = false
				continue
			}
			if err != nil {
				return Token{}, fmt.Errorf("%w: inflate: %w", ErrInvalid, err)
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
		var flag byte
		if z.flag >= 0 {
			flag, z.flag = byte(z.flag), -1
		} else {
			c, err := z.in.ReadByte()
			if err != nil {
				return Token{}, err
			}
			flag = c
		}
		switch {
		case flag == flagEnd:
			z.token, z.run = 0, 0
			z.history.reset()
			return Token{Kind: End}, nil
		case flag&0xc0 == flagData:
			lo, err := z.in.ReadByte()
			if err != nil {
				return Token{}, err
			}
			n := int(flag&0x3f)<<8 | int(lo)
			if _, err := io.ReadFull(z.in, z.src.data[:n]); err != nil {
				return Token{}, noEOF(err)
			}
			if err := z.startRun(z.src.data[:n]); err != nil {
				return Token{}, err
			}
			z.inflating = true
		case flag&flagTokenRel != 0 || flag == flagTokenLong || flag == flagTokenRunLong:
			return readBlockToken(z.in, flag, &z.token, &z.run)
		default:
			return Token{}, invalid("flag byte %#02x", flag)
		}
	}
}

func (z *inflater) addHistory(block []byte) {
	if !z.noHistory {
		eachHistoryPiece(block, z.history.add, z.advance)
	}
}
