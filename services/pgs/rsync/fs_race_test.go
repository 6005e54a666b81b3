package rsync

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestDirFSRootConcurrent: the FS's methods are called from two goroutines at once (an
// upload's generator and its receiver); changing names directly in the root from both must
// not race on the root's shared state (run with -race).
func TestDirFSRootConcurrent(t *testing.T) {
	root := t.TempDir()
	fsys := DirFS(root)
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			for i := range 20 {
				name := fmt.Sprintf("f%d-%d", g, i)
				u, err := fsys.Create(name)
				if err != nil {
					t.Errorf("Create %s: %v", name, err)
					return
				}
				u.Write([]byte(name))
				if err := u.Commit(time.Unix(1e9, 0), 0o644); err != nil {
					t.Errorf("Commit %s: %v", name, err)
				}
				if err := fsys.Mkdir(fmt.Sprintf("d%d-%d", g, i), 0o755); err != nil {
					t.Errorf("Mkdir: %v", err)
				}
			}
		})
	}
	wg.Wait()
	for g := range 2 {
		for i := range 20 {
			name := fmt.Sprintf("f%d-%d", g, i)
			if b, err := os.ReadFile(filepath.Join(root, name)); err != nil || string(b) != name {
				t.Fatalf("%s: %q, %v", name, b, err)
			}
		}
	}
}

// openFDs counts the process's open descriptors.
func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// TestDirFSFailuresKeepNoDescriptors: uploads that are aborted, whose commit fails (a directory
// at the name) or that cannot start (a symbolic link on the way, a missing directory), over and
// over, in the root, one directory and many (past the cache's bound), leave no descriptor open
// beyond the directories the FS caches.
func TestDirFSFailuresKeepNoDescriptors(t *testing.T) {
	for _, named := range []bool{false, true} {
		t.Run(fmt.Sprintf("named=%v", named), func(t *testing.T) {
			root := t.TempDir()
			for i := range 2 * maxCachedDirs {
				if err := os.MkdirAll(filepath.Join(root, fmt.Sprintf("d%d", i), "sub"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink("d0", filepath.Join(root, "link")); err != nil {
				t.Fatal(err)
			}
			fsys := DirFS(root)
			if named {
				fsys.(*dirFS).noUnnamed.Store(true)
			}
			round := func() {
				for i := range 2 * maxCachedDirs {
					dir := fmt.Sprintf("d%d", i)
					for _, name := range []string{"f", dir + "/f"} {
						u, err := fsys.Create(name)
						if err != nil {
							t.Fatal(err)
						}
						u.Write([]byte("data"))
						if err := u.Abort(); err != nil {
							t.Fatal(err)
						}
					}
					u, err := fsys.Create(dir + "/sub")
					if err != nil {
						t.Fatal(err)
					}
					u.Write([]byte("data"))
					if err := u.Commit(time.Unix(1e9, 0), 0o644); err == nil {
						t.Fatalf("commit over the directory %s/sub succeeded", dir)
					}
					if _, err := fsys.Create("link/f"); err == nil {
						t.Fatal("Create through a symbolic link succeeded")
					}
					if _, err := fsys.Create(dir + "/missing/f"); err == nil {
						t.Fatal("Create in a missing directory succeeded")
					}
				}
			}
			round()
			before := openFDs(t)
			for range 3 {
				round()
			}
			if after := openFDs(t); after > before {
				t.Fatalf("%d descriptors open after 3 more rounds, %d before", after, before)
			}
			ents, err := os.ReadDir(filepath.Join(root, "d0"))
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) != 1 {
				t.Fatalf("d0 holds %d entries after aborted and failed uploads, want only sub", len(ents))
			}
		})
	}
}
