package rsync

import (
	"io/fs"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// tempDir is the directory of an upload's temporary file. On Linux its system calls go straight
// to the directory's descriptor: os.Root's would look the temporary name up again for the
// times (readlinkat, then utimensat by name) and the rename (a newfstatat first), and an
// os.OpenFile costs four fcntl and an epoll_ctl on top of the openat.
//
// Where the file system has them (ext4, tmpfs, xfs, btrfs), the temporary file is unnamed
// (O_TMPFILE) and linked to its name on Commit: nothing of it is ever in the directory before
// then, an abort (or a crash) leaves nothing behind, and creating it does not hold the
// directory's lock (a named temporary file's openat holds it through the inode allocation,
// which on ext4 can take far longer than writing a small file), and there is one directory
// entry to make instead of two.
type tempDir struct {
	fd        int
	noUnnamed *atomic.Bool // set once the file system refused O_TMPFILE
}

func (d *dirFS) tempDir(e *cachedDir) (tempDir, error) {
	fd, err := d.fd(e)
	return tempDir{fd, &d.noUnnamed}, err
}

// procFD says whether /proc/self/fd is there: an unnamed file is linked to its name through it
// (linkat with AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH).
var procFD = sync.OnceValue(func() bool {
	st, err := os.Stat("/proc/self/fd")
	return err == nil && st.IsDir()
})

// createUnnamed creates an unnamed temporary file in the directory, or returns nil when the
// file system (or the kernel) has none: the caller then creates a named one.
func (t tempDir) createUnnamed() *os.File {
	if t.noUnnamed.Load() || !procFD() {
		return nil
	}
	for {
		fd, err := unix.Openat(t.fd, ".", unix.O_WRONLY|unix.O_TMPFILE|unix.O_CLOEXEC, 0o600)
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), "(unnamed)")
		case err == unix.EINTR:
			continue
		case err == unix.EOPNOTSUPP || err == unix.EISDIR || err == unix.EINVAL:
			// Not supported by this file system (EOPNOTSUPP), or a kernel without O_TMPFILE
			// (which takes it as O_DIRECTORY: EISDIR; or refuses the flags: EINVAL).
			t.noUnnamed.Store(true)
		}
		// Any other failure (no space, no inodes, too many files) is the named file's to
		// report.
		return nil
	}
}

// commitUnnamed sets an unnamed file's permission bits and times and links it to name. When
// name exists, the file is linked to a temporary name and renamed over it, so that name
// always shows the old file or the new one, whole. The descriptor is closed.
func (t tempDir) commitUnnamed(f *os.File, name string, mtime time.Time, perm fs.FileMode) error {
	defer f.Close()
	if err := setAttrs(f, mtime, perm); err != nil {
		return err
	}
	proc := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	link := func(to string) error {
		return ignoringEINTR(func() error { return unix.Linkat(unix.AT_FDCWD, proc, t.fd, to, unix.AT_SYMLINK_FOLLOW) })
	}
	err := link(name)
	if err != unix.EEXIST {
		if err != nil {
			return &os.LinkError{Op: "link", Old: proc, New: name, Err: err}
		}
		return nil
	}
	var tmp string
	for range 10 {
		tmp = tempName(name)
		if err = link(tmp); err != unix.EEXIST {
			break
		}
	}
	if err != nil {
		return &os.LinkError{Op: "link", Old: proc, New: tmp, Err: err}
	}
	if err := t.rename(tmp, name); err != nil {
		t.remove(tmp)
		return err
	}
	return nil
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
	err := setAttrs(f, mtime, perm)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return t.rename(tmp, name)
}

// setAttrs sets an open temporary file's permission bits and times.
func setAttrs(f *os.File, mtime time.Time, perm fs.FileMode) error {
	if err := f.Chmod(perm); err != nil {
		return err
	}
	return futimens(f, mtime)
}

// rename renames the temporary file tmp to name, replacing what is there (a symbolic link
// there is replaced, not followed).
func (t tempDir) rename(tmp, name string) error {
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
