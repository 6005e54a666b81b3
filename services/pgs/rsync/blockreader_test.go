package rsync

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// countingReaderAt counts reads and the bytes they asked for.
type countingReaderAt struct {
	r            io.ReaderAt
	reads, bytes int
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.reads++
	c.bytes += len(p)
	return c.r.ReadAt(p, off)
}

func TestBlockReader(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	data := make([]byte, 3<<20+123)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	const blockLen = 7000
	blocks := (len(data) + blockLen - 1) / blockLen
	block := func(i int) (int64, int) {
		off := i * blockLen
		return int64(off), min(blockLen, len(data)-off)
	}
	check := func(r *blockReader, i int) {
		t.Helper()
		off, n := block(i)
		b, err := r.block(off, n)
		if err != nil || !bytes.Equal(b, data[off:off+int64(n)]) {
			t.Fatalf("block %d: err %v or wrong data", i, err)
		}
	}

	// In order: few reads, each byte read once.
	c := &countingReaderAt{r: bytes.NewReader(data)}
	var r blockReader
	r.reset(c, int64(len(data)), blockLen)
	for i := range blocks {
		check(&r, i)
	}
	if c.reads > blocks/10 || c.bytes != len(data) {
		t.Errorf("in order: %d reads of %d bytes for %d blocks of %d bytes", c.reads, c.bytes, blocks, len(data))
	}
	if cap(r.buf) > maxAhead {
		t.Errorf("buffer grew to %d bytes", cap(r.buf))
	}

	// Out of order: every block is read on its own, nothing read ahead.
	c = &countingReaderAt{r: bytes.NewReader(data)}
	r.reset(c, int64(len(data)), blockLen)
	order := rng.Perm(blocks)
	for _, i := range order {
		check(&r, i)
	}
	if c.bytes > 2*len(data) {
		t.Errorf("out of order: read %d bytes for %d", c.bytes, len(data))
	}

	// Runs after jumps, and repeats of the same block.
	r.reset(bytes.NewReader(data), int64(len(data)), blockLen)
	for _, i := range []int{5, 6, 7, 7, 8, 100, 101, 3, 4, 5, 6, 7, 8, 9, 10, blocks - 1, 0} {
		check(&r, i)
	}

	// A file that shrank since its checksums were made.
	r.reset(bytes.NewReader(data[:len(data)-10]), int64(len(data)), blockLen)
	check(&r, 0)
	off, n := block(blocks - 1)
	if _, err := r.block(off, n); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short file: err = %v", err)
	}
}
