package sitepath

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse: whatever a client sends, an accepted path names a project that is a DNS label and
// a path below it with no "." or ".." segment, no NUL, valid UTF-8 and within the limits; and
// it round-trips through String.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "/", "/blog/", "/blog/a/b.html", "/../x", "/blog/../../etc", "blog//x",
		"/blog/\x00", "/\xc0\xae\xc0\xae/x", "/blog/" + strings.Repeat("a", 300), "/blog/.well-known/x", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Parse(%q) returned %T, want *Error", s, err)
			}
			return
		}
		if p.IsRoot() {
			if p.Rel != "" {
				t.Fatalf("root with a path: %+v", p)
			}
			return
		}
		if err := CheckProject(p.Project); err != nil {
			t.Fatalf("Parse(%q) accepted project %q: %v", s, p.Project, err)
		}
		if err := CheckRel(p.Rel); err != nil {
			t.Fatalf("Parse(%q) accepted path %q: %v", s, p.Rel, err)
		}
		checkClean(t, s, p.Rel)
		q, err := Parse(p.String())
		if err != nil || q != p {
			t.Fatalf("Parse(%q) = %+v, but Parse(String()) = %+v, %v", s, p, q, err)
		}
	})
}

// FuzzCheckRel: an accepted path is clean whatever the bytes.
func FuzzCheckRel(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../a", "a/./b", "a\x00", "\xff", ".well-known/x", strings.Repeat("x/", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckRel(s) != nil {
			return
		}
		checkClean(t, s, s)
	})
}

func checkClean(t *testing.T, input, rel string) {
	t.Helper()
	if len(rel) > MaxPath || !utf8.ValidString(rel) || strings.IndexByte(rel, 0) >= 0 {
		t.Fatalf("%q: accepted %q beyond the limits", input, rel)
	}
	if rel == "" {
		return
	}
	for _, seg := range strings.Split(rel, "/") {
		if seg == "" || seg == "." || seg == ".." || len(seg) > MaxSegment {
			t.Fatalf("%q: accepted %q with segment %q", input, rel, seg)
		}
	}
}
