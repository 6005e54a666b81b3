package pgs

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/db/dbtest"
	"github.com/portico-sh/portico/internal/sshtest"
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

// leakyStore is a blob store whose reads fail with an error naming internals, as an object
// store's or a filesystem's may (a bucket's address, a path on the server).
type leakyStore struct {
	blob.Store
	failing atomic.Bool
}

const internalDetail = "s3://internal-bucket-7/portico at 10.9.8.7"

func (s *leakyStore) Open(ctx context.Context, r blob.Ref) (blob.Reader, error) {
	if s.failing.Load() {
		return nil, errors.New("get " + internalDetail + ": access denied")
	}
	return s.Store.Open(ctx, r)
}

// TestFailuresNameNoInternals: a failure of the server's own storage reaches the client as
// plain words on every protocol, never the cause's text (which goes to the log); before,
// sftp and rsync passed the error's text to the client as it was.
func TestFailuresNameNoInternals(t *testing.T) {
	var store *leakyStore
	h := newHarness(t, harnessOptions{blobs: func(s blob.Store) blob.Store {
		store = &leakyStore{Store: s}
		return store
	}})
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.html": "v1"})
	h.mustRsync("-r", src+"/", remote+"/blog/")
	store.failing.Store(true)
	dst := t.TempDir()
	o, e, code := h.rsync("-r", remote+"/blog/", dst+"/")
	if code == 0 || strings.Contains(o+e, "internal-bucket") || !strings.Contains(o+e, "the server failed") {
		t.Errorf("rsync download: exit %d\n%s%s", code, o, e)
	}
	c, _ := h.sftpClient()
	defer c.Close()
	_, err := c.Open("/blog/index.html")
	if err == nil || strings.Contains(err.Error(), "internal-bucket") || !strings.Contains(err.Error(), "the server failed") {
		t.Errorf("sftp open: %v", err)
	}
	if !strings.Contains(h.log.String(), internalDetail) {
		t.Errorf("the cause is not in the server's log")
	}
}

// brokenProjects is a store whose project listing fails with an error naming internals.
type brokenProjects struct{ Store }

func (brokenProjects) PGSProjects(context.Context, int64) ([]db.PGSProject, error) {
	return nil, errors.New("dial tcp " + internalDetail + ": connection refused")
}

// TestCommandFailureLogged: a command that fails on the server's side tells the client plain
// words and the log the cause; before, the cause was dropped.
func TestCommandFailureLogged(t *testing.T) {
	store := dbtest.Open(t)
	var log sshtest.SyncBuffer
	svc := New(Options{Store: brokenProjects{store}, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	var stdout, stderr strings.Builder
	c := &cli{svc: svc, ctx: context.Background(), grant: auth.Grant{AccountID: 1, Account: "alice"}, stdout: &stdout, stderr: &stderr}
	if code := c.run([]string{"ls"}); code != exitFailed {
		t.Fatalf("ls: exit %d", code)
	}
	if strings.Contains(stderr.String(), "internal-bucket") || !strings.Contains(stderr.String(), "the server failed") {
		t.Fatalf("ls told the client: %q", stderr.String())
	}
	if !strings.Contains(log.String(), internalDetail) {
		t.Fatalf("the cause is not in the log: %q", log.String())
	}
}
