package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// Encoded keeps compressed copies of blobs: one per blob and encoding ("br", "gzip"), kept
// beside the blob store and counted by no quota. A copy is written whole or not at all; an
// S3-compatible store would keep it as the object "KEY.ENCODING".
type Encoded interface {
	// OpenEncoded opens a blob's copy in an encoding; a missing one's error wraps
	// fs.ErrNotExist.
	OpenEncoded(ctx context.Context, r Ref, enc string) (Reader, error)
	// PutEncoded stores a blob's copy in an encoding, as write writes it.
	PutEncoded(ctx context.Context, r Ref, enc string, write func(io.Writer) error) error
	// DeleteEncoded removes every copy of a blob.
	DeleteEncoded(ctx context.Context, r Ref) error
}

// Encodings are the encodings an Encoded store keeps.
var Encodings = []string{"br", "gzip"}

// EncodedFS is the filesystem Encoded: blob ACCOUNT/HH/HASH's copy in ENC is the file
// DIR/ACCOUNT/HH/HASH.ENC, written under DIR/tmp, synced, then renamed into place.
type EncodedFS struct {
	dir  string
	made sync.Map
}

// NewEncodedFS returns the Encoded store in dir, creating it if needed; leftovers of writes cut
// by a crash are removed.
func NewEncodedFS(dir string) (*EncodedFS, error) {
	if err := os.RemoveAll(filepath.Join(dir, "tmp")); err != nil {
		return nil, fmt.Errorf("encoded blob store %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("encoded blob store %s: %w", dir, err)
	}
	return &EncodedFS{dir: dir}, nil
}

func (s *EncodedFS) path(r Ref, enc string) string {
	h := r.Hash.String()
	return filepath.Join(s.dir, strconv.FormatInt(r.Account, 10), h[:2], h+"."+enc)
}

func checkEncoding(enc string) error {
	for _, e := range Encodings {
		if e == enc {
			return nil
		}
	}
	return fmt.Errorf("encoded blob store: unknown encoding %q", enc)
}

// OpenEncoded opens a copy's file.
func (s *EncodedFS) OpenEncoded(ctx context.Context, r Ref, enc string) (Reader, error) {
	if err := errors.Join(checkRef(r), checkEncoding(enc)); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(r, enc))
	if err != nil {
		return nil, fmt.Errorf("blob %s.%s: %w", r.Key(), enc, unwrap(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blob %s.%s: %w", r.Key(), enc, unwrap(err))
	}
	return &fsReader{File: f, size: fi.Size()}, nil
}

// PutEncoded writes a copy to a temporary file, syncs it and renames it into place (another
// gateway writing the same copy at once writes the same bytes).
func (s *EncodedFS) PutEncoded(ctx context.Context, r Ref, enc string, write func(io.Writer) error) error {
	if err := errors.Join(checkRef(r), checkEncoding(enc)); err != nil {
		return err
	}
	final := s.path(r, enc)
	dir := filepath.Dir(final)
	if _, ok := s.made.Load(dir); !ok {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("encoded blob store: %w", err)
		}
		s.made.Store(dir, true)
	}
	f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "enc-*")
	if err != nil {
		return fmt.Errorf("encoded blob store: %w", err)
	}
	defer os.Remove(f.Name())
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), final)
	}
	if err != nil {
		return fmt.Errorf("blob %s.%s: %w", r.Key(), enc, err)
	}
	return nil
}

// DeleteEncoded removes a blob's copies.
func (s *EncodedFS) DeleteEncoded(ctx context.Context, r Ref) error {
	if err := checkRef(r); err != nil {
		return err
	}
	var errs []error
	for _, enc := range Encodings {
		if err := os.Remove(s.path(r, enc)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
