package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/portico-sh/portico/internal/sshtest"
)

const (
	// startTimeout bounds the wait for a server to greet.
	startTimeout = 30 * time.Second
	// stopTimeout bounds the wait for a server to exit after SIGTERM before it is killed.
	stopTimeout = 15 * time.Second
	// account is the portico account the benchmark connects as.
	account = "alice"
	// privsepDir is the directory Debian's sshd insists on (compiled in, not configurable).
	privsepDir = "/run/sshd"
)

// env is everything one benchmark run set up: the temporary directory, the client key and the
// servers. close stops the servers and removes the directory.
type env struct {
	dir        string
	keyPath    string // the client's ed25519 private key (its .pub next to it)
	signer     ssh.Signer
	knownHosts string // known_hosts with both servers' host keys
	sshd       *server
	portico    *server // nil with -no-pipe
}

// server is a running sshd or portico serve.
type server struct {
	name    string
	cmd     *exec.Cmd
	addr    string // SSH address, 127.0.0.1:PORT
	hostKey ssh.PublicKey
	logPath string
	exited  chan struct{}
	waitErr error
}

// setup makes the temporary directory, the keys and both servers. On error everything already
// started is stopped again.
func setup(ctx context.Context, o options) (_ *env, err error) {
	dir, err := os.MkdirTemp("", "portico-pipebench-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	e := &env{dir: dir, keyPath: filepath.Join(dir, "client_ed25519"), knownHosts: filepath.Join(dir, "known_hosts")}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if e.signer, err = makeKey(ctx, e.keyPath); err != nil {
		return nil, fmt.Errorf("client key: %w", err)
	}
	if e.sshd, err = startSSHD(ctx, o.sshd, dir, e.keyPath+".pub"); err != nil {
		return nil, err
	}
	if !o.noPipe {
		if e.portico, err = startPortico(ctx, o.portico, dir, e.keyPath+".pub"); err != nil {
			return nil, err
		}
	}
	if err := e.writeKnownHosts(); err != nil {
		return nil, err
	}
	return e, nil
}

// close stops the servers (portico first, then sshd) and removes the temporary directory.
func (e *env) close() {
	for _, s := range []*server{e.portico, e.sshd} {
		if s != nil {
			if err := s.stop(); err != nil {
				slog.Warn("stopping server", "server", s.name, "err", err)
			}
		}
	}
	if err := os.RemoveAll(e.dir); err != nil {
		slog.Warn("removing the temporary directory", "dir", e.dir, "err", err)
	}
}

func (e *env) writeKnownHosts() error {
	var b strings.Builder
	for _, s := range []*server{e.sshd, e.portico} {
		if s != nil {
			b.WriteString(knownhosts.Line([]string{s.addr}, s.hostKey) + "\n")
		}
	}
	if err := os.WriteFile(e.knownHosts, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	return nil
}

// makeKey writes a new ed25519 key pair with ssh-keygen and returns its signer.
func makeKey(ctx context.Context, path string) (ssh.Signer, error) {
	cmd := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pipebench", "-f", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ssh-keygen: %w\n%s", err, out)
	}
	return readSigner(path)
}

func readSigner(path string) (ssh.Signer, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return signer, nil
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// sshdConfig is the configuration of the reference sshd: loopback only, public keys from the
// temporary authorized_keys only, nothing a session of `cat` does not need.
const sshdConfig = `Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s
AuthorizedKeysFile %s
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowAgentForwarding no
AllowTcpForwarding no
X11Forwarding no
PermitTTY no
PrintMotd no
PrintLastLog no
UseDNS no
MaxStartups 200
MaxSessions 200
LogLevel INFO
`

// startSSHD starts OpenSSH's sshd (`sshd -D -e -f CONFIG`) on a free loopback port, accepting
// the key in pubKey for root.
func startSSHD(ctx context.Context, path, dir, pubKey string) (*server, error) {
	abs, err := exec.LookPath(path)
	if err == nil {
		abs, err = filepath.Abs(abs)
	}
	if err != nil {
		return nil, fmt.Errorf("sshd %q not found (install openssh-server or pass -sshd): %w", path, err)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("sshd must run as root to log in as root; run the benchmark as root")
	}
	if err := ensurePrivsepDir(); err != nil {
		return nil, err
	}
	hostKey := filepath.Join(dir, "sshd_host_ed25519_key")
	signer, err := makeKey(ctx, hostKey)
	if err != nil {
		return nil, fmt.Errorf("sshd host key: %w", err)
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := copyFile(pubKey, authorized); err != nil {
		return nil, fmt.Errorf("authorized_keys: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "sshd_config")
	text := fmt.Sprintf(sshdConfig, port, hostKey, filepath.Join(dir, "sshd.pid"), authorized)
	if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
		return nil, fmt.Errorf("sshd_config: %w", err)
	}
	if out, err := exec.CommandContext(ctx, abs, "-t", "-f", config).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("sshd -t -f %s: %w\n%s", config, err, out)
	}
	s := &server{name: "sshd", addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		hostKey: signer.PublicKey(), logPath: filepath.Join(dir, "sshd.log")}
	if err := s.start(exec.Command(abs, "-D", "-e", "-f", config)); err != nil {
		return nil, err
	}
	return s, s.waitReady(ctx, "")
}

// ensurePrivsepDir creates sshd's privilege separation directory if it is missing, as the
// distribution's service unit would (sshd refuses to start without it).
func ensurePrivsepDir() error {
	if _, err := os.Stat(privsepDir); err == nil {
		return nil
	}
	slog.Info("creating sshd's privilege separation directory", "dir", privsepDir)
	if err := os.MkdirAll(privsepDir, 0o755); err != nil {
		return fmt.Errorf("sshd privilege separation directory: %w", err)
	}
	return nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

// startPortico creates the account offline, then starts `portico serve` on free loopback ports
// with signups closed.
func startPortico(ctx context.Context, bin, dir, pubKey string) (*server, error) {
	data := filepath.Join(dir, "data")
	create := exec.CommandContext(ctx, bin, "account", "create", account, "--key", pubKey, "--data-dir", data)
	create.Env = porticoEnv()
	if out, err := create.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("portico account create: %w\n%s", err, out)
	}
	sshPort, err := freePort()
	if err != nil {
		return nil, err
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{name: "portico", addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(sshPort)),
		logPath: filepath.Join(dir, "portico.log")}
	httpAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort))
	// The benchmark's many clients come from loopback: exempt from the per-source limits.
	cmd := exec.Command(bin, "serve", "--data-dir", data, "--ssh-listen", s.addr, "--http-listen", httpAddr,
		"--signups", "closed", "--drain-timeout", "2s", "--metrics-listen", "off", "--per-source-exempt", "127.0.0.0/8")
	cmd.Env = porticoEnv()
	if err := s.start(cmd); err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, "http://"+httpAddr+"/healthz"); err != nil {
		s.stop()
		return nil, err
	}
	signer, err := readSigner(filepath.Join(data, "ssh_host_ed25519_key"))
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("portico host key: %w", err)
	}
	s.hostKey = signer.PublicKey()
	return s, nil
}

// porticoEnv is this process's environment without PORTICO_* settings, so that only the
// command line configures the server.
func porticoEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PORTICO_") {
			env = append(env, kv)
		}
	}
	return env
}

// start runs cmd with its output in the server's log file.
func (s *server) start(cmd *exec.Cmd) error {
	log, err := os.Create(s.logPath)
	if err != nil {
		return fmt.Errorf("%s log: %w", s.name, err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	return nil
}

// waitReady waits until the server greets on its SSH address and, if healthz is not empty,
// that URL answers 200.
func (s *server) waitReady(ctx context.Context, healthz string) error {
	deadline := time.Now().Add(startTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited before it was ready: %v\n%s", s.name, s.waitErr, s.logTail())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if last = sshtest.Greets(s.addr); last == nil && healthz != "" {
			last = httpOK(client, healthz)
		}
		if last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v: %v\n%s", s.name, startTimeout, last, s.logTail())
}

func httpOK(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// stop sends SIGTERM and waits for the server to exit, killing it after stopTimeout.
func (s *server) stop() error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM %s: %w", s.name, err)
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(stopTimeout):
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("%s did not exit within %v of SIGTERM; killed", s.name, stopTimeout)
	}
}

// alive returns an error when the server has exited.
func (s *server) alive() error {
	select {
	case <-s.exited:
		return fmt.Errorf("%s exited: %v\n%s", s.name, s.waitErr, s.logTail())
	default:
		return nil
	}
}

// logTail returns the end of the server's log for error messages.
func (s *server) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return fmt.Sprintf("--- end of %s ---\n%s", s.logPath, b)
}
