package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// TestTUISites publishes two deploys of a site with rsync, then, in the admin TUI's Sites page
// (through tmux and ssh -t), sees the project, its URL, live deploy and who deployed it, and
// rolls back to the first deploy with confirmation; the site serves it at once.
func TestTUISites(t *testing.T) {
	requireTools(t, "ssh", "ssh-keygen", "tmux", "rsync")
	requirePostgresEverywhere(t)
	t.Parallel()
	srv := startTUIServer(t)
	dir, env, e, run := srv.dir, srv.env, srv.e, srv.run
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
