package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/internal/oidctest"
	"github.com/portico-sh/portico/internal/sshtest"
)

func TestCertifierUsage(t *testing.T) {
	ca := writeCAKey(t)
	base := []string{"certifier", "--ca", ca, "--issuer", "https://sso.example.com", "--client-id", "portico", "--map", "web=pgs"}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	tests := []struct {
		args []string
		err  string
	}{
		{[]string{"certifier", "--issuer", "https://sso.example.com", "--client-id", "p", "--map", "a=pgs"}, "--ca is required"},
		{[]string{"certifier", "--ca", ca, "--client-id", "p", "--map", "a=pgs"}, "--issuer is required"},
		{[]string{"certifier", "--ca", ca, "--issuer", "https://sso.example.com", "--map", "a=pgs"}, "--client-id is required"},
		{[]string{"certifier", "--ca", ca, "--issuer", "https://sso.example.com", "--client-id", "p"}, "--map GROUP=SERVICES is required"},
		{with("--map", "web=sites"), `"sites" is not a service`},
		{with("--map", "web=tuns"), "mapped twice"},
		{with("--issuer", "http://sso.example.com"), "plain http is only for loopback"},
		{with("--ttl", "forever"), `ttl "forever"`},
		{with("--extensions", "permit-root"), `extension "permit-root"`},
		{with("--tls-cert", "c.pem"), "go together"},
		{with("--trusted-proxies", "10.0.0.1/8"), "trusted proxies"},
		{with("--listen", "8443"), `listen "8443"`},
		{with("extra"), `unexpected argument "extra"`},
		{[]string{"certifier", "claim", "CODE"}, "--ca is required"},
		{[]string{"certifier", "claim", "--ca", ca}, "exactly one CODE"},
		{[]string{"certifier", "revoke"}, "--key-id ID or --serial N"},
		{[]string{"certifier", "revoke", "--serial", "x"}, `serial "x"`},
		{[]string{"certifier", "revoke", "--serial", "1", "--key-id", "a"}, "--key-id ID or --serial N"},
		{[]string{"login"}, "--certifier URL is required"},
		{[]string{"login", "--certifier", "https://c", "--browser", "--refresh"}, "do not go together"},
		{[]string{"ssh-config", "--certifier", "https://c"}, "--host HOST is required"},
		{[]string{"ssh-config", "--certifier", "https://c", "--host", "h", "--port", "0"}, `port "0"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, errOut := portico(t, nil, "", tt.args...)
			if code != exitUsage || !strings.Contains(errOut, tt.err) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut, tt.err)
			}
		})
	}
	for _, args := range [][]string{{"certifier", "-h"}, {"login", "-h"}, {"ssh-config", "-h"}, {"certifier", "claim", "-h"}} {
		if code, _, errOut := portico(t, nil, "", args...); code != exitOK || !strings.Contains(errOut, "usage: portico") {
			t.Errorf("%v: exit %d, %q", args, code, errOut)
		}
	}
}

// The certifier's settings: flags, defaults from the environment, the flag wins; --map repeats
// and replaces PORTICO_CERTIFIER_MAP.
func TestCertifierFlagWinsOverEnvironment(t *testing.T) {
	env := map[string]string{
		"PORTICO_CERTIFIER_CA":        "/env/ca",
		"PORTICO_CERTIFIER_ISSUER":    "https://env.example.com",
		"PORTICO_CERTIFIER_CLIENT_ID": "env-client",
		"PORTICO_CERTIFIER_MAP":       "web=pgs,tuns; ops=admin",
		"PORTICO_CERTIFIER_TTL":       "30m",
		"PORTICO_CERTIFIER_LISTEN":    ":9443",
		"PORTICO_CERTIFIER_STATE_DIR": "/env/state",
	}
	parse := func(args ...string) certifierSettings {
		var s certifierSettings
		fs := certifierFlagSet(&environment{stderr: io.Discard, getenv: func(k string) string { return env[k] }}, &s)
		if _, err := parseFlags(fs, args); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := parse()
	if s.ca != "/env/ca" || s.issuer != "https://env.example.com" || s.clientID != "env-client" || s.ttl != "30m" ||
		s.listen != ":9443" || s.stateDir != "/env/state" || s.maps.String() != "web=pgs,tuns;ops=admin" || s.groupsClaim != "groups" {
		t.Errorf("from the environment: %+v", s)
	}
	s = parse("--ca", "/flag/ca", "--map", "devs=pipe", "--map", "bots=pgs", "--ttl", "2h", "--listen", "127.0.0.1:1")
	if s.ca != "/flag/ca" || s.maps.String() != "devs=pipe;bots=pgs" || s.ttl != "2h" || s.listen != "127.0.0.1:1" || s.issuer != "https://env.example.com" {
		t.Errorf("flags: %+v", s)
	}
	var bad certifierSettings
	fs := certifierFlagSet(&environment{stderr: io.Discard, getenv: func(string) string { return "" }}, &bad)
	if _, err := parseFlags(fs, []string{"--map", "nogroup"}); err == nil || err == flag.ErrHelp {
		t.Errorf("a bad --map was accepted: %v", err)
	}
}

// writeCAKey writes an ed25519 CA key file (mode 0600) and returns its path.
func writeCAKey(t *testing.T) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "team_ca")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "team_ca")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var certifierListening = regexp.MustCompile(`msg="certifier listening" addr=(\S+)`)

// The certifier runs from its settings; portico login gets a certificate from it through the
// device flow; portico certifier revoke puts the user in GET /krl; claim prints the
// proof-of-possession certificate.
func TestCertifierCommands(t *testing.T) {
	provider := oidctest.Start(t, oidctest.Options{
		Users:   []oidctest.User{{Subject: "u1", Username: "alice", Password: "pw", Email: "alice@example.com", Groups: []string{"web-team"}}},
		Clients: []string{"portico"},
	})
	caPath := writeCAKey(t)
	state := t.TempDir()
	env := map[string]string{"PORTICO_CERTIFIER_STATE_DIR": state, "PORTICO_CONFIG_DIR": t.TempDir()}
	ctx, cancel := context.WithCancel(t.Context())
	var stderr sshtest.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"certifier", "--ca", caPath, "--issuer", provider.Issuer, "--client-id", "portico",
			"--map", "web-team=pgs,tuns", "--ttl", "20m", "--listen", "127.0.0.1:0"},
			strings.NewReader(""), io.Discard, &stderr, func(k string) string { return env[k] })
	}()
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == ""; time.Sleep(20 * time.Millisecond) {
		if m := certifierListening.FindStringSubmatch(stderr.String()); m != nil {
			url = "http://" + m[1]
		} else if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no \"certifier listening\" line:\n%s", stderr.String())
		}
	}

	// portico login, approved at the provider by a browser.
	var loginOut, loginErr sshtest.SyncBuffer
	loginDone := make(chan int, 1)
	go func() {
		loginDone <- run(t.Context(), []string{"login", "--certifier", url}, strings.NewReader(""), &loginOut, &loginErr,
			func(k string) string { return env[k] })
	}()
	device := regexp.MustCompile(`open (http\S+)\nand enter the code (\S+)\n`)
	var m []string
	for deadline := time.Now().Add(10 * time.Second); m == nil; time.Sleep(20 * time.Millisecond) {
		if m = device.FindStringSubmatch(loginErr.String()); m == nil && time.Now().After(deadline) {
			t.Fatalf("no device code:\n%s", loginErr.String())
		}
	}
	if err := oidctest.NewBrowser().ApproveDevice(t.Context(), m[1], m[2], "alice", "pw", true); err != nil {
		t.Fatal(err)
	}
	if code := <-loginDone; code != exitOK || !strings.Contains(loginOut.String(), "Logged in as alice@example.com") ||
		!strings.Contains(loginOut.String(), "principals:  pgs, tuns") || !strings.Contains(loginOut.String(), "(20m0s from now)") {
		t.Fatalf("login: exit %d\n%s\n%s", code, loginOut.String(), loginErr.String())
	}
	// Fresh: --refresh --quiet does nothing and prints nothing.
	code, out, errOut := portico(t, env, "", "login", "--certifier", url, "--refresh", "--quiet")
	if code != exitOK || out != "" || errOut != "" {
		t.Errorf("login --refresh --quiet: exit %d, %q, %q", code, out, errOut)
	}

	// ssh-config prints the block for these files.
	code, out, _ = portico(t, env, "", "ssh-config", "--certifier", url, "--host", "example.com", "--port", "2222")
	if code != exitOK || !strings.Contains(out, `exec "`) || !strings.Contains(out, "login --certifier "+url+" --config-dir "+env["PORTICO_CONFIG_DIR"]+" --refresh --quiet\"") ||
		!strings.Contains(out, filepath.Join(env["PORTICO_CONFIG_DIR"], "certifiers")) || !strings.Contains(out, "Host pgs\n  HostName example.com\n  Port 2222\n  User pgs\n") {
		t.Errorf("ssh-config: exit %d\n%s", code, out)
	}

	// Revoked: the KRL names alice, and she gets no more certificates.
	code, out, errOut = portico(t, env, "", "certifier", "revoke", "--key-id", "alice@example.com")
	if code != exitOK || !strings.Contains(out, `revoked key ID "alice@example.com": 1 certificates issued, 1 still valid`) {
		t.Errorf("revoke: exit %d, %q, %q", code, out, errOut)
	}
	if code, out, _ = portico(t, env, "", "certifier", "revoke", "--key-id", "alice@example.com"); code != exitOK || !strings.Contains(out, "already revoked") {
		t.Errorf("revoke again: exit %d, %q", code, out)
	}
	resp, err := http.Get(url + "/krl")
	if err != nil {
		t.Fatal(err)
	}
	krlBytes, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.HasPrefix(krlBytes, []byte("SSHKRL\n\x00")) || !bytes.Contains(krlBytes, []byte("alice@example.com")) {
		t.Errorf("GET /krl: %q", krlBytes)
	}

	// claim prints one certificate line signed by the CA for the code.
	code, out, errOut = portico(t, env, "", "certifier", "claim", "--ca", caPath, "K7QX2M9P")
	if code != exitOK || strings.Count(out, "\n") != 1 {
		t.Fatalf("claim: exit %d, %q, %q", code, out, errOut)
	}
	pub, _, _, _, err := gossh.ParseAuthorizedKey([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if cert := pub.(*gossh.Certificate); cert.KeyId != "portico-claim" || cert.ValidPrincipals[0] != "K7QX2M9P" {
		t.Errorf("claim certificate %+v", cert)
	}

	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("certifier exited %d:\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the certifier did not stop")
	}
	audit, err := os.ReadFile(filepath.Join(state, "audit.log"))
	if err != nil || !strings.Contains(string(audit), `"outcome":"signed"`) || !strings.Contains(string(audit), `"event":"revoke"`) {
		t.Errorf("audit log: %v\n%s", err, audit)
	}
}
