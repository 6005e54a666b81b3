package rsync

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"time"
)

// FS is the storage a session reads (downloads, block matching, quick checks) and writes
// (uploads). Every name is "." (the root) or a clean, relative, slash-separated path checked by
// the server: no "..", no leading "/", no empty components. Implementations must not follow
// symbolic links when writing.
type FS interface {
	// Lstat describes name without following a final symbolic link.
	Lstat(name string) (fs.FileInfo, error)
	// ReadDir lists a directory.
	ReadDir(name string) ([]fs.DirEntry, error)
	// Open opens an existing regular file for reading.
	Open(name string) (File, error)
	// Readlink returns a symbolic link's target.
	Readlink(name string) (string, error)
	// Mkdir creates one directory; its parent exists.
	Mkdir(name string, perm fs.FileMode) error
	// Create starts writing a new version of the regular file name. Nothing is visible at name
	// until Commit; Abort discards the data.
	Create(name string) (Upload, error)
	// Chtimes sets the modification time of an existing file or directory.
	Chtimes(name string, mtime time.Time) error
	// Chmod sets the permission bits of an existing file or directory.
	Chmod(name string, perm fs.FileMode) error
	// Remove removes a file, a symbolic link or an empty directory.
	Remove(name string) error
}

// File is an open regular file: read in order (downloads) or at offsets (block matching).
type File interface {
	io.Reader
	io.ReaderAt
	io.Closer
}

// Upload is a file being written. Exactly one of Commit and Abort must be called.
type Upload interface {
	io.Writer
	// Commit makes the data visible at the name given to Create, replacing any file there, with
	// the given modification time and permission bits.
	Commit(mtime time.Time, perm fs.FileMode) error
	// Abort discards the data.
	Abort() error
}

// ChecksumFS is an FS that keeps each regular file's unseeded MD4 (what -c compares), so that
// a checksum run does not read every stored file.
type ChecksumFS interface {
	FS
	Checksum(name string) ([16]byte, error)
}

// DirFS is an FS over a local directory; nothing outside root can be read or written. Writes
// go to a temporary file next to the target (".name.XXXXXXXX", as rsync does) that is renamed
// into place on Commit.
func DirFS(root string) FS {
	return &dirFS{dir: root}
}

type dirFS struct {
	dir  string
	once sync.Once
	root *os.Root
	err  error
}

func (d *dirFS) open(name string) (*os.Root, string, error) {
	d.once.Do(func() { d.root, d.err = os.OpenRoot(d.dir) })
	if d.err != nil {
		return nil, "", d.err
	}
	if !fs.ValidPath(name) {
		return nil, "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	return d.root, name, nil
}

// writable is open for an operation that changes name: no directory on the way may be a
// symbolic link (os.Root alone would follow links that stay inside the root).
func (d *dirFS) writable(name string) (*os.Root, string, error) {
	r, name, err := d.open(name)
	if err != nil {
		return nil, "", err
	}
	for i := 0; i < len(name); i++ {
		if name[i] != '/' {
			continue
		}
		fi, err := r.Lstat(name[:i])
		if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, "", &fs.PathError{Op: "write", Path: name, Err: fmt.Errorf("%s is a symbolic link", name[:i])}
		}
	}
	return r, name, nil
}

func (d *dirFS) Lstat(name string) (fs.FileInfo, error) {
	r, name, err := d.open(name)
	if err != nil {
		return nil, err
	}
	return r.Lstat(name)
}

func (d *dirFS) ReadDir(name string) ([]fs.DirEntry, error) {
	r, name, err := d.open(name)
	if err != nil {
		return nil, err
	}
	f, err := r.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

func (d *dirFS) Open(name string) (File, error) {
	r, name, err := d.open(name)
	if err != nil {
		return nil, err
	}
	f, err := r.Open(name)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = &fs.PathError{Op: "open", Path: name, Err: errors.New("not a regular file")}
		}
		return nil, err
	}
	return f, nil
}

func (d *dirFS) Readlink(name string) (string, error) {
	r, name, err := d.open(name)
	if err != nil {
		return "", err
	}
	return r.Readlink(name)
}

func (d *dirFS) Mkdir(name string, perm fs.FileMode) error {
	r, name, err := d.writable(name)
	if err != nil {
		return err
	}
	return r.Mkdir(name, perm)
}

func (d *dirFS) Chtimes(name string, mtime time.Time) error {
	r, name, err := d.writable(name)
	if err != nil {
		return err
	}
	if err := refuseSymlink(r, name); err != nil {
		return err
	}
	return r.Chtimes(name, mtime, mtime)
}

func (d *dirFS) Chmod(name string, perm fs.FileMode) error {
	r, name, err := d.writable(name)
	if err != nil {
		return err
	}
	if err := refuseSymlink(r, name); err != nil {
		return err
	}
	return r.Chmod(name, perm)
}

func (d *dirFS) Remove(name string) error {
	if name == "." {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrPermission}
	}
	r, name, err := d.writable(name)
	if err != nil {
		return err
	}
	return r.Remove(name)
}

func refuseSymlink(r *os.Root, name string) error {
	fi, err := r.Lstat(name)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return &fs.PathError{Op: "write", Path: name, Err: errors.New("is a symbolic link")}
	}
	return nil
}

func (d *dirFS) Create(name string) (Upload, error) {
	if name == "." {
		return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrInvalid}
	}
	r, name, err := d.writable(name)
	if err != nil {
		return nil, err
	}
	dir, base := path.Split(name)
	var f *os.File
	var tmp string
	for range 10 {
		var b [4]byte
		rand.Read(b[:])
		// Keep the temporary name within NAME_MAX.
		tmp = dir + "." + truncate(base, 200) + "." + hex.EncodeToString(b[:])
		f, err = r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return &dirUpload{root: r, f: f, tmp: tmp, name: name}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

type dirUpload struct {
	root *os.Root
	f    *os.File
	tmp  string
	name string
	done bool
}

func (u *dirUpload) Write(p []byte) (int, error) { return u.f.Write(p) }

func (u *dirUpload) Commit(mtime time.Time, perm fs.FileMode) error {
	if u.done {
		return errors.New("upload already finished")
	}
	u.done = true
	err := u.f.Chmod(perm)
	if cerr := u.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = u.root.Chtimes(u.tmp, mtime, mtime)
	}
	if err == nil {
		err = u.root.Rename(u.tmp, u.name)
	}
	if err != nil {
		u.root.Remove(u.tmp)
		return fmt.Errorf("commit %s: %w", u.name, err)
	}
	return nil
}

func (u *dirUpload) Abort() error {
	if u.done {
		return nil
	}
	u.done = true
	u.f.Close()
	return u.root.Remove(u.tmp)
}
