package rsync

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzServeCommand feeds arbitrary command lines (and -s arguments on stdin) to Serve: it must
// not panic, must answer with one of rsync's exit statuses, and a refused command line must be
// reported on stderr before anything reaches the client. Nothing is ever written outside the
// root.
func FuzzServeCommand(f *testing.F) {
	for _, cmd := range []string{
		`rsync --server -vre.iLsfxCIvu --delete . /site/`,
		`rsync --server --sender -vlogDtpre.iLsfxCIvu . /site/`,
		`rsync --server -svre.iLsfxCIvu`,
		`rsync --server -vre.iLsfxCIvu --inplace . /site/`,
		`rsync --server -vrB1024 -@-1 --modify-window=2 --max-delete=0 . 'a b'/"c\"d"`,
		`rsync --server -r --backup-dir x --checksum-choice=md4,md4 --compress-level=0 -z . x`,
	} {
		f.Add(cmd, []byte{})
	}
	f.Add(`rsync --server -svre.iLsfxCIvu`, []byte("rsync\x00--delete\x00.\x00../x\x00\x00"))
	f.Add(`rsync --server -sre.iLsfxCIvu`, []byte("rsync\x00--inplace\x00.\x00x\x00\x00"))
	parent := f.TempDir()
	root := filepath.Join(parent, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, command string, stdin []byte) {
		var out, stderr bytes.Buffer
		code := Serve(context.Background(), command, bytes.NewReader(stdin), &out, &stderr, DirFS(root))
		switch code {
		case exitOK, exitSyntax, exitProtocol, exitUnsupported, exitFileIO, exitStream, exitPartial, exitDelLimit:
		default:
			t.Fatalf("exit status %d", code)
		}
		if out.Len() == 0 && code != exitOK && code != exitStream && !strings.HasPrefix(stderr.String(), "rsync: ") {
			t.Fatalf("exit %d without a message: %q", code, stderr.String())
		}
		if (code == exitSyntax || code == exitUnsupported) && out.Len() > 0 {
			t.Fatalf("refused (%d: %q) after writing %q to the client", code, stderr.String(), out.String())
		}
		if ents, err := os.ReadDir(parent); err != nil || len(ents) != 1 {
			t.Fatalf("wrote outside the root: %v", ents)
		}
	})
}

// FuzzServeSender feeds arbitrary client bytes to a sending session (a download) over a small
// tree: filter rules, file requests, sum heads and block checksums. It must not panic or hang,
// and a sender never changes the tree.
func FuzzServeSender(f *testing.F) {
	root := f.TempDir()
	tree := map[string]string{"site/a.txt": strings.Repeat("abcdefgh", 300), "site/d/b.txt": "b\n", "site/e/": ""}
	for name, content := range tree {
		p := filepath.Join(root, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				f.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	snapshot := func() string {
		var b strings.Builder
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			info, _ := d.Info()
			fmt.Fprintf(&b, "%s %v %d %v\n", p, info.Mode(), info.Size(), info.ModTime())
			return nil
		})
		return b.String()
	}
	before := snapshot()
	f.Fuzz(func(t *testing.T, in []byte, compress bool) {
		command := "rsync --server --sender -rlptDc . site/"
		if compress {
			command = "rsync --server --sender -rz . site/"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var out, stderr bytes.Buffer
		Serve(ctx, command, bytes.NewReader(in), &out, &stderr, DirFS(root))
		if after := snapshot(); after != before {
			t.Fatalf("the tree changed:\n%s\nwas\n%s", after, before)
		}
	})
}
