package pgs

import (
	"net/http"
	"strings"
	"testing"
)

// TestKeepPrivate: the Cache-Control a private site sends for each a rule may set.
func TestKeepPrivate(t *testing.T) {
	for _, tt := range []struct {
		in   []string // nil: none set; empty: removed by a rule
		want string
	}{
		{nil, privateCacheControl[0]},
		{[]string{}, privateCacheControl[0]},
		{privateCacheControl, privateCacheControl[0]},
		{[]string{"public"}, privateCacheControl[0]},
		{[]string{"public, max-age=31536000, immutable"}, "private, max-age=31536000, immutable"},
		{[]string{"PUBLIC,S-MAXAGE=600 , max-age=60"}, "private, max-age=60"},
		{[]string{"s-maxage=600, proxy-revalidate"}, privateCacheControl[0]},
		{[]string{"no-store"}, "private, no-store"},
		{[]string{`private="Set-Cookie, X-Id", max-age=60`}, "private, max-age=60"},
		{[]string{`no-cache="Set-Cookie, public", max-age=5`}, `private, no-cache="Set-Cookie, public", max-age=5`},
		{[]string{`no-cache="a\", public", max-age=5`}, `private, no-cache="a\", public", max-age=5`},
		{[]string{`max-age=5, no-cache="public, s-maxage=9`}, "private, max-age=5"},
		{[]string{"max-age=5", "public"}, "private, max-age=5"},
		{[]string{",,public,,"}, privateCacheControl[0]},
	} {
		hdr := http.Header{}
		if tt.in != nil {
			hdr["Cache-Control"] = tt.in
		}
		keepPrivate(hdr)
		if got := hdr.Values("Cache-Control"); len(got) != 1 || got[0] != tt.want {
			t.Errorf("keepPrivate(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if privateCacheControl[0] != "private, max-age=0, must-revalidate" {
		t.Fatalf("the shared default was changed: %q", privateCacheControl)
	}
}

// FuzzKeepPrivate: whatever a rule sets, the result starts with private, has no directive for
// shared caches, and is kept as it is when kept private again.
func FuzzKeepPrivate(f *testing.F) {
	for _, s := range []string{"public, max-age=31536000, immutable", `no-cache="a, b", s-maxage=1`, `"`, `a="\"`, ",", "private=\"x\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		hdr := http.Header{"Cache-Control": {v}}
		keepPrivate(hdr)
		got := hdr.Values("Cache-Control")
		ds := cacheDirectives(got)
		if len(got) != 1 || len(ds) == 0 || ds[0] != "private" {
			t.Fatalf("keepPrivate(%q) = %q", v, got)
		}
		for _, d := range ds {
			name, _, _ := strings.Cut(strings.ToLower(d), "=")
			if name = strings.TrimSpace(name); name == "public" || name == "s-maxage" || name == "proxy-revalidate" || (name == "private" && d != "private") {
				t.Fatalf("keepPrivate(%q) = %q keeps %s", v, got, d)
			}
		}
		again := http.Header{"Cache-Control": {got[0]}}
		keepPrivate(again)
		if again.Get("Cache-Control") != got[0] {
			t.Fatalf("keepPrivate(%q) = %q, then %q", v, got, again.Get("Cache-Control"))
		}
	})
}
