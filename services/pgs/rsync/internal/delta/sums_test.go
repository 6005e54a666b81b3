package delta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
)

// slowSum1 is the weak checksum one byte at a time, as rsync defines it.
func slowSum1(b []byte) uint32 {
	var s1, s2 uint32
	for _, c := range b {
		s1 += uint32(int32(int8(c)))
		s2 += s1
	}
	return s1&0xffff | s2<<16
}

func TestSum1MatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	data := randomBytes(rng, 300)
	for n := 0; n <= len(data); n++ {
		if got, want := Sum1(data[:n]), slowSum1(data[:n]); got != want {
			t.Fatalf("length %d: Sum1 %08x, want %08x", n, got, want)
		}
	}
}

// wantSums is the wire form of the block checksums, one block at a time.
func wantSums(basis []byte, head SumHead, seed int32) []byte {
	var out []byte
	for i := range head.Count {
		off, n := head.Block(i)
		block := basis[off : off+int64(n)]
		out = binary.LittleEndian.AppendUint32(out, slowSum1(block))
		out = append(out, Sum2(block, StrongSum{Seed: seed})[:head.S2Len]...)
	}
	return out
}

// TestWriteSumsParallel covers files of many jobs, with more workers than cores and with one.
func TestWriteSumsParallel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, procs := range []int{1, 2, 5} {
		old := runtime.GOMAXPROCS(procs)
		for _, size := range []int{1, 699, 700, 701, 3 << 20, 5<<20 + 333} {
			basis := randomBytes(rng, size)
			for _, head := range []SumHead{NewSumHead(int64(size), SumLen), NewSumHead(int64(size), SumLen).Strong(SumLen)} {
				var wire bytes.Buffer
				if err := WriteSums(&wire, bytes.NewReader(basis), head, StrongSum{Seed: 77}); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(wire.Bytes(), wantSums(basis, head, 77)) {
					t.Fatalf("GOMAXPROCS %d, size %d, head %+v: sums differ", procs, size, head)
				}
			}
		}
		// Small blocks: many blocks per job and a short last block.
		basis := randomBytes(rng, 2<<20+5)
		head := SumHead{Count: int32((len(basis) + 99) / 100), BlockLen: 100, S2Len: 3, Remainder: 5}
		var wire bytes.Buffer
		if err := WriteSums(&wire, bytes.NewReader(basis), head, StrongSum{Seed: 0}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(wire.Bytes(), wantSums(basis, head, 0)) {
			t.Fatalf("GOMAXPROCS %d, 100-byte blocks: sums differ", procs)
		}
		runtime.GOMAXPROCS(old)
	}
}

// failingReaderAt fails every read that reaches past limit.
type failingReaderAt struct {
	r     io.ReaderAt
	limit int64
}

var errDisk = errors.New("disk error")

func (f failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.limit {
		return 0, errDisk
	}
	return f.r.ReadAt(p, off)
}

// failingWriter fails once it has taken limit bytes.
type failingWriter struct{ n, limit int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n += len(p); w.n > w.limit {
		return 0, errDisk
	}
	return len(p), nil
}

func TestWriteSumsErrors(t *testing.T) {
	basis := randomBytes(rand.New(rand.NewPCG(7, 7)), 8<<20)
	head := NewSumHead(int64(len(basis)), SumLen)
	for _, limit := range []int64{0, 1 << 20, 5 << 20, int64(len(basis)) - 1} {
		err := WriteSums(io.Discard, failingReaderAt{bytes.NewReader(basis), limit}, head, StrongSum{Seed: 1})
		if !errors.Is(err, errDisk) {
			t.Errorf("read failing past %d: err = %v", limit, err)
		}
	}
	// A file shorter than the head says.
	if err := WriteSums(io.Discard, bytes.NewReader(basis[:len(basis)-1]), head, StrongSum{Seed: 1}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short file: err = %v", err)
	}
	if err := WriteSums(&failingWriter{limit: 100}, bytes.NewReader(basis), head, StrongSum{Seed: 1}); !errors.Is(err, errDisk) {
		t.Errorf("failing writer: err = %v", err)
	}
}

func BenchmarkWriteSums(b *testing.B) {
	data := randomBytes(rand.New(rand.NewPCG(11, 12)), 50<<20)
	head := NewSumHead(int64(len(data)), SumLen)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := WriteSums(io.Discard, bytes.NewReader(data), head, StrongSum{Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSum1(b *testing.B) {
	data := randomBytes(rand.New(rand.NewPCG(13, 14)), 7240)
	b.Run("simd", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			Sum1(data)
		}
	})
	b.Run("unrolled", func(b *testing.B) {
		old := useAVX2
		useAVX2 = false
		defer func() { useAVX2 = old }()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			Sum1(data)
		}
	})
	b.Run("bytewise", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			slowSum1(data)
		}
	})
}

func FuzzSum1(f *testing.F) {
	f.Add([]byte{0xff, 0x80, 0x7f, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	// Seeds long enough for whole 32-byte chunks (sum1Chunks takes two or more), at the
	// extremes of a signed byte, so that the seed run alone checks the SIMD path's edges.
	for _, c := range []byte{0xff, 0x80, 0x7f} {
		for _, n := range []int{63, 64, 65, 95, 96, 1000} {
			f.Add(bytes.Repeat([]byte{c}, n))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Sum1(b), slowSum1(b); got != want {
			t.Fatalf("Sum1 %08x, want %08x", got, want)
		}
	})
}
