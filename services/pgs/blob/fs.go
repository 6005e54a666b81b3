package blob

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// FS is the filesystem Store: blob ACCOUNT/HH/HASH is the file DIR/ACCOUNT/HH/HASH. Data
// being written lives in an unnamed temporary file in DIR (O_TMPFILE; a crash leaves nothing
// behind) and is linked into place by Commit; where the filesystem has no O_TMPFILE, in a
// named file under DIR/tmp that Commit links and removes. Several gateways may share DIR.
type FS struct {
	dir     string
	tmpDir  string
	made    sync.Map // directories known to exist
	noTmpfs bool     // the filesystem refused O_TMPFILE once
	mu      sync.Mutex
}

// NewFS returns the Store in dir, creating dir if needed (mode 0700: blobs are users' files).
func NewFS(dir string) (*FS, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("blob store %s: %w", dir, err)
	}
	return &FS{dir: dir, tmpDir: filepath.Join(dir, "tmp")}, nil
}

// Dir is where the blobs are.
func (s *FS) Dir() string { return s.dir }

func (s *FS) path(r Ref) string {
	h := r.Hash.String()
	return filepath.Join(s.dir, strconv.FormatInt(r.Account, 10), h[:2], h)
}

func checkRef(r Ref) error {
	if r.Account <= 0 {
		return fmt.Errorf("blob %s: account %d is not an account id", r.Hash, r.Account)
	}
	return nil
}

// Create starts a blob in an unnamed temporary file.
func (s *FS) Create(ctx context.Context) (Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	noTmpfile := s.noTmpfs
	s.mu.Unlock()
	if !noTmpfile {
		fd, err := unix.Open(s.dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
		if err == nil {
			return newFSWriter(s, os.NewFile(uintptr(fd), filepath.Join(s.dir, "(temporary)")), ""), nil
		}
		if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EINVAL) {
			return nil, fmt.Errorf("blob store: temporary file: %w", err)
		}
		s.mu.Lock()
		s.noTmpfs = true
		s.mu.Unlock()
	}
	if err := s.mkdir(s.tmpDir); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(s.tmpDir, "blob-*")
	if err != nil {
		return nil, fmt.Errorf("blob store: temporary file: %w", err)
	}
	return newFSWriter(s, f, f.Name()), nil
}

func (s *FS) mkdir(dir string) error {
	if _, ok := s.made.Load(dir); ok {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("blob store: %w", err)
	}
	s.made.Store(dir, true)
	return nil
}

// Open opens a blob's file.
func (s *FS) Open(ctx context.Context, r Ref) (Reader, error) {
	if err := checkRef(r); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(r))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", r.Key(), unwrap(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blob %s: %w", r.Key(), unwrap(err))
	}
	return &fsReader{File: f, size: fi.Size()}, nil
}

type fsReader struct {
	*os.File
	size int64
}

func (r *fsReader) Size() int64 { return r.size }

// ReadSeeker is the blob's file itself: an HTTP server sends it with sendfile.
func (r *fsReader) ReadSeeker() io.ReadSeeker { return r.File }

// Stat returns a blob's size.
func (s *FS) Stat(ctx context.Context, r Ref) (int64, error) {
	if err := checkRef(r); err != nil {
		return 0, err
	}
	fi, err := os.Stat(s.path(r))
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", r.Key(), unwrap(err))
	}
	return fi.Size(), nil
}

// Delete removes a blob's file.
func (s *FS) Delete(ctx context.Context, r Ref) error {
	if err := checkRef(r); err != nil {
		return err
	}
	if err := os.Remove(s.path(r)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s: %w", r.Key(), unwrap(err))
	}
	return nil
}

// Sync flushes the filesystem that holds the blobs (syncfs): one call makes every committed
// blob durable, where an fsync of each file would cost a disk flush per file.
func (s *FS) Sync(ctx context.Context) error {
	d, err := os.Open(s.dir)
	if err != nil {
		return fmt.Errorf("blob store: %w", err)
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("blob store: sync: %w", err)
	}
	return nil
}

func unwrap(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// fsWriter is a blob being written to a temporary file. Writes in order are hashed as they
// come; once a write lands elsewhere, Sum reads the file back to hash it.
type fsWriter struct {
	s    *FS
	f    *os.File
	name string // the named temporary file, or "" for O_TMPFILE

	mu        sync.Mutex
	h         hash.Hash
	next      int64 // where the next in-order write starts
	size      int64 // the end of the data
	unordered bool  // a write went elsewhere than next: hash by reading back
	summed    bool
	sum       Hash
	committed bool
	closed    bool
}

func newFSWriter(s *FS, f *os.File, name string) *fsWriter {
	return &fsWriter{s: s, f: f, name: name, h: sha256.New()}
}

var errSummed = errors.New("blob writer: write after Sum")

func (w *fsWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.summed || w.closed {
		return 0, errSummed
	}
	n, err := w.f.WriteAt(p, w.size)
	w.account(p[:n], w.size)
	return n, err
}

func (w *fsWriter) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("blob writer: negative offset")
	}
	w.mu.Lock()
	if w.summed || w.closed {
		w.mu.Unlock()
		return 0, errSummed
	}
	w.mu.Unlock()
	n, err := w.f.WriteAt(p, off)
	w.mu.Lock()
	w.account(p[:n], off)
	w.mu.Unlock()
	return n, err
}

func (w *fsWriter) Truncate(size int64) error {
	if size < 0 {
		return errors.New("blob writer: negative size")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.summed || w.closed {
		return errSummed
	}
	if size == w.size {
		return nil
	}
	if err := w.f.Truncate(size); err != nil {
		return fmt.Errorf("blob writer: truncate: %w", err)
	}
	if size > w.size || w.next > size {
		w.unordered = true // zeros were added, or hashed data was cut: Sum reads back
	}
	w.size = size
	return nil
}

// account records n written bytes at off; w.mu is held.
func (w *fsWriter) account(p []byte, off int64) {
	if len(p) == 0 {
		return
	}
	if !w.unordered && off == w.next {
		w.h.Write(p)
		w.next += int64(len(p))
	} else {
		w.unordered = true
	}
	w.size = max(w.size, off+int64(len(p)))
}

func (w *fsWriter) Sum() (Hash, int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return Hash{}, 0, errors.New("blob writer: closed")
	}
	if w.summed {
		return w.sum, w.size, nil
	}
	w.summed = true
	if w.unordered || w.next != w.size {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(w.f, 0, w.size)); err != nil {
			return Hash{}, 0, fmt.Errorf("blob writer: read back: %w", err)
		}
		w.h = h
	}
	copy(w.sum[:], w.h.Sum(nil))
	return w.sum, w.size, nil
}

func (w *fsWriter) ReadAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	summed, size := w.summed, w.size
	w.mu.Unlock()
	if !summed {
		return 0, errors.New("blob writer: read before Sum")
	}
	if off >= size {
		return 0, io.EOF
	}
	if rest := size - off; int64(len(p)) > rest {
		n, err := w.f.ReadAt(p[:rest], off)
		if err == nil {
			err = io.EOF
		}
		return n, err
	}
	return w.f.ReadAt(p, off)
}

func (w *fsWriter) Commit(ctx context.Context, r Ref) error {
	if err := checkRef(r); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case !w.summed:
		return errors.New("blob writer: Commit before Sum")
	case w.closed:
		return errors.New("blob writer: closed")
	case r.Hash != w.sum:
		return fmt.Errorf("blob writer: data hashes to %s, not %s", w.sum, r.Hash)
	case w.committed:
		return nil
	}
	final := w.s.path(r)
	if err := w.s.mkdir(filepath.Dir(final)); err != nil {
		return err
	}
	var err error
	if w.name == "" {
		err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(w.f.Fd())), unix.AT_FDCWD, final, unix.AT_SYMLINK_FOLLOW)
	} else {
		err = os.Link(w.name, final)
	}
	if err != nil && !errors.Is(err, fs.ErrExist) && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("blob %s: %w", r.Key(), unwrap(err))
	}
	w.committed = true
	return nil
}

func (w *fsWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.f.Close()
	if w.name != "" {
		if rerr := os.Remove(w.name); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}
