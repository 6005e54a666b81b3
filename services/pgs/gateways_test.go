package pgs

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Two gateways on one database and blob store (as several gateways share one Postgres): a
// deploy on one waits for a deploy of the same project on the other, then runs on top of it;
// what one publishes shows on the other within a second.
func TestTwoGateways(t *testing.T) {
	a := newHarness(t, harnessOptions{})
	b := newHarness(t, harnessOptions{share: a})
	big, small := t.TempDir(), t.TempDir()
	// 6 MiB at 2 MiB/s: the first upload is under way for about three seconds.
	data := make([]byte, 6<<20)
	for i := range data {
		data[i] = byte(i*7 + i/4099)
	}
	if err := os.WriteFile(filepath.Join(big, "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	writeTree(t, big, map[string]string{"index.html": "from a"})
	writeTree(t, small, map[string]string{"extra.txt": "from b"})
	var wg sync.WaitGroup
	var outA string
	var codeA int
	wg.Go(func() {
		var o, e string
		o, e, codeA = a.rsync("-r", "--bwlimit=2m", big+"/", remote+"/blog/")
		outA = o + e
	})
	time.Sleep(700 * time.Millisecond)
	o, e, code := b.rsync("-r", small+"/", remote+"/blog/")
	wg.Wait()
	if codeA != 0 || code != 0 {
		t.Fatalf("uploads: a exit %d\n%s\nb exit %d\n%s%s", codeA, outA, code, o, e)
	}
	if !strings.Contains(e, "waiting for another deploy of blog") || !strings.Contains(e, "deploy d2 is live (1 added") {
		t.Fatalf("the second gateway's upload did not wait and run on top:\n%s", e)
	}
	mustEqualTree(t, "live files", a.liveFiles("blog"), map[string]string{"index.html": "from a", "big.bin": string(data), "extra.txt": "from b"})
	// Both gateways serve the new deploy: b at once (it made it), a within a second.
	if code, body, _ := b.get("blog", "/extra.txt"); code != 200 || body != "from b" {
		t.Fatalf("b serves %d %q", code, body)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		code, body, _ := a.get("blog", "/extra.txt")
		if code == 200 && body == "from b" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a still serves %d %q two seconds after b's deploy", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
