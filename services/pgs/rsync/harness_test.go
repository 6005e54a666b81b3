package rsync

import (
	"io/fs"
	"os"
	"os/exec"
	"testing"
)

// failOpenEnv names a file whose Open fails in the test server (an unreadable file; the tests
// run as root, so permissions cannot make one).
const failOpenEnv = "PORTICO_RSYNC_TEST_FAIL_OPEN"

// testFS is the FS the test server uses: fsys, with Open failing for the file named in
// failOpenEnv.
func testFS(fsys FS) FS {
	if name := os.Getenv(failOpenEnv); name != "" {
		return failingFS{fsys, name}
	}
	return fsys
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
