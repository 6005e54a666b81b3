package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLiveAccessAcrossGateways: two `portico serve` share one Postgres database; a revocation
// made through one gateway ends, within seconds, a connection that the other let in, with the
// reason on its session's stderr.
func TestLiveAccessAcrossGateways(t *testing.T) {
	requireTools(t, "ssh", "ssh-keygen")
	if os.Getenv("PORTICO_TEST_DATABASE_URL") == "" {
		if inCI() {
			t.Fatal("PORTICO_TEST_DATABASE_URL is required (CI=true)")
		}
		t.Skip("PORTICO_TEST_DATABASE_URL not set")
	}
	name, dbURL, err := createDatabase()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropDatabase(name) })
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return string(out)
	}
	for _, k := range []string{"alice", "ca", "claimkey", "bob"} {
		run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k, "-C", k)
	}

	// Two gateways, one database.
	var gws [2]endpoints
	for i := range gws {
		if gws[i], err = newEndpoints(); err != nil {
			t.Fatal(err)
		}
		data := filepath.Join(dir, "data"+strconv.Itoa(i))
		s, err := startServer(dir, nil, []string{"--database-url", dbURL, "--data-dir", data,
			"--ssh-listen", gws[i].sshAddr(), "--http-listen", strings.TrimPrefix(gws[i].httpURL(""), "http://")},
			filepath.Join(dir, "portico"+strconv.Itoa(i)+".log"), gws[i])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.stop(); err != nil {
				t.Errorf("gateway %d: %v", i, err)
			}
		})
	}
	configs := make([]string, len(gws))
	for i, e := range gws {
		knownHosts := filepath.Join(dir, "known_hosts"+strconv.Itoa(i))
		if err := writeKnownHosts(knownHosts, e); err != nil {
			t.Fatal(err)
		}
		configs[i] = filepath.Join(dir, "ssh_config"+strconv.Itoa(i))
		if err := os.WriteFile(configs[i], []byte(sshConfig(e, knownHosts)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ssh := func(gw int, stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command("ssh", append([]string{"-F", configs[gw]}, args...)...)
		cmd.Dir = dir
		cmd.Stdin = strings.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("ssh %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return string(out)
	}

	// Alice signs up and adds her CA through gateway 0.
	ssh(0, "", "-i", "alice", loopback, "register", "alice")
	caPub, err := os.ReadFile(filepath.Join(dir, "ca.pub"))
	if err != nil {
		t.Fatal(err)
	}
	var added struct{ Claim struct{ Code string } }
	if err := json.Unmarshal([]byte(ssh(0, string(caPub), "-i", "alice", "admin@"+loopback, "keys", "add", "--ca", "--json")), &added); err != nil {
		t.Fatal(err)
	}
	run("ssh-keygen", "-q", "-s", "ca", "-I", "portico-claim", "-n", added.Claim.Code, "-V", "+15m", "claimkey.pub")
	claim, err := os.ReadFile(filepath.Join(dir, "claimkey-cert.pub"))
	if err != nil {
		t.Fatal(err)
	}
	ssh(0, string(claim), "-i", "alice", "admin@"+loopback, "keys", "add", "--ca")
	run("ssh-keygen", "-q", "-s", "ca", "-I", "bob@laptop", "-n", "pipe", "-V", "+1h", "bob.pub")

	// Bob subscribes through gateway 1.
	sub := exec.Command("ssh", "-F", configs[1], "-o", "CertificateFile=bob-cert.pub", "-i", "bob", "pipe@"+loopback, "sub", "-k", "news")
	sub.Dir = dir
	var subErr bytes.Buffer
	sub.Stderr = &subErr
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sub.Wait() }()
	t.Cleanup(func() { sub.Process.Kill() })
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(ssh(1, "", "-i", "alice", "pipe@"+loopback, "ls", "--json"), `"subscribers": 1`) {
		if time.Now().After(deadline) {
			t.Fatalf("bob's subscriber never joined; stderr %q", subErr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Alice revokes bob's certificate through gateway 0; gateway 1 ends bob's connection.
	ssh(0, "", "-i", "alice", "admin@"+loopback, "revoke", "--key-id", "bob@laptop")
	revoked := time.Now()
	select {
	case err := <-exited:
		t.Logf("bob's subscriber on the other gateway ended %v after the revocation (%v)", time.Since(revoked).Round(time.Millisecond), err)
		if err == nil {
			t.Error("bob's subscriber exited 0")
		}
		if !strings.Contains(subErr.String(), "revoked") {
			t.Errorf("bob's stderr %q does not say revoked", subErr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("%s", fmt.Sprintf("bob's subscriber on the other gateway still runs 15 s after the revocation; stderr %q", subErr.String()))
	}
}
