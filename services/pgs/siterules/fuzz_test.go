package siterules

import (
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// FuzzRedirects: any file parses without panicking within its bounds, every error names the
// file and a line of it, and a matching rule's redirect never names another host unless its TO
// was an absolute URL, and its rewrite path is a path.
func FuzzRedirects(f *testing.F) {
	for _, s := range []string{"/a /b 301\n", "/news/* /blog/:splat\n", "/p/:a/:b /x?a=:a#f 302!\n",
		"/s id=:id /b/:id\n", "/* /index.html 200\n", "/a https://x.example/:splat 301\n", "/a /b 299\n", "/docs/* /:splat\n"} {
		f.Add(s, "/news/a//b", "id=1")
	}
	f.Fuzz(func(t *testing.T, file, path, query string) {
		rules, errs := ParseRedirects([]byte(file))
		for _, e := range errs {
			if e.File != RedirectsFile || e.Line < 0 || e.Line > strings.Count(file, "\n")+1 {
				t.Fatalf("bad error %+v", e)
			}
		}
		if rules.Len() > MaxRules {
			t.Fatalf("%d rules", rules.Len())
		}
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		for _, exists := range []bool{false, true} {
			a, ok := rules.Match(path, query, exists)
			if !ok {
				continue
			}
			rule := rules.rules[indexOfLine(rules, a.Line)]
			if exists && !rule.Force {
				t.Fatalf("rule of line %d applied over a file", a.Line)
			}
			switch a.Status {
			case 200, 404:
				if !strings.HasPrefix(a.Path, "/") {
					t.Fatalf("rewrite to %q", a.Path)
				}
			default:
				u, err := url.Parse(a.Location)
				if err != nil {
					continue // a query written badly in TO or sent by the client stays as it is
				}
				if rule.to.origin == "" && (u.Host != "" || strings.HasPrefix(a.Location, "//")) {
					t.Fatalf("%q redirects to another host: %q", file, a.Location)
				}
			}
		}
	})
}

func indexOfLine(r *Redirects, line int) int {
	for i, rule := range r.rules {
		if rule.Line == line {
			return i
		}
	}
	panic("no rule")
}

// FuzzHeaders: any file parses without panicking, and whatever the request path, the headers
// it yields are valid and never refused ones.
func FuzzHeaders(f *testing.F) {
	for _, s := range []string{"/*\n  X-A: b\n", "/p/:x\n  X-V: :x\n  ! X-A\n", "/s/*\n  X-P: :splat\n", "  X: y\n", "/*\n  Set-Cookie: a\n"} {
		f.Add(s, "/p/a\r\nb")
	}
	f.Fuzz(func(t *testing.T, file, path string) {
		h, errs := ParseHeaders([]byte(file))
		for _, e := range errs {
			if e.File != HeadersFile {
				t.Fatalf("bad error %+v", e)
			}
		}
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		for _, fld := range h.For(path).Set {
			if Refused(fld.Name) || !httpguts.ValidHeaderFieldName(fld.Name) || !httpguts.ValidHeaderFieldValue(fld.Value) {
				t.Fatalf("%q gives header %q: %q", file, fld.Name, fld.Value)
			}
		}
	})
}
