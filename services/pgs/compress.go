package pgs

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/andybalholm/brotli"

	"github.com/portico-sh/portico/services/pgs/blob"
)

// Bounds on compression: files smaller than minCompress gain nothing from it; files larger
// than maxCompress are sent as they are (compressing one would hold a request for seconds);
// at most maxCompressing blobs are compressed at once on a gateway (a request finding no slot
// is sent the identity encoding, and a later one compresses); one compression gets
// compressTimeout.
const (
	minCompress     = 256
	maxCompress     = 32 << 20
	maxCompressing  = 2
	compressTimeout = 2 * time.Minute
	// brotliBest: files up to this size get brotli's best (slowest) quality, larger ones 9.
	brotliBest = 1 << 20
)

// compressible reports whether a response of this Content-Type and size is worth compressing:
// text-like types (HTML, CSS, JS, JSON, SVG, XML, plain text, wasm and kin).
func compressible(ctype string, size int64) bool {
	if size < minCompress || size > maxCompress {
		return false
	}
	t, _, _ := strings.Cut(ctype, ";")
	if strings.HasPrefix(t, "text/") {
		return true
	}
	switch t {
	case "application/json", "application/ld+json", "application/manifest+json", "application/wasm",
		"application/xml", "application/rss+xml", "application/atom+xml", "application/xhtml+xml",
		"application/yaml", "application/toml", "image/svg+xml":
		return true
	}
	return false
}

// acceptedEncoding picks br or gzip from an Accept-Encoding header: the one with the higher
// q-value, br on a tie; "" when the client accepts neither ("*" stands for those not named).
func acceptedEncoding(header string) string {
	if header == "" {
		return ""
	}
	br, gz, star := -1.0, -1.0, -1.0
	for part := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(part, ";")
		q := 1.0
		if k, v, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.TrimSpace(k) == "q" {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			q = f
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "br":
			br = q
		case "gzip", "x-gzip":
			gz = q
		case "*":
			star = q
		}
	}
	if br < 0 {
		br = star
	}
	if gz < 0 {
		gz = star
	}
	switch {
	case br > 0 && br >= gz:
		return "br"
	case gz > 0:
		return "gzip"
	}
	return ""
}

// encodedBlob returns the blob's copy in an encoding, compressing it first if no gateway has
// yet (once: concurrent requests wait for the same compression). ok is false when the copy is
// not smaller than the blob, or cannot be had now: the identity encoding is sent then.
func (s *Service) encodedBlob(ctx context.Context, ref blob.Ref, size int64, enc string) (blob.Reader, bool) {
	key := memKey{account: ref.Account, hash: ref.Hash, enc: enc}
	open := func() (blob.Reader, error) { return s.encoded.OpenEncoded(ctx, ref, enc) }
	rd, err := s.cached(key, open)
	if errors.Is(err, fs.ErrNotExist) {
		_, err, _ = s.compressing.Do(ref.Key()+"."+enc, func() (any, error) {
			select {
			case s.compressSlots <- struct{}{}:
			default:
				return nil, errCompressBusy
			}
			defer func() { <-s.compressSlots }()
			return nil, s.compress(ref, enc)
		})
		if err == nil {
			rd, err = s.cached(key, open)
		}
	}
	if err != nil {
		if !errors.Is(err, errCompressBusy) {
			s.log.Warn("pgs: compressing a file failed; sending it as it is", "blob", ref.Key(), "encoding", enc, "err", err)
		}
		return nil, false
	}
	if rd.Size() >= size {
		rd.Close() // compressed, it is no smaller: kept so as not to try again
		return nil, false
	}
	return rd, true
}

var errCompressBusy = errors.New("compressions busy")

// compress writes a blob's copy in an encoding.
func (s *Service) compress(ref blob.Ref, enc string) error {
	ctx, cancel := context.WithTimeout(context.Background(), compressTimeout)
	defer cancel()
	src, err := s.blobs.Open(ctx, ref)
	if err != nil {
		return err
	}
	defer src.Close()
	err = s.encoded.PutEncoded(ctx, ref, enc, func(w io.Writer) error {
		var zw io.WriteCloser
		if enc == "br" {
			q := brotli.BestCompression
			if src.Size() > brotliBest {
				q = 9
			}
			zw = brotli.NewWriterLevel(w, q)
		} else {
			zw, _ = gzip.NewWriterLevel(w, gzip.BestCompression)
		}
		if _, err := io.Copy(zw, io.NewSectionReader(src, 0, src.Size())); err != nil {
			return err
		}
		return zw.Close()
	})
	if err != nil {
		return err
	}
	// The blob may have been freed while it was compressed, its copies deleted before this
	// one was written: a copy left then would take disk that nothing counts or deletes.
	if _, err := s.blobs.Stat(ctx, ref); errors.Is(err, fs.ErrNotExist) {
		s.encoded.DeleteEncoded(ctx, ref)
		return err
	}
	return nil
}

// encodedFile opens the compressed copy to send for a file, when its type is compressible and
// the client accepts br or gzip (Range requests are answered from the identity encoding):
// Vary, Content-Encoding and the copy's own ETag are set. nil: send the file as it is.
func (h *siteHandler) encodedFile(w http.ResponseWriter, r *http.Request, ctype string, ref blob.Ref, f File, status int, etag *string) blob.Reader {
	if status != http.StatusOK || h.svc.encoded == nil || !compressible(ctype, f.Size) {
		return nil
	}
	w.Header().Add("Vary", "Accept-Encoding")
	enc := acceptedEncoding(r.Header.Get("Accept-Encoding"))
	if enc == "" || r.Header.Get("Range") != "" {
		return nil
	}
	rd, ok := h.svc.encodedBlob(r.Context(), ref, f.Size, enc)
	if !ok {
		return nil
	}
	w.Header().Set("Content-Encoding", enc)
	// ServeContent leaves Content-Length out when Content-Encoding is set; the copy's size is it.
	w.Header().Set("Content-Length", strconv.FormatInt(rd.Size(), 10))
	*etag = `"` + f.Hash.String() + "-" + enc + `"`
	return rd
}
