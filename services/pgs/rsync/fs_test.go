package rsync

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDirFSHidesTemporaryFiles: an upload in progress (or one a crash left behind) is never
// listed, so it is neither sent to a downloading client nor deleted by --delete, and a client
// cannot read, replace or remove a file under a temporary file's name.
func TestDirFSHidesTemporaryFiles(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"dir/a.txt": "committed\n"})
	d := DirFS(root)
	up, err := d.Create("dir/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Abort()
	if _, err := up.Write([]byte("half of the new vers")); err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadDir(filepath.Join(root, "dir"))
	if err != nil {
		t.Fatal(err)
	}
	var tmp string
	for _, e := range onDisk {
		if e.Name() != "a.txt" {
			tmp = "dir/" + e.Name()
		}
	}
	leftover := ""
	if tmp == "" {
		// An unnamed temporary file (O_TMPFILE): play the one a crash of a named upload
		// left behind.
		tmp = "dir/.a.txt.0123abcd" + tempSuffix
		leftover = tmp
		writeTree(t, root, map[string]string{tmp: "left over\n"})
	}
	ents, err := d.ReadDir("dir")
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "a.txt" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("ReadDir lists %q, want only a.txt", names)
	}
	if _, err := d.Lstat(tmp); err == nil {
		t.Errorf("Lstat(%s) succeeded", tmp)
	}
	if f, err := d.Open(tmp); err == nil {
		f.Close()
		t.Errorf("Open(%s) succeeded", tmp)
	}
	if err := d.Remove(tmp); err == nil {
		t.Errorf("Remove(%s) succeeded", tmp)
	}
	if err := d.Chtimes(tmp, time.Unix(1, 0)); err == nil {
		t.Errorf("Chtimes(%s) succeeded", tmp)
	}
	// A client's file named like a temporary one is refused, never written.
	for _, name := range []string{tmp, "dir/.b.txt.0123abcd" + tempSuffix} {
		if u, err := d.Create(name); err == nil {
			u.Abort()
			t.Errorf("Create(%s) succeeded", name)
		} else if !errors.Is(err, errReservedName) {
			t.Errorf("Create(%s): %v, want a reserved-name error", name, err)
		}
		if err := d.Mkdir(name, 0o755); err == nil {
			t.Errorf("Mkdir(%s) succeeded", name)
		}
	}
	if got, err := os.ReadFile(filepath.Join(root, "dir/a.txt")); err != nil || string(got) != "committed\n" {
		t.Errorf("a.txt: %q, %v", got, err)
	}
	if err := up.Abort(); err != nil {
		t.Fatal(err)
	}
	ents, err = os.ReadDir(filepath.Join(root, "dir"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "a.txt" && "dir/"+e.Name() != leftover {
			t.Errorf("%s left after Abort", e.Name())
		}
	}
}

// TestUploadRefusesTemporaryFileNames uploads a file named like a temporary file: it is refused
// with a per-file error and the rest of the upload goes through.
func TestUploadRefusesTemporaryFileNames(t *testing.T) {
	src := t.TempDir()
	reserved := ".index.html.0123abcd" + tempSuffix
	writeTree(t, src, map[string]string{"index.html": "home\n", reserved: "mine\n"})
	root := t.TempDir()
	out, code := uploadStatus(t, root, src+"/", "site/", "-r")
	if code != exitPartial || !strings.Contains(out, "reserved") {
		t.Errorf("exit %d, want %d and an error naming the reserved name\n%s", code, exitPartial, out)
	}
	diffTrees(t, readTree(t, filepath.Join(root, "site")), map[string]string{"index.html": "home\n"})
}

// TestDirFSCommit: Commit puts the data at the name with the given times and permission bits,
// replacing a file there, and a symbolic link there without writing through it; until then
// the name shows the old content, and Abort leaves nothing. In the root, in a cached
// directory and in directories past the cache's bound alike.
func TestDirFSCommit(t *testing.T) {
	for _, named := range []bool{false, true} {
		t.Run(fmt.Sprintf("named temporary files %v", named), func(t *testing.T) { testDirFSCommit(t, named) })
	}
}

func testDirFSCommit(t *testing.T, named bool) {
	root := t.TempDir()
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, []byte("outside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for i := range maxCachedDirs + 3 {
		dirs = append(dirs, fmt.Sprintf("d%02d/", i))
	}
	d := DirFS(root)
	if named {
		// As on a file system without O_TMPFILE.
		d.(*dirFS).noUnnamed.Store(true)
	}
	mtime := time.Date(2031, 5, 6, 7, 8, 9, 500_000_000, time.UTC)
	// Hold an upload open in every directory at once, so that some are not in the cache.
	type pending struct {
		name string
		up   Upload
	}
	var ups []pending
	for _, dir := range append([]string{""}, dirs...) {
		if dir != "" {
			if err := os.Mkdir(filepath.Join(root, dir), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		writeTree(t, root, map[string]string{dir + "old": "old\n"})
		if err := os.Symlink(outside, filepath.Join(root, dir+"link")); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"new", "old", "link", "aborted"} {
			up, err := d.Create(dir + name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := up.Write([]byte("data of " + dir + name)); err != nil {
				t.Fatal(err)
			}
			ups = append(ups, pending{dir + name, up})
		}
	}
	// Named temporary files are on disk until Commit; unnamed ones (O_TMPFILE, where the
	// file system has them) never.
	temps := 0
	filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err == nil && isTempName(e.Name()) {
			temps++
		}
		return nil
	})
	if unnamed := !d.(*dirFS).noUnnamed.Load(); (temps == 0) != unnamed {
		t.Errorf("%d temporary files on disk, unnamed ones %v", temps, unnamed)
	}
	for _, p := range ups {
		if strings.HasSuffix(p.name, "old") {
			if got, _ := os.ReadFile(filepath.Join(root, p.name)); string(got) != "old\n" {
				t.Errorf("%s before Commit: %q", p.name, got)
			}
		}
		if strings.HasSuffix(p.name, "aborted") {
			if err := p.up.Abort(); err != nil {
				t.Errorf("abort %s: %v", p.name, err)
			}
			continue
		}
		if err := p.up.Commit(mtime, 0o640); err != nil {
			t.Fatalf("commit %s: %v", p.name, err)
		}
		if err := p.up.Commit(mtime, 0o640); err == nil {
			t.Errorf("%s committed twice", p.name)
		}
	}
	want := map[string]string{}
	for _, dir := range append([]string{""}, dirs...) {
		for _, name := range []string{"new", "old", "link"} {
			want[dir+name] = "data of " + dir + name
			st, err := os.Lstat(filepath.Join(root, dir+name))
			if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o640 || !st.ModTime().Equal(mtime) {
				t.Errorf("%s: %v, %v", dir+name, st, err)
			}
		}
	}
	diffTrees(t, readTree(t, root), want)
	if got, _ := os.ReadFile(outside); string(got) != "outside\n" {
		t.Errorf("the link's target was written: %q", got)
	}
}
