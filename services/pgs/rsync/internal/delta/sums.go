package delta

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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

// WriteSums writes the block checksums of the basis file read from old, which must hold
// head.Size() bytes, for the given head and seed (the generator's side of ReadSums).
func WriteSums(w io.Writer, old io.Reader, head SumHead, seed int32) error {
	if head.Count == 0 {
		return nil
	}
	if head.BlockLen <= 0 || head.S2Len < 0 || head.S2Len > SumLen {
		return fmt.Errorf("invalid sum head %+v", head)
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	// Read ahead several blocks at a time: one read per block is a system call per block.
	old = bufio.NewReaderSize(old, max(256<<10, int(head.BlockLen)))
	block := make([]byte, head.BlockLen)
	var st strong
	st.init(seed)
	var rec [4 + SumLen]byte
	for i := int32(0); i < head.Count; i++ {
		_, n := head.Block(i)
		if _, err := io.ReadFull(old, block[:n]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read basis block %d: %w", i, err)
		}
		binary.LittleEndian.PutUint32(rec[:4], Sum1(block[:n]))
		s2 := st.sum(block[:n])
		copy(rec[4:], s2[:head.S2Len])
		if _, err := bw.Write(rec[:4+head.S2Len]); err != nil {
			return err
		}
	}
	return bw.Flush()
}
