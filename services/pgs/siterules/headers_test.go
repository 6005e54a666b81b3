package siterules

import (
	"reflect"
	"strings"
	"testing"
)

// The cases follow Netlify's and Cloudflare Pages' _headers documentation: a path line, then
// indented headers; splats and placeholders (also in values, as Cloudflare does); every
// matching rule applies, values join with ", "; `! Name` detaches a header an earlier rule set.
func TestHeadersFor(t *testing.T) {
	const file = `
# every page
/*
  X-Frame-Options: DENY
  X-Robots-Tag: noindex
  Link: </style.css>; rel=preload; as=style

/assets/*
  Cache-Control: public, max-age=31536000, immutable
  ! X-Robots-Tag

/movies/:title
  X-Movie-Name: You are watching ":title"

/static/*
  X-Path: :splat

/*
  Link: </app.js>; rel=preload; as=script
  x-robots-tag: nosnippet
`
	h, errs := ParseHeaders([]byte(file))
	if errs != nil {
		t.Fatalf("ParseHeaders: %v", errs)
	}
	cases := []struct {
		path    string
		set     []Field
		removed []string
	}{
		{"/", []Field{{"X-Frame-Options", "DENY"}, {"X-Robots-Tag", "noindex, nosnippet"},
			{"Link", "</style.css>; rel=preload; as=style, </app.js>; rel=preload; as=script"}}, nil},
		{"/assets/app.css", []Field{{"X-Frame-Options", "DENY"}, {"Link", "</style.css>; rel=preload; as=style, </app.js>; rel=preload; as=script"},
			{"Cache-Control", "public, max-age=31536000, immutable"}, {"X-Robots-Tag", "nosnippet"}}, nil},
		{"/movies/dune", []Field{{"X-Frame-Options", "DENY"}, {"X-Robots-Tag", "noindex, nosnippet"},
			{"Link", "</style.css>; rel=preload; as=style, </app.js>; rel=preload; as=script"},
			{"X-Movie-Name", `You are watching "dune"`}}, nil},
		{"/static/a/b.png", []Field{{"X-Frame-Options", "DENY"}, {"X-Robots-Tag", "noindex, nosnippet"},
			{"Link", "</style.css>; rel=preload; as=style, </app.js>; rel=preload; as=script"}, {"X-Path", "a/b.png"}}, nil},
	}
	for _, c := range cases {
		got := h.For(c.path)
		if !reflect.DeepEqual(got.Set, c.set) || !reflect.DeepEqual(got.Removed, c.removed) {
			t.Errorf("%s:\n got %+v\nwant %+v %v", c.path, got, c.set, c.removed)
		}
	}
}

func TestHeadersDetachDefault(t *testing.T) {
	h, errs := ParseHeaders([]byte("/*\n  ! Cache-Control\n/keep/*\n  Cache-Control: no-store\n"))
	if errs != nil {
		t.Fatal(errs)
	}
	if got := h.For("/x"); len(got.Set) != 0 || !reflect.DeepEqual(got.Removed, []string{"Cache-Control"}) {
		t.Errorf("got %+v, want Cache-Control removed", got)
	}
	if got := h.For("/keep/x"); !reflect.DeepEqual(got.Set, []Field{{"Cache-Control", "no-store"}}) || len(got.Removed) != 0 {
		t.Errorf("got %+v, want Cache-Control set", got)
	}
}

func TestHeadersPlaceholderValuesAreSafe(t *testing.T) {
	h, _ := ParseHeaders([]byte("/p/:x\n  X-V: :x\n"))
	got := h.For("/p/a\r\nSet-Cookie: b")
	if len(got.Set) != 1 || strings.ContainsAny(got.Set[0].Value, "\r\n") {
		t.Fatalf("got %+v", got)
	}
}

func TestHeadersErrors(t *testing.T) {
	cases := []struct{ file, want string }{
		{"  X-A: b\n", "_headers:1: a header line must follow a path pattern line"},
		{"/*\n  Set-Cookie: a=b\n", "_headers:2: Set-Cookie is set by the server; a site cannot set it"},
		{"/*\n  content-length: 5\n", "_headers:2: Content-Length is set by the server"},
		{"/*\n  Location: /x\n", "Location is set by the server"},
		{"/*\n  Content-Encoding: gzip\n", "Content-Encoding is set by the server"},
		{"/*\n  ! Date\n", "Date is set by the server; a site cannot remove it"},
		{"/*\n  X-A\n", "_headers:2: a header line is `Name: value`"},
		{"/*\n  X A: b\n", `"X A" is not a header name`},
		{"/*\n  X-A:\n", "X-A has no value"},
		{"/*\n  ! \n", "is not a header name"},
		{"/a /b\n", "a path pattern line holds one pattern"},
		{"https://:project.pages.dev/*\n  X-A: b\n", "rules for other host names are not supported"},
		{"/a/*/b\n  X-A: b\n", "* may only end a pattern"},
		{"/*\n  X-A: \x01\n", "_headers:2: the line holds a control character"},
		{strings.Repeat("/a\n", MaxRules+1), "_headers:1001: more than 1000 rules"},
		{strings.Repeat("#", MaxFileSize+1), "_headers: the file is 65537 bytes"},
	}
	for _, c := range cases {
		_, errs := ParseHeaders([]byte(c.file))
		if errs == nil || !strings.Contains(errs.Error(), c.want) {
			t.Errorf("%.60q: got %v, want %q", c.file, errs, c.want)
		}
	}
	// Header lines under a bad pattern are not reported again.
	_, errs := ParseHeaders([]byte("/a/*/b\n  X-A: b\n  X-B: c\n/ok\n  Server: x\n"))
	if len(errs) != 2 || errs[0].Line != 1 || errs[1].Line != 5 {
		t.Errorf("got %v, want errors on lines 1 and 5", errs)
	}
}
