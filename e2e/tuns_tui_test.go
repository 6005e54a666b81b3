package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTUITunnels opens an HTTP tunnel with ssh -N -R, visits it once, and sees it on the admin
// TUI's Tunnels page (through tmux and ssh -t) with its URL, kind, identity and request count.
func TestTUITunnels(t *testing.T) {
	requireTools(t, "ssh", "ssh-keygen", "tmux")
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
