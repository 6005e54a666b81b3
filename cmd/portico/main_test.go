package main

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/gateway"
	"github.com/portico-sh/portico/internal/sshtest"
)

// portico runs the command in-process and returns its exit status, stdout and stderr.
func portico(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr sshtest.SyncBuffer
	code := run(t.Context(), args, strings.NewReader(stdin), &stdout, &stderr, func(k string) string { return env[k] })
	return code, stdout.String(), stderr.String()
}

func writeKey(t *testing.T) (string, gossh.Signer) {
	t.Helper()
	signer := sshtest.NewSigner(t)
	path := filepath.Join(t.TempDir(), "id_ed25519.pub")
	line := sshtest.AuthorizedKey(signer.PublicKey()) + " alice@laptop\n"
	if err := os.WriteFile(path, []byte("# alice's key\n\n"+line), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, signer
}

func TestUsageAndVersion(t *testing.T) {
	tests := []struct {
		args []string
		code int
		out  string // in stdout
		err  string // in stderr
	}{
		{nil, exitUsage, "", "usage:"},
		{[]string{"help"}, exitOK, "portico serve", ""},
		{[]string{"bogus"}, exitUsage, "", `unknown command "bogus"`},
		{[]string{"version"}, exitOK, "portico ", ""},
		{[]string{"version", "extra"}, exitUsage, "", "usage: portico version"},
		{[]string{"serve", "-h"}, exitOK, "", "-ssh-listen"},
		{[]string{"serve", "--nope"}, exitUsage, "", "flag provided but not defined"},
		{[]string{"serve", "extra"}, exitUsage, "", `unexpected argument "extra"`},
		{[]string{"serve", "--signups", "maybe"}, exitUsage, "", `signups "maybe"`},
		{[]string{"serve", "--ssh-listen", "foo"}, exitUsage, "", `ssh listen "foo"`},
		{[]string{"serve", "--ssh-listen", "pastes=:2222"}, exitUsage, "", "not a service"},
		{[]string{"serve", "--log-format", "xml"}, exitUsage, "", `log format "xml"`},
		{[]string{"serve", "--access-log-days", "0"}, exitUsage, "", "access log days"},
		{[]string{"serve", "--drain-timeout", "soon"}, exitUsage, "", "drain timeout"},
		{[]string{"serve", "--pipe-buffer", "1MB"}, exitUsage, "", "pipe buffer"},
		{[]string{"serve", "--pipe-stall-timeout", "0s"}, exitUsage, "", "pipe stall timeout"},
		{[]string{"serve", "--krl-allow-internal", "yes"}, exitUsage, "", `krl allow internal "yes"`},
		{[]string{"serve", "--krl-min-every", "0s"}, exitUsage, "", `krl min every "0s"`},
		{[]string{"serve", "--krl-min-every", "often"}, exitUsage, "", `krl min every "often"`},
		{[]string{"serve", "--pgs-keep-deploys", "0"}, exitUsage, "", "pgs keep deploys"},
		{[]string{"serve", "--pgs-quota", "1GB"}, exitUsage, "", "pgs quota"},
		{[]string{"serve", "--pgs-max-file", "-1"}, exitUsage, "", "pgs max file"},
		{[]string{"serve", "--pgs-max-files", "many"}, exitUsage, "", "pgs max files"},
		{[]string{"serve", "--pipe-max-readers", "0"}, exitUsage, "", "pipe max readers"},
		{[]string{"serve", "--max-startups", "10:30"}, exitUsage, "", "max startups"},
		{[]string{"serve", "--per-source-max-startups", "none"}, exitUsage, "", "per-source max startups"},
		{[]string{"serve", "--per-source-max-connections", "0"}, exitUsage, "", "per-source max connections"},
		{[]string{"serve", "--max-connections", "-1"}, exitUsage, "", "max connections"},
		{[]string{"serve", "--max-channels", "x"}, exitUsage, "", "max channels"},
		{[]string{"serve", "--per-source-penalty", "yes"}, exitUsage, "", "per-source penalty"},
		{[]string{"serve", "--per-source-exempt", "10.0.0.1/8"}, exitUsage, "", "per-source exempt"},
		{[]string{"account"}, exitUsage, "", "usage: portico account"},
		{[]string{"account", "remove", "alice"}, exitUsage, "", `unknown command "remove"`},
		{[]string{"account", "rm"}, exitUsage, "", "exactly one account NAME"},
		{[]string{"serve", "--signup-rate", "lots"}, exitUsage, "", `sign-up rate "lots"`},
		{[]string{"serve", "--signup-rate", "0/h"}, exitUsage, "", `sign-up rate "0/h"`},
		{[]string{"account", "create", "alice"}, exitUsage, "", "--key FILE is required"},
		{[]string{"account", "create", "--key", "k.pub"}, exitUsage, "", "exactly one account NAME"},
		{[]string{"account", "ls", "extra"}, exitUsage, "", "unexpected argument"},
		{[]string{"migrate", "extra"}, exitUsage, "", "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := portico(t, nil, "", tt.args...)
			if code != tt.code || !strings.Contains(out, tt.out) || !strings.Contains(errOut, tt.err) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, %q in stdout, %q in stderr", code, out, errOut, tt.code, tt.out, tt.err)
			}
		})
	}
}

func TestFlagWinsOverEnvironment(t *testing.T) {
	env := map[string]string{
		"PORTICO_KRL_ALLOW_INTERNAL": "on",
		"PORTICO_KRL_MIN_EVERY":      "5m",
		"PORTICO_DATA_DIR":           "/env/data",
		"PORTICO_SSH_LISTEN":         ":3333",
		"PORTICO_DOMAIN":             "env.example",
		"PORTICO_SIGNUPS":            "closed",
		"PORTICO_LOG_FORMAT":         "json",
		"PORTICO_DATABASE_URL":       "postgres://env/db",
		"PORTICO_PIPE_BUFFER":        "64KiB",
		"PORTICO_SIGNUP_RATE":        "off",
		"PORTICO_MAX_STARTUPS":       "off",
		"PORTICO_PER_SOURCE_EXEMPT":  "10.0.0.0/8",
		"PORTICO_METRICS_LISTEN":     "off",
		"PORTICO_PGS_QUOTA":          "off",
	}
	tests := []struct {
		name string
		args []string
		want settings
	}{
		{"defaults", nil, withLimitDefaults(settings{dataDir: "./data", sshListen: ":2222", httpListen: ":8080", domain: "localhost",
			signups: "open", logFormat: "text", accessLogDays: "90", drainTimeout: "10s", pipeBuffer: "1MiB", pipeStall: "10s", signupRate: "5/h", krlInternal: "off", krlMinEvery: "1m0s"})},
		{"environment", nil, withLimitDefaults(settings{dataDir: "/env/data", databaseURL: "postgres://env/db", sshListen: ":3333", httpListen: ":8080",
			domain: "env.example", signups: "closed", logFormat: "json", accessLogDays: "90", drainTimeout: "10s", pipeBuffer: "64KiB", pipeStall: "10s",
			signupRate: "off", maxStartups: "off", perSourceExempt: "10.0.0.0/8", metricsListen: "off", pgsQuota: "off", krlInternal: "on", krlMinEvery: "5m"})},
		{"flags win", []string{"--data-dir", "/flag", "--ssh-listen", ":4444,pgs=:4445", "--domain", "flag.example", "--signups", "open",
			"--log-format", "text", "--database-url", "", "--http-listen", "127.0.0.1:9090", "--pipe-buffer", "2MiB", "--pipe-stall-timeout", "3s", "--signup-rate", "10/d",
			"--max-startups", "10:50:20", "--per-source-exempt", "", "--metrics-listen", "", "--per-source-penalty", "off",
			"--pgs-quota", "2GiB", "--pgs-max-files", "off", "--krl-allow-internal", "off", "--krl-min-every", "10s"},
			withLimitDefaults(settings{dataDir: "/flag", sshListen: ":4444,pgs=:4445", httpListen: "127.0.0.1:9090", domain: "flag.example",
				signups: "open", logFormat: "text", accessLogDays: "90", drainTimeout: "10s", pipeBuffer: "2MiB", pipeStall: "3s", signupRate: "10/d",
				maxStartups: "10:50:20", perSourceExempt: "", metricsListen: "-", perSourcePenalty: "off",
				pgsQuota: "2GiB", pgsMaxFiles: "off", krlInternal: "off", krlMinEvery: "10s"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := env
			if tt.name == "defaults" {
				e = nil
			}
			var s settings
			fs := newFlagSet("serve", "", &environment{stderr: &bytes.Buffer{}, getenv: func(k string) string { return e[k] }}, &s, storeSettings, serveSettings)
			if _, err := parseFlags(fs, tt.args); err != nil {
				t.Fatal(err)
			}
			if s != tt.want {
				t.Errorf("settings %+v, want %+v", s, tt.want)
			}
		})
	}
}

// withLimitDefaults fills the limit settings s leaves empty with their defaults; an explicitly
// empty one is written as "-" and stays empty.
func withLimitDefaults(s settings) settings {
	for _, d := range []struct {
		dst *string
		def string
	}{
		{&s.metricsListen, "127.0.0.1:9222"}, {&s.maxStartups, "100:30:1000"}, {&s.perSourceMaxStartups, "20"},
		{&s.perSourceMaxConnections, "200"}, {&s.perSourcePenalty, "on"}, {&s.maxConnections, "4096"},
		{&s.maxChannels, "512"}, {&s.maxHTTPConnections, "4096"}, {&s.pipeMaxReaders, "64"},
		{&s.pgsKeep, "10"}, {&s.pgsQuota, "1GiB"}, {&s.pgsMaxFile, "100MiB"}, {&s.pgsMaxFiles, "50000"},
		{&s.tunsMax, "10"},
	} {
		switch *d.dst {
		case "":
			*d.dst = d.def
		case "-":
			*d.dst = ""
		}
	}
	return s
}

// The limits as serve hands them to the gateway.
func TestLimitSettings(t *testing.T) {
	s := withLimitDefaults(settings{sshListen: ":2222", signups: "open", accessLogDays: "90", drainTimeout: "10s", domain: "x",
		pipeBuffer: "1MiB", pipeStall: "10s", signupRate: "5/h", krlInternal: "off", krlMinEvery: "1m"})
	c, err := s.serveConfig()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.limits, gateway.DefaultLimits()) || c.metricsAddr != "127.0.0.1:9222" || c.pipe.MaxReaders != 64 {
		t.Errorf("defaults: limits %+v, metrics %q, pipe readers %d", c.limits, c.metricsAddr, c.pipe.MaxReaders)
	}
	s.maxStartups, s.perSourceMaxStartups, s.perSourceMaxConnections, s.maxConnections, s.maxChannels = "off", "off", "off", "off", "off"
	s.maxHTTPConnections = "off"
	s.perSourcePenalty, s.perSourceExempt, s.metricsListen, s.pipeMaxReaders = "off", "127.0.0.0/8, ::1", "off", "3"
	if c, err = s.serveConfig(); err != nil {
		t.Fatal(err)
	}
	want := gateway.Limits{Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		SignupIdleTimeout: gateway.DefaultSignupIdleTimeout}
	if !reflect.DeepEqual(c.limits, want) || c.metricsAddr != "" || c.pipe.MaxReaders != 3 {
		t.Errorf("all off: limits %+v, metrics %q, pipe readers %d", c.limits, c.metricsAddr, c.pipe.MaxReaders)
	}
	s.pipeMaxReaders = "off"
	if c, err = s.serveConfig(); err != nil || c.pipe.MaxReaders >= 0 {
		t.Errorf("pipe readers off: %d, %v; want no cap (negative)", c.pipe.MaxReaders, err)
	}
}

// The KRL settings as serve hands them to the account operations.
func TestKRLSettings(t *testing.T) {
	s := withLimitDefaults(settings{sshListen: ":2222", signups: "open", accessLogDays: "90", drainTimeout: "10s", domain: "x",
		pipeBuffer: "1MiB", pipeStall: "10s", signupRate: "5/h", krlInternal: "off", krlMinEvery: "1m0s"})
	c, err := s.serveConfig()
	if err != nil || c.krl.AllowInternal || c.krl.MinEvery != time.Minute {
		t.Errorf("defaults: %+v, %v", c.krl, err)
	}
	s.krlInternal, s.krlMinEvery = "on", "1s"
	if c, err = s.serveConfig(); err != nil || !c.krl.AllowInternal || c.krl.MinEvery != time.Second {
		t.Errorf("on, 1s: %+v, %v", c.krl, err)
	}
	for _, bad := range []string{"500ms", "8d", "-1m", "soon"} {
		s.krlMinEvery = bad
		if _, err := s.serveConfig(); err == nil {
			t.Errorf("--krl-min-every %s: no error", bad)
		}
	}
}

func TestPublicSSHPort(t *testing.T) {
	tests := []struct {
		listen string
		want   int
	}{
		{":2222", 2222},
		{"pgs=:2223,:2222", 2222},
		{"pgs=:2223,admin=:2224,:2222", 2222},
		{"pgs=:2223,admin=:2224", 2224},
		{"pgs=:2223,tuns=:2225", 2223},
		{"127.0.0.1:22", 22},
	}
	for _, tt := range tests {
		ls, err := gateway.ParseListeners(tt.listen)
		if err != nil {
			t.Fatal(err)
		}
		if got := publicSSHPort(ls); got != tt.want {
			t.Errorf("publicSSHPort(%q) = %d, want %d", tt.listen, got, tt.want)
		}
	}
}

func TestOfflineAccounts(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PORTICO_DATA_DIR": dir, "PORTICO_SIGNUPS": "closed"}
	keyFile, _ := writeKey(t)

	if code, _, errOut := portico(t, env, "", "migrate"); code != exitOK {
		t.Fatalf("migrate: exit %d: %s", code, errOut)
	}
	if code, out, errOut := portico(t, env, "", "account", "create", "alice", "--key", keyFile); code != exitOK || !strings.Contains(out, "created account alice") {
		t.Fatalf("account create: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	otherKey, _ := writeKey(t)
	tests := []struct {
		name string
		args []string
		err  string
	}{
		{"taken name", []string{"account", "create", "alice", "--key", otherKey}, "taken"},
		{"taken key", []string{"account", "create", "bob", "--key", keyFile}, "already registered"},
		{"reserved name", []string{"account", "create", "admin", "--key", otherKey}, "admin"},
		{"missing key file", []string{"account", "create", "carol", "--key", filepath.Join(dir, "nope.pub")}, "key file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := portico(t, env, "", tt.args...)
			if code != exitFailure || !strings.Contains(errOut, tt.err) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, errOut, tt.err)
			}
		})
	}

	keyLine, _ := os.ReadFile(otherKey)
	if code, _, errOut := portico(t, env, string(keyLine), "account", "create", "--key", "-", "bob"); code != exitOK {
		t.Fatalf("account create from stdin: exit %d: %s", code, errOut)
	}
	code, out, errOut := portico(t, env, "", "account", "ls")
	if code != exitOK || !regexp.MustCompile(`(?m)^NAME\s+CREATED\nalice\s+\S+Z\nbob\s+\S+Z\n$`).MatchString(out) {
		t.Errorf("account ls: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// account rm deletes; its keys are free at once, its name is held.
	code, out, errOut = portico(t, env, "", "account", "rm", "alice")
	if code != exitOK || !regexp.MustCompile(`^deleted account alice; its name is held until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$`).MatchString(out) {
		t.Fatalf("account rm: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, _, errOut := portico(t, env, "", "account", "rm", "alice"); code != exitFailure || !strings.Contains(errOut, `no account named "alice"`) {
		t.Errorf("account rm again: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := portico(t, env, "", "account", "create", "alice", "--key", otherKey); code != exitFailure || !strings.Contains(errOut, "deleted less than 90 days ago") {
		t.Errorf("account create of a deleted name: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := portico(t, env, "", "account", "create", "carol", "--key", keyFile); code != exitOK {
		t.Errorf("account create with the deleted account's key: exit %d, stderr %q", code, errOut)
	}
	code, out, _ = portico(t, env, "", "account", "ls")
	if code != exitOK || !regexp.MustCompile(`(?m)^NAME\s+CREATED\nbob\s+\S+Z\ncarol\s+\S+Z\n$`).MatchString(out) {
		t.Errorf("account ls after rm: %q", out)
	}
}

func TestServeUnreachableDatabase(t *testing.T) {
	env := map[string]string{
		"PORTICO_DATA_DIR":     t.TempDir(),
		"PORTICO_DATABASE_URL": "postgres://nobody@127.0.0.1:1/portico?connect_timeout=2",
		"PORTICO_SSH_LISTEN":   "127.0.0.1:0",
		"PORTICO_HTTP_LISTEN":  "127.0.0.1:0",
	}
	code, _, errOut := portico(t, env, "", "serve")
	if code != exitFailure || !strings.Contains(errOut, "database unreachable") {
		t.Errorf("exit %d, stderr %q; want 1 and \"database unreachable\"", code, errOut)
	}
}

var listening = regexp.MustCompile(`msg="ssh listening" addr=(\S+)`)

func TestServe(t *testing.T) {
	dir := t.TempDir()
	keyFile, alice := writeKey(t)
	env := map[string]string{"PORTICO_DATA_DIR": dir, "PORTICO_SIGNUPS": "closed"}
	if code, _, errOut := portico(t, env, "", "account", "create", "alice", "--key", keyFile); code != exitOK {
		t.Fatalf("account create: %s", errOut)
	}

	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr sshtest.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--ssh-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"},
			strings.NewReader(""), &stdout, &stderr, func(k string) string { return env[k] })
	}()
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; {
		if m := listening.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no \"ssh listening\" line:\n%s", stderr.String())
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !strings.Contains(stderr.String(), "fingerprint=SHA256:") {
		t.Errorf("the host key fingerprint was not logged:\n%s", stderr.String())
	}
	hostKey, err := os.ReadFile(filepath.Join(dir, gateway.HostKeyFile+".pub"))
	if err != nil {
		t.Fatal(err)
	}
	hostPub, _, _, _, err := gossh.ParseAuthorizedKey(hostKey)
	if err != nil {
		t.Fatal(err)
	}

	client, err := gossh.Dial("tcp", addr, &gossh.ClientConfig{
		User:            "alice",
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(alice)},
		HostKeyCallback: gossh.FixedHostKey(hostPub),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		t.Fatalf("ssh to the admin service: %v\n%s", err, stderr.String())
	}
	s, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Output("whoami --json")
	client.Close()
	if err != nil || !strings.Contains(string(out), `"account":"alice"`) && !strings.Contains(string(out), `"account": "alice"`) {
		t.Errorf("whoami --json: %v, %q", err, out)
	}

	// Signups are closed: an unknown key may not register.
	_, stranger := writeKey(t)
	client, err = gossh.Dial("tcp", addr, &gossh.ClientConfig{
		User:            "admin",
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(stranger)},
		HostKeyCallback: gossh.FixedHostKey(hostPub),
		Timeout:         10 * time.Second,
	})
	if err == nil {
		s, err := client.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		err = s.Run("register bob")
		client.Close()
		var exitErr *gossh.ExitError
		if !errors.As(err, &exitErr) || exitErr.ExitStatus() == 0 {
			t.Errorf("register with signups closed: %v, want a refusal", err)
		}
	}

	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("serve exited %d after shutdown, want 0:\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return after its context was cancelled")
	}
}
