package pgs

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestHTTPConcurrentRangesOfACachedFile: requests for different ranges of one file held in
// memory, at once, each get their own bytes: the cached file's reader holds no position or
// other state shared between requests (run with -race).
func TestHTTPConcurrentRangesOfACachedFile(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	src := t.TempDir()
	var b strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&b, "%05d", i) // 100,000 bytes, below memFileMax: kept in memory
	}
	content := b.String()
	writeTree(t, src, map[string]string{"big.txt": content})
	h.mustRsync("-a", src+"/", remote+"/blog/")
	if code, body, _ := h.get("blog", "/big.txt"); code != 200 || body != content {
		t.Fatalf("GET: %d, %d bytes", code, len(body))
	}

	client := &http.Client{}
	get := func(rng string) (int, string, error) {
		req, err := http.NewRequest("GET", h.http+"/big.txt", nil)
		if err != nil {
			return 0, "", err
		}
		req.Host = siteHost(h.account.Name, "blog")
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				from := (g*7919 + i*104729) % (len(content) - 1000)
				to := from + 1 + (i*37)%900
				rng, want, wantCode := fmt.Sprintf("bytes=%d-%d", from, to), content[from:to+1], 206
				switch i % 5 {
				case 0:
					rng, want, wantCode = "", content, 200
				case 1:
					rng, want = fmt.Sprintf("bytes=-%d", to-from), content[len(content)-(to-from):]
				}
				code, body, err := get(rng)
				if err != nil || code != wantCode || body != want {
					t.Errorf("goroutine %d, %q: %d, %d bytes (%v); want %d, %d bytes", g, rng, code, len(body), err, wantCode, len(want))
					return
				}
			}
		})
	}
	wg.Wait()
}
