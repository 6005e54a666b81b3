package pgs

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/services/pgs/sitepath"
)

// sftpClient opens an SFTP session with pkg/sftp's client over x/crypto/ssh.
func (h *harness) sftpClient() (*sftp.Client, func()) {
	h.t.Helper()
	conn, _ := h.goSSH("pgs")
	c, err := sftp.NewClient(conn)
	if err != nil {
		h.t.Fatal(err)
	}
	return c, func() { conn.Close() }
}

func put(t *testing.T, c *sftp.Client, path, content string, closeIt bool) {
	t.Helper()
	f, err := c.Create(path)
	if err != nil {
		t.Fatalf("create %s: %v", path, err)
	}
	if _, err := f.Write([]byte(content)); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	if closeIt {
		if err := f.Close(); err != nil {
			t.Fatalf("close %s: %v", path, err)
		}
	}
}

// waitQuiet gives the server time to finish a session that was cut.
func waitQuiet() { time.Sleep(300 * time.Millisecond) }

// What counts as success for SFTP: the client closes the channel while the connection is up
// and no file is still open for writing.
func TestSFTPSuccessRules(t *testing.T) {
	h := newHarness(t, harnessOptions{})

	// Closed cleanly between files: what was written is published.
	c, _ := h.sftpClient()
	put(t, c, "/blog/a.html", "a", true)
	c.Close()
	waitQuiet()
	mustEqualTree(t, "after a clean close", h.liveFiles("blog"), map[string]string{"a.html": "a"})

	// Closed with a file still open for writing: nothing is published.
	c, _ = h.sftpClient()
	put(t, c, "/blog/b.html", "b", true)
	put(t, c, "/blog/c.html", "c", false)
	c.Close()
	waitQuiet()
	mustEqualTree(t, "after a close with a file open", h.liveFiles("blog"), map[string]string{"a.html": "a"})

	// The connection dropped, even between files: nothing is published.
	c, drop := h.sftpClient()
	put(t, c, "/blog/d.html", "d", true)
	drop()
	waitQuiet()
	mustEqualTree(t, "after a dropped connection", h.liveFiles("blog"), map[string]string{"a.html": "a"})

	// The project is free again for the next session.
	c, _ = h.sftpClient()
	put(t, c, "/blog/e.html", "e", true)
	c.Close()
	waitQuiet()
	mustEqualTree(t, "after the next session", h.liveFiles("blog"), map[string]string{"a.html": "a", "e.html": "e"})
}

// A hostile SFTP client: paths that leave nothing, links, too many handles.
func TestSFTPBadInput(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	c, _ := h.sftpClient()
	put(t, c, "/blog/index.html", "home", true)
	// ".." resolves within the account, as SFTP servers do (the path is cleaned against "/"):
	// it never leaves it.
	if _, err := c.Stat("/blog/../../../../etc/passwd"); err == nil {
		t.Fatal("stat of /etc/passwd found something")
	}
	if fi, err := c.Stat("/../../blog/index.html"); err != nil || fi.Size() != 4 {
		t.Fatalf("stat through ..: %v %v", fi, err)
	}
	for _, p := range []string{
		"/index.html",                       // a file at the root
		"/Blog/x",                           // not a DNS label
		"/blog/a\x00b",                      // NUL
		"/blog/" + strings.Repeat("n", 256), // a segment over 255 bytes
		"/blog/\xc0\xae\xc0\xae/x",          // not UTF-8
		"/blog/" + strings.Repeat("abcdefghi/", 103) + "x", // over 1,024 bytes
	} {
		if f, err := c.Create(p); err == nil {
			f.Close()
			t.Errorf("create %q succeeded", p)
		}
	}
	if err := c.Symlink("/etc/passwd", "/blog/link"); err == nil {
		t.Error("symlink succeeded")
	}
	if err := c.Link("/blog/index.html", "/blog/hard"); err == nil {
		t.Error("hard link succeeded")
	}
	if err := c.Remove("/blog"); err == nil {
		t.Error("removing a project succeeded")
	}
	if err := c.Mkdir("/"); err == nil {
		t.Error("mkdir / succeeded")
	}
	// At most maxSFTPHandles open at once.
	var files []*sftp.File
	var err error
	for i := 0; i <= maxSFTPHandles; i++ {
		var f *sftp.File
		if f, err = c.Open("/blog/index.html"); err != nil {
			break
		}
		files = append(files, f)
	}
	if err == nil || len(files) != maxSFTPHandles {
		t.Errorf("opened %d handles, last error %v; want %d", len(files), err, maxSFTPHandles)
	}
	for _, f := range files {
		f.Close()
	}
	if f, err := c.Open("/blog/index.html"); err != nil {
		t.Errorf("open after closing the handles: %v", err)
	} else {
		f.Close()
	}
	// At most maxSFTPListings directory listings at once (each holds a directory's entries).
	hs := &sftpHandler{s: h.svc.newSession(context.Background(), auth.Grant{AccountID: h.account.ID, Account: "alice"}, "sftp", true, io.Discard),
		writers: map[string]*sftpWriter{}}
	var listers []sftp.ListerAt
	for range maxSFTPListings + 1 {
		l, err := hs.Filelist(sftp.NewRequest("List", "/"))
		if err != nil {
			break
		}
		listers = append(listers, l)
	}
	if len(listers) != maxSFTPListings {
		t.Errorf("opened %d listings, want %d", len(listers), maxSFTPListings)
	}
	for _, l := range listers {
		l.(io.Closer).Close()
	}
	if l, err := hs.Filelist(sftp.NewRequest("List", "/")); err != nil {
		t.Errorf("a listing after closing the others: %v", err)
	} else {
		l.(io.Closer).Close()
	}
	// The bad paths failed the session: nothing of it is published.
	c.Close()
	waitQuiet()
	if got := h.liveFiles("blog"); got != nil {
		t.Fatalf("published %v after bad paths", got)
	}
	// A write far past the file size limit fails at once (no sparse giant file).
	c, _ = h.sftpClient()
	put(t, c, "/blog/index.html", "home", true)
	f, err := c.Create("/blog/sparse")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("x"), 1<<40); err == nil {
		t.Error("a write at 1 TiB succeeded")
	}
	f.Close()
	c.Close()
	waitQuiet()
	// The session failed (the limit): index.html was not published either.
	if got := h.liveFiles("blog"); got != nil {
		t.Fatalf("published %v", got)
	}
}

// TestSFTPBadPathFailsDeploy: a path the site cannot hold fails the session's deploy over SFTP
// as over rsync and legacy scp; before, the file was refused and the rest went live without it.
func TestSFTPBadPathFailsDeploy(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	c, _ := h.sftpClient()
	put(t, c, "/blog/index.html", "v1", true)
	c.Close()
	waitQuiet()
	for _, bad := range []func(c *sftp.Client) error{
		func(c *sftp.Client) error { _, err := c.Create("/blog/" + strings.Repeat("n", 256)); return err },
		func(c *sftp.Client) error { return c.Mkdir("/blog/\xff") },
		func(c *sftp.Client) error { return c.Rename("/blog/new.html", "/blog/a\x00b") },
	} {
		c, _ := h.sftpClient()
		put(t, c, "/blog/new.html", "new", true)
		if err := bad(c); err == nil {
			t.Fatal("a bad path was taken")
		}
		c.Close()
		waitQuiet()
		mustEqualTree(t, "after a bad path", h.liveFiles("blog"), map[string]string{"index.html": "v1"})
	}
}

// TestSFTPRenameKeepsSourceOnFailure: a rename into another project that cannot take the
// directory (the bound on directories) is refused before anything moves; before, the source
// was taken out first and lost, and the session went on to publish without it.
func TestSFTPRenameKeepsSourceOnFailure(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	hs := &sftpHandler{s: h.svc.newSession(context.Background(), auth.Grant{AccountID: h.account.ID, Account: "alice"}, "sftp", true, io.Discard),
		writers: map[string]*sftpWriter{}}
	for _, dir := range []string{"/one", "/one/d", "/one/d/e", "/two"} {
		if err := hs.Filecmd(sftp.NewRequest("Mkdir", dir)); err != nil {
			t.Fatalf("mkdir %s: %v", dir, err)
		}
	}
	hs.s.mu.Lock()
	hs.s.deploys["two"].work.dirs = maxTreeDirs - 1
	hs.s.mu.Unlock()
	req := sftp.NewRequest("Rename", "/one/d")
	req.Target = "/two/d"
	if err := hs.Filecmd(req); err == nil {
		t.Fatal("the rename past the directory bound succeeded")
	}
	if fi, err := hs.s.stat(sitepath.Path{Project: "one", Rel: "d/e"}); err != nil || !fi.IsDir() {
		t.Fatalf("one/d/e after the refused rename: %v %v", fi, err)
	}
}
