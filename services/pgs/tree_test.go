package pgs

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"testing"
	"time"
)

func fileWith(content string) File {
	return File{Hash: sha256.Sum256([]byte(content)), Size: int64(len(content)), Mode: 0o644, MTime: 1}
}

func TestTree(t *testing.T) {
	tr := newTree(time.Now())
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(tr.put("a/b/c.txt", fileWith("c")))
	must(tr.put("a/d.txt", fileWith("dd")))
	must(tr.put("e.txt", fileWith("eee")))
	if tr.files != 3 || tr.bytes != 6 || tr.dirs != 2 {
		t.Fatalf("counts: files %d bytes %d dirs %d", tr.files, tr.bytes, tr.dirs)
	}
	for _, tt := range []struct {
		what string
		err  error
		want error
	}{
		{"put over a directory", tr.put("a/b", fileWith("x")), errIsDir},
		{"put below a file", tr.put("e.txt/x", fileWith("x")), errNotDir},
		{"put at the root", tr.put("", fileWith("x")), errIsDir},
		{"mkdir over a file", tr.mkdir("e.txt", false), fs.ErrExist},
		{"mkdir without parent", tr.mkdir("x/y", false), fs.ErrNotExist},
		{"remove a non-empty directory", tr.remove("a"), errNotEmpty},
		{"remove a missing file", tr.remove("nope"), fs.ErrNotExist},
		{"remove the root", tr.remove(""), fs.ErrPermission},
		{"setAttrs of a missing file", tr.setAttrs("nope", nil, nil, 0), fs.ErrNotExist},
	} {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.what, tt.err, tt.want)
		}
	}
	// Replacing a file keeps the counts right.
	must(tr.put("e.txt", fileWith("e")))
	if tr.files != 3 || tr.bytes != 4 {
		t.Fatalf("after a replace: files %d bytes %d", tr.files, tr.bytes)
	}
	// A clone is independent.
	c := tr.clone()
	must(c.remove("e.txt"))
	if _, ok := tr.file("e.txt"); !ok {
		t.Fatal("removing from a clone removed from the original")
	}
	// Moving a directory.
	n, err := tr.detach("a")
	must(err)
	if tr.files != 1 || tr.dirs != 0 {
		t.Fatalf("after detach: files %d dirs %d", tr.files, tr.dirs)
	}
	must(tr.mkdir("z", false))
	must(tr.attach("z/a", n))
	var paths []string
	tr.walk("", func(p string, _ File) { paths = append(paths, p) })
	if want := []string{"e.txt", "z/a/b/c.txt", "z/a/d.txt"}; !slices.Equal(paths, want) {
		t.Fatalf("walk = %v, want %v", paths, want)
	}
	if tr.files != 3 || tr.dirs != 3 {
		t.Fatalf("after attach: files %d dirs %d", tr.files, tr.dirs)
	}
	// Changes against a base.
	base := newTree(time.Now())
	must(base.put("e.txt", fileWith("e")))
	must(base.put("gone.txt", fileWith("g")))
	must(base.put("z/a/d.txt", fileWith("old")))
	if a, ch, r := changes(base, tr); a != 1 || ch != 1 || r != 1 {
		t.Fatalf("changes = %d %d %d, want 1 1 1", a, ch, r)
	}
}

// A working copy holds at most maxTreeDirs directories, however they are made.
func TestTreeDirectoryBound(t *testing.T) {
	tr := newTree(time.Now())
	for i := 0; i < maxTreeDirs; i++ {
		if err := tr.mkdir(fmt.Sprint(i), false); err != nil {
			t.Fatalf("directory %d: %v", i, err)
		}
	}
	if err := tr.mkdir("one-more", false); !errors.Is(err, errTooDeep) {
		t.Fatalf("mkdir past the bound: %v", err)
	}
	if err := tr.put("new/file", fileWith("x")); !errors.Is(err, errTooDeep) {
		t.Fatalf("put with a new directory past the bound: %v", err)
	}
	if err := tr.put("0/file", fileWith("x")); err != nil {
		t.Fatalf("put into an existing directory: %v", err)
	}
}
