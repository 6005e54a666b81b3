package rsync

import (
	"io/fs"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// tempDir is the directory of an upload's temporary file. On Linux its system calls go straight
// to the directory's descriptor: os.Root's would look the temporary name up again for the
// times (readlinkat, then utimensat by name) and the rename (a newfstatat first), and an
// os.OpenFile costs four fcntl and an epoll_ctl on top of the openat.
type tempDir struct{ fd int }

func (d *dirFS) tempDir(e *cachedDir) (tempDir, error) {
	fd, err := d.fd(e)
	return tempDir{fd}, err
}

// create creates the temporary file name, never through a symbolic link.
func (t tempDir) create(name string) (*os.File, error) {
	for {
		fd, err := unix.Openat(t.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}

// commit sets the temporary file's permission bits and times, closes it and renames it to
// name (replacing what is there, never following a symbolic link).
func (t tempDir) commit(f *os.File, tmp, name string, mtime time.Time, perm fs.FileMode) error {
	err := f.Chmod(perm)
	if err == nil {
		err = futimens(f, mtime)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := ignoringEINTR(func() error { return unix.Renameat(t.fd, tmp, t.fd, name) }); err != nil {
		return &os.LinkError{Op: "rename", Old: tmp, New: name, Err: err}
	}
	return nil
}

// remove removes the temporary file.
func (t tempDir) remove(tmp string) error {
	if err := ignoringEINTR(func() error { return unix.Unlinkat(t.fd, tmp, 0) }); err != nil {
		return &fs.PathError{Op: "remove", Path: tmp, Err: err}
	}
	return nil
}

// futimens sets an open file's access and modification times (utimensat with a null path).
func futimens(f *os.File, mtime time.Time) error {
	t, err := unix.TimeToTimespec(mtime)
	if err != nil {
		return &fs.PathError{Op: "chtimes", Path: f.Name(), Err: err}
	}
	ts := [2]unix.Timespec{t, t}
	c, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = ignoringEINTR(func() error {
			_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, fd, 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
			if e != 0 {
				return e
			}
			return nil
		})
	}); err != nil {
		return err
	}
	if serr != nil {
		return &fs.PathError{Op: "chtimes", Path: f.Name(), Err: serr}
	}
	return nil
}

func ignoringEINTR(fn func() error) error {
	for {
		err := fn()
		if err != syscall.EINTR {
			return err
		}
	}
}
