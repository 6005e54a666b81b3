package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tuiServer is a portico serve for a TUI test driven through tmux: its directory, the
// environment its tools run in, its addresses, the server, and the key file "alice" in the
// directory (ssh -F ssh_config -i alice reaches it), registered as alice's account unless the
// test asked for unregistered.
type tuiServer struct {
	dir    string
	env    []string
	e      endpoints
	server *server
	t      *testing.T
}

// tuiOption changes what startTUIServer starts.
type tuiOption func(*tuiSetup)

type tuiSetup struct {
	flags      []string // serve flags besides the listeners, data directory and database
	unregister bool     // alice's key is made but not registered
}

// withServeFlags adds flags to portico serve's.
func withServeFlags(flags ...string) tuiOption {
	return func(s *tuiSetup) { s.flags = append(s.flags, flags...) }
}

// unregistered leaves alice's key without an account, for a test that signs up in the TUI.
func unregistered() tuiOption { return func(s *tuiSetup) { s.unregister = true } }

// startTUIServer starts portico on free loopback ports (on its own Postgres database when
// every server runs on Postgres), writes known_hosts and ssh_config, makes alice's key
// (comment alice@laptop) and registers it, as opts say.
func startTUIServer(t *testing.T, opts ...tuiOption) *tuiServer {
	t.Helper()
	var setup tuiSetup
	for _, o := range opts {
		o(&setup)
	}
	// tmux sockets must have short paths; t.TempDir's can be long.
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
	args := append([]string{"--data-dir", filepath.Join(dir, "data"), "--ssh-listen", e.sshAddr(),
		"--http-listen", strings.TrimPrefix(e.httpURL(""), "http://")}, setup.flags...)
	args = append(args, databaseFlags(t)...)
	s.server, err = startServer(dir, s.env, args, filepath.Join(dir, "portico.log"), e)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.server.kill()
		if t.Failed() {
			t.Log(s.server.logTail())
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
	if !setup.unregister {
		s.run("ssh", "-F", "ssh_config", "-i", "alice", loopback, "register", "alice")
	}
	return s
}

// output runs a tool in the server's directory and environment and returns its output and
// its error.
func (s *tuiServer) output(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = s.dir, s.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// run runs a tool as output does; it fails the test if the tool fails.
func (s *tuiServer) run(name string, args ...string) string {
	s.t.Helper()
	out, err := s.output(name, args...)
	if err != nil {
		s.t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}
