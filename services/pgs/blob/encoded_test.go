package blob

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestEncodedFS(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// A write cut by a crash leaves a temporary file, removed at the next start.
	os.MkdirAll(filepath.Join(dir, "tmp"), 0o700)
	os.WriteFile(filepath.Join(dir, "tmp", "enc-123"), []byte("half"), 0o600)
	s, err := NewEncodedFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tmp", "enc-123")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("leftover kept: %v", err)
	}
	ref := Ref{Account: 7, Hash: sha256.Sum256([]byte("x"))}
	if _, err := s.OpenEncoded(ctx, ref, "br"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing copy: %v", err)
	}
	for _, enc := range Encodings {
		if err := s.PutEncoded(ctx, ref, enc, func(w io.Writer) error { _, err := io.WriteString(w, "copy-"+enc); return err }); err != nil {
			t.Fatal(err)
		}
		r, err := s.OpenEncoded(ctx, ref, enc)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, r.Size())
		r.ReadAt(b, 0)
		r.Close()
		if string(b) != "copy-"+enc {
			t.Fatalf("%s copy %q", enc, b)
		}
	}
	// A failed write leaves nothing; an unknown encoding or a bad ref is refused.
	other := Ref{Account: 7, Hash: sha256.Sum256([]byte("y"))}
	if err := s.PutEncoded(ctx, other, "br", func(w io.Writer) error { io.WriteString(w, "part"); return errors.New("cut") }); err == nil {
		t.Fatal("failed write succeeded")
	}
	if _, err := s.OpenEncoded(ctx, other, "br"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("failed write left a copy: %v", err)
	}
	if err := s.PutEncoded(ctx, ref, "../x", func(io.Writer) error { return nil }); err == nil {
		t.Fatal("unknown encoding accepted")
	}
	if _, err := s.OpenEncoded(ctx, Ref{Account: -1, Hash: ref.Hash}, "br"); err == nil {
		t.Fatal("bad ref accepted")
	}
	if err := s.DeleteEncoded(ctx, ref); err != nil {
		t.Fatal(err)
	}
	for _, enc := range Encodings {
		if _, err := s.OpenEncoded(ctx, ref, enc); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s copy outlived DeleteEncoded: %v", enc, err)
		}
	}
	if err := s.DeleteEncoded(ctx, ref); err != nil {
		t.Fatalf("deleting again: %v", err)
	}
}

func TestFSWriterTruncate(t *testing.T) {
	ctx := context.Background()
	s, err := NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		write func(w Writer)
		want  string
	}{
		{"cut in order", func(w Writer) { io.WriteString(w, "hello world"); w.Truncate(5) }, "hello"},
		{"cut after out of order", func(w Writer) { w.WriteAt([]byte("world"), 6); w.WriteAt([]byte("hello "), 0); w.Truncate(8) }, "hello wo"},
		{"extend", func(w Writer) { io.WriteString(w, "ab"); w.Truncate(4) }, "ab\x00\x00"},
		{"same size", func(w Writer) { io.WriteString(w, "ab"); w.Truncate(2) }, "ab"},
		{"write after cut", func(w Writer) { io.WriteString(w, "abcdef"); w.Truncate(2); w.Write([]byte("Z")) }, "abcdefZ"[:2] + "Z"},
	} {
		w, err := s.Create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c.write(w)
		h, size, err := w.Sum()
		if err != nil || h != Hash(sha256.Sum256([]byte(c.want))) || size != int64(len(c.want)) {
			t.Errorf("%s: hash %s size %d %v, want %q", c.name, h, size, err, c.want)
		}
		if err := w.Truncate(0); err == nil {
			t.Errorf("%s: Truncate after Sum accepted", c.name)
		}
		w.Close()
	}
}
