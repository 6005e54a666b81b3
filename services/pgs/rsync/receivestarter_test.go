package rsync

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// refusingFS refuses every destination before the transfer.
type refusingFS struct {
	FS
	dest string
}

func (f *refusingFS) StartReceive(dest string) error {
	f.dest = dest
	return errors.New("no uploads here")
}

// An FS that refuses the destination refuses the session before anything is written; downloads
// do not ask it.
func TestReceiveStarter(t *testing.T) {
	fsys := &refusingFS{FS: DirFS(t.TempDir())}
	var stdout, stderr bytes.Buffer
	code := Serve(context.Background(), "rsync --server -vre.iLsfxCIvu . /site/", strings.NewReader(""), &stdout, &stderr, fsys)
	if code != exitFileSelect || stdout.Len() != 0 || !strings.Contains(stderr.String(), "no uploads here") || fsys.dest != "/site/" {
		t.Fatalf("exit %d, stdout %q, stderr %q, dest %q", code, stdout.String(), stderr.String(), fsys.dest)
	}
	fsys.dest = ""
	stderr.Reset()
	Serve(context.Background(), "rsync --server --sender -vre.iLsfxCIvu . /site/", strings.NewReader(""), &stdout, &stderr, fsys)
	if fsys.dest != "" {
		t.Fatalf("a download asked StartReceive(%q)", fsys.dest)
	}
}
