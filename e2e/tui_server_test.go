package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tuiServer is a portico serve for a TUI test driven through tmux: its directory, the
// environment its tools run in, its addresses, and alice's account registered with the key
// file "alice" in the directory (ssh -F ssh_config -i alice reaches it).
type tuiServer struct {
	dir string
	env []string
	e   endpoints
	t   *testing.T
}

// startTUIServer starts portico on free loopback ports (on its own Postgres database when
// every server runs on Postgres), writes known_hosts and ssh_config, and registers alice.
func startTUIServer(t *testing.T) *tuiServer {
	t.Helper()
	dir, err := os.MkdirTemp("", "portico-tui-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e, err := newEndpoints()
	if err != nil {
		t.Fatal(err)
	}
	s := &tuiServer{dir: dir, e: e, t: t,
		env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir, "LANG=C.UTF-8"}}
	args := []string{"--data-dir", filepath.Join(dir, "data"), "--ssh-listen", e.sshAddr(),
		"--http-listen", strings.TrimPrefix(e.httpURL(""), "http://")}
	if postgresEverywhere() {
		name, dbURL, err := createDatabase()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := dropDatabase(name); err != nil {
				t.Error(err)
			}
		})
		args = append(args, "--database-url", dbURL)
	}
	srv, err := startServer(dir, s.env, args, filepath.Join(dir, "portico.log"), e)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.kill()
		if t.Failed() {
			t.Log(srv.logTail())
		}
	})
	knownHosts := filepath.Join(dir, "known_hosts")
	if err := writeKnownHosts(knownHosts, e); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ssh_config"), []byte(sshConfig(e, knownHosts)), 0o644); err != nil {
		t.Fatal(err)
	}
	s.run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "alice", "-C", "alice@laptop")
	s.run("ssh", "-F", "ssh_config", "-i", "alice", loopback, "register", "alice")
	return s
}

// run runs a tool in the server's directory and environment and returns its output; it fails
// the test if the tool fails.
func (s *tuiServer) run(name string, args ...string) string {
	s.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = s.dir, s.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}
