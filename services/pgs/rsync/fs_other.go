//go:build !linux

package rsync

import (
	"errors"
	"io/fs"
	"os"
	"time"
)

// tempDir is the directory of an upload's temporary file.
type tempDir struct{ r *os.Root }

func (d *dirFS) tempDir(e *cachedDir) (tempDir, error) { return tempDir{e.r}, nil }

// create creates the temporary file name, never through a symbolic link.
func (t tempDir) create(name string) (*os.File, error) {
	return t.r.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}

// commit sets the temporary file's permission bits and times, closes it and renames it to
// name (replacing what is there).
func (t tempDir) commit(f *os.File, tmp, name string, mtime time.Time, perm fs.FileMode) error {
	err := f.Chmod(perm)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = t.r.Chtimes(tmp, mtime, mtime)
	}
	if err == nil {
		err = t.r.Rename(tmp, name)
	}
	return err
}

// createUnnamed returns nil: unnamed temporary files are Linux's.
func (t tempDir) createUnnamed() *os.File { return nil }

// commitUnnamed is not called (createUnnamed gives no file).
func (t tempDir) commitUnnamed(f *os.File, name string, mtime time.Time, perm fs.FileMode) error {
	f.Close()
	return errors.New("no unnamed temporary files here")
}

// remove removes the temporary file.
func (t tempDir) remove(tmp string) error { return t.r.Remove(tmp) }
