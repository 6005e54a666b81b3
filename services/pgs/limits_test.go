package pgs

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/services/pgs/blob"
)

// A limit fails the whole session with a message naming the limit and the file; nothing is
// published and what the session stored is collected.
func TestLimits(t *testing.T) {
	h := newHarness(t, harnessOptions{limits: Limits{KeepDeploys: 10, Quota: 10 << 10, MaxFile: 4 << 10, MaxFiles: 5}})
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.html": "ok"})
	h.mustRsync("-r", src+"/", remote+"/blog/")
	usage := func() int64 {
		u, err := h.store.PGSUsage(context.Background(), h.account.ID)
		if err != nil {
			t.Fatal(err)
		}
		return u.Bytes
	}
	before := usage()

	check := func(what, out string, code int, want ...string) {
		t.Helper()
		if code == 0 {
			t.Fatalf("%s: succeeded\n%s", what, out)
		}
		t.Logf("%s: exit %d\n%s", what, code, out)
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Fatalf("%s: output does not say %q:\n%s", what, w, out)
			}
		}
		mustEqualTree(t, what+": live files", h.liveFiles("blog"), map[string]string{"index.html": "ok"})
		if got := usage(); got != before {
			t.Fatalf("%s: the account stores %d bytes, want %d", what, got, before)
		}
	}

	big := t.TempDir()
	writeTree(t, big, map[string]string{"index.html": "ok", "big.bin": strings.Repeat("x", 5<<10)})
	o, e, code := h.rsync("-r", big+"/", remote+"/blog/")
	check("rsync over the file limit", o+e, code, "PORTICO_PGS_MAX_FILE", "blog/big.bin")

	many := t.TempDir()
	writeTree(t, many, map[string]string{"index.html": "ok", "a": "1", "b": "2", "c": "3", "d": "4", "e": "5"})
	o, e, code = h.rsync("-r", many+"/", remote+"/blog/")
	check("rsync over the file count", o+e, code, "PORTICO_PGS_MAX_FILES", "more than 5 files")

	quota := t.TempDir()
	writeTree(t, quota, map[string]string{"a": strings.Repeat("a", 4000), "b": strings.Repeat("b", 4000), "c": strings.Repeat("c", 4000)})
	o, e, code = h.rsync("-r", quota+"/", remote+"/blog/")
	check("rsync over the quota", o+e, code, "PORTICO_PGS_QUOTA")

	// sftp and legacy scp hit the same limits.
	if _, err := exec("scp"); err == nil {
		o, e, code = h.scp("-O", big+"/big.bin", remote+"/blog/")
		check("scp -O over the file limit", o+e, code, "PORTICO_PGS_MAX_FILE")
		o, e, code = h.scp(big+"/big.bin", remote+"/blog/")
		check("scp (SFTP) over the file limit", o+e, code, "PORTICO_PGS_MAX_FILE")
		o, e, code = h.scp("-O", quota+"/a", quota+"/b", quota+"/c", remote+"/blog/")
		check("scp -O over the quota", o+e, code, "PORTICO_PGS_QUOTA")
	}
}

// What a crashed deploy left (blobs recorded and stored, used by no deploy) is collected by
// the sweep; blobs in use stay.
func TestSweep(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.html": "kept"})
	h.mustRsync("-r", src+"/", remote+"/blog/")
	ctx := context.Background()
	w, err := h.blobs.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("left behind"))
	hash, size, _ := w.Sum()
	if _, err := h.store.RecordPGSBlobs(ctx, h.account.ID, []db.PGSBlob{{Hash: hash.String(), Size: size}}); err != nil {
		t.Fatal(err)
	}
	ref := blob.Ref{Account: h.account.ID, Hash: hash}
	if err := w.Commit(ctx, ref); err != nil {
		t.Fatal(err)
	}
	w.Close()
	h.svc.sweep(ctx)
	if _, err := h.blobs.Stat(ctx, ref); err == nil {
		t.Fatal("the sweep left the unused blob")
	}
	mustEqualTree(t, "after the sweep", h.liveFiles("blog"), map[string]string{"index.html": "kept"})
}

// TestKeptFilesLimit: the files of all the account's kept deploys together are bounded (each
// is a manifest row the quota does not count); a deploy past the bound is refused with a
// message naming it, and nothing is published.
func TestKeptFilesLimit(t *testing.T) {
	h := newHarness(t, harnessOptions{limits: Limits{KeepDeploys: 2, Quota: 1 << 20, MaxFile: 1 << 10, MaxFiles: 1}})
	// At most 20 files kept in all: ten projects keeping two deploys of one file each.
	src := t.TempDir()
	for i := range 20 {
		writeTree(t, src, map[string]string{"index.html": strings.Repeat("x", i+1)})
		h.mustRsync("-r", src+"/", remote+fmt.Sprintf("/p%d/", i/2))
	}
	writeTree(t, src, map[string]string{"index.html": "one too many"})
	o, e, code := h.rsync("-r", src+"/", remote+"/p10/")
	if code == 0 || !strings.Contains(o+e, "more than 20 files") || !strings.Contains(o+e, "PORTICO_PGS_MAX_FILES") {
		t.Fatalf("a deploy past the kept files: exit %d\n%s%s", code, o, e)
	}
	if _, errOut, code := h.ssh("deploys", "p10"); code == 0 {
		t.Fatalf("p10 exists after a refused first deploy\n%s", errOut)
	}
	// A new deploy of a project trims its oldest: the total stays, and it goes live.
	h.mustRsync("-r", src+"/", remote+"/p0/")
	mustEqualTree(t, "p0", h.liveFiles("p0"), map[string]string{"index.html": "one too many"})
}
