package pgs

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/andybalholm/brotli"

	"github.com/portico-sh/portico/services/pgs/blob"
)

func TestAcceptedEncoding(t *testing.T) {
	for header, want := range map[string]string{
		"":                        "",
		"gzip":                    "gzip",
		"br":                      "br",
		"gzip, deflate, br, zstd": "br",
		"gzip;q=1.0, br;q=0.5":    "gzip",
		"br;q=0, gzip":            "gzip",
		"br;q=0, gzip;q=0":        "",
		"*":                       "br",
		"*;q=0.5, br;q=0":         "gzip",
		"identity":                "",
		"deflate":                 "",
		"BR":                      "br",
		"x-gzip":                  "gzip",
		"gzip;q=bad":              "",
		"br;q=2":                  "",
	} {
		if got := acceptedEncoding(header); got != want {
			t.Errorf("acceptedEncoding(%q) = %q, want %q", header, got, want)
		}
	}
}

func TestCompressible(t *testing.T) {
	for _, c := range []struct {
		name string
		size int64
		want bool
	}{
		{"a.html", 1000, true}, {"a.css", 1000, true}, {"a.js", 1000, true}, {"a.json", 1000, true},
		{"a.svg", 1000, true}, {"a.xml", 1000, true}, {"a.txt", 1000, true}, {"a.wasm", 1000, true},
		{"a.png", 1000, false}, {"a.woff2", 1000, false}, {"a.bin", 1000, false}, {"a.zip", 1000, false},
		{"a.html", 100, false}, {"a.html", maxCompress + 1, false},
	} {
		if got := compressible(contentType(c.name), c.size); got != c.want {
			t.Errorf("compressible(%s, %d) = %v", c.name, c.size, got)
		}
	}
}

// countingEncoded counts the copies written.
type countingEncoded struct {
	blob.Encoded
	puts atomic.Int64
}

func (c *countingEncoded) PutEncoded(ctx context.Context, r blob.Ref, enc string, write func(io.Writer) error) error {
	c.puts.Add(1)
	return c.Encoded.PutEncoded(ctx, r, enc, write)
}

// TestCompression: text files go out in br or gzip as the client accepts, each blob compressed
// once per encoding, with Vary and an ETag of their own; Range gets the identity encoding;
// images and incompressible data go out as they are.
func TestCompression(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	counter := &countingEncoded{Encoded: h.encoded}
	h.svc.encoded = counter
	page := strings.Repeat("<p>hello, compressed world</p>\n", 400)
	noise := make([]byte, 4096)
	rand.Read(noise)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.html": page, "copy.html": page, "logo.png": strings.Repeat("x", 4096),
		"noise.txt": string(noise)})
	h.mustRsync("-r", src+"/", remote+"/blog/")

	var brETag string
	for i := range 3 {
		code, body, hdr := h.get("blog", "/", "Accept-Encoding", "gzip, deflate, br")
		if code != 200 || hdr.Get("Content-Encoding") != "br" || hdr.Get("Vary") != "Accept-Encoding" {
			t.Fatalf("GET / (br) %d: %d %v", i, code, hdr)
		}
		plain, err := io.ReadAll(brotli.NewReader(strings.NewReader(body)))
		if err != nil || string(plain) != page || len(body) >= len(page)/10 || hdr.Get("Content-Length") == "" {
			t.Fatalf("br body: %v, %d bytes of %d, Content-Length %q", err, len(body), len(page), hdr.Get("Content-Length"))
		}
		brETag = hdr.Get("ETag")
		if !strings.HasSuffix(brETag, `-br"`) {
			t.Fatalf("br ETag %s", brETag)
		}
	}
	code, body, hdr := h.get("blog", "/", "Accept-Encoding", "gzip")
	if code != 200 || hdr.Get("Content-Encoding") != "gzip" || !strings.HasSuffix(hdr.Get("ETag"), `-gzip"`) {
		t.Fatalf("GET / (gzip): %d %v", code, hdr)
	}
	zr, err := gzip.NewReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if plain, _ := io.ReadAll(zr); string(plain) != page {
		t.Fatalf("gzip body differs")
	}
	// The same content under another name: the same blob, compressed already.
	if _, _, hdr := h.get("blog", "/copy.html", "Accept-Encoding", "br"); hdr.Get("ETag") != brETag {
		t.Fatalf("copy.html ETag %s, want %s", hdr.Get("ETag"), brETag)
	}
	if n := counter.puts.Load(); n != 2 {
		t.Fatalf("%d compressions, want 2 (one per encoding)", n)
	}
	// 304 for the encoded ETag; identity for a client that accepts nothing, and for Range.
	if code, _, _ := h.get("blog", "/", "Accept-Encoding", "br", "If-None-Match", brETag); code != 304 {
		t.Fatalf("If-None-Match br: %d", code)
	}
	code, body, hdr = h.get("blog", "/", "Accept-Encoding", "identity")
	if code != 200 || hdr.Get("Content-Encoding") != "" || body != page || hdr.Get("Vary") != "Accept-Encoding" ||
		hdr.Get("ETag") != `"`+sha256hex(page)+`"` {
		t.Fatalf("identity: %d %v", code, hdr)
	}
	code, body, hdr = h.get("blog", "/", "Accept-Encoding", "br", "Range", "bytes=0-8")
	if code != 206 || hdr.Get("Content-Encoding") != "" || body != page[:9] {
		t.Fatalf("Range: %d %q %v", code, body, hdr)
	}
	// Not text, or no smaller compressed: sent as it is.
	if _, body, hdr := h.get("blog", "/logo.png", "Accept-Encoding", "br"); hdr.Get("Content-Encoding") != "" || hdr.Get("Vary") != "" || len(body) != 4096 {
		t.Fatalf("png: %v", hdr)
	}
	for range 2 {
		if _, body, hdr := h.get("blog", "/noise.txt", "Accept-Encoding", "br"); hdr.Get("Content-Encoding") != "" || !bytes.Equal([]byte(body), noise) {
			t.Fatalf("noise: %v", hdr)
		}
	}
	if n := counter.puts.Load(); n != 3 {
		t.Fatalf("%d compressions, want 3 (noise once)", n)
	}
	// Removing the site removes the copies with the blobs.
	if _, stderr, code := h.ssh("rm", "blog", "--yes"); code != 0 {
		t.Fatalf("rm: %s", stderr)
	}
	ref := blob.Ref{Account: h.account.ID, Hash: sha256.Sum256([]byte(page))}
	if _, err := h.encoded.OpenEncoded(context.Background(), ref, "br"); err == nil {
		t.Fatalf("the br copy outlived its blob")
	}
}
