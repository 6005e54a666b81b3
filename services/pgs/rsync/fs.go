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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FS is the storage a session reads (downloads, block matching, quick checks) and writes
// (uploads). Every name is "." (the root) or a clean, relative, slash-separated path checked by
// the server: no "..", no leading "/", no empty components. Implementations must not follow
// symbolic links when writing. Methods are called from two goroutines at once (an upload's
// generator and its receiver).
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

// TimeKeeper is an FS that cannot keep every modification time a client may send (a range of
// years, or a coarser precision): KeptTime returns the time it would store for t. The quick
// check, -u and the decision to set a kept file's time then compare that time, not the one the
// client sent, so that a file whose time the FS cannot keep as sent is not sent again by every
// upload.
type TimeKeeper interface {
	KeptTime(t time.Time) time.Time
}

// DirFS is an FS over a local directory; nothing outside root can be read or written. Writes
// go to an unnamed temporary file in the target's directory (O_TMPFILE, Linux) linked into
// place on Commit, or, where the file system has none, to a temporary file next to the target
// (".name.XXXXXXXX.rsync-tmp") renamed into place; replacing an existing file goes through such
// a name either way. Names of that form (a leading "." and the suffix tempSuffix) are reserved:
// listings leave them out and every other operation refuses them, so a temporary file is never
// sent, deleted or replaced as if it were a user's file, and no user's file looks like one.
func DirFS(root string) FS {
	return &dirFS{dir: root}
}

// tempSuffix ends the base name of every temporary file DirFS writes.
const tempSuffix = ".rsync-tmp"

// errReservedName refuses a name of DirFS's temporary files.
var errReservedName = errors.New("name reserved for temporary files")

// isTempName reports whether the last component of name is reserved for temporary files.
func isTempName(name string) bool {
	base := name[strings.LastIndexByte(name, '/')+1:]
	return strings.HasPrefix(base, ".") && strings.HasSuffix(base, tempSuffix)
}

type dirFS struct {
	dir  string
	once sync.Once
	root *os.Root
	err  error

	// dirs caches open directories below the root, reached without a symbolic link on the
	// way: a name's directory is walked once, not once per file (2,000 files in 20
	// directories cost 20 walks). Removing a directory drops it and everything below.
	noUnnamed atomic.Bool // the file system refused an unnamed temporary file (O_TMPFILE)

	mu   sync.Mutex
	dirs map[string]*cachedDir
	top  cachedDir // the root itself, for files directly in it (never closed; r set with root)
}

// cachedDir is an open directory of dirFS.dirs; refs counts its users. A dropped directory
// is closed by its last user.
type cachedDir struct {
	r       *os.Root
	f       *os.File // the directory opened as a file for *at system calls, once asked for
	refs    int
	dropped bool
}

// fd returns a descriptor of the directory for the *at system calls of uploads (os.Root has
// none to give): valid while the caller holds a reference. d.mu guards its opening.
func (d *dirFS) fd(e *cachedDir) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e.f == nil {
		f, err := e.r.Open(".")
		if err != nil {
			return -1, err
		}
		e.f = f
	}
	return int(e.f.Fd()), nil
}

// close closes the directory.
func (e *cachedDir) close() {
	e.r.Close()
	if e.f != nil {
		e.f.Close()
	}
}

// maxCachedDirs bounds the open directories a dirFS keeps.
const maxCachedDirs = 32

func (d *dirFS) open(name string) (*os.Root, string, error) {
	d.once.Do(func() {
		d.root, d.err = os.OpenRoot(d.dir)
		d.top.r = d.root // set once, here: writers read it without d.mu
	})
	if d.err != nil {
		return nil, "", d.err
	}
	if !fs.ValidPath(name) {
		return nil, "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if isTempName(name) {
		return nil, "", &fs.PathError{Op: "open", Path: name, Err: errReservedName}
	}
	return d.root, name, nil
}

// writable opens the directory holding name for an operation that changes name and returns
// it with name's last component and a function that releases it. It walks the path one
// component at a time, refusing a symbolic link on the way (os.Root alone would follow links
// that stay inside the root); the walk costs one step per component, where checking every
// prefix from the root would cost quadratic time in the depth of name.
func (d *dirFS) writable(name string) (*os.Root, string, func(), error) {
	e, base, release, err := d.writableDir(name)
	if err != nil {
		return nil, "", nil, err
	}
	return e.r, base, release, nil
}

// writableDir is writable returning the directory as a cachedDir.
func (d *dirFS) writableDir(name string) (*cachedDir, string, func(), error) {
	_, name, err := d.open(name)
	if err != nil {
		return nil, "", nil, err
	}
	dir, base := path.Split(name)
	if dir == "" {
		return &d.top, base, func() {}, nil
	}
	e, release, err := d.dirEntry(dir[:len(dir)-1])
	if err != nil {
		return nil, "", nil, &fs.PathError{Op: "write", Path: name, Err: err}
	}
	return e, base, release, nil
}

// dirRoot returns directory dir (below the root, reached without a symbolic link) open, and a
// function that releases it.
func (d *dirFS) dirRoot(dir string) (*os.Root, func(), error) {
	e, release, err := d.dirEntry(dir)
	if err != nil {
		return nil, nil, err
	}
	return e.r, release, nil
}

// dirEntry is dirRoot returning the directory as a cachedDir (one of the cache, or one of its
// own that release closes).
func (d *dirFS) dirEntry(dir string) (*cachedDir, func(), error) {
	d.mu.Lock()
	if e := d.dirs[dir]; e != nil {
		e.refs++
		d.mu.Unlock()
		return e, func() { d.releaseDir(e) }, nil
	}
	d.mu.Unlock()
	r, err := d.walkDir(dir)
	if err != nil {
		return nil, nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dirs == nil {
		d.dirs = map[string]*cachedDir{}
	}
	if _, ok := d.dirs[dir]; !ok && len(d.dirs) >= maxCachedDirs {
		for k, e := range d.dirs {
			if e.refs == 0 {
				delete(d.dirs, k)
				e.close()
				break
			}
		}
	}
	if _, ok := d.dirs[dir]; ok || len(d.dirs) >= maxCachedDirs {
		e := &cachedDir{r: r}
		return e, func() { e.close() }, nil
	}
	e := &cachedDir{r: r, refs: 1}
	d.dirs[dir] = e
	return e, func() { d.releaseDir(e) }, nil
}

func (d *dirFS) releaseDir(e *cachedDir) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e.refs--; e.refs == 0 && e.dropped {
		e.close()
	}
}

// dropDirs forgets the cached directories at and below name (after it was removed).
func (d *dirFS) dropDirs(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, e := range d.dirs {
		if k == name || strings.HasPrefix(k, name+"/") {
			delete(d.dirs, k)
			e.dropped = true
			if e.refs == 0 {
				e.close()
			}
		}
	}
}

// walkDir opens dir one component at a time, refusing a symbolic link on the way (os.Root
// alone would follow links that stay inside the root); the walk costs one step per component,
// where checking every prefix from the root would cost quadratic time in the depth.
func (d *dirFS) walkDir(dir string) (*os.Root, error) {
	r := d.root
	cur := r
	release := func() {
		if cur != r {
			cur.Close()
		}
	}
	for part := range strings.SplitSeq(dir, "/") {
		fi, err := cur.Lstat(part)
		if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			release()
			return nil, fmt.Errorf("%s is a symbolic link", part)
		}
		next, err := cur.OpenRoot(part)
		release()
		if err != nil {
			return nil, unwrapPathError(err)
		}
		cur = next
	}
	return cur, nil
}

// unwrapPathError returns the cause of a *fs.PathError (so that the caller names the whole
// path), or err.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (d *dirFS) Lstat(name string) (fs.FileInfo, error) {
	r, name, err := d.open(name)
	if err != nil {
		return nil, err
	}
	// Through the cached directory when there is one without a link on the way (the same
	// answer, fewer system calls); else as os.Root resolves it.
	if dir, base := path.Split(name); dir != "" {
		if dr, release, err := d.dirRoot(dir[:len(dir)-1]); err == nil {
			defer release()
			return dr.Lstat(base)
		}
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
	ents, err := f.ReadDir(-1)
	return slices.DeleteFunc(ents, func(e fs.DirEntry) bool { return isTempName(e.Name()) }), err
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
	r, base, done, err := d.writable(name)
	if err != nil {
		return err
	}
	defer done()
	return r.Mkdir(base, perm)
}

// mkdirAllFS is an FS that creates a directory and its missing parents in one call.
type mkdirAllFS interface {
	MkdirAll(name string, perm fs.FileMode) error
}

// MkdirAll creates name and its missing parents in one walk down from the root, never through
// a symbolic link: making each parent with Mkdir would walk from the root for each of them.
func (d *dirFS) MkdirAll(name string, perm fs.FileMode) error {
	r, name, err := d.open(name)
	if err != nil || name == "." {
		return err
	}
	cur := r
	defer func() {
		if cur != r {
			cur.Close()
		}
	}()
	fail := func(err error) error {
		return &fs.PathError{Op: "mkdir", Path: name, Err: unwrapPathError(err)}
	}
	for part := range strings.SplitSeq(name, "/") {
		fi, err := cur.Lstat(part)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if isTempName(part) {
				return fail(errReservedName)
			}
			if err := cur.Mkdir(part, perm); err != nil && !errors.Is(err, fs.ErrExist) {
				return fail(err)
			}
		case err != nil:
			return fail(err)
		case fi.Mode()&fs.ModeSymlink != 0:
			return fail(fmt.Errorf("%s is a symbolic link", part))
		case !fi.IsDir():
			return fail(fmt.Errorf("%s is not a directory", part))
		}
		next, err := cur.OpenRoot(part)
		if err != nil {
			return fail(err)
		}
		if cur != r {
			cur.Close()
		}
		cur = next
	}
	return nil
}

func (d *dirFS) Chtimes(name string, mtime time.Time) error {
	return d.atEntry(name, func(r *os.Root, base string) error { return r.Chtimes(base, mtime, mtime) })
}

func (d *dirFS) Chmod(name string, perm fs.FileMode) error {
	return d.atEntry(name, func(r *os.Root, base string) error { return r.Chmod(base, perm) })
}

// atEntry runs op on name from inside its parent directory, refusing a symlink at name.
func (d *dirFS) atEntry(name string, op func(r *os.Root, base string) error) error {
	r, base, done, err := d.writable(name)
	if err != nil {
		return err
	}
	defer done()
	if err := refuseSymlink(r, base); err != nil {
		return err
	}
	return op(r, base)
}

func (d *dirFS) Remove(name string) error {
	if name == "." {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrPermission}
	}
	r, base, done, err := d.writable(name)
	if err != nil {
		return err
	}
	defer done()
	if err := r.Remove(base); err != nil {
		return err
	}
	d.dropDirs(name)
	return nil
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
	e, base, done, err := d.writableDir(name)
	if err != nil {
		return nil, err
	}
	dir, err := d.tempDir(e)
	if err != nil {
		done()
		return nil, err
	}
	if f := dir.createUnnamed(); f != nil {
		return &dirUpload{dir: dir, release: done, f: f, name: base, path: name}, nil
	}
	var f *os.File
	var tmp string
	for range 10 {
		tmp = tempName(base)
		f, err = dir.create(tmp)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		done()
		return nil, err
	}
	return &dirUpload{dir: dir, release: done, f: f, tmp: tmp, name: base, path: name}, nil
}

// tempName returns a random name for a temporary file of the file base.
func tempName(base string) string {
	var b [4]byte
	rand.Read(b[:])
	// Keep the temporary name within NAME_MAX.
	return "." + truncate(base, 200) + "." + hex.EncodeToString(b[:]) + tempSuffix
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

type dirUpload struct {
	dir     tempDir // the directory of the file
	release func()  // releases dir
	f       *os.File
	tmp     string // the temporary file's name in dir ("": an unnamed file, see createUnnamed)
	name    string // the file's name in dir
	path    string // the file's name in the FS
	done    bool
}

func (u *dirUpload) Write(p []byte) (int, error) { return u.f.Write(p) }

func (u *dirUpload) Commit(mtime time.Time, perm fs.FileMode) error {
	if u.done {
		return errors.New("upload already finished")
	}
	u.done = true
	defer u.release()
	if u.tmp == "" {
		if err := u.dir.commitUnnamed(u.f, u.name, mtime, perm); err != nil {
			return fmt.Errorf("commit %s: %w", u.path, err)
		}
		return nil
	}
	if err := u.dir.commit(u.f, u.tmp, u.name, mtime, perm); err != nil {
		u.dir.remove(u.tmp)
		return fmt.Errorf("commit %s: %w", u.path, err)
	}
	return nil
}

func (u *dirUpload) Abort() error {
	if u.done {
		return nil
	}
	u.done = true
	defer u.release()
	u.f.Close()
	if u.tmp == "" {
		return nil // an unnamed file goes with its descriptor
	}
	return u.dir.remove(u.tmp)
}
