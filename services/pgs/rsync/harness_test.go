package rsync

import (
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// failOpenEnv names a file whose Open fails in the test server (an unreadable file; the tests
// run as root, so permissions cannot make one).
const failOpenEnv = "PORTICO_RSYNC_TEST_FAIL_OPEN"

// keepUntilEnv, when set to Unix seconds, makes the test server's FS keep no modification time
// later than that (keepingFS), as an FS that cannot store every time a client sends.
const keepUntilEnv = "PORTICO_RSYNC_TEST_KEEP_UNTIL"

// testFS is the FS the test server uses: fsys, with Open failing for the file named in
// failOpenEnv, or keeping times only until keepUntilEnv.
func testFS(fsys FS) FS {
	if name := os.Getenv(failOpenEnv); name != "" {
		return failingFS{fsys, name}
	}
	if v := os.Getenv(keepUntilEnv); v != "" {
		until, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			panic(keepUntilEnv + ": " + err.Error())
		}
		return keepingFS{fsys, time.Unix(until, 0)}
	}
	return fsys
}

// keepingFS stores no modification time later than until: later ones become until (a
// TimeKeeper).
type keepingFS struct {
	FS
	until time.Time
}

func (f keepingFS) KeptTime(t time.Time) time.Time {
	if t.After(f.until) {
		return f.until
	}
	return t
}

func (f keepingFS) Chtimes(name string, mtime time.Time) error {
	return f.FS.Chtimes(name, f.KeptTime(mtime))
}

func (f keepingFS) Create(name string) (Upload, error) {
	u, err := f.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return keepingUpload{u, f}, nil
}

type keepingUpload struct {
	Upload
	fs keepingFS
}

func (u keepingUpload) Commit(mtime time.Time, perm fs.FileMode) error {
	return u.Upload.Commit(u.fs.KeptTime(mtime), perm)
}

type failingFS struct {
	FS
	name string
}

func (f failingFS) Open(name string) (File, error) {
	if name == f.name {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return f.FS.Open(name)
}

// rsyncClient returns the path of the real rsync client; under CI=true its absence fails.
func rsyncClient(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("rsync")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("rsync client not installed (required under CI=true)")
		}
		t.Skip("rsync client not installed")
	}
	return p
}
