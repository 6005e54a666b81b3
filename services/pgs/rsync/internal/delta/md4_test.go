package delta

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"golang.org/x/crypto/md4"
)

// refMD4 is golang.org/x/crypto/md4's digest of b.
func refMD4(b []byte) []byte {
	h := md4.New()
	h.Write(b)
	return h.Sum(nil)
}

func TestMD4Vectors(t *testing.T) {
	// RFC 1320, appendix A.5.
	for in, want := range map[string]string{
		"":                           "31d6cfe0d16ae931b73c59d7e0c089c0",
		"a":                          "bde52cb31de33e46245e05fbdbd6fb24",
		"abc":                        "a448017aaf21d8525fc10ae87aa6729d",
		"message digest":             "d9130a8164549fe818874806e1c7014b",
		"abcdefghijklmnopqrstuvwxyz": "d79e1c308aa5bbcdeea8ed63df412da9",
		"12345678901234567890123456789012345678901234567890123456789012345678901234567890": "e33b4ddc9c38f2199c3e7b164fcc0536",
	} {
		h := newMD4()
		h.Write([]byte(in))
		if got := hexString(h.Sum(nil)); got != want {
			t.Errorf("MD4(%q) = %s, want %s", in, got, want)
		}
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// TestMD4MatchesReference compares every length up to a few blocks, written whole and in random
// pieces, and checks that Sum leaves the state alone.
func TestMD4MatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for n := 0; n <= len(data); n++ {
		b := data[:n]
		want := refMD4(b)
		h := newMD4()
		h.Write(b)
		if got := h.Sum(nil); !bytes.Equal(got, want) {
			t.Fatalf("length %d: got %x, want %x", n, got, want)
		}
		h.Reset()
		for rest := b; len(rest) > 0; {
			k := min(len(rest), rng.IntN(150))
			h.Write(rest[:k])
			rest = rest[k:]
			if k > 0 && rng.IntN(4) == 0 {
				h.Sum(nil) // must not change the state
			}
		}
		if got := h.Sum([]byte("x")); !bytes.Equal(got[1:], want) || got[0] != 'x' {
			t.Fatalf("length %d in pieces: got %x, want %x", n, got, want)
		}
	}
}

func FuzzMD4(f *testing.F) {
	f.Add([]byte("abc"), uint8(1))
	f.Add(bytes.Repeat([]byte{0xff}, 200), uint8(63))
	f.Fuzz(func(t *testing.T, b []byte, split uint8) {
		want := refMD4(b)
		h := newMD4()
		k := min(int(split), len(b))
		h.Write(b[:k])
		h.Write(b[k:])
		if got := h.Sum(nil); !bytes.Equal(got, want) {
			t.Fatalf("got %x, want %x", got, want)
		}
	})
}

func BenchmarkMD4(b *testing.B) {
	data := make([]byte, 1<<20)
	for _, impl := range []struct {
		name string
		new  func() interface{ Write([]byte) (int, error) }
	}{
		{"portico", func() interface{ Write([]byte) (int, error) } { return newMD4() }},
		{"x-crypto", func() interface{ Write([]byte) (int, error) } { return md4.New() }},
	} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			h := impl.new()
			for b.Loop() {
				h.Write(data)
			}
		})
	}
}
