package pgs

import (
	"fmt"
	"strings"
	"testing"
)

// TestInflightQuota: files written and never closed are held by the server (temporary files);
// what an account's sessions hold so is bounded by its quota, as stored data is. Before, one
// SFTP session could hold 64 open files each up to the file size limit, whatever the quota.
func TestInflightQuota(t *testing.T) {
	h := newHarness(t, harnessOptions{limits: Limits{KeepDeploys: 10, Quota: 64 << 10, MaxFile: 60 << 10, MaxFiles: 100}})
	c, drop := h.sftpClient()
	defer drop()
	chunk := strings.Repeat("x", 50<<10)
	var err error
	opened := 0
	for i := 0; i < 20 && err == nil; i++ {
		f, cerr := c.Create(fmt.Sprintf("/blog/f%d.bin", i))
		if cerr != nil {
			err = cerr
			break
		}
		opened++
		_, err = f.Write([]byte(chunk))
	}
	if err == nil {
		t.Fatalf("%d files of 50 KiB written and held open under a 64 KiB quota", opened)
	}
	if !strings.Contains(err.Error(), "past its 64 KiB storage quota (PORTICO_PGS_QUOTA)") || !strings.Contains(err.Error(), "blog/f") {
		t.Fatalf("refused after %d files with: %v", opened, err)
	}
	// A sparse write far out counts to its end, too.
	c2, drop2 := h.sftpClient()
	defer drop2()
	var werr error
	for i := 0; i < 5 && werr == nil; i++ {
		f, cerr := c2.Create(fmt.Sprintf("/two/s%d.bin", i))
		if cerr != nil {
			werr = cerr
			break
		}
		_, werr = f.WriteAt([]byte("x"), 50<<10)
	}
	drop()
	if werr == nil {
		t.Fatal("sparse files of 50 KiB held open under a 64 KiB quota")
	}
	drop2()
	waitQuiet()
	// Once the sessions are over, nothing stays counted: an upload within the quota works.
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.html": strings.Repeat("y", 40<<10)})
	h.mustRsync("-r", src+"/", remote+"/blog/")
	h.svc.inflight.mu.Lock()
	n := len(h.svc.inflight.bytes)
	h.svc.inflight.mu.Unlock()
	if n != 0 {
		t.Fatalf("bytes still counted in flight after every session ended: %v", h.svc.inflight.bytes)
	}
}
