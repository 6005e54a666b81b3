package token

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestCodecsRoundTrip writes several files of literals and block references in every format and
// reads them back.
func TestCodecsRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 300<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	text := bytes.Repeat([]byte("hello, rsync protocol 32! "), 20000)
	block := bytes.Repeat([]byte{7}, 700)
	type step struct {
		data  []byte
		block int32 // -1: literal
	}
	files := [][]step{
		{{data: text, block: -1}, {data: block, block: 0}, {data: block, block: 1}, {data: random[:5000], block: -1}, {data: block, block: 70}},
		{{data: random, block: -1}},
		{},
		{{data: block, block: 3}, {data: block, block: 4}, {data: text[:10], block: -1}},
	}
	for _, c := range []Compression{None, Zlib, Zlibx, Zstd, LZ4} {
		for _, proto := range []int{27, 31} {
			t.Run(c.String(), func(t *testing.T) {
				var wire bytes.Buffer
				w, err := NewWriterOptions(&wire, Options{Compression: c, Protocol: proto})
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range files {
					for _, s := range f {
						if s.block < 0 {
							err = w.Literal(s.data)
						} else {
							err = w.Block(s.block, s.data)
						}
						if err != nil {
							t.Fatal(err)
						}
					}
					if err := w.End(); err != nil {
						t.Fatal(err)
					}
				}
				wire.WriteString("tail")
				r, err := NewReaderOptions(&wire, Options{Compression: c, Protocol: proto})
				if err != nil {
					t.Fatal(err)
				}
				for fi, f := range files {
					var want, got bytes.Buffer
					var wantBlocks, gotBlocks []int32
					for _, s := range f {
						if s.block < 0 {
							want.Write(s.data)
						} else {
							wantBlocks = append(wantBlocks, s.block)
						}
					}
					for {
						tok, err := r.Next()
						if err != nil {
							t.Fatalf("file %d: %v", fi, err)
						}
						if tok.Kind == End {
							break
						}
						if tok.Kind == Literal {
							got.Write(tok.Data)
							continue
						}
						gotBlocks = append(gotBlocks, tok.Block)
						r.AddHistory(block)
					}
					if !bytes.Equal(got.Bytes(), want.Bytes()) {
						t.Errorf("file %d: literal data differs (%d bytes, want %d)", fi, got.Len(), want.Len())
					}
					if len(gotBlocks) != len(wantBlocks) {
						t.Errorf("file %d: blocks %v, want %v", fi, gotBlocks, wantBlocks)
					}
				}
				if rest := wire.String(); rest != "tail" {
					t.Errorf("reader left %q", rest)
				}
			})
		}
	}
}
