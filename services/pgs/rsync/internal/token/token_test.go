package token

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// op is one step of a file's delta: a literal (data) or a block reference.
type op struct {
	literal []byte
	block   int32
}

// basisBlock makes deterministic bytes for block i of a fake basis file.
func basisBlock(i int32, n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(uint64(i), 99))
	for j := range b {
		b[j] = byte(rng.Uint32() % 16) // compressible
	}
	return b
}

func encode(t testing.TB, compressed bool, files [][]op, blockLen int) []byte {
	t.Helper()
	var out bytes.Buffer
	w := NewWriter(&out)
	if compressed {
		var err error
		if w, err = NewCompressedWriter(&out, 6); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		for _, o := range f {
			var err error
			if o.literal != nil {
				err = w.Literal(o.literal)
			} else {
				err = w.Block(o.block, basisBlock(o.block, blockLen))
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := w.End(); err != nil {
			t.Fatal(err)
		}
	}
	return out.Bytes()
}

// decode returns each file's content, reading blocks from the fake basis.
func decode(r *Reader, nfiles, blockLen int) ([][]byte, error) {
	var files [][]byte
	for range nfiles {
		var f bytes.Buffer
		for {
			tok, err := r.Next()
			if err != nil {
				return files, err
			}
			if tok.Kind == End {
				break
			}
			if tok.Kind == Literal {
				f.Write(tok.Data)
				continue
			}
			b := basisBlock(tok.Block, blockLen)
			f.Write(b)
			r.AddHistory(b)
		}
		files = append(files, f.Bytes())
	}
	return files, nil
}

func content(f []op, blockLen int) []byte {
	var b bytes.Buffer
	for _, o := range f {
		if o.literal != nil {
			b.Write(o.literal)
		} else {
			b.Write(basisBlock(o.block, blockLen))
		}
	}
	return b.Bytes()
}

func randomFiles(rng *rand.Rand, blockLen int) [][]op {
	var files [][]op
	for range 1 + rng.IntN(4) {
		var f []op
		for range rng.IntN(30) {
			switch rng.IntN(4) {
			case 0:
				lit := make([]byte, 1+rng.IntN(100_000))
				for i := range lit {
					lit[i] = byte(rng.Uint32() % 8)
				}
				f = append(f, op{literal: lit})
			case 1:
				// Data that repeats a basis block, so -z can refer to history.
				f = append(f, op{literal: basisBlock(int32(rng.IntN(5)), blockLen)})
			default:
				// Mostly consecutive blocks (runs), sometimes far jumps.
				next := int32(rng.IntN(200))
				if len(f) > 0 && f[len(f)-1].literal == nil && rng.IntN(3) > 0 {
					next = f[len(f)-1].block + 1
				}
				if rng.IntN(10) == 0 {
					next = int32(rng.IntN(MaxBlockIndex))
				}
				f = append(f, op{block: next})
			}
		}
		files = append(files, f)
	}
	return files
}

func TestRoundTrip(t *testing.T) {
	for _, compressed := range []bool{false, true} {
		for seed := range uint64(20) {
			name := fmt.Sprintf("compressed=%v/seed=%d", compressed, seed)
			t.Run(name, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 1))
				blockLen := []int{700, 7240, 65528, 70000}[rng.IntN(4)]
				files := randomFiles(rng, blockLen)
				wire := encode(t, compressed, files, blockLen)
				in := bufio.NewReader(bytes.NewReader(wire))
				r := NewReader(in)
				if compressed {
					r = NewCompressedReader(in)
				}
				got, err := decode(r, len(files), blockLen)
				if err != nil {
					t.Fatal(err)
				}
				for i, f := range files {
					if want := content(f, blockLen); !bytes.Equal(got[i], want) {
						t.Fatalf("file %d: decoded %d bytes, want %d", i, len(got[i]), len(want))
					}
				}
				if in.Buffered() != 0 {
					t.Fatalf("%d bytes left after the last file", in.Buffered())
				}
			})
		}
	}
}

func TestPlainWireFormat(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	w.Literal([]byte("ab"))
	w.Block(0, nil)
	w.Block(5, nil)
	w.End()
	want := []byte{2, 0, 0, 0, 'a', 'b', 0xff, 0xff, 0xff, 0xff, 0xfa, 0xff, 0xff, 0xff, 0, 0, 0, 0}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("wire = % x, want % x", out.Bytes(), want)
	}
}

func TestCompressedTokenCoding(t *testing.T) {
	tests := []struct {
		name   string
		blocks []int32
		want   []byte
	}{
		{"single relative", []int32{3}, []byte{0x83, 0}},
		{"run relative", []int32{0, 1, 2}, []byte{0xc0, 2, 0, 0}},
		{"two runs", []int32{0, 1, 5, 6}, []byte{0xc0, 1, 0, 0xc4, 1, 0, 0}},
		{"long", []int32{100}, []byte{0x20, 100, 0, 0, 0, 0}},
		{"long run", []int32{100, 101}, []byte{0x21, 100, 0, 0, 0, 1, 0, 0}},
		{"backwards is long", []int32{5, 1}, []byte{0x85, 0x20, 1, 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w, err := NewCompressedWriter(&out, 6)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range tt.blocks {
				if err := w.Block(b, []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.End(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), tt.want) {
				t.Fatalf("wire = % x, want % x", out.Bytes(), tt.want)
			}
			r := NewCompressedReader(bytes.NewReader(out.Bytes()))
			for _, b := range tt.blocks {
				tok, err := r.Next()
				if err != nil || tok.Kind != Block || tok.Block != b {
					t.Fatalf("Next() = %+v, %v; want block %d", tok, err, b)
				}
				r.AddHistory([]byte("x"))
			}
			if tok, err := r.Next(); err != nil || tok.Kind != End {
				t.Fatalf("Next() = %+v, %v; want end", tok, err)
			}
		})
	}
}

func TestCompressedUsesBlockHistory(t *testing.T) {
	// A literal equal to the block just matched should compress to a few bytes.
	block := basisBlock(1, 7000)
	random := make([]byte, 7000)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	block = append(random[:3500], block[:3500]...)
	var out bytes.Buffer
	w, _ := NewCompressedWriter(&out, 6)
	w.Block(1, block)
	w.Literal(block)
	w.End()
	if out.Len() > 100 {
		t.Fatalf("literal repeating the matched block took %d bytes on the wire", out.Len())
	}
}

func TestReaderRejects(t *testing.T) {
	tests := []struct {
		name       string
		compressed bool
		wire       []byte
	}{
		{"truncated literal", false, []byte{10, 0, 0, 0, 'a'}},
		{"truncated int", false, []byte{1, 0}},
		{"bad flag", true, []byte{0x05}},
		{"negative long token", true, []byte{0x20, 0xff, 0xff, 0xff, 0xff}},
		{"zero run", true, []byte{0xc0, 0, 0}},
		{"run past max", true, []byte{0x21, 0xfe, 0xff, 0xff, 0x7f, 2, 0}},
		{"garbage deflate", true, []byte{0x40, 3, 0xff, 0xff, 0xff, 0}},
		{"truncated data", true, []byte{0x40, 10, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tt.wire))
			if tt.compressed {
				r = NewCompressedReader(bytes.NewReader(tt.wire))
			}
			for range 100 {
				tok, err := r.Next()
				if err != nil {
					if !errors.Is(err, ErrInvalid) && !errors.Is(err, io.ErrUnexpectedEOF) {
						t.Fatalf("error %v is neither ErrInvalid nor unexpected EOF", err)
					}
					return
				}
				if tok.Kind == Block {
					r.AddHistory([]byte("x"))
				}
			}
			t.Fatal("no error")
		})
	}
}

func TestPlainLongLiteralComesInChunks(t *testing.T) {
	// A peer-sent length is never allocated: 1 GiB announced, 3 bytes present.
	r := NewReader(bytes.NewReader([]byte{0, 0, 0, 0x40, 'a', 'b', 'c'}))
	_, err := r.Next()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want unexpected EOF", err)
	}
	data := bytes.Repeat([]byte("z"), 3*ChunkSize+5)
	var out bytes.Buffer
	w := NewWriter(&out)
	w.Literal(data)
	w.End()
	r = NewReader(bytes.NewReader(out.Bytes()))
	var got []byte
	for {
		tok, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if tok.Kind == End {
			break
		}
		if len(tok.Data) > ChunkSize {
			t.Fatalf("literal token of %d bytes", len(tok.Data))
		}
		got = append(got, tok.Data...)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("long literal corrupted")
	}
}
