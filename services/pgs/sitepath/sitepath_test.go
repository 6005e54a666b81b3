package sitepath

import (
	"strings"
	"testing"
)

func TestCheckProject(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"blog", true},
		{"a", true},
		{"0", true},
		{"my-blog", true},
		{"a-b-c-1", true},
		{strings.Repeat("a", 32), true},
		{strings.Repeat("a", 33), false},
		{"", false},
		{"-blog", false},
		{"blog-", false},
		{"Blog", false},
		{"my_blog", false},
		{"my.blog", false},
		{"..", false},
		{"blög", false},
		{"blog\x00", false},
	} {
		if err := CheckProject(tt.name); (err == nil) != tt.ok {
			t.Errorf("CheckProject(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestCheckRel(t *testing.T) {
	for _, tt := range []struct {
		rel  string
		want string // "" for accepted, else a part of the reason
	}{
		{"", ""},
		{"index.html", ""},
		{"a/b/c.css", ""},
		{".well-known/x", ""},
		{"dir with spaces/ünïcode.html", ""},
		{`back\slash`, ""},
		{strings.Repeat("a", 255), ""},
		{strings.Repeat("a", 256), "longer than 255"},
		{strings.Repeat("abcdefghi/", 102) + "abcd", ""}, // 1,024 bytes
		{strings.Repeat("abcdefghi/", 102) + "abcde", "longer than 1024"}, // 1,025 bytes
		{strings.Repeat("a/", 128) + "a", "deeper than 128"},
		{"..", `".." segments`},
		{"a/../b", `".." segments`},
		{"a/./b", `"." segments`},
		{"./a", `"." segments`},
		{"/abs", "empty path segment"},
		{"a//b", "empty path segment"},
		{"a/", "empty path segment"},
		{"a\x00b", "NUL"},
		{"\xc0\xaf", "UTF-8"},           // an overlong "/"
		{"a/\xc0\xae\xc0\xae", "UTF-8"}, // overlong ".."
		{"\xff", "UTF-8"},
	} {
		err := CheckRel(tt.rel)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("CheckRel(%q) = %v, want accepted", tt.rel, err)
		case tt.want != "" && err == nil:
			t.Errorf("CheckRel(%q) accepted, want %q", tt.rel, tt.want)
		case tt.want != "" && !strings.Contains(err.Error(), tt.want):
			t.Errorf("CheckRel(%q) = %v, want it to say %q", tt.rel, err, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		in     string
		want   Path
		refuse bool
	}{
		{"", Path{}, false},
		{"/", Path{}, false},
		{".", Path{}, false},
		{"/./", Path{}, false},
		{"//", Path{}, false},
		{"/blog/", Path{Project: "blog"}, false},
		{"blog", Path{Project: "blog"}, false},
		{"/blog/a/b.html", Path{Project: "blog", Rel: "a/b.html"}, false},
		{"/blog/a/", Path{Project: "blog", Rel: "a"}, false},
		{"///blog/a", Path{Project: "blog", Rel: "a"}, false},
		{"/blog//a", Path{}, true},
		{"/blog//", Path{}, true},
		{"/blog/a//", Path{}, true},
		{"/../etc/passwd", Path{}, true},
		{"/blog/../other/x", Path{}, true},
		{"/blog/./x", Path{}, true},
		{"..", Path{}, true},
		{"/Blog/", Path{}, true},
		{"/blog\x00/", Path{}, true},
		{"/\x00", Path{}, true},
		{"/blog/a\x00", Path{}, true},
		{"/-x/", Path{}, true},
	} {
		got, err := Parse(tt.in)
		if (err != nil) != tt.refuse || (err == nil && got != tt.want) {
			t.Errorf("Parse(%q) = %+v, %v; want %+v, refused=%v", tt.in, got, err, tt.want, tt.refuse)
		}
	}
}

func TestPathHelpers(t *testing.T) {
	p := Path{Project: "blog", Rel: "a/b.html"}
	if p.String() != "blog/a/b.html" || p.Base() != "b.html" || p.Dir() != (Path{Project: "blog", Rel: "a"}) {
		t.Errorf("helpers of %+v: %q %q %+v", p, p.String(), p.Base(), p.Dir())
	}
	if d := p.Dir().Dir(); d != (Path{Project: "blog"}) || d.Dir() != (Path{}) || d.Base() != "blog" {
		t.Errorf("Dir chain: %+v", d)
	}
	if (Path{}).String() != "." || !(Path{}).IsRoot() {
		t.Error("root")
	}
	j, err := Path{Project: "blog"}.Join("x/y")
	if err != nil || j != (Path{Project: "blog", Rel: "x/y"}) {
		t.Errorf("Join = %+v, %v", j, err)
	}
	if _, err := (Path{Project: "blog", Rel: "x"}).Join("../../etc"); err == nil {
		t.Error("Join accepted ..")
	}
	if j, err := (Path{}).Join("blog/x"); err != nil || j != (Path{Project: "blog", Rel: "x"}) {
		t.Errorf("root Join = %+v, %v", j, err)
	}
}

func TestHidden(t *testing.T) {
	for rel, want := range map[string]bool{
		"index.html":               false,
		".env":                     true,
		"a/.git/config":            true,
		".well-known/security.txt": false,
		".well-known/acme/.secret": true,
		"a/.well-known/x":          true,
		"_redirects":               true,
		"_headers":                 true,
		"docs/_redirects":          false,
		".well-known":              false,
		"assets/app.js":            false,
	} {
		if got := Hidden(rel); got != want {
			t.Errorf("Hidden(%q) = %v, want %v", rel, got, want)
		}
	}
}
