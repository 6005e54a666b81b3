package rsync

import (
	"encoding/binary"
	"io"
	"sync"
)

// Message tags of the multiplexed stream (rsync's MSG_*).
const (
	msgData      = 0
	msgErrorXfer = 1 // a per-file error (rsync's FERROR_XFER)
	msgInfo      = 2
	msgError     = 3
	msgWarning   = 4
)

// maxFrame is the most payload one multiplexed frame carries here (the header allows 16 MiB).
const maxFrame = 32 << 10

// maxMessageFrame is the most text one message frame carries: an rsync client reads a message
// into a buffer of BIGPATHBUFLEN (5,120) bytes and aborts ("multiplexing overflow") on a longer
// one, and a message naming a long file in Go quoting can exceed that. Longer text goes in
// several frames, which the client prints one after another.
const maxMessageFrame = 4096

// muxWriter multiplexes the server's output after the handshake: DATA is buffered and framed,
// messages are framed at once after the pending DATA. It is safe for concurrent use (the
// generator and the receiver share it) and counts every byte written to the client.
type muxWriter struct {
	mu      sync.Mutex
	w       io.Writer
	buf     []byte // pending DATA payload
	out     []byte // one frame being written
	written int64
	err     error
}

func newMuxWriter(w io.Writer) *muxWriter {
	return &muxWriter{w: w, buf: make([]byte, 0, maxFrame)}
}

// Write buffers p as DATA.
func (m *muxWriter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		if m.err != nil {
			return 0, m.err
		}
		k := min(len(p), maxFrame-len(m.buf))
		m.buf = append(m.buf, p[:k]...)
		p = p[k:]
		if len(m.buf) == maxFrame {
			m.flushData()
		}
	}
	return n, m.err
}

// Flush sends the pending DATA.
func (m *muxWriter) Flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flushData()
	return m.err
}

// message sends a text message with the given tag after the pending DATA. Errors show up in
// later writes.
func (m *muxWriter) message(tag int, text string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flushData()
	for p := []byte(text); len(p) > 0 && m.err == nil; {
		k := min(len(p), maxMessageFrame)
		m.frame(tag, p[:k])
		p = p[k:]
	}
}

// Written returns the bytes written to the client so far.
func (m *muxWriter) Written() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.written
}

func (m *muxWriter) flushData() {
	if len(m.buf) == 0 || m.err != nil {
		return
	}
	m.frame(msgData, m.buf)
	m.buf = m.buf[:0]
}

func (m *muxWriter) frame(tag int, p []byte) {
	if m.err != nil {
		return
	}
	var h [4]byte
	binary.LittleEndian.PutUint32(h[:], uint32(7+tag)<<24|uint32(len(p)))
	// One Write per frame keeps frames whole if the underlying writer is shared.
	m.out = append(append(m.out[:0], h[:]...), p...)
	n, err := m.w.Write(m.out)
	m.written += int64(n)
	if err != nil {
		m.err = err
	}
}
