package rsync

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

// lockedBuffer is a session's output that a test may read while the session (or what it left
// running) writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

// TestServeSilentAfterGoodbyeWait: once a download gave up waiting for the client's last word,
// the read left running in the background writes nothing: what the client sends then (deletion
// statistics, which the sender otherwise answers in kind) gets no answer on the output, which
// belongs to Serve's caller again (and Serve's own error message was written from another
// goroutine).
func TestServeSilentAfterGoodbyeWait(t *testing.T) {
	old := goodbyeTimeout
	goodbyeTimeout = 50 * time.Millisecond
	t.Cleanup(func() { goodbyeTimeout = old })
	src := t.TempDir()
	writeTree(t, src, map[string]string{"src/f.txt": "hello"})
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	go pw.Write(append(download32(), frame(msgData, []byte{0, 0, 0, 0})...)) // no last word
	var out, errOut lockedBuffer
	code := Serve(context.Background(), "rsync --server --sender -re.iLsfxCIvu . src/", pr, &out, &errOut, DirFS(src))
	if code != exitStream {
		t.Fatalf("download: exit %d", code)
	}
	ended := out.Len()
	// Deletion statistics, then the last word. The pipe hands the second write over only once
	// the background read asks for more, that is after it dealt with the first.
	codec := newNDXCodec(32)
	stats := codec.append(nil, ndxDelStats)
	for range 5 {
		stats = appendVarint(stats, 0)
	}
	if _, err := pw.Write(frame(msgData, stats)); err != nil {
		t.Fatal(err)
	}
	if _, err := pw.Write(frame(msgData, []byte{0})); err != nil {
		t.Fatal(err)
	}
	if n := out.Len(); n != ended {
		t.Errorf("the session wrote %d bytes after Serve returned", n-ended)
	}
}
