package pgs

import (
	"fmt"
	"strings"
	"testing"
)

func TestCoalesceRange(t *testing.T) {
	for _, tt := range []struct {
		h          string
		size       int64
		want       string
		ignore, ok bool
	}{
		{"bytes=10-19", 1000, "bytes=10-19", false, true},
		{"bytes=0-0,0-0,0-0", 1000, "bytes=0-0", false, true},
		{"bytes=0-600,100-700", 1000, "bytes=0-700", false, true},
		{"bytes=900-,0-9", 1000, "bytes=0-9,900-999", false, true},
		{"bytes=-100", 1000, "bytes=900-999", false, true},
		{"bytes=-5000", 1000, "bytes=0-999", false, true},
		{"bytes=0-9,100-109", 1000, "bytes=0-109", false, true},       // a gap smaller than a part's headers
		{"bytes=0-9,500-509", 1000, "bytes=0-9,500-509", false, true}, // two parts
		{"bytes=0-99999", 1000, "bytes=0-999", false, true},
		{"bytes=5000-6000,0-1", 1000, "bytes=0-1", false, true},
		{"bytes=5000-6000", 1000, "", false, false}, // unsatisfiable: ServeContent's 416
		{"bytes=abc", 1000, "", false, false},
		{"bytes=9-1", 1000, "", false, false},
		{"items=0-1", 1000, "", false, false},
		{"bytes=0-1", 0, "", false, false},
	} {
		got, ignore, ok := coalesceRange(tt.h, tt.size)
		if got != tt.want || ignore != tt.ignore || ok != tt.ok {
			t.Errorf("coalesceRange(%q, %d) = %q, %v, %v; want %q, %v, %v", tt.h, tt.size, got, ignore, ok, tt.want, tt.ignore, tt.ok)
		}
	}
	// More distinct parts than maxRangeParts, even merged: the whole file.
	var parts []string
	for i := 0; i <= maxRangeParts; i++ {
		parts = append(parts, fmt.Sprintf("%d-%d", i*1000, i*1000))
	}
	if _, ignore, ok := coalesceRange("bytes="+strings.Join(parts, ","), 2_000_000); !ignore || !ok {
		t.Errorf("%d distinct ranges: ignore %v ok %v", len(parts), ignore, ok)
	}
}

// TestHTTPManyRanges: a request for many small or overlapping ranges gets a 206 whose body is
// about the size of what was asked, never many times the file (RFC 9110 lets ranges be merged).
func TestHTTPManyRanges(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	src := t.TempDir()
	content := strings.Repeat("0123456789", 100)
	writeTree(t, src, map[string]string{"big.txt": content})
	h.mustRsync("-a", src+"/", remote+"/blog/")

	for _, n := range []int{2, 201, 1000, 20000} {
		var parts []string
		for i := 0; i < n; i++ {
			parts = append(parts, fmt.Sprintf("%d-%d", (i*7)%1000, (i*7)%1000))
		}
		code, body, hdr := h.get("blog", "/big.txt", "Range", "bytes="+strings.Join(parts, ","))
		if code != 206 || len(body) > 2*len(content) {
			t.Errorf("%d one-byte ranges: %d, %d bytes (%s), want 206 and at most %d bytes", n, code, len(body), hdr.Get("Content-Type"), 2*len(content))
		}
	}
	// Overlapping ranges that add up to more than the file are merged, not answered whole.
	code, body, hdr := h.get("blog", "/big.txt", "Range", "bytes=0-600,100-700")
	if code != 206 || body != content[:701] || hdr.Get("Content-Range") != "bytes 0-700/1000" {
		t.Errorf("overlapping ranges: %d %q %v", code, hdr.Get("Content-Range"), len(body))
	}
	// Two ranges far apart stay two parts.
	code, _, hdr = h.get("blog", "/big.txt", "Range", "bytes=0-9,900-909")
	if code != 206 || !strings.HasPrefix(hdr.Get("Content-Type"), "multipart/byteranges") {
		t.Errorf("two ranges: %d %v", code, hdr)
	}
	// If-Range with another ETag: the whole file.
	if code, body, _ := h.get("blog", "/big.txt", "Range", "bytes=0-9", "If-Range", `"nope"`); code != 200 || body != content {
		t.Errorf("If-Range mismatch: %d %d bytes", code, len(body))
	}
	// Unsatisfiable: 416.
	if code, _, hdr := h.get("blog", "/big.txt", "Range", "bytes=5000-6000"); code != 416 || hdr.Get("Content-Range") != "bytes */1000" {
		t.Errorf("unsatisfiable: %d %v", code, hdr)
	}
}

// FuzzCoalesceRange: whatever the header, a merged Range is sorted, non-overlapping, within the
// file, at most maxRangeParts parts, and covers every byte the header asked for.
func FuzzCoalesceRange(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=0-600,100-700", "bytes=-5,3-", "bytes= 1 - 2 , 9-", "bytes=9-1", "bytes=,,", "bytes=-0"} {
		f.Add(s, int64(1000))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 || size > 1<<40 {
			return
		}
		out, ignore, ok := coalesceRange(h, size)
		if !ok || ignore {
			return
		}
		spec, found := strings.CutPrefix(out, "bytes=")
		if !found {
			t.Fatalf("%q → %q", h, out)
		}
		var merged []byteRange
		for part := range strings.SplitSeq(spec, ",") {
			var r byteRange
			if _, err := fmt.Sscanf(part, "%d-%d", &r.start, &r.end); err != nil {
				t.Fatalf("%q → %q: %v", h, out, err)
			}
			if r.start < 0 || r.end < r.start || r.end >= size {
				t.Fatalf("%q → %q: range %v outside a file of %d", h, out, r, size)
			}
			if n := len(merged); n > 0 && r.start <= merged[n-1].end+rangeGap {
				t.Fatalf("%q → %q: parts overlap or nearly touch", h, out)
			}
			merged = append(merged, r)
		}
		if len(merged) == 0 || len(merged) > maxRangeParts {
			t.Fatalf("%q → %q: %d parts", h, out, len(merged))
		}
		covered := func(b int64) bool {
			for _, r := range merged {
				if b >= r.start && b <= r.end {
					return true
				}
			}
			return false
		}
		// Every requested range's first and last satisfiable bytes are covered.
		reqs, _, _ := strings.Cut(strings.TrimPrefix(h, "bytes="), "\x00")
		for part := range strings.SplitSeq(reqs, ",") {
			var a, b int64
			if n, _ := fmt.Sscanf(strings.TrimSpace(part), "%d-%d", &a, &b); n == 2 && a >= 0 && b >= a && a < size {
				if !covered(a) || !covered(min(b, size-1)) {
					t.Fatalf("%q → %q: %d-%d not covered", h, out, a, b)
				}
			}
		}
	})
}
