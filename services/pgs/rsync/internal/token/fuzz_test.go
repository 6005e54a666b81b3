package token

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// fuzzDecode reads tokens until an error or enough output, checking the reader's promises:
// literals never exceed ChunkSize, block indices stay in range, errors are typed.
func fuzzDecode(t *testing.T, r *Reader) {
	block := bytes.Repeat([]byte("history"), 100)
	total := 0
	for range 2000 {
		tok, err := r.Next()
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("unexpected error type: %v", err)
			}
			return
		}
		switch tok.Kind {
		case Literal:
			if len(tok.Data) == 0 || len(tok.Data) > ChunkSize {
				t.Fatalf("literal of %d bytes", len(tok.Data))
			}
			if total += len(tok.Data); total > 1<<20 {
				return
			}
		case Block:
			if tok.Block < 0 || tok.Block > MaxBlockIndex {
				t.Fatalf("block index %d", tok.Block)
			}
			r.AddHistory(block)
		case End:
		default:
			t.Fatalf("kind %v", tok.Kind)
		}
	}
}

// The seed corpus is in testdata/fuzz: small plain and compressed streams with literals,
// block runs, far jumps and history references.

func FuzzDecodePlain(f *testing.F) {
	f.Fuzz(func(t *testing.T, wire []byte) {
		fuzzDecode(t, NewReader(bytes.NewReader(wire)))
	})
}

func FuzzDecodeCompressed(f *testing.F) {
	f.Fuzz(func(t *testing.T, wire []byte) {
		fuzzDecode(t, NewCompressedReader(bytes.NewReader(wire)))
	})
}
