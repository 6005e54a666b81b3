package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// screenTimeout bounds how long the TUI may take to show what a test waits for.
const screenTimeout = 10 * time.Second

// tmuxPane is one tmux session, on its own tmux server, running a command in a 120x40 pane.
type tmuxPane struct {
	t          *testing.T
	socket     string
	env        []string
	statusFile string // where the command's exit status is written when it ends
}

// startTmux runs command in dir in a detached 120x40 tmux session on a tmux server of its own
// called name. The pane stays after the command exits, so that its last words can be read,
// and the command's exit status is written to a file (tmux may not know it yet when the pane
// is already dead).
func startTmux(t *testing.T, dir, name string, env []string, command string) *tmuxPane {
	t.Helper()
	conf := filepath.Join(dir, "tmux.conf")
	if err := os.WriteFile(conf, []byte("set -g remain-on-exit on\nset -g default-terminal xterm-256color\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &tmuxPane{t: t, socket: filepath.Join(dir, name+".sock"), env: env, statusFile: filepath.Join(dir, name+".status")}
	command += "; echo $? >" + p.statusFile
	p.run("-f", conf, "new-session", "-d", "-s", "tui", "-c", dir, "-x", "120", "-y", "40", command)
	t.Cleanup(func() { _ = p.command("kill-server").Run() })
	return p
}

func (p *tmuxPane) command(args ...string) *exec.Cmd {
	cmd := exec.Command("tmux", append([]string{"-S", p.socket}, args...)...)
	cmd.Env = p.env
	return cmd
}

func (p *tmuxPane) run(args ...string) string {
	p.t.Helper()
	out, err := p.command(args...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// screen is what the pane shows now.
func (p *tmuxPane) screen() string {
	p.t.Helper()
	return p.run("capture-pane", "-p", "-t", "tui")
}

// keys sends tmux key names (Enter, Escape, ...) or single characters.
func (p *tmuxPane) keys(keys ...string) {
	p.t.Helper()
	p.run(append([]string{"send-keys", "-t", "tui"}, keys...)...)
}

// typeText types text literally.
func (p *tmuxPane) typeText(text string) {
	p.t.Helper()
	p.run("send-keys", "-t", "tui", "-l", text)
}

// paste pastes text as a terminal does (bracketed, if the application asked for it).
func (p *tmuxPane) paste(text string) {
	p.t.Helper()
	p.run("set-buffer", "-b", "clip", text)
	p.run("paste-buffer", "-p", "-d", "-b", "clip", "-t", "tui")
}

// waitFor polls the screen until it shows every one of texts, and returns it.
func (p *tmuxPane) waitFor(texts ...string) string {
	p.t.Helper()
	deadline := time.Now().Add(screenTimeout)
	for {
		s := p.screen()
		missing := ""
		for _, text := range texts {
			if !strings.Contains(s, text) {
				missing = text
				break
			}
		}
		if missing == "" {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("after %v the screen does not show %q:\n%s", screenTimeout, missing, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitWithout polls the screen until it no longer shows text, and returns it.
func (p *tmuxPane) waitWithout(text string) string {
	p.t.Helper()
	deadline := time.Now().Add(screenTimeout)
	for {
		s := p.screen()
		if !strings.Contains(s, text) {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("after %v the screen still shows %q:\n%s", screenTimeout, text, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitExit waits until the pane's command has exited and returns its exit status.
func (p *tmuxPane) waitExit() string {
	p.t.Helper()
	deadline := time.Now().Add(screenTimeout)
	for {
		if status, err := os.ReadFile(p.statusFile); err == nil && len(status) > 0 {
			return strings.TrimSpace(string(status))
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the pane's command has not exited after %v:\n%s", screenTimeout, p.screen())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestTUI signs up in the TUI, adds a CA by pasting its public key, sees a certificate's
// connection in the access log, reads the help page's recipes, and removes the CA with
// confirmation: through tmux and OpenSSH's ssh -t, as a user would.
func TestTUI(t *testing.T) {
	requireTools(t, "ssh", "ssh-keygen", "tmux")
	requirePostgresEverywhere(t)
	t.Parallel()
	const domain = "portico.test"
	srv := startTUIServer(t, withServeFlags("--domain", domain), unregistered())
	dir, env, e, run := srv.dir, srv.env, srv.e, srv.output
	for _, k := range [][2]string{{"desktop", "alice@desktop"}, {"ca", "teamca"}, {"bob", "bob@laptop"},
		{"claimkey", "claim"}, {"tablet", "alice@tablet"}, {"carol", "carol@team"}} {
		srv.run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k[0], "-C", k[1])
	}

	// An unregistered key with a terminal gets the signup form.
	pane := startTmux(t, dir, "signup", env, "ssh -F ssh_config -t -i alice "+loopback)
	pane.waitFor("Sign up", "Account name")
	pane.typeText("alice")
	pane.waitFor("> alice")
	pane.keys("Enter")
	pane.waitFor("Account name", "alice", "created", "Login keys")

	// Keys page: add a login key, then a CA, by pasting their public keys.
	pubKey := func(name string) string {
		line, err := os.ReadFile(filepath.Join(dir, name+".pub"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(line))
	}
	// The login key waits to be claimed: the page prints the command that claims it, which
	// its holder runs with the key.
	pane.keys("2")
	pane.waitFor("NAME", "FINGERPRINT", "add login key", "add CA key")
	pane.keys("a")
	pane.waitFor("Add login key")
	pane.paste(pubKey("desktop"))
	pane.keys("Enter")
	screen := pane.waitFor(`Claim login key "alice@desktop"`, "Added login key", "ssh -o IdentitiesOnly=yes -i ~/.ssh/id_ed25519 -p "+strconv.Itoa(e.SSHPort)+" admin@"+domain+" keys claim ")
	code := claimCode.FindStringSubmatch(screen)
	if code == nil {
		t.Fatalf("no claim command on the screen:\n%s", screen)
	}
	if out, err := run("ssh", "-F", "ssh_config", "-i", "desktop", "admin@"+loopback, "whoami"); err == nil || strings.Contains(out, "alice") {
		t.Errorf("the pending login key logs in: %v\n%s", err, out)
	}
	if out, err := run("ssh", "-F", "ssh_config", "-i", "desktop", "admin@"+loopback, "keys", "claim", code[1]); err != nil {
		t.Fatalf("keys claim %s: %v\n%s", code[1], err, out)
	}
	if out, err := run("ssh", "-F", "ssh_config", "-i", "desktop", "admin@"+loopback, "whoami"); err != nil || !strings.Contains(out, "alice") {
		t.Errorf("the login key added in the TUI and claimed: %v\n%s", err, out)
	}
	// The page shows it active once reloaded.
	pane.keys("Enter")
	pane.keys("r")
	pane.waitWithout("pending")

	// The CA waits too: the page prints the ssh-keygen command for its code, and takes the
	// certificate that writes.
	pane.keys("c")
	pane.waitFor("Add CA key")
	pane.paste(pubKey("ca"))
	pane.keys("Enter")
	screen = pane.waitFor("teamca", "Added certificate authority", "ssh-keygen -s CA_KEY -I portico-claim -n ", "Certificate: >")
	caCode := regexp.MustCompile(`-n ([2-9A-HJKMNP-Z]{8}) -V \+15m`).FindStringSubmatch(screen)
	if caCode == nil {
		t.Fatalf("no ssh-keygen command on the screen:\n%s", screen)
	}
	if out, err := run("ssh-keygen", "-q", "-s", "ca", "-I", "portico-claim", "-n", caCode[1], "-V", "+15m", "claimkey.pub"); err != nil {
		t.Fatalf("ssh-keygen -s: %v\n%s", err, out)
	}
	pane.paste(pubKey("claimkey-cert"))
	pane.keys("Enter")
	pane.waitFor("Claimed certificate authority", "teamca")
	pane.waitWithout("pending")

	// A certificate signed by that CA connects (pgs answers without a command with its usage:
	// exit status 2).
	if out, err := run("ssh-keygen", "-q", "-s", "ca", "-I", "bob@laptop", "-n", "pgs", "-V", "+1h", "-z", "42", "bob.pub"); err != nil {
		t.Fatalf("ssh-keygen -s: %v\n%s", err, out)
	}
	out, err := run("ssh", "-F", "ssh_config", "-i", "bob", "pgs@"+loopback)
	if status := exitStatus(err); status != 2 || !strings.Contains(out, "portico pgs") {
		t.Fatalf("bob's certificate as pgs@: exit status %d, output:\n%s", status, out)
	}

	// The access log page shows it, once the gateway's writer has written it (in batches): the
	// page shows what it read, so it is reloaded (r) until then.
	pane.keys("3")
	pane.waitFor("Access log")
	for deadline := time.Now().Add(screenTimeout); !strings.Contains(pane.screen(), "bob@laptop"); {
		if time.Now().After(deadline) {
			t.Fatalf("after %v the access log does not show bob@laptop:\n%s", screenTimeout, pane.screen())
		}
		time.Sleep(200 * time.Millisecond)
		pane.keys("r")
	}
	pane.waitFor("Access log", "bob@laptop", "pgs")

	// Revocations page: revoke serial 42, and bob is refused; lift it, with confirmation, and
	// he is let in again.
	bobAsPGS := func() (int, string) {
		out, err := run("ssh", "-F", "ssh_config", "-i", "bob", "-o", "PubkeyAcceptedAlgorithms=ssh-ed25519-cert-v01@openssh.com", "pgs@"+loopback)
		return exitStatus(err), out
	}
	pane.keys("4")
	pane.waitFor("Revocations")
	pane.keys("a")
	pane.waitFor("Add revocation", "Serial")
	pane.typeText("42")
	pane.waitFor("> 42")
	pane.keys("Enter")
	pane.waitFor("Added revocation", "serial 42")
	if status, out := bobAsPGS(); status != 255 || !strings.Contains(out, "revoked") {
		t.Errorf("bob's revoked certificate as pgs@: exit status %d, output:\n%s", status, out)
	}
	pane.keys("d")
	pane.waitFor("Lift revocation", "y/n")
	pane.keys("y")
	pane.waitFor("Lifted revocation")
	if status, out := bobAsPGS(); status != 2 { // let in: pgs prints its usage
		t.Errorf("bob's certificate after the revocation was lifted: exit status %d, output:\n%s", status, out)
	}

	// Principals page: carol's certificate names her team, web-team, which grants nothing until
	// the page maps it to pgs.
	if out, err := run("ssh-keygen", "-q", "-s", "ca", "-I", "carol@team", "-n", "web-team", "-V", "+1h", "carol.pub"); err != nil {
		t.Fatalf("ssh-keygen -s: %v\n%s", err, out)
	}
	carolAsPGS := func() (int, string) {
		out, err := run("ssh", "-F", "ssh_config", "-i", "carol", "-o", "PubkeyAcceptedAlgorithms=ssh-ed25519-cert-v01@openssh.com", "pgs@"+loopback)
		return exitStatus(err), out
	}
	if status, out := carolAsPGS(); status != 255 || !strings.Contains(out, "does not grant") {
		t.Errorf("carol's certificate for web-team before the mapping: exit status %d, output:\n%s", status, out)
	}
	pane.keys("5")
	pane.waitFor("Principals", "No principals mapped")
	pane.keys("a")
	pane.waitFor("Map a principal", "Services:")
	pane.typeText("web-team")
	pane.keys("Tab")
	pane.typeText("pgs")
	pane.waitFor("> pgs")
	pane.keys("Enter")
	pane.waitFor("Mapped principal web-team: pgs.", "any address")
	if status, out := carolAsPGS(); status != 2 { // let in: pgs prints its usage
		t.Errorf("carol's certificate for web-team once mapped to pgs: exit status %d, output:\n%s", status, out)
	}

	// The help page's recipes are filled in with this server's host and port.
	pane.keys("6")
	seen := pane.waitFor("Help", "ssh-keygen -s")
	pane.keys("End")
	time.Sleep(200 * time.Millisecond)
	seen += pane.screen()
	for _, want := range []string{domain, strconv.Itoa(e.SSHPort), "CertificateFile"} {
		if !strings.Contains(seen, want) {
			t.Errorf("help page does not show %q:\n%s", want, seen)
		}
	}

	// Remove the CA, with confirmation; bob's certificate stops working at once.
	pane.keys("2")
	pane.waitFor("teamca")
	pane.keys("d")
	pane.waitFor(`Remove certificate authority "teamca"`)
	pane.keys("y")
	pane.waitFor(`Removed certificate authority "teamca"`)
	if status, out := bobAsPGS(); status != 255 || !strings.Contains(out, "unknown certificate authority") {
		t.Errorf("bob's certificate after its CA was removed: exit status %d, output:\n%s", status, out)
	}

	// q quits; ssh ends with exit status 0.
	pane.keys("q")
	if status := pane.waitExit(); status != "0" {
		t.Errorf("ssh -t exited with status %q after q:\n%s", status, pane.screen())
	}

	// A pending key with a terminal gets the claim prompt (signups are open: the sign-up form
	// too); its code makes it a login key, and the account's pages open.
	out, err = run("sh", "-c", "ssh -F ssh_config -i alice admin@"+loopback+" keys add < tablet.pub")
	code = claimCode.FindStringSubmatch(out)
	if err != nil || code == nil {
		t.Fatalf("keys add: %v\n%s", err, out)
	}
	pane = startTmux(t, dir, "claim", env, "ssh -F ssh_config -t -i tablet admin@"+loopback)
	pane.waitFor("Claim this key", "Claim code:", "Account name:")
	pane.typeText(code[1])
	pane.keys("Enter")
	pane.waitFor("portico | alice", `Key "alice@tablet" is now a login key of account alice.`)
	pane.keys("q")
	pane.waitExit()

	// A registered key with a terminal opens the TUI on the account overview.
	pane = startTmux(t, dir, "again", env, "ssh -F ssh_config -t -i alice admin@"+loopback)
	pane.waitFor("Account name", "alice", "login key", "Login keys")

	// SIGTERM while that session is open: the server drains, ends the session and exits 0.
	if err := srv.server.stop(); err != nil {
		t.Error(err)
	}
	pane.waitExit()
}

// claimCode finds the code in a printed claim command.
var claimCode = regexp.MustCompile(`keys claim ([2-9A-HJKMNP-Z]{8})`)

// exitStatus is the exit status of a finished command's error (0 for nil, -1 if unknown).
func exitStatus(err error) int {
	if err == nil {
		return 0
	}
	if exitErr, ok := err.(*exec.ExitError); ok {
		return exitErr.ExitCode()
	}
	return -1
}
