package rsync

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
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

// TestFileSinkCopyFrom checks the matched blocks a sink reads from a basis file into the file
// it writes: the right bytes in the right order around literals, few reads for runs of blocks,
// no reading ahead for blocks out of order, and an error for a basis file that shrank.
func TestFileSinkCopyFrom(t *testing.T) {
	for _, inline := range []bool{false, true} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) { testFileSinkCopyFrom(t, inline) })
	}
}

func testFileSinkCopyFrom(t *testing.T, inline bool) {
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
	var sink fileSink
	// run writes the blocks (a negative number: that many literal bytes) and checks the file.
	run := func(basis io.ReaderAt, seq []int) {
		t.Helper()
		var out, want bytes.Buffer
		sink.reset(&out, sha256.New(), inline)
		defer sink.stop()
		for _, i := range seq {
			if i < 0 {
				lit := bytes.Repeat([]byte{byte(-i)}, -i)
				want.Write(lit)
				if err := sink.write(lit); err != nil {
					t.Fatal(err)
				}
				continue
			}
			off, n := block(i)
			b, err := sink.copyFrom(basis, off, n, int64(len(data)))
			if err != nil || !bytes.Equal(b, data[off:off+int64(n)]) {
				t.Fatalf("block %d: err %v or wrong data", i, err)
			}
			want.Write(b)
		}
		sum, err := sink.finish()
		if wantSum := sha256.Sum256(want.Bytes()); err != nil || !bytes.Equal(sum, wantSum[:]) || !bytes.Equal(out.Bytes(), want.Bytes()) {
			t.Fatalf("wrong file (err %v)", err)
		}
	}

	// In order: few reads, each byte read once.
	c := &countingReaderAt{r: bytes.NewReader(data)}
	seq := make([]int, blocks)
	for i := range seq {
		seq[i] = i
	}
	run(c, seq)
	if c.reads > blocks/10 || c.bytes != len(data) {
		t.Errorf("in order: %d reads of %d bytes for %d blocks of %d bytes", c.reads, c.bytes, blocks, len(data))
	}
	if len(sink.bufs) > sinkChunks {
		t.Errorf("%d chunks allocated", len(sink.bufs))
	}

	// Out of order: every block is read on its own, nothing read ahead.
	c = &countingReaderAt{r: bytes.NewReader(data)}
	run(c, rng.Perm(blocks))
	if c.bytes > 2*len(data) {
		t.Errorf("out of order: read %d bytes for %d", c.bytes, len(data))
	}

	// In order with a literal before each block (a byte inserted every block, or a client
	// that wants the server to read much for little): a literal overwrites what was read
	// ahead, so the next block must not read far ahead again; each byte is read about once.
	c = &countingReaderAt{r: bytes.NewReader(data)}
	seq = nil
	for i := range blocks {
		seq = append(seq, -1, i)
	}
	run(c, seq)
	if c.bytes > 2*len(data) {
		t.Errorf("in order between literals: read %d bytes for %d", c.bytes, len(data))
	}

	// Runs after jumps, repeats of the same block, literals between blocks (over what was read
	// ahead), and a run that crosses chunks.
	run(bytes.NewReader(data), []int{5, 6, 7, 7, 8, -3, 9, 10, 100, 101, -7000, 102, 3, 4, 5, 6, 7, 8, 9, 10, blocks - 1, 0})
	seq = []int{-1}
	for i := range 120 {
		seq = append(seq, 200+i)
		if i%37 == 0 {
			seq = append(seq, -(i + 1))
		}
	}
	run(bytes.NewReader(data), seq)

	// A file that shrank since its checksums were made.
	sink.reset(&bytes.Buffer{}, sha256.New(), inline)
	short := bytes.NewReader(data[:len(data)-10])
	off, n := block(0)
	if _, err := sink.copyFrom(short, off, n, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	off, n = block(blocks - 1)
	if _, err := sink.copyFrom(short, off, n, int64(len(data))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short file: err = %v", err)
	}
	sink.stop()

	// A failing writer: the error is reported, as write does.
	sink.reset(&limitWriter{limit: 10}, sha256.New(), inline)
	var err error
	for i := 0; i < blocks && err == nil; i++ {
		off, n := block(i)
		_, err = sink.copyFrom(bytes.NewReader(data), off, n, int64(len(data)))
	}
	if !errors.Is(err, errFull) {
		t.Errorf("failing writer: err = %v", err)
	}
	sink.stop()
}
