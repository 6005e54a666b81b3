package e2e

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTUISites publishes two deploys of a site with rsync, then, in the admin TUI's Sites page
// (through tmux and ssh -t), sees the project, its URL, live deploy and who deployed it, and
// rolls back to the first deploy with confirmation; the site serves it at once.
func TestTUISites(t *testing.T) {
	requireTools(t, "ssh", "ssh-keygen", "tmux", "rsync")
	requirePostgresEverywhere(t)
	t.Parallel()
	dir, err := os.MkdirTemp("", "portico-tui-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e, err := newEndpoints()
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir, "LANG=C.UTF-8"}
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
	srv, err := startServer(dir, env, args, filepath.Join(dir, "portico.log"), e)
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
	config := filepath.Join(dir, "ssh_config")
	if err := os.WriteFile(config, []byte(sshConfig(e, knownHosts)), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "alice", "-C", "alice@laptop")
	run("ssh", "-F", "ssh_config", "-i", "alice", loopback, "register", "alice")
	site := filepath.Join(dir, "public")
	if err := os.MkdirAll(site, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"first version", "second, longer version"} {
		if err := os.WriteFile(filepath.Join(site, "index.html"), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
		run("rsync", "-e", "ssh -F ssh_config -i alice", "-r", "public/", "pgs@"+loopback+":/blog/")
	}
	get := func() string {
		req, _ := http.NewRequest("GET", e.httpURL("/"), nil)
		req.Host = "alice-blog.localhost"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := get(); got != "second, longer version" {
		t.Fatalf("before the rollback the site serves %q", got)
	}

	pane := startTmux(t, dir, "sites", env, "ssh -F ssh_config -t -i alice "+loopback)
	pane.waitFor("Account name", "alice")
	pane.keys("7")
	pane.waitFor("Sites", "PROJECT", "blog", "d2", "alice-blog.localhost")
	pane.keys("Enter")
	pane.waitFor("Project: blog", "DEPLOY", "d2", "live", "d1", "rsync")
	pane.keys("Down")
	pane.keys("Enter")
	pane.waitFor("Make d1 of blog live", "y/n")
	pane.keys("y")
	pane.waitFor("blog: d1 is live.")
	if got := get(); got != "first version" {
		t.Errorf("after the rollback in the TUI the site serves %q", got)
	}
	pane.keys("Escape")
	pane.waitFor("PROJECT", "d1")
	pane.keys("q")
	if status := pane.waitExit(); status != "0" {
		t.Errorf("ssh -t exited with status %q", status)
	}
}
