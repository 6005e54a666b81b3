package siterules

import (
	"strings"
	"testing"
)

// The cases follow the examples of Netlify's redirect documentation (status codes, splats,
// placeholders, query parameters, shadowing and force, trailing slashes) and Cloudflare Pages'
// (302/303/307/308, placeholders in the query of TO, fragments).
func TestRedirectsMatch(t *testing.T) {
	const file = `
# Netlify: status codes
/home              /                  301
/my-redirect       /                  302
/see-other         /other             303
/temp              /elsewhere         307
/perm              /elsewhere         308
/ecommerce         /store-closed      404
/pass-through      /index.html        200
/default           /target
/twitch            https://twitch.tv
/blog/*            https://blog.example.com/:splat 302
# splats and placeholders
/news/*            /blog/:splat
/news/:year/:month/:date/:slug  /blog/:year/:month/:date/:slug
/products/:code/:name /products?code=:code&name=:name 301
/store id=:id      /blog/:id          301
/articles id=:id tag=:tag /posts/:tag/:id 301
/go   to=docs      /documentation     302
/page/             /page2/#fragment   301
/app/*             /app/index.html    200
/shadowed          /forced-away       301
/exists            /forced            301!
/assets-*          /static/:splat     301
/docs/*            /:splat            301
`
	rules, errs := ParseRedirects([]byte(file))
	if errs != nil {
		t.Fatalf("ParseRedirects: %v", errs)
	}
	cases := []struct {
		path, query string
		file        bool // a file matches the path
		status      int  // 0: no rule
		location    string
		target      string // for 200 and 404
	}{
		{path: "/home", status: 301, location: "/"},
		{path: "/home/", status: 301, location: "/"}, // a trailing slash does not matter
		{path: "/home", query: "a=1&b=2", status: 301, location: "/?a=1&b=2"},
		{path: "/my-redirect", status: 302, location: "/"},
		{path: "/see-other", status: 303, location: "/other"},
		{path: "/temp", status: 307, location: "/elsewhere"},
		{path: "/perm", status: 308, location: "/elsewhere"},
		{path: "/ecommerce", status: 404, target: "/store-closed"},
		{path: "/pass-through", status: 200, target: "/index.html"},
		{path: "/default", status: 301, location: "/target"},
		{path: "/twitch", status: 301, location: "https://twitch.tv"},
		{path: "/twitch", query: "x=1", status: 301, location: "https://twitch.tv?x=1"},
		{path: "/blog/a/b.html", status: 302, location: "https://blog.example.com/a/b.html"},
		{path: "/news/2024/01/02/hello", status: 301, location: "/blog/2024/01/02/hello"}, // the splat rule comes first
		{path: "/news", status: 301, location: "/blog/"},
		{path: "/news/", status: 301, location: "/blog/"},
		{path: "/products/42/mug", status: 301, location: "/products?code=42&name=mug"},
		{path: "/products/42/mug", query: "ignored=1", status: 301, location: "/products?code=42&name=mug"},
		{path: "/products/42", status: 0},
		{path: "/products/a b/c&d", status: 301, location: "/products?code=a+b&name=c%26d"},
		{path: "/store", query: "id=7", status: 301, location: "/blog/7?id=7"},
		{path: "/store", status: 0},
		{path: "/articles", query: "id=7&tag=go", status: 301, location: "/posts/go/7?id=7&tag=go"},
		{path: "/articles", query: "id=7", status: 0},
		{path: "/go", query: "to=docs", status: 302, location: "/documentation?to=docs"},
		{path: "/go", query: "to=blog", status: 0},
		{path: "/page/", status: 301, location: "/page2/#fragment"},
		{path: "/app/settings/profile", status: 200, target: "/app/index.html"},
		{path: "/shadowed", file: true, status: 0}, // a file shadows a rule that is not forced
		{path: "/shadowed", status: 301, location: "/forced-away"},
		{path: "/exists", file: true, status: 301, location: "/forced"},
		{path: "/assets-2024/x.png", status: 301, location: "/static/2024/x.png"},
		{path: "/assets/x.png", status: 0},
		{path: "/docs//evil.example/x", status: 301, location: "/evil.example/x"}, // never a host
		{path: "/docs/a b/ü", status: 301, location: "/a%20b/%C3%BC"},
		{path: "/nothing", status: 0},
	}
	for _, c := range cases {
		a, ok := rules.Match(c.path, c.query, c.file)
		if c.status == 0 {
			if ok {
				t.Errorf("%s?%s: got %+v, want no rule", c.path, c.query, a)
			}
			continue
		}
		if !ok || a.Status != c.status || a.Location != c.location || a.Path != c.target {
			t.Errorf("%s?%s (file %v): got %+v (match %v), want status %d location %q path %q",
				c.path, c.query, c.file, a, ok, c.status, c.location, c.target)
		}
	}
}

func TestRedirectsFirstMatchWins(t *testing.T) {
	rules, errs := ParseRedirects([]byte("/a/* /first 302\n/a/b /second 302\n/* /index.html 200\n"))
	if errs != nil {
		t.Fatal(errs)
	}
	if a, _ := rules.Match("/a/b", "", false); a.Location != "/first" {
		t.Errorf("got %+v, want the first rule", a)
	}
	if a, _ := rules.Match("/x/y", "", false); a.Status != 200 || a.Path != "/index.html" || a.Line != 3 {
		t.Errorf("got %+v, want the SPA rule of line 3", a)
	}
}

func TestRedirectsErrors(t *testing.T) {
	cases := []struct{ file, want string }{
		{"/a /b 299\n", "_redirects:1: status 299 is not a redirect status"},
		{"# c\n\n/a /b 410\n", "_redirects:3: status 410 is not a redirect status"},
		{"/a /b 30x\n", `_redirects:1: "30x" is not a status`},
		{"/a\n", "_redirects:1: a rule is FROM TO [STATUS]"},
		{"/a /b 301 extra\n", `_redirects:1: unexpected "extra" after the status`},
		{"/ /us 302 Country=us\n", "_redirects:1: conditions on Country are not supported"},
		{"/* /preview/:splat 302 Cookie=preview\n", "conditions on Cookie are not supported"},
		{"/api/* https://api.example.com/:splat 200\n", "proxying to another host (200 to a URL) is not supported"},
		{"/x https://example.com/404 404\n", "a 404 rule serves a file of this site"},
		{"a /b\n", `"a" is not a path`},
		{"https://example.com/* /b 301\n", "rules for other host names are not supported"},
		{"/a/*/b /c\n", "* may only end a pattern"},
		{"/a?x=1 /c\n", "a path pattern holds no query"},
		{"/a/:n-x /c\n", "a name is letters, digits and _"},
		{"/a/x:n /c\n", "a placeholder takes a whole segment"},
		{"/a/:x/:x /c\n", ":x appears twice"},
		{"/a /b/:splat\n", "TO uses :splat but FROM has no *"},
		{"/a/:x /b/:y\n", "TO uses :y, which FROM does not bind"},
		{"/a //evil.example/\n", "names a host"},
		{"/a b\n", `TO "b" must be a path`},
		{"/a /b 301\n/c\x01 /d\n", "_redirects:2: the line holds a control character"},
		{"/a /\xff\n", "_redirects:1: the line is not UTF-8"},
		{"/" + strings.Repeat("a", MaxLine) + " /b\n", "_redirects:1: the line is 8196 bytes"},
		{strings.Repeat("/a /b\n", MaxRules+1), "_redirects:1001: more than 1000 rules"},
		{strings.Repeat("#", MaxFileSize+1), "_redirects: the file is 65537 bytes"},
	}
	for _, c := range cases {
		_, errs := ParseRedirects([]byte(c.file))
		if errs == nil || !strings.Contains(errs.Error(), c.want) {
			t.Errorf("%.60q: got %v, want %q", c.file, errs, c.want)
		}
	}
}

func TestRedirectsEveryErrorReported(t *testing.T) {
	rules, errs := ParseRedirects([]byte("/ok /fine\n/a /b 299\n/c\n/d /e 302\n"))
	if len(errs) != 2 || errs[0].Line != 2 || errs[1].Line != 3 {
		t.Fatalf("got %v, want errors on lines 2 and 3", errs)
	}
	if rules.Len() != 2 {
		t.Fatalf("got %d good rules, want 2", rules.Len())
	}
	var many strings.Builder
	for range 150 {
		many.WriteString("/a /b 299\n")
	}
	_, errs = ParseRedirects([]byte(many.String()))
	if len(errs) != maxErrors+1 || !strings.Contains(errs[maxErrors].Error(), "50 more errors not shown") {
		t.Fatalf("got %d errors, last %v", len(errs), errs[len(errs)-1])
	}
}

func TestRedirectsCommentsAndSpacing(t *testing.T) {
	rules, errs := ParseRedirects([]byte("\ufeff  # comment\r\n\t/a\t\t/b   302!  # trailing comment\r\n"))
	if errs != nil {
		t.Fatal(errs)
	}
	a, ok := rules.Match("/a", "", true)
	if !ok || a.Status != 302 || a.Location != "/b" || a.Line != 2 {
		t.Fatalf("got %+v %v", a, ok)
	}
}
