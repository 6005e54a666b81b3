package delta

import (
	"bytes"
	"errors"
	"io"
)

const (
	// MaxMatchBlockLen is the largest block length Match searches for; with longer blocks (peer
	// basis files over 16 TiB) the whole file is sent as literals so the window stays bounded.
	MaxMatchBlockLen = 1 << 22
	// literalFlush is how much unmatched data Match accumulates before handing it to the sink.
	literalFlush = 32 << 10
	// readChunk is how much Match reads from the new file at a time.
	readChunk = 64 << 10
	// maxChain bounds the hash-bucket entries visited at one offset (as rsync's MAX_CHAIN_LEN),
	// so a basis with many equal or colliding weak checksums cannot make the search quadratic.
	maxChain = 1024
)

// Sink receives the delta of a new file, in file order. The slices are only valid during the
// call.
type Sink interface {
	// Literal is data the receiver does not have.
	Literal(p []byte) error
	// Match says that the next len(data) bytes equal block i of the basis file; data are those
	// bytes (for the -z history).
	Match(i int32, data []byte) error
}

// Match streams the new file from r and describes it to sink as literal data and matches of
// the basis blocks in sums (nil or empty sums: all literal). Memory stays within a few block
// lengths plus the hash table, whatever the file size.
func Match(sums *Sums, ss StrongSum, r io.Reader, sink Sink) error {
	if sums == nil || len(sums.Sum1) == 0 || sums.Head.BlockLen <= 0 || sums.Head.BlockLen > MaxMatchBlockLen {
		return literalOnly(r, sink)
	}
	m := newMatcher(sums, ss, r, sink)
	return m.run()
}

func literalOnly(r io.Reader, sink Sink) error {
	buf := make([]byte, literalFlush)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if serr := sink.Literal(buf[:n]); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

type matcher struct {
	sums    *Sums
	r       io.Reader
	sink    Sink
	blen    int
	lastLen int // length of the last block (remainder, or blen)
	minLen  int
	s2len   int
	stored  int32
	bits    uint
	head    []int32
	next    []int32
	st      strong
	want    int32

	buf      []byte
	off      int // start of the current window in buf
	litStart int // start of the pending literal in buf
	eof      bool
}

func newMatcher(sums *Sums, ss StrongSum, r io.Reader, sink Sink) *matcher {
	h := sums.Head
	m := &matcher{
		sums:   sums,
		r:      r,
		sink:   sink,
		blen:   int(h.BlockLen),
		s2len:  int(h.S2Len),
		stored: int32(len(sums.Sum1)),
	}
	m.lastLen = m.blen
	if h.Remainder != 0 && h.Count == m.stored {
		m.lastLen = int(h.Remainder)
	}
	m.minLen = min(m.lastLen, m.blen)
	m.bits = 16
	for (1<<m.bits)/2 < int(m.stored) && m.bits < 30 {
		m.bits++
	}
	m.head = make([]int32, 1<<m.bits)
	for i := range m.head {
		m.head[i] = -1
	}
	m.next = make([]int32, m.stored)
	for i := m.stored - 1; i >= 0; i-- {
		t := m.hash(sums.Sum1[i])
		m.next[i] = m.head[t]
		m.head[t] = i
	}
	m.st.init(ss)
	m.buf = make([]byte, 0, m.blen+1+literalFlush+readChunk)
	return m
}

func (m *matcher) hash(sum uint32) uint32 { return (sum * 0x9E3779B1) >> (32 - m.bits) }

func (m *matcher) blockLen(i int32) int {
	if i == m.stored-1 {
		return m.lastLen
	}
	return m.blen
}

// fill makes at least want bytes available from the window start, unless the file ends first.
// It may move the buffer contents, adjusting off and litStart.
func (m *matcher) fill(want int) error {
	for !m.eof && len(m.buf)-m.off < want {
		if cap(m.buf)-len(m.buf) < readChunk {
			if m.off-m.litStart >= literalFlush {
				if err := m.sink.Literal(m.buf[m.litStart:m.off]); err != nil {
					return err
				}
				m.litStart = m.off
			}
			n := copy(m.buf[:cap(m.buf)], m.buf[m.litStart:])
			m.buf = m.buf[:n]
			m.off -= m.litStart
			m.litStart = 0
		}
		n, err := m.r.Read(m.buf[len(m.buf):cap(m.buf)])
		m.buf = m.buf[:len(m.buf)+n]
		if errors.Is(err, io.EOF) {
			m.eof = true
		} else if err != nil {
			return err
		}
	}
	return nil
}

// lookup returns the basis block equal to the window data, or -1.
func (m *matcher) lookup(sum uint32, data []byte) int32 {
	i := m.head[m.hash(sum)]
	if i < 0 {
		return -1
	}
	var s2 [SumLen]byte
	done := false
	chain := 0
	for ; i >= 0; i = m.next[i] {
		// Every entry of the bucket counts, not only equal weak sums: a peer can fill one
		// bucket with weak sums that differ from the window's but hash alike.
		if chain++; chain > maxChain {
			return -1
		}
		if m.sums.Sum1[i] != sum {
			continue
		}
		if m.blockLen(i) != len(data) {
			continue
		}
		if !done {
			s2 = m.st.sum(data)
			done = true
		}
		if !bytes.Equal(s2[:m.s2len], m.sum2(i)) {
			continue
		}
		// Prefer the block after the previous match, so runs of blocks code compactly.
		if w := m.want; w != i && w < m.stored && m.sums.Sum1[w] == sum && m.blockLen(w) == len(data) &&
			bytes.Equal(s2[:m.s2len], m.sum2(w)) {
			i = w
		}
		m.want = i + 1
		return i
	}
	return -1
}

func (m *matcher) sum2(i int32) []byte {
	return m.sums.Sum2[int(i)*m.s2len : int(i+1)*m.s2len]
}

func (m *matcher) run() error {
	var roll Rolling
	k := 0
	reset := func() error {
		if err := m.fill(m.blen + 1); err != nil {
			return err
		}
		k = min(m.blen, len(m.buf)-m.off)
		roll.Reset(m.buf[m.off : m.off+k])
		return nil
	}
	if err := reset(); err != nil {
		return err
	}
	for k >= m.minLen {
		if k == m.blen || k == m.lastLen {
			if i := m.lookup(roll.Sum(), m.buf[m.off:m.off+k]); i >= 0 {
				if m.off > m.litStart {
					if err := m.sink.Literal(m.buf[m.litStart:m.off]); err != nil {
						return err
					}
				}
				if err := m.sink.Match(i, m.buf[m.off:m.off+k]); err != nil {
					return err
				}
				m.off += k
				m.litStart = m.off
				if err := reset(); err != nil {
					return err
				}
				continue
			}
		}
		if m.off+k >= len(m.buf) {
			if err := m.fill(k + 1); err != nil {
				return err
			}
		}
		if m.off+k < len(m.buf) {
			roll.Roll(m.buf[m.off], m.buf[m.off+k])
		} else {
			roll.Shrink(m.buf[m.off])
			k--
		}
		m.off++
	}
	// Nothing else can match: the rest of the file is literal.
	m.off = len(m.buf)
	for {
		if m.off > m.litStart {
			if err := m.sink.Literal(m.buf[m.litStart:m.off]); err != nil {
				return err
			}
		}
		m.buf, m.off, m.litStart = m.buf[:0], 0, 0
		if m.eof {
			return nil
		}
		if err := m.fill(1); err != nil {
			return err
		}
		m.off = len(m.buf)
	}
}
