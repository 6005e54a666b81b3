package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// porticoBin is the binary built once by TestMain.
var porticoBin string

// TestMain builds cmd/portico once and runs the tests against that binary. It is built with
// the race detector when the tests are (go test -race) or when PORTICO_E2E_RACE=1.
func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "portico-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	porticoBin = filepath.Join(dir, "portico")
	args := []string{"build", "-o", porticoBin}
	if os.Getenv("PORTICO_E2E_RACE") == "1" || builtWithRace() {
		args = append(args, "-race")
	}
	args = append(args, "github.com/portico-sh/portico/cmd/portico")
	build := exec.Command("go", args...)
	build.Stdout = os.Stderr
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go %v: %v\n", args, err)
		return 1
	}
	return m.Run()
}

// builtWithRace reports whether this test binary was built with -race.
func builtWithRace() bool {
	info, ok := debug.ReadBuildInfo()
	return ok && slices.ContainsFunc(info.Settings, func(s debug.BuildSetting) bool {
		return s.Key == "-race" && s.Value == "true"
	})
}

// requirePostgresEverywhere fails the test when PORTICO_E2E_DATABASE=postgres asks for
// Postgres but PORTICO_TEST_DATABASE_URL does not say where it is.
func requirePostgresEverywhere(t *testing.T) {
	t.Helper()
	if postgresEverywhere() && os.Getenv("PORTICO_TEST_DATABASE_URL") == "" {
		t.Fatal("PORTICO_E2E_DATABASE=postgres needs PORTICO_TEST_DATABASE_URL")
	}
}

// inCI reports whether missing tools must fail the tests instead of skipping them.
func inCI() bool { return os.Getenv("CI") == "true" }

// requireTools skips the test when a tool is missing, or fails it under CI=true.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if inCI() {
				t.Fatalf("%s is required (CI=true): %v", tool, err)
			}
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
}

// TestScripts runs every testdata/*.txtar script, each with its own server. The custom
// commands they use are documented in commands_test.go.
func TestScripts(t *testing.T) {
	requireTools(t, "ssh", "ssh-keygen", "ssh-agent", "ssh-add", "curl")
	requirePostgresEverywhere(t)
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		Setup:               func(env *testscript.Env) error { return setupScript(t, env) },
		Cmds:                scriptCommands,
		Condition:           scriptCondition,
		RequireExplicitExec: true,
	})
}

// setupScript gives a script its ports, an ssh_config for them, and the environment:
//
//	$HOST, $SSH_PORT, $HTTP_PORT  where portico-up makes the server listen
//	$SERVICE_PORT                 a spare port, for an SSH listener bound to one service
//	$METRICS_PORT                 a spare port, for the metrics listener
//	$SSH_CONFIG                   the ssh_config the ssh command uses
//	$CERTONLY                     an ssh option that offers only certificates, never the plain key
func setupScript(t *testing.T, env *testscript.Env) error {
	e, err := newEndpoints()
	if err != nil {
		return err
	}
	config := filepath.Join(env.WorkDir, "ssh_config")
	knownHosts := filepath.Join(env.WorkDir, "known_hosts")
	if err := os.WriteFile(config, []byte(sshConfig(e, knownHosts)), 0o644); err != nil {
		return err
	}
	env.Setenv("PATH", filepath.Dir(porticoBin)+string(os.PathListSeparator)+env.Getenv("PATH"))
	env.Setenv("HOST", loopback)
	env.Setenv("SSH_PORT", strconv.Itoa(e.SSHPort))
	env.Setenv("HTTP_PORT", strconv.Itoa(e.HTTPPort))
	env.Setenv("SERVICE_PORT", strconv.Itoa(e.ServicePort))
	env.Setenv("METRICS_PORT", strconv.Itoa(e.MetricsPort))
	env.Setenv("SSH_CONFIG", config)
	env.Setenv("CERTONLY", "-oPubkeyAcceptedAlgorithms=ssh-ed25519-cert-v01@openssh.com")
	env.Values[stateKey{}] = &scriptState{
		t:          t,
		name:       filepath.Base(env.WorkDir),
		endpoints:  e,
		knownHosts: knownHosts,
	}
	return nil
}

// scriptCondition evaluates the scripts' own conditions: [postgres], [pg-rerun], [can-mount].
func scriptCondition(cond string) (bool, error) {
	switch cond {
	case "pg-rerun":
		return postgresEverywhere(), nil
	case "can-mount":
		if !canMount() && inCI() {
			return false, errors.New("mounting a tmpfs needs root and mount (CI=true)")
		}
		return canMount(), nil
	case "postgres":
		if os.Getenv("PORTICO_TEST_DATABASE_URL") != "" {
			return true, nil
		}
		if inCI() {
			return false, errors.New("PORTICO_TEST_DATABASE_URL is required (CI=true)")
		}
		return false, nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}
