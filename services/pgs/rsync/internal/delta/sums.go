package delta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// MaxStoredBlocks bounds the memory ReadSums spends on a peer's checksums (about 24 bytes per
// block): blocks past it are read and dropped, so they are never matched and their data is sent
// as literals instead.
const MaxStoredBlocks = 1 << 20

// Sums are the block checksums of a basis file, as the generator sends them.
type Sums struct {
	Head SumHead
	Sum1 []uint32 // weak checksum per stored block
	Sum2 []byte   // Head.S2Len bytes of strong checksum per stored block
}

// ReadSums reads the count × {int32 sum1, S2Len bytes sum2} that follow a sum head. The head must
// have passed Validate. At most MaxStoredBlocks blocks are kept.
func ReadSums(r io.Reader, head SumHead) (*Sums, error) {
	if err := head.Validate(); err != nil {
		return nil, err
	}
	keep := min(head.Count, MaxStoredBlocks)
	s := &Sums{Head: head, Sum1: make([]uint32, keep), Sum2: make([]byte, int(keep)*int(head.S2Len))}
	var buf [4 + SumLen]byte
	rec := buf[:4+head.S2Len]
	for i := int32(0); i < head.Count; i++ {
		if _, err := io.ReadFull(r, rec); err != nil {
			return nil, fmt.Errorf("read block checksum %d of %d: %w", i, head.Count, err)
		}
		if i < keep {
			s.Sum1[i] = binary.LittleEndian.Uint32(rec)
			copy(s.Sum2[int(i)*int(head.S2Len):], rec[4:])
		}
	}
	return s, nil
}

// sumJobBytes is about how much of the basis file one job of WriteSums reads and sums: large
// enough that a job is one read and little bookkeeping, small enough that the data read is
// still in the core's cache when it is summed (and that few fresh pages are touched).
const sumJobBytes = 256 << 10

// WriteSums writes the block checksums of the basis file read from old, which must hold
// head.Size() bytes, for the given head and block checksum (the generator's side of ReadSums). Blocks are
// independent, so runs of them are read and summed on up to GOMAXPROCS goroutines (parallel
// ReadAt calls, as io.ReaderAt allows; none is left running when WriteSums returns); the output
// is written in block order and at most a few runs per goroutine are in memory at once.
func WriteSums(w io.Writer, old io.ReaderAt, head SumHead, ss StrongSum) error {
	if head.Count == 0 {
		return nil
	}
	if head.BlockLen <= 0 || head.S2Len < 0 || head.S2Len > SumLen || head.Count < 0 {
		return fmt.Errorf("invalid sum head %+v", head)
	}
	per := min(max(1, sumJobBytes/int(head.BlockLen)), int(head.Count))
	jobs := (int(head.Count) + per - 1) / per
	workers := min(runtime.GOMAXPROCS(0), jobs)
	recLen := 4 + int(head.S2Len)
	if workers <= 1 {
		s := newSummer(head, ss, per)
		out := make([]byte, per*recLen)
		for j := range jobs {
			n, err := s.job(old, j, out)
			if err != nil {
				return err
			}
			if _, err := w.Write(out[:n]); err != nil {
				return err
			}
		}
		return nil
	}

	type sumJob struct {
		index int
		out   []byte
		n     int
		err   error
		done  chan struct{}
	}
	stop := make(chan struct{})
	work := make(chan *sumJob)
	// order holds the jobs handed out, in block order; its capacity bounds how far the workers
	// run ahead of the writer.
	order := make(chan *sumJob, 2*workers)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(order)
		defer close(work)
		for j := range jobs {
			jb := &sumJob{index: j, out: make([]byte, per*recLen), done: make(chan struct{})}
			select {
			case order <- jb:
			case <-stop:
				return
			}
			select {
			case work <- jb:
			case <-stop:
				return
			}
		}
	})
	for range workers {
		wg.Go(func() {
			s := newSummer(head, ss, per)
			for jb := range work {
				jb.n, jb.err = s.job(old, jb.index, jb.out)
				close(jb.done)
			}
		})
	}
	var err error
	for jb := range order {
		<-jb.done
		if err = jb.err; err == nil {
			_, err = w.Write(jb.out[:jb.n])
		}
		if err != nil {
			break
		}
	}
	close(stop)
	// No goroutine may read old once WriteSums returns (the caller closes it).
	wg.Wait()
	return err
}

// summer reads and sums runs of consecutive blocks.
type summer struct {
	head SumHead
	per  int // blocks per job
	buf  []byte
	st   strong
}

func newSummer(head SumHead, ss StrongSum, per int) *summer {
	s := &summer{head: head, per: per, buf: make([]byte, per*int(head.BlockLen))}
	s.st.init(ss)
	return s
}

// job reads blocks [index·per, (index+1)·per) from old and writes their records to out,
// returning the number of bytes written.
func (s *summer) job(old io.ReaderAt, index int, out []byte) (int, error) {
	h := s.head
	first := int32(index * s.per)
	last := min(first+int32(s.per), h.Count)
	off, _ := h.Block(first)
	end := h.Size()
	if last < h.Count {
		end, _ = h.Block(last)
	}
	data := s.buf[:end-off]
	if n, err := old.ReadAt(data, off); n < len(data) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, fmt.Errorf("read basis blocks %d-%d: %w", first, last-1, err)
	}
	w := 0
	for i := first; i < last; i++ {
		_, n := h.Block(i)
		block := data[:n]
		data = data[n:]
		binary.LittleEndian.PutUint32(out[w:], Sum1(block))
		s2 := s.st.sum(block)
		w += 4 + copy(out[w+4:w+4+int(h.S2Len)], s2[:])
	}
	return w, nil
}
