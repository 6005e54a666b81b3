package pgs

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/services/pgs/blob"
)

// File is one file of a deploy: its content's hash, size, permission bits and modification
// time (Unix seconds and nanoseconds; rsync at protocol 31+ sends the nanoseconds, scp and
// sftp whole seconds, and files stored before nanoseconds were kept have 0).
type File struct {
	Hash      blob.Hash
	Size      int64
	Mode      fs.FileMode
	MTime     int64
	MTimeNsec int32
}

// ModTime is the file's modification time.
func (f File) ModTime() time.Time { return time.Unix(f.MTime, int64(f.MTimeNsec)) }

// node is a file or a directory of a tree. Directories are implied by the files below them,
// or made explicitly in a session (an empty one is not kept by a deploy).
type node struct {
	file     *File            // nil for a directory
	children map[string]*node // a directory's entries
}

func (n *node) isDir() bool { return n.file == nil }

// tree is the files of one project: a deploy's manifest (read only once built) or a session's
// working copy. Paths are checked sitepath relative paths; "" is the project's root.
type tree struct {
	root   *node
	files  int   // regular files
	dirs   int   // directories below the root
	bytes  int64 // their sizes
	mtime  time.Time
	hashes map[blob.Hash]struct{} // the contents of a stored manifest (nil in a working copy)
	// cost weighs a stored manifest for the cache of manifests: a file, plus one for each
	// pathCost bytes of its path (a manifest of 1 KiB paths takes six times the memory of one
	// of short names: the tree keeps the paths' text).
	cost int

	// rules are a stored deploy's site rules, parsed at its first request.
	rules   atomic.Pointer[siteRules]
	rulesMu sync.Mutex
}

// pathCost is the path bytes that weigh as much as a file in the cache of manifests.
const pathCost = 128

func newTree(mtime time.Time) *tree {
	return &tree{root: &node{children: map[string]*node{}}, mtime: mtime}
}

// treeOf builds the tree of a stored manifest.
func treeOf(files []db.PGSFile, mtime time.Time) (*tree, error) {
	t := newTree(mtime)
	t.hashes = make(map[blob.Hash]struct{}, len(files))
	for _, f := range files {
		h, err := blob.ParseHash(f.Hash)
		if err != nil {
			return nil, err
		}
		t.hashes[h] = struct{}{}
		t.cost += 1 + len(f.Path)/pathCost
		if err := t.put(f.Path, File{Hash: h, Size: f.Size, Mode: fs.FileMode(f.Mode).Perm(), MTime: f.MTime, MTimeNsec: f.MTimeNsec}); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// hasHash reports whether a stored manifest has a file with this content (which the account
// has then recorded and stored).
func (t *tree) hasHash(h blob.Hash) bool {
	_, ok := t.hashes[h]
	return ok
}

// clone returns a deep copy, for a session's working copy.
func (t *tree) clone() *tree {
	c := &tree{files: t.files, dirs: t.dirs, bytes: t.bytes, mtime: t.mtime}
	c.root = cloneNode(t.root)
	return c
}

func cloneNode(n *node) *node {
	if !n.isDir() {
		f := *n.file
		return &node{file: &f}
	}
	c := &node{children: make(map[string]*node, len(n.children))}
	for name, child := range n.children {
		c.children[name] = cloneNode(child)
	}
	return c
}

// Errors of tree operations, as the io/fs errors the protocols understand.
var (
	errNotDir   = &errno{syscall.ENOTDIR, "not a directory"}
	errIsDir    = &errno{syscall.EISDIR, "is a directory"}
	errNotEmpty = &errno{syscall.ENOTEMPTY, "directory not empty"}
	errTooDeep  = &errno{syscall.ENOSPC, fmt.Sprintf("a project may hold at most %d directories", maxTreeDirs)}
)

// maxTreeDirs bounds the directories of one working copy: files are bounded by
// PORTICO_PGS_MAX_FILES, directories (which an upload can make without files) by this.
const maxTreeDirs = 100_000

// errno is a tree error that is also its syscall.Errno for errors.Is (fs.ErrExist and the
// like work through it).
type errno struct {
	no  syscall.Errno
	msg string
}

func (e *errno) Error() string        { return e.msg }
func (e *errno) Is(target error) bool { return errors.Is(e.no, target) || target == e.no }

// lookup returns the node at rel, or nil.
func (t *tree) lookup(rel string) *node {
	n := t.root
	if rel == "" {
		return n
	}
	for seg := range strings.SplitSeq(rel, "/") {
		if !n.isDir() {
			return nil
		}
		if n = n.children[seg]; n == nil {
			return nil
		}
	}
	return n
}

// file returns the file at rel, if there is one.
func (t *tree) file(rel string) (File, bool) {
	n := t.lookup(rel)
	if n == nil || n.isDir() {
		return File{}, false
	}
	return *n.file, true
}

// dirOf walks to the directory that holds rel, creating missing directories when create is
// set, and returns it with rel's last segment.
func (t *tree) dirOf(rel string, create bool) (*node, string, error) {
	n := t.root
	dir, base := "", rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		dir, base = rel[:i], rel[i+1:]
	}
	if dir == "" {
		return n, base, nil
	}
	for seg := range strings.SplitSeq(dir, "/") {
		next := n.children[seg]
		switch {
		case next == nil && create:
			if t.dirs >= maxTreeDirs {
				return nil, "", errTooDeep
			}
			next = &node{children: map[string]*node{}}
			n.children[seg] = next
			t.dirs++
		case next == nil:
			return nil, "", fs.ErrNotExist
		case !next.isDir():
			return nil, "", errNotDir
		}
		n = next
	}
	return n, base, nil
}

// minMTime and maxMTime bound the modification time a file keeps (years 1 to 9999, Unix
// seconds): clients may send any, and JSON and HTTP dates stop at year 9999.
const (
	minMTime = -62135596800 // 0001-01-01T00:00:00Z
	maxMTime = 253402300799 // 9999-12-31T23:59:59Z
)

// clampMTime keeps a modification time within years 1 and 9999.
func clampMTime(t int64) int64 { return min(max(t, minMTime), maxMTime) }

// clampTime keeps a modification time within years 1 and 9999 and its nanoseconds within a
// second; a clamped time has none.
func clampTime(sec int64, nsec int32) (int64, int32) {
	if c := clampMTime(sec); c != sec || nsec < 0 || nsec > 999_999_999 {
		return c, 0
	}
	return sec, nsec
}

// put stores a file at rel, making its missing parent directories; it replaces a file but
// not a directory.
func (t *tree) put(rel string, f File) error {
	if rel == "" {
		return errIsDir
	}
	f.MTime, f.MTimeNsec = clampTime(f.MTime, f.MTimeNsec)
	dir, base, err := t.dirOf(rel, true)
	if err != nil {
		return err
	}
	if old := dir.children[base]; old != nil {
		if old.isDir() {
			return errIsDir
		}
		t.files--
		t.bytes -= old.file.Size
	}
	dir.children[base] = &node{file: &f}
	t.files++
	t.bytes += f.Size
	return nil
}

// setAttrs changes a file's mode and modification time (nil: unchanged; nsec is the
// nanoseconds of mtime).
func (t *tree) setAttrs(rel string, mode *fs.FileMode, mtime *int64, nsec int32) error {
	n := t.lookup(rel)
	switch {
	case n == nil:
		return fs.ErrNotExist
	case n.isDir():
		return nil // directories keep no attributes
	}
	f := *n.file
	if mode != nil {
		f.Mode = mode.Perm()
	}
	if mtime != nil {
		f.MTime, f.MTimeNsec = clampTime(*mtime, nsec)
	}
	n.file = &f
	return nil
}

// mkdir makes the directory rel; with parents, also its missing parents. An existing
// directory is fine.
func (t *tree) mkdir(rel string, parents bool) error {
	if rel == "" {
		return nil
	}
	dir, base, err := t.dirOf(rel, parents)
	if err != nil {
		return err
	}
	switch old := dir.children[base]; {
	case old == nil:
		if t.dirs >= maxTreeDirs {
			return errTooDeep
		}
		dir.children[base] = &node{children: map[string]*node{}}
		t.dirs++
	case !old.isDir():
		return fs.ErrExist
	}
	return nil
}

// remove removes a file or an empty directory.
func (t *tree) remove(rel string) error {
	if rel == "" {
		return fs.ErrPermission
	}
	dir, base, err := t.dirOf(rel, false)
	if err != nil {
		return err
	}
	n := dir.children[base]
	switch {
	case n == nil:
		return fs.ErrNotExist
	case n.isDir() && len(n.children) > 0:
		return errNotEmpty
	case !n.isDir():
		t.files--
		t.bytes -= n.file.Size
	default:
		t.dirs--
	}
	delete(dir.children, base)
	return nil
}

// detach removes the node at rel (a file or a whole directory) and returns it.
func (t *tree) detach(rel string) (*node, error) {
	dir, base, err := t.dirOf(rel, false)
	if err != nil {
		return nil, err
	}
	n := dir.children[base]
	if n == nil {
		return nil, fs.ErrNotExist
	}
	delete(dir.children, base)
	files, bytes := n.count()
	t.files -= files
	t.bytes -= bytes
	t.dirs -= n.countDirs()
	return n, nil
}

// attach puts a detached node at rel, whose parent must exist and which must be free.
func (t *tree) attach(rel string, n *node) error {
	dir, base, err := t.dirOf(rel, false)
	if err != nil {
		return err
	}
	if dir.children[base] != nil {
		return fs.ErrExist
	}
	d := n.countDirs()
	if t.dirs+d > maxTreeDirs {
		return errTooDeep
	}
	t.dirs += d
	dir.children[base] = n
	files, bytes := n.count()
	t.files += files
	t.bytes += bytes
	return nil
}

// count is the number and total size of the files at or below n.
func (n *node) count() (files int, bytes int64) {
	if !n.isDir() {
		return 1, n.file.Size
	}
	for _, c := range n.children {
		f, b := c.count()
		files += f
		bytes += b
	}
	return files, bytes
}

// countDirs is the number of directories at or below n.
func (n *node) countDirs() int {
	if !n.isDir() {
		return 0
	}
	d := 1
	for _, c := range n.children {
		d += c.countDirs()
	}
	return d
}

// names returns a directory's entries sorted bytewise.
func (n *node) names() []string {
	names := make([]string, 0, len(n.children))
	for name := range n.children {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// walk calls fn for every file below rel in bytewise path order.
func (t *tree) walk(rel string, fn func(path string, f File)) {
	n := t.lookup(rel)
	if n == nil {
		return
	}
	walkNode(rel, n, fn)
}

func walkNode(path string, n *node, fn func(string, File)) {
	if !n.isDir() {
		fn(path, *n.file)
		return
	}
	for _, name := range n.names() {
		child := name
		if path != "" {
			child = path + "/" + name
		}
		walkNode(child, n.children[name], fn)
	}
}

// manifest lists the tree's files for the store, sorted by path.
func (t *tree) manifest() []db.PGSFile {
	files := make([]db.PGSFile, 0, t.files)
	t.walk("", func(p string, f File) {
		files = append(files, db.PGSFile{Path: p, Hash: f.Hash.String(), Size: f.Size, Mode: uint32(f.Mode.Perm()), MTime: f.MTime, MTimeNsec: f.MTimeNsec})
	})
	return files
}

// changes compares a working copy with the deploy it started from.
func changes(base, work *tree) (added, changed, removed int64) {
	work.walk("", func(p string, f File) {
		old, ok := base.file(p)
		switch {
		case !ok:
			added++
		case old != f:
			changed++
		}
	})
	base.walk("", func(p string, _ File) {
		if _, ok := work.file(p); !ok {
			removed++
		}
	})
	return added, changed, removed
}
