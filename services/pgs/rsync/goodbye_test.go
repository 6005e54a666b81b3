package rsync

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openInput is a client stream that sends in and then stays open, as a client that stopped
// answering; it is closed at the end of the test.
func openInput(t *testing.T, in []byte) io.Reader {
	pr, pw := io.Pipe()
	go pw.Write(in)
	t.Cleanup(func() { pw.Close() })
	return pr
}

// serveWithin runs Serve and fails the test if it has not returned within a minute (far longer
// than the shortened goodbye timeout; without it Serve would wait until the input closes).
func serveWithin(t *testing.T, command string, in io.Reader, fsys FS) (int, string) {
	t.Helper()
	old := goodbyeTimeout
	goodbyeTimeout = 50 * time.Millisecond
	t.Cleanup(func() { goodbyeTimeout = old })
	var o, e bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- Serve(context.Background(), command, in, &o, &e, fsys) }()
	select {
	case code := <-done:
		return code, o.String() + e.String()
	case <-time.After(time.Minute):
		t.Fatal("the session still waits for the client's goodbye")
		return 0, ""
	}
}

// TestServeBoundsGoodbyeWait: after the server's goodbye, a client that never says its own does
// not hold the session: an upload ends (its files committed), a download ends with an error.
func TestServeBoundsGoodbyeWait(t *testing.T) {
	c := newClient32()
	c.entry(".", sIFDIR|0o755, 0)
	c.entry("f.txt", sIFREG|0o644, 5)
	c.data = c.enc.appendEndOfList(c.data, 0)
	c.file(1, []byte("hello"))
	c.data = append(c.data, 0, 0, 0) // three phases, no goodbye
	root := t.TempDir()
	code, out := serveWithin(t, "rsync --server -re.iLsfxCIvu --checksum-seed=4242 . dest/", openInput(t, c.bytes()), DirFS(root))
	if code != 0 {
		t.Errorf("upload: exit %d: %q", code, out)
	}
	if got, err := os.ReadFile(filepath.Join(root, "dest/f.txt")); err != nil || string(got) != "hello" {
		t.Errorf("f.txt: %q, %v", got, err)
	}

	src := t.TempDir()
	writeTree(t, src, map[string]string{"src/f.txt": "hello"})
	in := append(download32(), frame(msgData, []byte{0, 0, 0, 0})...) // three phases and the goodbye, not its last word
	code, out = serveWithin(t, "rsync --server --sender -re.iLsfxCIvu . src/", openInput(t, in), DirFS(src))
	if code != exitStream || !strings.Contains(out, "did not end the session") {
		t.Errorf("download: exit %d: %q", code, out)
	}
}
