package rsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"
)

// trackingFS counts the uploads of an FS: started, committed, aborted, and the most open at
// once. It is safe for concurrent use.
type trackingFS struct {
	FS
	failCreate string // Create fails for this name

	mu                          sync.Mutex
	created, committed, aborted int
	open, maxOpen               int
}

func (f *trackingFS) Create(name string) (Upload, error) {
	if name == f.failCreate {
		return nil, &fs.PathError{Op: "create", Path: name, Err: errors.New("refused by the test")}
	}
	up, err := f.FS.Create(name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.created++
	f.open++
	f.maxOpen = max(f.maxOpen, f.open)
	f.mu.Unlock()
	return &trackedUpload{Upload: up, fs: f}, nil
}

// check fails t unless every upload was committed or aborted, once, and at most maxOpen were
// open at once.
func (f *trackingFS) check(t *testing.T, maxOpen int) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.created != f.committed+f.aborted || f.open != 0 {
		t.Errorf("%d uploads started, %d committed, %d aborted, %d open", f.created, f.committed, f.aborted, f.open)
	}
	if f.maxOpen > maxOpen {
		t.Errorf("%d uploads open at once, want at most %d", f.maxOpen, maxOpen)
	}
}

type trackedUpload struct {
	Upload
	fs   *trackingFS
	done bool
}

func (u *trackedUpload) finish(committed bool) {
	u.fs.mu.Lock()
	defer u.fs.mu.Unlock()
	if u.done {
		u.fs.created = -1 << 30 // finished twice: check fails
		return
	}
	u.done = true
	u.fs.open--
	if committed {
		u.fs.committed++
	} else {
		u.fs.aborted++
	}
}

func (u *trackedUpload) Commit(mtime time.Time, perm fs.FileMode) error {
	u.finish(true)
	return u.Upload.Commit(mtime, perm)
}

func (u *trackedUpload) Abort() error {
	u.finish(false)
	return u.Upload.Abort()
}

// TestServeFinishesEveryUpload: every upload the receiver starts is committed or aborted,
// whatever the client does with the requests (skips files, answers out of order, breaks off,
// fails a checksum), one at a time, and nothing but the verified files is left in the
// directory, no temporary file.
func TestServeFinishesEveryUpload(t *testing.T) {
	const files = 12
	content := func(i int) []byte { return fmt.Appendf(nil, "file %d\n", i) }
	for _, tt := range []struct {
		name   string
		phase0 []sentFile // files sent in the first phase
		phase1 []sentFile // the redo phase
		broken bool       // the stream ends after phase0
		want   []int      // files in the tree at the end
	}{
		{name: "all in order", phase0: seq(1, files), want: seqInts(1, files)},
		{name: "client skips files", phase0: []sentFile{{3, true}, {7, true}, {8, true}}, want: []int{3, 7, 8}},
		{name: "none sent", want: nil},
		{name: "out of order", phase0: []sentFile{{9, true}, {2, true}, {5, true}, {1, true}, {12, true}}, want: []int{1, 2, 5, 9, 12}},
		{name: "redo after skips", phase0: []sentFile{{4, false}, {10, true}}, phase1: []sentFile{{4, true}}, want: []int{4, 10}},
		{name: "broken stream", phase0: []sentFile{{1, true}, {2, true}}, broken: true, want: []int{1, 2}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeClient()
			c.entry(".", sIFDIR|0o755, 0)
			for i := 1; i <= files; i++ {
				c.entry(fmt.Sprintf("f%02d", i), sIFREG|0o644, int64(len(content(i))))
			}
			c.endList()
			for _, s := range tt.phase0 {
				c.file(int32(s.ndx), content(s.ndx), s.good)
			}
			if !tt.broken {
				c.int32(-1)
				for _, s := range tt.phase1 {
					c.file(int32(s.ndx), content(s.ndx), s.good)
				}
				c.int32(-1)
			}
			root := t.TempDir()
			fsys := &trackingFS{FS: DirFS(root)}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var out, stderr bytes.Buffer
			code := Serve(ctx, recvCommand, bytes.NewReader(c.buf.Bytes()), &out, &stderr, fsys)
			if tt.broken != (code != 0) {
				t.Errorf("exit %d (%q)", code, out.String())
			}
			want := map[string]string{"dest/": ""}
			for _, i := range tt.want {
				want[fmt.Sprintf("dest/f%02d", i)] = string(content(i))
			}
			diffTrees(t, readTree(t, root), want)
			fsys.check(t, 1)
		})
	}
}

// sentFile is a file the fake client sends, with a good or a bad checksum.
type sentFile struct {
	ndx  int
	good bool
}

func seq(from, to int) []sentFile {
	var s []sentFile
	for i := from; i <= to; i++ {
		s = append(s, sentFile{i, true})
	}
	return s
}

func seqInts(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// TestServeCreateFails: a file whose upload cannot be started is reported as the failed file,
// and the others are written.
func TestServeCreateFails(t *testing.T) {
	c := newFakeClient()
	c.entry(".", sIFDIR|0o755, 0)
	for i := 1; i <= 3; i++ {
		c.entry(fmt.Sprintf("f%d", i), sIFREG|0o644, 2)
	}
	c.endList()
	for i := 1; i <= 3; i++ {
		c.file(int32(i), []byte("ab"), true)
	}
	c.int32(-1)
	c.int32(-1)
	root := t.TempDir()
	fsys := &trackingFS{FS: DirFS(root), failCreate: "dest/f2"}
	var out, stderr bytes.Buffer
	code := Serve(context.Background(), recvCommand, bytes.NewReader(c.buf.Bytes()), &out, &stderr, fsys)
	if code != exitPartial || !strings.Contains(out.String(), `"f2" not written`) || !strings.Contains(out.String(), "refused by the test") {
		t.Errorf("exit %d, output %q", code, out.String())
	}
	diffTrees(t, readTree(t, root), map[string]string{"dest/f1": "ab", "dest/f3": "ab"})
	fsys.check(t, 1)
}
