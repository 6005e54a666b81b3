package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"testing"
	"time"
)

// TestTUITunnels opens an HTTP tunnel with ssh -N -R, visits it once, and sees it on the admin
// TUI's Tunnels page (through tmux and ssh -t) with its URL, kind, identity and request count.
func TestTUITunnels(t *testing.T) {
	requireTools(t, "ssh", "ssh-keygen", "tmux")
	requirePostgresEverywhere(t)
	t.Parallel()
	srv := startTUIServer(t)
	dir, env, e := srv.dir, srv.env, srv.e

	local := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	t.Cleanup(local.Close)
	u, _ := url.Parse(local.URL)
	tunnel := exec.Command("ssh", "-F", "ssh_config", "-i", "alice", "-N", "-o", "ExitOnForwardFailure=yes",
		"-R", "dev:80:"+u.Host, "tuns@"+loopback)
	tunnel.Dir, tunnel.Env = dir, env
	if err := tunnel.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tunnel.Process.Kill()
		tunnel.Wait()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequest("GET", e.httpURL("/"), nil)
		req.Host = "alice-dev.localhost"
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && string(body) == "hello" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tunnel did not answer: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	pane := startTmux(t, dir, "tunnels", env, "ssh -F ssh_config -t -i alice "+loopback)
	pane.waitFor("Account name", "alice")
	pane.keys("8")
	pane.waitFor("Tunnels", "NAME", "dev", "http", "alice-dev.localhost", "ed25519-")
	pane.keys("q")
	if status := pane.waitExit(); status != "0" {
		t.Errorf("ssh -t exited with status %q", status)
	}
}
