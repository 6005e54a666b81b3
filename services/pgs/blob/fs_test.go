package blob

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

var ctx = context.Background()

func newStore(t *testing.T, named bool) *FS {
	t.Helper()
	s, err := NewFS(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	s.noTmpfs = named
	return s
}

func both(t *testing.T, run func(t *testing.T, s *FS)) {
	t.Run("tmpfile", func(t *testing.T) { run(t, newStore(t, false)) })
	t.Run("named", func(t *testing.T) { run(t, newStore(t, true)) })
}

func put(t *testing.T, s Store, account int64, data []byte) Ref {
	t.Helper()
	w, err := s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	h, n, err := w.Sum()
	if err != nil || n != int64(len(data)) || h != sha256.Sum256(data) {
		t.Fatalf("Sum = %s, %d, %v; want %x, %d", h, n, err, sha256.Sum256(data), len(data))
	}
	r := Ref{Account: account, Hash: h}
	if err := w.Commit(ctx, r); err != nil {
		t.Fatal(err)
	}
	return r
}

func read(t *testing.T, s Store, r Ref) []byte {
	t.Helper()
	rd, err := s.Open(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	b, err := io.ReadAll(io.NewSectionReader(rd, 0, rd.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	both(t, func(t *testing.T, s *FS) {
		data := []byte("hello, blob")
		r := put(t, s, 7, data)
		if got := read(t, s, r); !bytes.Equal(got, data) {
			t.Fatalf("read %q", got)
		}
		if n, err := s.Stat(ctx, r); err != nil || n != int64(len(data)) {
			t.Fatalf("Stat = %d, %v", n, err)
		}
		// The same content again (another writer) commits onto the existing blob.
		put(t, s, 7, data)
		// Another account's namespace does not have it.
		if _, err := s.Stat(ctx, Ref{Account: 8, Hash: r.Hash}); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Stat in another account = %v, want not exist", err)
		}
		if err := s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Open(ctx, r); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Open after Delete = %v", err)
		}
		if err := s.Delete(ctx, r); err != nil {
			t.Fatalf("Delete of a missing blob = %v", err)
		}
		// No temporary file is left behind.
		if ents, _ := os.ReadDir(s.tmpDir); len(ents) != 0 {
			t.Fatalf("temporary files left: %v", ents)
		}
	})
}

func TestUnorderedWrites(t *testing.T) {
	both(t, func(t *testing.T, s *FS) {
		data := make([]byte, 1<<20)
		rand.Read(data)
		w, err := s.Create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		// 32 KiB chunks written by 8 goroutines at once, as an SFTP server's workers do.
		var wg sync.WaitGroup
		chunks := make(chan int64, 64)
		for range 8 {
			wg.Go(func() {
				for off := range chunks {
					if _, err := w.WriteAt(data[off:off+32<<10], off); err != nil {
						t.Error(err)
					}
				}
			})
		}
		for off := int64(len(data)) - 32<<10; off >= 0; off -= 32 << 10 {
			chunks <- off
		}
		close(chunks)
		wg.Wait()
		h, n, err := w.Sum()
		if err != nil || n != int64(len(data)) || h != sha256.Sum256(data) {
			t.Fatalf("Sum = %s, %d, %v", h, n, err)
		}
		got := make([]byte, len(data))
		if _, err := w.ReadAt(got, 0); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatal("ReadAt after Sum differs")
		}
		if _, err := w.Write([]byte("x")); err == nil {
			t.Fatal("Write after Sum accepted")
		}
	})
}

func TestCommitChecks(t *testing.T) {
	s := newStore(t, false)
	w, err := s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write([]byte("data"))
	if err := w.Commit(ctx, Ref{Account: 1}); err == nil {
		t.Fatal("Commit before Sum accepted")
	}
	h, _, _ := w.Sum()
	if err := w.Commit(ctx, Ref{Account: 1, Hash: sha256.Sum256([]byte("other"))}); err == nil {
		t.Fatal("Commit under another hash accepted")
	}
	if err := w.Commit(ctx, Ref{Account: 0, Hash: h}); err == nil {
		t.Fatal("Commit without an account accepted")
	}
	if err := w.Commit(ctx, Ref{Account: 1, Hash: h}); err != nil {
		t.Fatal(err)
	}
	// Without Commit nothing is stored.
	w2, _ := s.Create(ctx)
	w2.Write([]byte("never committed"))
	h2, _, _ := w2.Sum()
	w2.Close()
	if _, err := s.Stat(ctx, Ref{Account: 1, Hash: h2}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("uncommitted blob: Stat = %v", err)
	}
}

func TestHashAndKey(t *testing.T) {
	h := sha256.Sum256([]byte("x"))
	r := Ref{Account: 42, Hash: h}
	s := Hash(h).String()
	if r.Key() != "42/"+s[:2]+"/"+s {
		t.Fatalf("Key = %s", r.Key())
	}
	back, err := ParseHash(s)
	if err != nil || back != Hash(h) {
		t.Fatalf("ParseHash = %v, %v", back, err)
	}
	for _, bad := range []string{"", "xyz", s[:63], s + "0", "../" + s[3:]} {
		if _, err := ParseHash(bad); err == nil {
			t.Errorf("ParseHash(%q) accepted", bad)
		}
	}
}
