package delta

import (
	"crypto/md5"
	"encoding/binary"
	"hash"

	"github.com/cespare/xxhash/v2"
	"github.com/zeebo/xxh3"
)

// Checksum is a strong checksum algorithm as rsync names and uses it: for the block checksums
// (seeded), for the whole-file checksum after each file's data and for -c.
type Checksum uint8

const (
	// MD4Old is what protocols 27–29 use without a --checksum-choice: MD4, the seed appended to
	// every block and prepended to the whole-file data.
	MD4Old Checksum = iota
	// MD4 is the negotiated or chosen "md4": blocks as MD4Old, the whole file unseeded.
	MD4
	// MD5 is "md5": blocks with the seed (first, or last for an old peer), the whole file unseeded.
	MD5
	// XXH64 is "xxh64": blocks seeded, the whole file with seed 0.
	XXH64
	// XXH3 is "xxh3" (64-bit XXH3): blocks seeded, the whole file with seed 0.
	XXH3
	// XXH128 is "xxh128" (128-bit XXH3): blocks seeded, the whole file with seed 0.
	XXH128
)

// String returns rsync's name of the algorithm.
func (c Checksum) String() string {
	switch c {
	case MD4Old, MD4:
		return "md4"
	case MD5:
		return "md5"
	case XXH64:
		return "xxh64"
	case XXH3:
		return "xxh3"
	case XXH128:
		return "xxh128"
	}
	return "unknown"
}

// Len returns the digest length in bytes.
func (c Checksum) Len() int {
	switch c {
	case XXH64, XXH3:
		return 8
	}
	return SumLen
}

// Fast reports whether the checksum runs at several GB/s (the xxhash family), so that a caller
// gains nothing by computing it on another goroutine.
func (c Checksum) Fast() bool {
	switch c {
	case XXH64, XXH3, XXH128:
		return true
	}
	return false
}

// StrongSum describes how block checksums are computed in a session.
type StrongSum struct {
	Alg  Checksum
	Seed int32
	// SeedFirst puts the seed before an MD5 block (rsync's CF_CHKSUM_SEED_FIX); otherwise after.
	SeedFirst bool
}

// strong computes block checksums without allocating per block.
type strong struct {
	alg       Checksum
	seed      [4]byte
	seed64    uint64
	zero      bool
	seedFirst bool
	md4       md4Digest
	md5       hash.Hash
	x64       *xxhash.Digest
}

func (s *strong) init(ss StrongSum) {
	s.alg = ss.Alg
	binary.LittleEndian.PutUint32(s.seed[:], uint32(ss.Seed))
	// rsync passes its int seed to the xxhash functions' 64-bit seed: sign-extended.
	s.seed64 = uint64(int64(ss.Seed))
	s.zero = ss.Seed == 0
	s.seedFirst = ss.SeedFirst
	switch ss.Alg {
	case MD5:
		s.md5 = md5.New()
	case XXH64:
		s.x64 = xxhash.NewWithSeed(s.seed64)
	}
}

// sum returns the block checksum of b (the first Alg.Len() bytes are meaningful).
func (s *strong) sum(b []byte) [SumLen]byte {
	var out [SumLen]byte
	switch s.alg {
	case XXH128:
		h := xxh3.Hash128Seed(b, s.seed64)
		binary.LittleEndian.PutUint64(out[:8], h.Lo)
		binary.LittleEndian.PutUint64(out[8:], h.Hi)
	case XXH3:
		binary.LittleEndian.PutUint64(out[:8], xxh3.HashSeed(b, s.seed64))
	case XXH64:
		s.x64.ResetWithSeed(s.seed64)
		s.x64.Write(b)
		binary.LittleEndian.PutUint64(out[:8], s.x64.Sum64())
	case MD5:
		s.md5.Reset()
		if s.seedFirst && !s.zero {
			s.md5.Write(s.seed[:])
		}
		s.md5.Write(b)
		if !s.seedFirst && !s.zero {
			s.md5.Write(s.seed[:])
		}
		s.md5.Sum(out[:0])
	default:
		s.md4.Reset()
		s.md4.Write(b)
		if !s.zero {
			s.md4.Write(s.seed[:])
		}
		out = s.md4.sum()
	}
	return out
}

// Sum2 returns the strong checksum of a block (Alg.Len() bytes).
func Sum2(b []byte, ss StrongSum) []byte {
	var s strong
	s.init(ss)
	out := s.sum(b)
	return out[:ss.Alg.Len()]
}

// NewFileHash returns the whole-file checksum that follows each file's data: with MD4Old
// MD4(seed as 4 LE bytes ‖ data) (the seed included even when 0), otherwise the unseeded digest.
func NewFileHash(alg Checksum, seed int32) hash.Hash {
	if alg == MD4Old {
		h := newMD4()
		var s [4]byte
		binary.LittleEndian.PutUint32(s[:], uint32(seed))
		h.Write(s[:])
		return h
	}
	return NewChecksumHash(alg)
}

// NewChecksumHash returns the unseeded digest that -c (--checksum) compares and the file list
// carries.
func NewChecksumHash(alg Checksum) hash.Hash {
	switch alg {
	case MD5:
		return md5.New()
	case XXH64:
		return leHash{xxhash.New()}
	case XXH3:
		return &xxh3Hash{h: xxh3.New()}
	case XXH128:
		return &xxh3Hash{h: xxh3.New(), wide: true}
	}
	return newMD4()
}

// leHash gives a 64-bit hash rsync's little-endian digest bytes.
type leHash struct{ *xxhash.Digest }

func (h leHash) Sum(b []byte) []byte { return binary.LittleEndian.AppendUint64(b, h.Sum64()) }

// xxh3Hash is XXH3 (64 or 128 bits) with rsync's digest bytes: little-endian, low half first.
type xxh3Hash struct {
	h    *xxh3.Hasher
	wide bool
}

func (x *xxh3Hash) Write(p []byte) (int, error) { return x.h.Write(p) }
func (x *xxh3Hash) Reset()                      { x.h.Reset() }
func (x *xxh3Hash) BlockSize() int              { return x.h.BlockSize() }
func (x *xxh3Hash) Size() int {
	if x.wide {
		return 16
	}
	return 8
}
func (x *xxh3Hash) Sum(b []byte) []byte {
	if !x.wide {
		return binary.LittleEndian.AppendUint64(b, x.h.Sum64())
	}
	v := x.h.Sum128()
	b = binary.LittleEndian.AppendUint64(b, v.Lo)
	return binary.LittleEndian.AppendUint64(b, v.Hi)
}
