package pgs

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

func TestLegacySCP(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	requireTool(t, "scp")
	src := t.TempDir()
	files := map[string]string{"index.html": "legacy", "css/site.css": "c", "css/deep/x.js": "x"}
	writeTree(t, src, files)
	if out, errOut, code := h.scp("-O", "-r", src+"/index.html", src+"/css", remote+"/blog/"); code != 0 {
		t.Fatalf("scp -O: exit %d\n%s%s", code, out, errOut)
	}
	mustEqualTree(t, "after scp -O", h.liveFiles("blog"), files)
	// A single file to a new name, with -p.
	if out, errOut, code := h.scp("-O", "-p", src+"/index.html", remote+"/blog/copy.html"); code != 0 {
		t.Fatalf("scp -O single: exit %d\n%s%s", code, out, errOut)
	}
	// Downloads: a file, and a tree with -r.
	dst := t.TempDir()
	if out, errOut, code := h.scp("-O", remote+"/blog/copy.html", dst+"/"); code != 0 {
		t.Fatalf("scp -O download: exit %d\n%s%s", code, out, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "copy.html")); string(b) != "legacy" {
		t.Fatalf("downloaded %q", b)
	}
	if out, errOut, code := h.scp("-O", "-r", remote+"/blog", dst+"/"); code != 0 {
		t.Fatalf("scp -O -r download: exit %d\n%s%s", code, out, errOut)
	}
	files["copy.html"] = "legacy"
	mustEqualTree(t, "downloaded tree", readTree(t, filepath.Join(dst, "blog")), files)
	// A missing file is an error.
	if _, _, code := h.scp("-O", remote+"/blog/nope.html", dst+"/"); code == 0 {
		t.Fatal("scp -O of a missing file succeeded")
	}
}

// rawSCP runs `scp -t target` with the given protocol bytes from x/crypto/ssh and returns
// what the server wrote and its exit status.
func rawSCP(t *testing.T, h *harness, command string, input string) (string, string, int) {
	t.Helper()
	_, sess := h.goSSH("pgs")
	var stdout, stderr bytes.Buffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	sess.Stdin = strings.NewReader(input)
	err := sess.Run(command)
	var exit *gossh.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &exit):
		return stdout.String(), stderr.String(), exit.ExitStatus()
	}
	t.Fatalf("scp session: %v", err)
	return "", "", 0
}

func TestLegacySCPBadInput(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	// A first good deploy, which every bad transfer below must leave alone.
	good := "C0644 4 keep\nkeep\x00"
	if _, errOut, code := rawSCP(t, h, "scp -t /blog/", good); code != 0 {
		t.Fatalf("good transfer: %d %s", code, errOut)
	}
	for _, tt := range []struct{ name, command, input, want string }{
		{"dotdot name", "scp -t /blog/", "C0644 1 ..\nx\x00", "unexpected file name"},
		{"slash in name", "scp -t /blog/", "C0644 1 ../../etc/passwd\nx\x00", "unexpected file name"},
		{"dotdot dir", "scp -r -t /blog/", "D0755 0 ..\nE\n", "unexpected file name"},
		{"target with dotdot", "scp -t /blog/../other/", "C0644 1 x\nx\x00", `".." segments`},
		{"absolute target outside", "scp -t /", "C0644 1 x\nx\x00", "scp to / is refused"},
		{"NUL in name", "scp -t /blog/", "C0644 1 a\x00b\nx\x00", "NUL"},
		{"long name", "scp -t /blog/", "C0644 1 " + strings.Repeat("n", 300) + "\nx\x00", "longer than 255"},
		{"long line", "scp -t /blog/", "C0644 1 " + strings.Repeat("n", 5000) + "\nx\x00", "longer than 2048"},
		{"bad utf8", "scp -t /blog/", "C0644 1 \xc0\xae\xc0\xae\nx\x00", "UTF-8"},
		{"unclosed directory", "scp -r -t /blog/", "D0755 0 sub\nC0644 1 x\nx\x00", "inside an open directory"},
		{"unbalanced end", "scp -r -t /blog/", "E\n", "unbalanced"},
		{"cut inside a file", "scp -t /blog/", "C0644 10 x\nabc", "ended inside"},
		{"client error after data", "scp -t /blog/", "C0644 1 x\nx\x01read error\n", "could not send"},
		{"dir without -r", "scp -t /blog/", "D0755 0 sub\nE\n", "without -r"},
		{"bad header", "scp -t /blog/", "Cxyz 1 x\nx\x00", "bad mode"},
		{"unknown line", "scp -t /blog/", "X\n", "unexpected protocol line"},
	} {
		out, errOut, code := rawSCP(t, h, tt.command, tt.input)
		if code == 0 || !strings.Contains(out+errOut, tt.want) {
			t.Errorf("%s: exit %d, output %q %q; want failure saying %q", tt.name, code, out, errOut, tt.want)
		}
	}
	mustEqualTree(t, "after bad transfers", h.liveFiles("blog"), map[string]string{"keep": "keep"})
	if files := h.liveFiles("other"); files != nil {
		t.Fatalf("a project other appeared: %v", files)
	}
}

// A client that vanishes mid-file publishes nothing.
func TestLegacySCPClientVanishes(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	client, sess := h.goSSH("pgs")
	stdin, _ := sess.StdinPipe()
	stdout, _ := sess.StdoutPipe()
	if err := sess.Start("scp -t /blog/"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	io.ReadFull(stdout, buf)
	stdin.Write([]byte("C0644 1000 big\n" + strings.Repeat("x", 500)))
	io.ReadFull(stdout, buf)
	time.Sleep(100 * time.Millisecond)
	client.Close() // the connection drops mid-file
	time.Sleep(300 * time.Millisecond)
	if files := h.liveFiles("blog"); files != nil {
		t.Fatalf("a cut transfer published %v", files)
	}
}

// TestSCPDownloadNewlineName: a name with a newline (sites may hold one: it is valid UTF-8)
// cannot be carried by the legacy protocol, whose headers end at a newline: sent as it is, the
// rest of the name read as the next protocol line, making the client write a file the server
// chose as if it were another. Such a file is skipped with a warning; the others arrive.
func TestSCPDownloadNewlineName(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	requireTool(t, "scp")
	c, _ := h.sftpClient()
	put(t, c, "/blog/index.html", "home", true)
	put(t, c, "/blog/x\nC0644 4 injected", "evil", true)
	c.Close()
	waitQuiet()
	dst := t.TempDir()
	out, errOut, code := h.scp("-O", "-r", remote+"/blog", dst+"/")
	if code == 0 || !strings.Contains(errOut, "newline") {
		t.Errorf("scp -O -r of a tree with a newline in a name: exit %d\n%s%s", code, out, errOut)
	}
	mustEqualTree(t, "downloaded", readTree(t, filepath.Join(dst, "blog")), map[string]string{"index.html": "home"})
}

// TestFarMTime: a client may send any modification time (scp's T line, rsync's varlong, SFTP's
// setstat); one past year 9999 made `ls PROJECT --json` fail (JSON times stop there) and
// Last-Modified unreadable. Times are kept within years 1 to 9999.
func TestFarMTime(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	in := "T300000000000 0 300000000000 0\nC0644 4 far\nfar!\x00"
	if _, errOut, code := rawSCP(t, h, "scp -p -t /blog/", in); code != 0 {
		t.Fatalf("transfer: %d %s", code, errOut)
	}
	out, errOut, code := h.ssh("ls", "blog", "--json")
	if code != 0 || !strings.Contains(out, `"modified": "9999-12-31T23:59:59Z"`) {
		t.Fatalf("ls blog --json: exit %d\n%s%s", code, out, errOut)
	}
	if code, body, hdr := h.get("blog", "/far"); code != 200 || body != "far!" || hdr.Get("Last-Modified") != "Fri, 31 Dec 9999 23:59:59 GMT" {
		t.Fatalf("GET /far: %d %q %v", code, body, hdr)
	}
}
