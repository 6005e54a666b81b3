package delta

import (
	"encoding/binary"
	"fmt"
)

const (
	// MinBlockLen is rsync's default block length (BLOCK_SIZE), used for files up to
	// MinBlockLen² bytes.
	MinBlockLen = 700
	// MaxBlockLen is the largest block length BlockLength chooses. rsync at protocol 27 allows up
	// to 1<<29, but blocks of 64 KiB or more are fed into the -z history with a protocol-27 quirk,
	// so portico keeps them below 65,536 (the largest multiple of 8 below it).
	MaxBlockLen = 65528
	// MaxPeerBlockLen is the largest block length accepted from a peer (rsync's limit below
	// protocol 30).
	MaxPeerBlockLen = 1 << 29
	// SumLen is the length of a full strong checksum (MD4).
	SumLen = 16
	// shortSumLen and blockSumBias are rsync's SHORT_SUM_LENGTH and BLOCKSUM_BIAS, used to size
	// the strong checksum of the first phase.
	shortSumLen  = 2
	blockSumBias = 10
)

// BlockLength returns the block length rsync's generator uses for a basis file of size bytes:
// 700 up to 490,000 bytes, else the largest multiple of 8 whose square does not exceed size,
// capped at MaxBlockLen.
func BlockLength(size int64) int32 {
	if size <= MinBlockLen*MinBlockLen {
		return MinBlockLen
	}
	var c int64 = 1
	for l := size; ; {
		l >>= 2
		if l == 0 {
			break
		}
		c <<= 1
	}
	if c >= MaxBlockLen {
		return MaxBlockLen
	}
	var b int64
	for ; c >= 8; c >>= 1 {
		b |= c
		if size < b*b {
			b &^= c
		}
	}
	return int32(max(b, MinBlockLen))
}

// SumHead is the sum head that precedes a file's block checksums on the wire
// (four little-endian int32s in this order).
type SumHead struct {
	Count     int32 // number of blocks
	BlockLen  int32 // length of every block but the last
	S2Len     int32 // bytes of each block's strong checksum that are sent (0..16)
	Remainder int32 // length of the last block if shorter than BlockLen, else 0
}

// NewSumHead returns the sum head rsync's generator sends for a basis file of size bytes in the
// first phase: BlockLength blocks and a strong checksum shortened to what the file size needs.
// Use Strong for the redo phase.
func NewSumHead(size int64, sumLen int) SumHead {
	if size <= 0 {
		return SumHead{}
	}
	blen := BlockLength(size)
	b := blockSumBias
	for l := size; ; b += 2 {
		l >>= 1
		if l == 0 {
			break
		}
	}
	for c := blen; b > 0; b-- {
		c >>= 1
		if c == 0 {
			break
		}
	}
	s2 := int32((b + 1 - 32 + 7) / 8)
	s2 = min(max(s2, shortSumLen), int32(sumLen))
	count := size / int64(blen)
	rem := int32(size % int64(blen))
	if rem != 0 {
		count++
	}
	return SumHead{Count: int32(count), BlockLen: blen, S2Len: s2, Remainder: rem}
}

// Strong returns h with full-length strong checksums, as rsync sends in the redo phase.
func (h SumHead) Strong(sumLen int) SumHead {
	if h.Count > 0 {
		h.S2Len = int32(sumLen)
	}
	return h
}

// Validate checks a sum head received from a peer.
func (h SumHead) Validate() error {
	switch {
	case h.Count < 0:
		return fmt.Errorf("invalid checksum count %d", h.Count)
	case h.BlockLen < 0 || h.BlockLen > MaxPeerBlockLen:
		return fmt.Errorf("invalid block length %d", h.BlockLen)
	case h.Count > 0 && h.BlockLen == 0:
		return fmt.Errorf("invalid zero block length with %d blocks", h.Count)
	case h.S2Len < 0 || h.S2Len > SumLen:
		return fmt.Errorf("invalid checksum length %d", h.S2Len)
	case h.Remainder < 0 || h.Remainder > h.BlockLen:
		return fmt.Errorf("invalid remainder length %d", h.Remainder)
	}
	return nil
}

// Size returns the length of the basis file the head describes.
func (h SumHead) Size() int64 {
	if h.Count == 0 {
		return 0
	}
	n := int64(h.Count) * int64(h.BlockLen)
	if h.Remainder != 0 {
		n -= int64(h.BlockLen - h.Remainder)
	}
	return n
}

// Block returns the offset and length of block i in the basis file.
func (h SumHead) Block(i int32) (offset int64, length int32) {
	offset = int64(i) * int64(h.BlockLen)
	if i == h.Count-1 && h.Remainder != 0 {
		return offset, h.Remainder
	}
	return offset, h.BlockLen
}

// Sum1 is rsync's rolling (weak) checksum of b, computed over signed chars.
func Sum1(b []byte) uint32 {
	var r Rolling
	r.Reset(b)
	return r.Sum()
}

// Rolling is rsync's weak checksum over a window that can slide one byte at a time.
type Rolling struct {
	s1, s2 uint32
	n      uint32
}

// Reset sets the window to b.
func (r *Rolling) Reset(b []byte) {
	n := len(b)
	// Whole 32-byte chunks in SIMD where the CPU has it (sum1_amd64.s), the rest here.
	s1, s2, b := sum1Chunks(b)
	// Eight bytes a step, in SWAR: over a step's bytes c0..c7 (signed), s2 gains 8·s1 plus
	// 8·c0 + 7·c1 + … + 1·c7 and s1 gains their sum. Flipping the top bit makes each byte
	// c+128 unsigned; multiplications gather the 16-bit lanes of the even and odd bytes into
	// the sums, and the 128s are taken off at the end (8·128 from the sum, 36·128 from the
	// weighted sum).
	for ; len(b) >= 8; b = b[8:] {
		x := binary.LittleEndian.Uint64(b) ^ 0x8080808080808080
		even := x & 0x00ff00ff00ff00ff
		odd := (x >> 8) & 0x00ff00ff00ff00ff
		sum := uint32((even+odd)*0x0001000100010001>>48) - 8*128
		// Weights: bytes 0, 2, 4, 6 get 8, 6, 4, 2; bytes 1, 3, 5, 7 get 7, 5, 3, 1.
		w := uint32(even*0x0008000600040002>>48) + uint32(odd*0x0007000500030001>>48) - 36*128
		s2 += 8*s1 + w
		s1 += sum
	}
	for _, c := range b {
		s1 += uint32(int32(int8(c)))
		s2 += s1
	}
	r.s1, r.s2, r.n = s1, s2, uint32(n)
}

// Roll removes out from the front of the window and appends in at its end.
func (r *Rolling) Roll(out, in byte) {
	o := uint32(int32(int8(out)))
	r.s1 += uint32(int32(int8(in))) - o
	r.s2 += r.s1 - r.n*o
}

// Shrink removes out from the front of the window without appending (end of file).
func (r *Rolling) Shrink(out byte) {
	o := uint32(int32(int8(out)))
	r.s1 -= o
	r.s2 -= r.n * o
	r.n--
}

// Sum returns the checksum of the current window.
func (r *Rolling) Sum() uint32 { return r.s1&0xffff | r.s2<<16 }
