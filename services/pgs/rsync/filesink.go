package rsync

import (
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
// bytes and feeds the whole-file checksum. A file larger than one chunk is hashed on a second
// goroutine while the next chunks are read and written, so that the MD4 of a large file overlaps
// the I/O instead of adding to it; smaller files are hashed in line. At most sinkChunks chunks
// are in use.
type fileSink struct {
	w      io.Writer
	h      hash.Hash
	err    error    // the first write error
	bufs   [][]byte // the session's chunks, reused for every file
	used   int      // chunks of bufs taken for this file
	cur    []byte   // the chunk being filled
	toHash chan []byte
	hashed chan []byte // chunks the hasher finished, ready to be refilled
}

// reset prepares the sink for a new file written to w and hashed into h.
func (s *fileSink) reset(w io.Writer, h hash.Hash) {
	s.w, s.h, s.err, s.used, s.toHash, s.hashed = w, h, nil, 0, nil, nil
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
