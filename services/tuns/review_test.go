package tuns

import (
	"net/http"
	"strings"
	"testing"
)

// TestHugeResponseHeaderRefused: a tunnel's local server (the owner's side, which the server does
// not trust) that answers with a huge header gets its visitor a 502, and the server holds no
// more than a bounded header per open channel: Go's default would read up to 10 MiB each.
func TestHugeResponseHeaderRefused(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	c := h.dial(h.alice)
	big := strings.Repeat("x", 2<<20)
	c.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Header().Set("X-Big", big)
		}
		w.Write([]byte("ok"))
	}))
	if ok, _ := c.bind("hdr", 80); !ok {
		t.Fatal("bind refused")
	}
	status, body, err := h.get(http.DefaultClient, "alice-hdr.localhost", "/big")
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusBadGateway || !strings.Contains(body, "header") {
		t.Fatalf("a 2 MiB response header: %d %q, want 502 saying the header is too large", status, body[:min(len(body), 200)])
	}
	if status, body, err := h.get(http.DefaultClient, "alice-hdr.localhost", "/small"); err != nil || status != 200 || body != "ok" {
		t.Fatalf("after it, a normal request: %d %q %v", status, body, err)
	}
}
