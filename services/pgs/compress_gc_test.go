package pgs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/portico-sh/portico/services/pgs/blob"
)

// collectingEncoded frees the blob (as the garbage collector does) while its copy is being
// written: the moment a compression races a deletion.
type collectingEncoded struct {
	blob.Encoded
	free func()
}

func (e collectingEncoded) PutEncoded(ctx context.Context, r blob.Ref, enc string, write func(io.Writer) error) error {
	e.free()
	return e.Encoded.PutEncoded(ctx, r, enc, write)
}

// TestCompressRacingCollection: a compressed copy whose blob is freed while it is being
// written is not left behind (it would take disk that no quota counts and nothing deletes).
func TestCompressRacingCollection(t *testing.T) {
	ctx := context.Background()
	blobs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	encoded, err := blob.NewEncodedFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w, err := blobs.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, strings.Repeat("<p>hello</p>\n", 1000))
	h, _, err := w.Sum()
	if err != nil {
		t.Fatal(err)
	}
	ref := blob.Ref{Account: 1, Hash: h}
	if err := w.Commit(ctx, ref); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var svc *Service
	enc := collectingEncoded{Encoded: encoded, free: func() {
		if _, err := svc.deleter(ctx, 1)([]string{h.String()}); err != nil {
			t.Error(err)
		}
	}}
	svc = New(Options{Blobs: blobs, Encoded: enc})
	svc.compress(ref, "gzip")
	if rd, err := encoded.OpenEncoded(ctx, ref, "gzip"); !errors.Is(err, fs.ErrNotExist) {
		if rd != nil {
			rd.Close()
		}
		t.Errorf("the copy of a freed blob is left behind: %v", err)
	}
}
