package rsync

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// limitWriter fails once it has taken limit bytes.
type limitWriter struct {
	bytes.Buffer
	limit int
}

var errFull = errors.New("disk full")

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.Len()+len(p) > w.limit {
		return 0, errFull
	}
	return w.Buffer.Write(p)
}

func TestFileSink(t *testing.T) {
	for _, inline := range []bool{false, true} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) { testFileSink(t, inline) })
	}
}

func testFileSink(t *testing.T, inline bool) {
	rng := rand.New(rand.NewPCG(2, 2))
	data := make([]byte, 5*sinkChunk+17)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	var sink fileSink // reused for every file, as a session does
	for _, size := range []int{0, 1, sinkChunk - 1, sinkChunk, sinkChunk + 1, 3 * sinkChunk, len(data)} {
		var out bytes.Buffer
		h := sha256.New()
		sink.reset(&out, h, inline)
		for rest := data[:size]; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(70000))
			if err := sink.write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		got, err := sink.finish()
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256(data[:size])
		if !bytes.Equal(got, want[:]) || !bytes.Equal(out.Bytes(), data[:size]) {
			t.Fatalf("size %d: wrong checksum or data", size)
		}
		sink.stop() // as the deferred call does
	}
	if len(sink.bufs) > sinkChunks {
		t.Errorf("%d chunks allocated", len(sink.bufs))
	}

	// A failing writer: the error is reported, the rest dropped, the hasher stopped.
	for _, limit := range []int{0, sinkChunk, 2*sinkChunk + 5} {
		w := &limitWriter{limit: limit}
		sink.reset(w, sha256.New(), inline)
		var err error
		for rest := data; len(rest) > 0 && err == nil; rest = rest[min(len(rest), 1000):] {
			err = sink.write(rest[:min(len(rest), 1000)])
		}
		if _, ferr := sink.finish(); !errors.Is(ferr, errFull) {
			t.Errorf("limit %d: write err %v, finish err %v", limit, err, ferr)
		}
		sink.stop()
	}

	// Abandoned mid-file (the stream broke): stop alone ends the hasher.
	sink.reset(&bytes.Buffer{}, sha256.New(), inline)
	if err := sink.write(data); err != nil {
		t.Fatal(err)
	}
	sink.stop()
	sink.stop()
}
