package pgs

import (
	"io/fs"
	"slices"
	"strings"
	"time"
)

// fileInfo describes a file of a tree.
type fileInfo struct {
	name string
	f    File
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.f.Size }
func (i fileInfo) Mode() fs.FileMode  { return i.f.Mode.Perm() }
func (i fileInfo) ModTime() time.Time { return i.f.ModTime() }
func (i fileInfo) IsDir() bool        { return false }
func (i fileInfo) Sys() any           { return nil }

// dirInfo describes a directory of a tree, or a project, or the root.
type dirInfo struct {
	name  string
	mtime time.Time
}

func (i dirInfo) Name() string       { return i.name }
func (i dirInfo) Size() int64        { return 0 }
func (i dirInfo) Mode() fs.FileMode  { return fs.ModeDir | 0o755 }
func (i dirInfo) ModTime() time.Time { return i.mtime }
func (i dirInfo) IsDir() bool        { return true }
func (i dirInfo) Sys() any           { return nil }

func sortInfos(list []fs.FileInfo) {
	slices.SortFunc(list, func(a, b fs.FileInfo) int { return strings.Compare(a.Name(), b.Name()) })
}
