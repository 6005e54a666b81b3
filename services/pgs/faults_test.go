package pgs

import (
	"context"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/portico-sh/portico/services/pgs/blob"
)

// fullStore is a blob store whose writes fail with "no space left on device" while full is
// set, as a full disk's would.
type fullStore struct {
	blob.Store
	full atomic.Bool
}

func (s *fullStore) Create(ctx context.Context) (blob.Writer, error) {
	w, err := s.Store.Create(ctx)
	if err != nil {
		return nil, err
	}
	return &fullWriter{Writer: w, s: s}, nil
}

type fullWriter struct {
	blob.Writer
	s *fullStore
}

func (w *fullWriter) Write(p []byte) (int, error) {
	if w.s.full.Load() {
		return 0, syscall.ENOSPC
	}
	return w.Writer.Write(p)
}

func (w *fullWriter) WriteAt(p []byte, off int64) (int, error) {
	if w.s.full.Load() {
		return 0, syscall.ENOSPC
	}
	return w.Writer.WriteAt(p, off)
}

// A blob store that fails fails the upload with a clear message, on every protocol, and
// changes nothing; once it works again, so do uploads.
func TestFailingBlobStore(t *testing.T) {
	var store *fullStore
	h := newHarness(t, harnessOptions{blobs: func(s blob.Store) blob.Store {
		store = &fullStore{Store: s}
		return store
	}})
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.html": "v1"})
	h.mustRsync("-r", src+"/", remote+"/blog/")
	store.full.Store(true)
	writeTree(t, src, map[string]string{"index.html": "v2, longer", "new.txt": "new"})
	_, errOut, code := h.rsync("-r", src+"/", remote+"/blog/")
	if code == 0 || !strings.Contains(errOut, "no space left on device") {
		t.Fatalf("rsync onto a full store: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := h.scp("-O", src+"/new.txt", remote+"/blog/"); code == 0 || !strings.Contains(errOut, "no space left on device") {
		t.Fatalf("scp -O onto a full store: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := h.scp(src+"/new.txt", remote+"/blog/"); code == 0 || !strings.Contains(errOut, "no space left on device") {
		t.Fatalf("scp (SFTP) onto a full store: exit %d\n%s", code, errOut)
	}
	mustEqualTree(t, "after the failures", h.liveFiles("blog"), map[string]string{"index.html": "v1"})
	store.full.Store(false)
	h.mustRsync("-r", src+"/", remote+"/blog/")
	mustEqualTree(t, "after the store recovered", h.liveFiles("blog"), map[string]string{"index.html": "v2, longer", "new.txt": "new"})
}
