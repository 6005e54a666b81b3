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
