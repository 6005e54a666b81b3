package pgs

import (
	"bufio"
	"context"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db/dbtest"
	"github.com/portico-sh/portico/services/pgs/blob"
	"github.com/portico-sh/portico/services/pgs/sitepath"
)

// FuzzResolve: whatever path a visitor asks for, what is served is a file of the deploy that
// may be served, and a redirect stays on the site.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"/", "/docs", "/docs/", "/a.html", "/../x", "//evil.com", "/\\evil.com", "/.env",
		"/.well-known/x", "/docs/../404.html", "/%2e%2e/", "/x\x00", "/\xff/"} {
		f.Add(s)
	}
	tr := newTree(time.Now())
	for _, p := range []string{"index.html", "404.html", "docs/index.html", "a.html", ".env", ".well-known/x",
		"\\evil.com/index.html", "b/.hidden/404.html", "_headers", "deep/er/404.html"} {
		tr.put(p, File{Size: 1})
	}
	f.Fuzz(func(t *testing.T, path string) {
		res := resolve(tr, path)
		if res.file != "" {
			if _, ok := tr.file(res.file); !ok {
				t.Fatalf("resolve(%q) = %q, not a file", path, res.file)
			}
			if sitepath.Hidden(res.file) {
				t.Fatalf("resolve(%q) serves hidden %q", path, res.file)
			}
			if res.status != 200 && res.status != 404 {
				t.Fatalf("resolve(%q) status %d", path, res.status)
			}
		}
		if res.redirect != "" {
			loc := (&url.URL{Path: res.redirect}).String()
			if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\") {
				t.Fatalf("resolve(%q) redirects off the site: %q", path, loc)
			}
		}
	})
}

// FuzzSCPHeader: a file or directory header from a client never makes a negative size or
// mode bits beyond the permissions.
func FuzzSCPHeader(f *testing.F) {
	for _, s := range []string{"C0644 12 index.html", "D0755 0 dir", "C0644 -1 x", "C9999 1 x", "C0644 1", "C0644 99999999999999999999 x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if line == "" {
			return
		}
		mode, size, _, err := parseSCPHeader(line)
		if err == nil && (size < 0 || mode&^0o777 != 0) {
			t.Fatalf("parseSCPHeader(%q) = %o, %d", line, mode, size)
		}
		parseSCP(strings.Fields(line))
	})
}

// FuzzSCPSink runs the legacy scp receiver over arbitrary client input: it never panics, never
// hangs, and whatever it accepts stays inside the account's projects with valid paths.
func FuzzSCPSink(f *testing.F) {
	for _, s := range []string{
		"C0644 4 keep\nkeep\x00",
		"D0755 0 sub\nC0644 1 x\nx\x00E\n",
		"T1700000000 0 1700000000 0\nC0644 2 t\nhi\x00",
		"C0644 1 ..\nx\x00",
		"D0755 0 a\nD0755 0 b\nE\nE\nE\n",
		"C0644 5 x\nab",
		"\x01warning\nC0644 1 y\ny\x00",
	} {
		f.Add(s, true)
	}
	store := dbtest.SQLite(f)
	ctx := context.Background()
	acct, _, err := store.CreateAccount(ctx, "alice", newFuzzKey())
	if err != nil {
		f.Fatal(err)
	}
	blobs, err := blob.NewFS(filepath.Join(f.TempDir(), "blobs"))
	if err != nil {
		f.Fatal(err)
	}
	svc := New(Options{Store: store, Blobs: blobs, Limits: Limits{KeepDeploys: 2, MaxFile: 1 << 20, MaxFiles: 100, Quota: 4 << 20},
		LockWait: time.Second})
	grant := auth.Grant{AccountID: acct.ID, Account: "alice", Method: auth.MethodKey, Identity: "fuzz"}
	f.Fuzz(func(t *testing.T, input string, recursive bool) {
		ss := svc.newSession(ctx, grant, "scp", true, io.Discard)
		o := scpOptions{sink: true, recursive: recursive, paths: []string{"/site/"}}
		k := &scpSink{s: ss, in: bufio.NewReader(strings.NewReader(input)), out: io.Discard, o: o}
		done := make(chan bool, 1)
		go func() { done <- k.run() }()
		var clean bool
		select {
		case clean = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("the scp receiver hangs on %q", input)
		}
		ss.mu.Lock()
		for _, d := range ss.deploys {
			d.work.walk("", func(p string, _ File) {
				if err := sitepath.CheckRel(p); err != nil {
					t.Errorf("%q made the path %q: %v", input, p, err)
				}
			})
		}
		ss.mu.Unlock()
		ss.finish(clean)
	})
}
