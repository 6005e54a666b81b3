package pgs

import (
	"context"
	"strings"
	"testing"
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
