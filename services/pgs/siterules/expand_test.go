package siterules

import (
	"strings"
	"testing"
)

// A rule whose TO or header value repeats :splat must not turn one long request path into a
// response of gigabytes: what placeholders expand to is bounded per request.
func TestPlaceholderExpansionBounded(t *testing.T) {
	many := strings.Repeat(":splat", (MaxLine-100)/len(":splat"))
	long := "/x/" + strings.Repeat("a", 64<<10)

	var hdr strings.Builder
	hdr.WriteString("/x/*\n")
	for range 7 {
		hdr.WriteString("  X-A: " + many + "\n")
	}
	h, errs := ParseHeaders([]byte(hdr.String()))
	if errs != nil {
		t.Fatalf("ParseHeaders: %v", errs)
	}
	total := 0
	for _, f := range h.For(long).Set {
		total += len(f.Name) + len(f.Value)
	}
	if total > MaxExpanded+MaxFileSize {
		t.Errorf("_headers: %d bytes of header values for one request, want at most %d", total, MaxExpanded+MaxFileSize)
	}

	for _, status := range []string{"301", "200", "404"} {
		r, errs := ParseRedirects([]byte("/x/* /" + many[:len(many)/2] + "?q=" + many[:len(many)/2] + " " + status + "\n"))
		if errs != nil {
			t.Fatalf("ParseRedirects: %v", errs)
		}
		a, ok := r.Match(long, "", false)
		if !ok {
			t.Fatalf("status %s: no match", status)
		}
		if n := len(a.Location) + len(a.Path); n > MaxExpanded {
			t.Errorf("_redirects %s: the action is %d bytes long, want at most %d", status, n, MaxExpanded)
		}
		if a.Status != 414 {
			t.Errorf("_redirects %s: status %d for an expansion too long, want 414", status, a.Status)
		}
	}
}
