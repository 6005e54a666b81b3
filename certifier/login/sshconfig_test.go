package login

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// requireTools skips a test whose tools are missing, or fails it under CI=true.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required (CI=true): %v", tool, err)
			}
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
}

// The block, read by the real ssh (ssh -G runs Match exec): the exec runs portico login on the
// files the Host entries name, with every word intact, whatever the config directory is and
// whichever environment ssh runs in.
func TestSSHConfigExecRefreshesTheFilesItNames(t *testing.T) {
	requireTools(t, "ssh")
	dir := t.TempDir()
	// A stand-in for portico that records its arguments, at a path with a space.
	argsFile := filepath.Join(dir, "args")
	command := filepath.Join(dir, "my bin", "portico")
	if err := os.MkdirAll(filepath.Dir(command), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > '" + argsFile + "'\n"
	if err := os.WriteFile(command, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	configDir := filepath.Join(dir, "a config 100%")
	const certifierURL = "https://cert.example.com:8443"
	var b strings.Builder
	if err := WriteSSHConfig(&b, SSHConfigOptions{Certifier: certifierURL, Host: "example.com", Port: 2222,
		ConfigDir: configDir, Command: command}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "ssh_config")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	files, _ := FilesFor(configDir, certifierURL)
	for _, host := range []string{"example.com", "pgs"} {
		os.Remove(argsFile)
		cmd := exec.Command("ssh", "-G", "-F", cfg, host)
		cmd.Env = append(os.Environ(), "PORTICO_CONFIG_DIR=/somewhere/else")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ssh -G %s: %v\n%s", host, err, out)
		}
		args, err := os.ReadFile(argsFile)
		if err != nil {
			t.Fatalf("ssh -G %s did not run the Match exec: %v\n%s", host, err, b.String())
		}
		want := []string{"login", "--certifier", certifierURL, "--config-dir", configDir, "--refresh", "--quiet"}
		if got := strings.Split(strings.TrimSuffix(string(args), "\n"), "\n"); !slices.Equal(got, want) {
			t.Errorf("ssh %s ran portico with %q, want %q", host, got, want)
		}
		// ssh -G shows the paths before it expands their %-tokens (%% is %).
		key, cert := strings.ReplaceAll(files.Key, "%", "%%"), strings.ReplaceAll(files.Certificate, "%", "%%")
		if !strings.Contains(string(out), "\nidentityfile "+key+"\n") || !strings.Contains(string(out), "\ncertificatefile "+cert+"\n") {
			t.Errorf("ssh -G %s does not use %s:\n%s", host, files.Key, out)
		}
	}
}
