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

func fuzzDecodeOptions(f *testing.F, c Compression) {
	// Seeds: a small session of the format.
	var wire bytes.Buffer
	w, err := NewWriterOptions(&wire, Options{Compression: c, Protocol: 31})
	if err != nil {
		f.Fatal(err)
	}
	w.Literal(bytes.Repeat([]byte("some text "), 500))
	w.Block(3, bytes.Repeat([]byte("b"), 700))
	w.Block(4, bytes.Repeat([]byte("b"), 700))
	w.Literal([]byte("tail"))
	w.End()
	w.Block(70, bytes.Repeat([]byte("b"), 700))
	w.End()
	f.Add(wire.Bytes())
	f.Fuzz(func(t *testing.T, wire []byte) {
		r, err := NewReaderOptions(bytes.NewReader(wire), Options{Compression: c, Protocol: 31})
		if err != nil {
			t.Fatal(err)
		}
		fuzzDecode(t, r)
	})
}

func FuzzDecodeZstd(f *testing.F)  { fuzzDecodeOptions(f, Zstd) }
func FuzzDecodeLZ4(f *testing.F)   { fuzzDecodeOptions(f, LZ4) }
func FuzzDecodeZlibx(f *testing.F) { fuzzDecodeOptions(f, Zlibx) }
