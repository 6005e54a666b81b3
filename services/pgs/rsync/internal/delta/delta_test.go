package delta

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

// Expected values were printed by rsync 3.5.0 (`--protocol=27 --debug=deltasum2`).
func TestNewSumHeadMatchesRsync(t *testing.T) {
	tests := []struct {
		size int64
		want SumHead
	}{
		{0, SumHead{}},
		{1000, SumHead{Count: 2, BlockLen: 700, S2Len: 2, Remainder: 300}},
		{490000, SumHead{Count: 700, BlockLen: 700, S2Len: 2}},
		{490001, SumHead{Count: 701, BlockLen: 700, S2Len: 2, Remainder: 1}},
		{1048576, SumHead{Count: 1024, BlockLen: 1024, S2Len: 2}},
		{52428800, SumHead{Count: 7242, BlockLen: 7240, S2Len: 3, Remainder: 3960}},
		{104857600, SumHead{Count: 10240, BlockLen: 10240, S2Len: 3}},
		{3000000000, SumHead{Count: 54777, BlockLen: 54768, S2Len: 4, Remainder: 28032}},
		// rsync would use 70704-byte blocks here; portico caps them below 64 KiB.
		{5000000000, SumHead{Count: 5000000000/MaxBlockLen + 1, BlockLen: MaxBlockLen, S2Len: 4, Remainder: 5000000000 % MaxBlockLen}},
	}
	for _, tt := range tests {
		got := NewSumHead(tt.size, SumLen)
		if got != tt.want {
			t.Errorf("NewSumHead(%d, SumLen) = %+v, want %+v", tt.size, got, tt.want)
		}
		if got.Size() != tt.size {
			t.Errorf("NewSumHead(%d, SumLen).Size() = %d", tt.size, got.Size())
		}
		if err := got.Validate(); err != nil {
			t.Errorf("NewSumHead(%d, SumLen).Validate() = %v", tt.size, err)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	for _, h := range []SumHead{
		{Count: -1, BlockLen: 700},
		{Count: 1, BlockLen: 0},
		{Count: 1, BlockLen: MaxPeerBlockLen + 1},
		{Count: 1, BlockLen: 700, S2Len: 17},
		{Count: 1, BlockLen: 700, S2Len: 2, Remainder: 701},
		{Count: 1, BlockLen: 700, S2Len: -1},
	} {
		if err := h.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want error", h)
		}
	}
}

func TestRollingEqualsSum1(t *testing.T) {
	data := make([]byte, 5000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	const w = 700
	var r Rolling
	r.Reset(data[:w])
	for off := 0; off+w < len(data); off++ {
		if got, want := r.Sum(), Sum1(data[off:off+w]); got != want {
			t.Fatalf("offset %d: rolling %08x, Sum1 %08x", off, got, want)
		}
		r.Roll(data[off], data[off+w])
	}
	// Shrinking at the end of the file.
	off, k := len(data)-w, w
	r.Reset(data[off:])
	for k > 1 {
		r.Shrink(data[off])
		off++
		k--
		if got, want := r.Sum(), Sum1(data[off:]); got != want {
			t.Fatalf("shrunk to %d: rolling %08x, Sum1 %08x", k, got, want)
		}
	}
}

func TestSum1SignedChars(t *testing.T) {
	// With signed chars 0xff counts as -1: s1 = -1, s2 = -1.
	if got, want := Sum1([]byte{0xff}), uint32(0xffffffff); got != want {
		t.Errorf("Sum1(ff) = %08x, want %08x", got, want)
	}
	if got, want := Sum1([]byte{1, 2, 3}), uint32((1+3+6)<<16|6); got != want {
		t.Errorf("Sum1(1,2,3) = %08x, want %08x", got, want)
	}
}

func TestStrongSums(t *testing.T) {
	// MD4("abc") = a448017aaf21d8525fc10ae87aa6729d.
	if got := hex.EncodeToString(Sum2([]byte("abc"), StrongSum{Seed: 0})); got != "a448017aaf21d8525fc10ae87aa6729d" {
		t.Errorf("Sum2 with seed 0 = %s, want plain MD4", got)
	}
	// The seed goes after the block, as 4 little-endian bytes.
	want := NewChecksumHash(MD4)
	want.Write([]byte("abc\x04\x03\x02\x01"))
	if got := Sum2([]byte("abc"), StrongSum{Seed: 0x01020304}); !bytes.Equal(got, want.Sum(nil)) {
		t.Errorf("Sum2 seeded = %x, want %x", got, want.Sum(nil))
	}
	// The whole-file checksum puts the seed first, even when it is 0.
	fh := NewFileHash(MD4Old, 0x01020304)
	fh.Write([]byte("abc"))
	want.Reset()
	want.Write([]byte("\x04\x03\x02\x01abc"))
	if !bytes.Equal(fh.Sum(nil), want.Sum(nil)) {
		t.Errorf("file hash = %x, want %x", fh.Sum(nil), want.Sum(nil))
	}
}

// recorder applies a delta to the basis and counts what crossed.
type recorder struct {
	basis   []byte
	head    SumHead
	out     bytes.Buffer
	literal int
	matched int
	blocks  []int32
}

func (r *recorder) Literal(p []byte) error {
	r.literal += len(p)
	r.out.Write(p)
	return nil
}

func (r *recorder) Match(i int32, data []byte) error {
	off, n := r.head.Block(i)
	if !bytes.Equal(r.basis[off:off+int64(n)], data) {
		return errMismatch
	}
	r.matched += int(n)
	r.blocks = append(r.blocks, i)
	r.out.Write(r.basis[off : off+int64(n)])
	return nil
}

type mismatchError struct{}

func (mismatchError) Error() string { return "match data differ from basis block" }

var errMismatch = mismatchError{}

func sumsFor(t *testing.T, basis []byte, head SumHead, seed int32) *Sums {
	t.Helper()
	var wire bytes.Buffer
	if err := WriteSums(&wire, bytes.NewReader(basis), head, StrongSum{Seed: seed}); err != nil {
		t.Fatal(err)
	}
	if want := int(head.Count) * int(4+head.S2Len); wire.Len() != want {
		t.Fatalf("WriteSums wrote %d bytes, want %d", wire.Len(), want)
	}
	s, err := ReadSums(&wire, head)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestMatchReconstructs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const seed = 0x5eed
	base := randomBytes(rng, 300_000)
	tests := []struct {
		name       string
		basis, new []byte
		maxLiteral int
		minMatched int
	}{
		{"identical", base, base, 0, len(base)},
		{"one byte changed", base, func() []byte {
			b := bytes.Clone(base)
			b[150_000] ^= 1
			return b
		}(), 700, len(base) - 700},
		{"insertion shifts data", base, append(append(bytes.Clone(base[:1000]), "inserted"...), base[1000:]...), 1500, len(base) - 1400},
		{"appended", base, append(bytes.Clone(base), randomBytes(rng, 5000)...), 5000 + 700, len(base) - 700},
		{"truncated", base, base[:123_456], 700, 123_456 - 700},
		{"empty new", base, nil, 0, 0},
		{"unrelated", base, randomBytes(rng, 50_000), 50_000, 0},
		// Like rsync, a short last block only matches at the end of the new file.
		{"tiny basis", []byte("hello"), []byte("oh, hello"), 4, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := NewSumHead(int64(len(tt.basis)), SumLen)
			rec := &recorder{basis: tt.basis, head: head}
			if err := Match(sumsFor(t, tt.basis, head, seed), StrongSum{Seed: seed}, bytes.NewReader(tt.new), rec); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rec.out.Bytes(), tt.new) {
				t.Fatalf("reconstructed %d bytes differ from the %d-byte new file", rec.out.Len(), len(tt.new))
			}
			if rec.literal > tt.maxLiteral {
				t.Errorf("literal %d bytes, want at most %d", rec.literal, tt.maxLiteral)
			}
			if rec.matched < tt.minMatched {
				t.Errorf("matched %d bytes, want at least %d", rec.matched, tt.minMatched)
			}
		})
	}
}

func TestMatchPrefersAdjacentBlocks(t *testing.T) {
	// Every block is the same, so any block matches anywhere; the matcher should still pick
	// consecutive indices so the token runs stay short.
	basis := bytes.Repeat([]byte("x"), 700*10)
	head := NewSumHead(int64(len(basis)), SumLen)
	rec := &recorder{basis: basis, head: head}
	if err := Match(sumsFor(t, basis, head, 1), StrongSum{Seed: 1}, bytes.NewReader(basis), rec); err != nil {
		t.Fatal(err)
	}
	for i, b := range rec.blocks {
		if b != int32(i) {
			t.Fatalf("blocks = %v, want 0..9 in order", rec.blocks)
		}
	}
}

func TestMatchWithoutSums(t *testing.T) {
	data := randomBytes(rand.New(rand.NewPCG(5, 6)), 100_000)
	rec := &recorder{}
	if err := Match(nil, StrongSum{Seed: 1}, bytes.NewReader(data), rec); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec.out.Bytes(), data) || rec.matched != 0 {
		t.Fatal("literal-only transfer did not reproduce the file")
	}
}

func BenchmarkMatchUnchanged(b *testing.B) {
	data := randomBytes(rand.New(rand.NewPCG(7, 8)), 8<<20)
	head := NewSumHead(int64(len(data)), SumLen)
	var wire bytes.Buffer
	if err := WriteSums(&wire, bytes.NewReader(data), head, StrongSum{Seed: 1}); err != nil {
		b.Fatal(err)
	}
	sums, err := ReadSums(bytes.NewReader(wire.Bytes()), head)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := Match(sums, StrongSum{Seed: 1}, bytes.NewReader(data), discard{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMatchLiteral(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 10))
	basis := randomBytes(rng, 8<<20)
	data := randomBytes(rng, 8<<20)
	head := NewSumHead(int64(len(basis)), SumLen)
	var wire bytes.Buffer
	if err := WriteSums(&wire, bytes.NewReader(basis), head, StrongSum{Seed: 1}); err != nil {
		b.Fatal(err)
	}
	sums, err := ReadSums(bytes.NewReader(wire.Bytes()), head)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := Match(sums, StrongSum{Seed: 1}, bytes.NewReader(data), discard{}); err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) Literal([]byte) error      { return nil }
func (discard) Match(int32, []byte) error { return nil }

// TestMatchChainBoundsCollidingWeakSums: a peer can choose weak checksums that differ from the
// window's but land in its hash bucket. The matcher must give up after maxChain entries of a
// bucket whatever their weak checksums, or every byte offset of the file walks the whole bucket
// (quadratic work for a download). The one real match is placed behind more than maxChain such
// entries: a bounded search does not reach it.
func TestMatchChainBoundsCollidingWeakSums(t *testing.T) {
	block := randomBytes(rand.New(rand.NewPCG(7, 8)), 700)
	want := Sum1(block)
	const n = maxChain + 10
	hash16 := func(x uint32) uint32 { return (x * 0x9E3779B1) >> 16 }
	other := want + 1
	for other == want || hash16(other) != hash16(want) {
		other++
	}
	head := SumHead{Count: n + 1, BlockLen: 700, S2Len: SumLen}
	sums := &Sums{Head: head, Sum1: make([]uint32, n+1), Sum2: make([]byte, (n+1)*SumLen)}
	for i := range n {
		sums.Sum1[i] = other
	}
	sums.Sum1[n] = want
	copy(sums.Sum2[n*SumLen:], Sum2(block, StrongSum{Seed: 1}))
	m := newMatcher(sums, StrongSum{Seed: 1}, bytes.NewReader(nil), discard{})
	if m.bits != 16 {
		t.Fatalf("table bits %d, the test assumes 16", m.bits)
	}
	if i := m.lookup(want, block); i != -1 {
		t.Fatalf("lookup walked %d colliding entries (more than maxChain %d) and found block %d", n, maxChain, i)
	}
}

// TestSum1MatchesReference compares Sum1 (SIMD where the CPU has it, then the portable loops)
// with the byte-at-a-time definition, for every length up to 1,100 and extreme bytes.
func TestSum1MatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 140_000)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	check := func(b []byte) {
		t.Helper()
		for _, simd := range []bool{false, true} {
			old := useAVX2
			useAVX2 = useAVX2 && simd
			got := Sum1(b)
			useAVX2 = old
			if want := slowSum1(b); got != want {
				t.Fatalf("len %d (simd %v): %08x, want %08x", len(b), simd, got, want)
			}
		}
	}
	for n := 0; n <= 1100; n++ {
		check(data[n%7 : n%7+n])
	}
	for _, fill := range []byte{0x00, 0x7f, 0x80, 0xff} {
		b := bytes.Repeat([]byte{fill}, 131_072)
		check(b)
		check(b[:7240])
	}
	check(data[3:131_075])
	check(data)
}
