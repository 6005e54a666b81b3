package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// scriptCommands are the commands the scripts use besides testscript's own:
//
//	portico-up [serve flags]    start `portico serve` in the background on $HOST:$SSH_PORT and
//	                            $HOST:$HTTP_PORT with data in $WORK/data, no metrics listener
//	                            and loopback exempt from the per-source limits (withTestDefaults;
//	                            unless the flags or PORTICO_* variables say otherwise), log in
//	                            $WORK/portico.log; wait until SSH greets and /healthz answers
//	                            200; at the end of the
//	                            script SIGTERM it and expect exit status 0. With
//	                            PORTICO_E2E_DATABASE=postgres it uses a fresh Postgres database
//	                            (as pg-createdb) unless the script chooses the data directory or
//	                            the database itself
//	portico-ready               wait for a server started with `exec portico serve ... &`
//	portico-stop                SIGTERM the server and expect it to drain and exit 0
//	portico ARGS                run the built portico binary (records its exit status)
//	ssh ARGS                    run OpenSSH's ssh with -F $SSH_CONFIG (records its exit status)
//	go-ssh [-i KEY] [-cert CERT] USER@HOST [COMMAND]
//	                            connect with golang.org/x/crypto/ssh, which (unlike OpenSSH) also
//	                            offers host certificates and certificates with a bad signature;
//	                            prints banners and errors on stderr, exit status 255 when refused
//	status N                    the last portico, ssh or go-ssh exited with status N
//	fingerprint VAR FILE        set VAR to the SHA256 fingerprint of a public or private key file
//	                            (of a certificate: of its key)
//	authorized-key OUT OPTIONS KEY.pub
//	                            write the authorized_keys line "OPTIONS <KEY.pub>" to OUT
//	cert-garble CERT OUT        copy a certificate to OUT with its CA signature corrupted
//	envsubst FILE               replace $VARIABLES in FILE
//	timestamp VAR DURATION      set VAR to the UTC time DURATION from now as YYYYMMDDHHMMSS
//	sleep DURATION              wait (only for time to pass, never to wait for the server)
//	http [-until N] [-port P] /PATH
//	                            GET http://$HOST:$HTTP_PORT/PATH (or port P); print "HTTP <status>"
//	                            and the body; with -until, retry for up to 10s until the status is N
//	json-has PATH=VALUE ...     stdout's JSON (or, if an array, one of its elements) has these
//	                            values; VALUE is JSON (a string need not be quoted) and matches
//	                            when it is contained in the actual value (objects: the listed
//	                            fields; arrays: the listed elements); PATH~REGEXP matches a
//	                            string or number (or an object's or array's JSON, never null)
//	json-fields PATH...         stdout's JSON (or every element of its array) has these fields
//	json-len N [PATH]           the array (at PATH) in stdout's JSON has N elements
//	json-var VAR PATH           set VAR to the value at PATH in stdout's JSON
//	pg-createdb                 create a fresh database next to $PORTICO_TEST_DATABASE_URL and set
//	                            $DATABASE_URL to it; it is dropped at the end of the script
//	pg-down, pg-up              make that database refuse every connection (and end the existing
//	                            ones), then accept connections again
//	bg-ssh, bg-write, bg-close, bg-expect, bg-wait, bg-kill, bg-running, ssh-until, ssh-within,
//	stream-sum, lines-split     run several ssh clients at once: see pipe_commands_test.go
//	oidc-up, oidc-approve, oidc-browse, certifier-up, certifier-stop, bg-portico, agent-up,
//	tls-cert, cat-files, wait-expiry
//	                            single sign-on: see certifier_commands_test.go
//	site, site-watch, portico-kill, gen-file, mount-tmpfs, dir-size, free-port, require-tools
//	                            sites and files: see pgs_commands_test.go
//	local-http, local-stop, tcp-echo, tcp-say, free-ports, visit-upload, visit-download,
//	visit-upgrade, visit-many, server-rss, server-rss-growth-below
//	                            tunnels: see tuns_commands_test.go
//	http-files, file-var        KRLs: see trust_commands_test.go
//
// A PATH is dot-separated field names and array indexes: cert.key_id, 0.id.
//
// The condition [postgres] holds when PORTICO_TEST_DATABASE_URL is set; under CI=true its
// absence fails the script instead.
// [pg-rerun] holds when PORTICO_E2E_DATABASE=postgres runs every script again on Postgres, for
// scripts too slow to run twice that do not depend on the database.
var scriptCommands = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"portico-up":     cmdPorticoUp,
	"portico-ready":  cmdPorticoReady,
	"portico-stop":   cmdPorticoStop,
	"portico":        cmdPortico,
	"ssh":            cmdSSH,
	"go-ssh":         cmdGoSSH,
	"status":         cmdStatus,
	"fingerprint":    cmdFingerprint,
	"authorized-key": cmdAuthorizedKey,
	"cert-garble":    cmdCertGarble,
	"envsubst":       cmdEnvsubst,
	"timestamp":      cmdTimestamp,
	"sleep":          cmdSleep,
	"http":           cmdHTTP,
	"json-has":       cmdJSONHas,
	"json-fields":    cmdJSONFields,
	"json-len":       cmdJSONLen,
	"json-var":       cmdJSONVar,
	"pg-createdb":    cmdPgCreateDB,
	"pg-down":        cmdPgDown,
	"pg-up":          cmdPgUp,
	"bg-ssh":         cmdBgSSH,
	"bg-write":       cmdBgWrite,
	"bg-close":       cmdBgClose,
	"bg-expect":      cmdBgExpect,
	"bg-wait":        cmdBgWait,
	"bg-kill":        cmdBgKill,
	"bg-running":     cmdBgRunning,
	"ssh-until":      cmdSSHUntil,
	"ssh-within":     cmdSSHWithin,
	"stream-sum":     cmdStreamSum,
	"lines-split":    cmdLinesSplit,

	"oidc-up":        cmdOIDCUp,
	"oidc-approve":   cmdOIDCApprove,
	"oidc-browse":    cmdOIDCBrowse,
	"certifier-up":   cmdCertifierUp,
	"certifier-stop": cmdCertifierStop,
	"bg-portico":     cmdBgPortico,
	"agent-up":       cmdAgentUp,
	"tls-cert":       cmdTLSCert,
	"cat-files":      cmdCatFiles,
	"wait-expiry":    cmdWaitExpiry,

	"site":          cmdSite,
	"site-watch":    cmdSiteWatch,
	"portico-kill":  cmdPorticoKill,
	"gen-file":      cmdGenFile,
	"mount-tmpfs":   cmdMountTmpfs,
	"require-tools": cmdRequireTools,
	"dir-size":      cmdDirSize,
	"free-port":     cmdFreePort,

	"local-http":              cmdLocalHTTP,
	"local-stop":              cmdLocalStop,
	"tcp-echo":                cmdTCPEcho,
	"tcp-say":                 cmdTCPSay,
	"visit-upload":            cmdVisitUpload,
	"visit-download":          cmdVisitDownload,
	"visit-upgrade":           cmdVisitUpgrade,
	"visit-many":              cmdVisitMany,
	"server-rss":              cmdServerRSS,
	"server-rss-growth-below": cmdServerRSSGrowthBelow,
	"free-ports":              cmdFreePorts,

	"http-files": cmdHTTPFiles,
	"file-var":   cmdFileVar,
}

// stateKey finds a script's scriptState in its values.
type stateKey struct{}

// scriptState is what the commands of one script share.
type scriptState struct {
	t          *testing.T // the parent test, for errors found after the script ended
	name       string
	endpoints  endpoints
	knownHosts string
	server     *server
	stopDefer  bool // the end-of-script stop is arranged
	lastStatus int  // exit status of the last portico, ssh or go-ssh
	database   string
	bg         bgClients       // the clients bg-ssh started
	certifier  *certifierState // the provider and certifier of certifier_commands_test.go
}

func state(ts *testscript.TestScript) *scriptState {
	return ts.Value(stateKey{}).(*scriptState)
}

// noNeg fails a command that has no negated form.
func noNeg(ts *testscript.TestScript, neg bool, name string) {
	if neg {
		ts.Fatalf("unsupported: ! %s", name)
	}
}

// commandArgs checks a command that takes no ! and exactly the arguments its usage names
// ("visit-upload HOST SIZE"): otherwise it fails the script, with the usage.
func commandArgs(ts *testscript.TestScript, neg bool, args []string, usage string) {
	name, params, _ := strings.Cut(usage, " ")
	noNeg(ts, neg, name)
	if len(args) != len(strings.Fields(params)) {
		ts.Fatalf("usage: %s", usage)
	}
}

// serverEnv is the environment portico serve gets from a script.
func serverEnv(ts *testscript.TestScript) []string {
	var env []string
	for _, name := range []string{
		"PATH", "HOME", "TMPDIR", "GORACE", "GOCOVERDIR",
		"PORTICO_DATA_DIR", "PORTICO_DATABASE_URL", "PORTICO_SSH_LISTEN", "PORTICO_HTTP_LISTEN",
		"PORTICO_DOMAIN", "PORTICO_SIGNUPS", "PORTICO_LOG_FORMAT", "PORTICO_SIGNUP_RATE",
		"SSL_CERT_FILE", // the CA of a test certifier's TLS certificate, for revocations import --url
		"PORTICO_METRICS_LISTEN", "PORTICO_MAX_STARTUPS", "PORTICO_PER_SOURCE_MAX_STARTUPS",
		"PORTICO_PER_SOURCE_MAX_CONNECTIONS", "PORTICO_PER_SOURCE_PENALTY", "PORTICO_PER_SOURCE_EXEMPT",
		"PORTICO_MAX_CONNECTIONS", "PORTICO_MAX_CHANNELS", "PORTICO_PIPE_MAX_READERS",
	} {
		if v := ts.Getenv(name); v != "" {
			env = append(env, name+"="+v)
		}
	}
	return env
}

// choosesStorage reports whether a script picks where portico keeps its data.
func choosesStorage(ts *testscript.TestScript, args []string) bool {
	return hasFlag(args, "data-dir") || hasFlag(args, "database-url") ||
		ts.Getenv("PORTICO_DATA_DIR") != "" || ts.Getenv("PORTICO_DATABASE_URL") != ""
}

// hasFlag reports whether args set the flag called name (-name, --name, with or without =).
func hasFlag(args []string, name string) bool {
	return slices.ContainsFunc(args, func(a string) bool {
		a = strings.TrimLeft(a, "-")
		return a == name || strings.HasPrefix(a, name+"=")
	})
}

func cmdPorticoUp(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "portico-up")
	st := state(ts)
	if st.server != nil && st.server.running() {
		ts.Fatalf("portico serve is already running")
	}
	defaults := []struct{ flag, env, value string }{
		{"data-dir", "PORTICO_DATA_DIR", ts.MkAbs("data")},
		{"ssh-listen", "PORTICO_SSH_LISTEN", st.endpoints.sshAddr()},
		{"http-listen", "PORTICO_HTTP_LISTEN", strings.TrimPrefix(st.endpoints.httpURL(""), "http://")},
	}
	flags := slices.Clone(args)
	if postgresEverywhere() && !choosesStorage(ts, args) {
		if st.database == "" {
			createScriptDatabase(ts)
		}
		flags = append(flags, "--database-url", ts.Getenv("DATABASE_URL"))
	}
	for _, d := range defaults {
		if !hasFlag(args, d.flag) && ts.Getenv(d.env) == "" {
			flags = append(flags, "--"+d.flag, d.value)
		}
	}
	s, err := startServer(ts.MkAbs("."), serverEnv(ts), flags, ts.MkAbs("portico.log"), st.endpoints)
	ts.Check(err)
	st.server = s
	if !st.stopDefer {
		st.stopDefer = true
		ts.Defer(func() {
			if st.server == nil || !st.server.running() {
				return
			}
			if err := st.server.stop(); err != nil {
				st.reportError(err)
			}
		})
	}
	ts.Check(writeKnownHosts(st.knownHosts, st.endpoints))
}

// reportError fails the tests from a function deferred to the end of a script, where
// Fatalf cannot be used.
func (st *scriptState) reportError(err error) {
	st.t.Errorf("script %s, at its end: %v", st.name, err)
}

func cmdPorticoReady(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "portico-ready")
	st := state(ts)
	ts.Check(waitReady(st.endpoints, nil))
	ts.Check(writeKnownHosts(st.knownHosts, st.endpoints))
}

func cmdPorticoStop(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "portico-stop")
	st := state(ts)
	if st.server == nil {
		ts.Fatalf("no server started with portico-up")
	}
	ts.Check(st.server.stop())
}

func cmdPortico(ts *testscript.TestScript, neg bool, args []string) {
	runRecorded(ts, neg, porticoBin, args)
}

func cmdSSH(ts *testscript.TestScript, neg bool, args []string) {
	if !hasFlag(args, "F") {
		args = append([]string{"-F", ts.Getenv("SSH_CONFIG")}, args...)
	}
	runRecorded(ts, neg, "ssh", args)
}

// runRecorded runs a program like exec does, and records its exit status for status.
func runRecorded(ts *testscript.TestScript, neg bool, program string, args []string) {
	err := ts.Exec(program, args...)
	st := state(ts)
	st.lastStatus = 0
	if err != nil {
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			ts.Fatalf("%s: %v", program, err)
		}
		st.lastStatus = exitErr.ExitCode()
	}
	finishRecorded(ts, neg)
}

func finishRecorded(ts *testscript.TestScript, neg bool) {
	switch status := state(ts).lastStatus; {
	case neg && status == 0:
		ts.Fatalf("unexpected success")
	case !neg && status != 0:
		ts.Fatalf("unexpected failure: exit status %d", status)
	}
}

func cmdStatus(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "status N")
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	if got := state(ts).lastStatus; got != want {
		ts.Fatalf("exit status %d, want %d", got, want)
	}
}

// goSSHTimeout bounds one go-ssh connection.
const goSSHTimeout = 30 * time.Second

func cmdGoSSH(ts *testscript.TestScript, neg bool, args []string) {
	var keyFile, certFile string
	for len(args) > 1 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-i":
			keyFile = args[1]
		case "-cert":
			certFile = args[1]
		default:
			ts.Fatalf("go-ssh: unknown flag %s", args[0])
		}
		args = args[2:]
	}
	if len(args) == 0 || keyFile == "" {
		ts.Fatalf("usage: go-ssh -i KEY [-cert CERT] USER@HOST [COMMAND...]")
	}
	user, host, ok := strings.Cut(args[0], "@")
	if !ok {
		ts.Fatalf("go-ssh: want USER@HOST, got %q", args[0])
	}
	signer, err := ssh.ParsePrivateKey([]byte(ts.ReadFile(keyFile)))
	ts.Check(err)
	if certFile != "" {
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(ts.ReadFile(certFile)))
		ts.Check(err)
		cert, ok := pub.(*ssh.Certificate)
		if !ok {
			ts.Fatalf("go-ssh: %s is not a certificate", certFile)
		}
		signer, err = ssh.NewCertSigner(cert, signer)
		ts.Check(err)
	}
	st := state(ts)
	hostKeys, err := knownhosts.New(st.knownHosts)
	ts.Check(err)
	stdout, stderr := ts.Stdout(), ts.Stderr()
	config := &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hostKeys,
		BannerCallback: func(message string) error {
			_, err := io.WriteString(stderr, message)
			return err
		},
		Timeout: 10 * time.Second,
	}
	st.lastStatus = goSSH(config, host, strings.Join(args[1:], " "), stdout, stderr, st.endpoints)
	finishRecorded(ts, neg)
}

// goSSH runs command (or a shell when empty) and returns the exit status, 255 when the
// connection or authentication failed, as OpenSSH's ssh does.
func goSSH(config *ssh.ClientConfig, host, command string, stdout, stderr io.Writer, e endpoints) int {
	if host != loopback {
		fmt.Fprintf(stderr, "go-ssh: only %s is allowed\n", loopback)
		return 255
	}
	client, err := ssh.Dial("tcp", e.sshAddr(), config)
	if err != nil {
		fmt.Fprintf(stderr, "go-ssh: %v\n", err)
		return 255
	}
	defer client.Close()
	timer := time.AfterFunc(goSSHTimeout, func() { client.Close() })
	defer timer.Stop()
	session, err := client.NewSession()
	if err != nil {
		fmt.Fprintf(stderr, "go-ssh: %v\n", err)
		return 255
	}
	defer session.Close()
	session.Stdout, session.Stderr = stdout, stderr
	if command == "" {
		err = session.Shell()
		if err == nil {
			err = session.Wait()
		}
	} else {
		err = session.Run(command)
	}
	var exitErr *ssh.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exitErr):
		return exitErr.ExitStatus()
	default:
		fmt.Fprintf(stderr, "go-ssh: %v\n", err)
		return 255
	}
}

// readPublicKey reads an authorized_keys-style public key, a certificate, or an unencrypted
// private key and returns its public key (a certificate's own key for a certificate).
func readPublicKey(ts *testscript.TestScript, file string) ssh.PublicKey {
	data := []byte(ts.ReadFile(file))
	if pub, _, _, _, err := ssh.ParseAuthorizedKey(data); err == nil {
		if cert, ok := pub.(*ssh.Certificate); ok {
			return cert.Key
		}
		return pub
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		ts.Fatalf("%s: neither a public nor a private key: %v", file, err)
	}
	return signer.PublicKey()
}

func cmdFingerprint(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "fingerprint VAR FILE")
	ts.Setenv(args[0], ssh.FingerprintSHA256(readPublicKey(ts, args[1])))
}

func cmdAuthorizedKey(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "authorized-key OUT OPTIONS KEY.pub")
	line := args[1] + " " + strings.TrimSpace(ts.ReadFile(args[2])) + "\n"
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(line), 0o644))
}

func cmdCertGarble(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "cert-garble CERT OUT")
	pub, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(ts.ReadFile(args[0])))
	ts.Check(err)
	cert, ok := pub.(*ssh.Certificate)
	if !ok || cert.Signature == nil || len(cert.Signature.Blob) == 0 {
		ts.Fatalf("%s is not a signed certificate", args[0])
	}
	// The signing key still names the CA; only the signature over the certificate is wrong.
	blob := slices.Clone(cert.Signature.Blob)
	for i := range blob {
		blob[i] ^= 0x5a
	}
	cert.Signature = &ssh.Signature{Format: cert.Signature.Format, Blob: blob, Rest: cert.Signature.Rest}
	line := bytes.TrimSpace(ssh.MarshalAuthorizedKey(cert))
	line = append(line, " "+comment+"\n"...)
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), line, 0o644))
}

func cmdEnvsubst(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "envsubst FILE")
	expanded := os.Expand(ts.ReadFile(args[0]), ts.Getenv)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(expanded), 0o644))
}

func cmdTimestamp(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "timestamp VAR DURATION")
	d, err := time.ParseDuration(args[1])
	ts.Check(err)
	ts.Setenv(args[0], time.Now().Add(d).UTC().Format("20060102150405"))
}

func cmdSleep(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "sleep DURATION")
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	time.Sleep(d)
}

func cmdHTTP(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "http")
	until := 0
	e := state(ts).endpoints
	for len(args) >= 3 && (args[0] == "-until" || args[0] == "-port") {
		n, err := strconv.Atoi(args[1])
		ts.Check(err)
		if args[0] == "-until" {
			until = n
		} else {
			e.HTTPPort = n
		}
		args = args[2:]
	}
	if len(args) != 1 || !strings.HasPrefix(args[0], "/") {
		ts.Fatalf("usage: http [-until STATUS] [-port PORT] /PATH")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(httpUntilTimeout)
	for {
		resp, err := client.Get(e.httpURL(args[0]))
		ts.Check(err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		ts.Check(err)
		if until == 0 || resp.StatusCode == until || time.Now().After(deadline) {
			fmt.Fprintf(ts.Stdout(), "HTTP %d\n%s", resp.StatusCode, body)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// httpUntilTimeout bounds how long http -until waits for its status.
const httpUntilTimeout = 10 * time.Second
