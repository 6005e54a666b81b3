package rsync

import (
	"errors"
	"fmt"
	"hash"
	"io"
)

const (
	// sinkChunk is how much of a file's data a fileSink gathers before writing it out.
	sinkChunk = 256 << 10
	// sinkChunks is how many chunks a file may have in flight (being filled, written or hashed).
	sinkChunks = 3
)

// fileSink takes a received file's data: it writes it to the upload in chunks of sinkChunk
// bytes and feeds the whole-file checksum. With a slow checksum (MD4, MD5) a file larger than
// one chunk is hashed on a second goroutine while the next chunks are read and written, so that
// the hashing of a large file overlaps the I/O instead of adding to it; smaller files, and every
// file with a fast checksum (the xxhash family, several GB/s), are hashed in line: handing each
// chunk to another goroutine would cost more than hashing it. At most sinkChunks chunks are in
// use.
type fileSink struct {
	w      io.Writer
	h      hash.Hash
	err    error    // the first write error
	bufs   [][]byte // the session's chunks, reused for every file
	used   int      // chunks of bufs taken for this file
	cur    []byte   // the chunk being filled
	toHash chan []byte
	hashed chan []byte // chunks the hasher finished, ready to be refilled
	inline bool        // hash every chunk in line

	// Reading matched blocks of the basis file (copyFrom): the free space of cur after its
	// data may hold bytes read ahead, aheadLen bytes of the basis from aheadOff on.
	aheadOff int64
	aheadLen int
	next     int64 // where the block after the last one copied starts
	span     int   // how far the next sequential read reaches
}

// reset prepares the sink for a new file written to w and hashed into h; inline says whether h
// is fast enough to be fed in line.
func (s *fileSink) reset(w io.Writer, h hash.Hash, inline bool) {
	s.w, s.h, s.err, s.used, s.toHash, s.hashed, s.inline = w, h, nil, 0, nil, nil, inline
	s.aheadLen, s.next, s.span = 0, -1, 0
	s.cur = s.take()
}

// take returns an empty chunk: an unused one, else one the hasher is done with.
func (s *fileSink) take() []byte {
	if s.used < sinkChunks {
		if s.used == len(s.bufs) {
			s.bufs = append(s.bufs, make([]byte, 0, sinkChunk))
		}
		s.used++
		return s.bufs[s.used-1][:0]
	}
	return (<-s.hashed)[:0]
}

// write adds p to the file; it returns the first write error, after which data is dropped.
func (s *fileSink) write(p []byte) error {
	// p overwrites what was read ahead, and a block after it starts a run of its own: were it
	// taken as the next of the run before, it would read as far ahead again, and a client
	// putting a byte of literal data before each block would have the server read up to a
	// chunk per block (far more than the file, for a few bytes of tokens each).
	s.aheadLen, s.next = 0, -1
	for len(p) > 0 && s.err == nil {
		n := copy(s.cur[len(s.cur):cap(s.cur)], p)
		s.cur, p = s.cur[:len(s.cur)+n], p[n:]
		if len(s.cur) == cap(s.cur) {
			s.flush()
		}
	}
	return s.err
}

// flush hands the current chunk to the hasher and writes it out.
func (s *fileSink) flush() {
	s.aheadLen = 0
	if s.inline {
		s.h.Write(s.cur)
		if _, err := s.w.Write(s.cur); err != nil {
			s.err = err
		}
		s.cur = s.cur[:0]
		return
	}
	if s.toHash == nil {
		s.toHash = make(chan []byte, sinkChunks)
		s.hashed = make(chan []byte, sinkChunks)
		go func(h hash.Hash, in <-chan []byte, out chan<- []byte) {
			for b := range in {
				h.Write(b)
				out <- b
			}
			close(out)
		}(s.h, s.toHash, s.hashed)
	}
	chunk := s.cur
	s.toHash <- chunk
	if _, err := s.w.Write(chunk); err != nil {
		s.err = err
	}
	s.cur = s.take()
}

// finish writes out the rest and returns the whole-file checksum.
func (s *fileSink) finish() ([]byte, error) {
	if s.err != nil {
		s.stop()
		return nil, s.err
	}
	if len(s.cur) > 0 {
		if _, err := s.w.Write(s.cur); err != nil {
			s.stop()
			s.err = err
			return nil, err
		}
	}
	if s.toHash == nil {
		s.h.Write(s.cur)
	} else {
		s.toHash <- s.cur
		s.stop()
	}
	return s.h.Sum(nil), nil
}

// stop ends the hasher, if one runs, and waits for it: no goroutine uses the chunks afterwards.
// It may be called more than once.
func (s *fileSink) stop() {
	if s.toHash == nil {
		return
	}
	close(s.toHash)
	for range s.hashed {
	}
	s.toHash, s.hashed = nil, nil
	s.used = 0
}

// copyFrom adds the n bytes of the basis file f at off (a matched block; n at most sinkChunk)
// to the file, reading them straight into the current chunk: no copy between buffers. A client
// matches mostly runs of consecutive blocks, so a read that follows the previous block also
// reads ahead into the chunk's free space, twice as far each time (a later copyFrom of the next
// block then finds its bytes in place; a literal overwrites them and ends the run); a jump
// reads just the block, so that blocks matched out of order cost no extra reading. size is the basis
// file's length when its checksums were made: nothing beyond it is read. It returns the bytes
// added, valid until the next call; after an error the file must be dropped.
func (s *fileSink) copyFrom(f io.ReaderAt, off int64, n int, size int64) ([]byte, error) {
	if s.err != nil {
		return nil, fmt.Errorf("write: %w", s.err)
	}
	if n < 0 || n > sinkChunk {
		// The server's own block length is far below; never reached.
		return nil, fmt.Errorf("block of %d bytes", n)
	}
	sequential := off == s.next
	s.next = off + int64(n)
	if cap(s.cur)-len(s.cur) < n {
		s.flush()
		if s.err != nil {
			return nil, fmt.Errorf("write: %w", s.err)
		}
	}
	start := len(s.cur)
	if s.aheadLen < n || s.aheadOff != off {
		free := cap(s.cur) - start
		want := n
		if sequential {
			s.span = min(2*max(s.span, n), free)
			// Whole blocks, so that no block is read twice.
			want = max(n, int(min(int64(s.span), size-off))/n*n)
		} else {
			s.span = n
		}
		got, err := f.ReadAt(s.cur[start:start+want], off)
		if got < n {
			s.aheadLen = 0
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("read basis file: %w", err)
		}
		s.aheadOff, s.aheadLen = off, got
	}
	s.cur = s.cur[:start+n]
	s.aheadOff += int64(n)
	s.aheadLen -= n
	return s.cur[start:], nil
}
