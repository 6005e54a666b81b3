package benchenv

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

	"github.com/portico-sh/portico/internal/sshtest"
)

const (
	// startTimeout bounds the wait for a server to greet.
	startTimeout = 30 * time.Second
	// stopTimeout bounds the wait for a server to exit after SIGTERM before it is killed.
	stopTimeout = 15 * time.Second
	// privsepDir is the directory Debian's sshd insists on (compiled in, not configurable).
	privsepDir = "/run/sshd"
)

// Server is a running server process: sshd, portico serve, or any other.
type Server struct {
	Name     string
	Cmd      *exec.Cmd
	Addr     string // SSH address, 127.0.0.1:PORT
	HTTPAddr string // portico's HTTP address; empty for others
	HostKey  ssh.PublicKey
	LogPath  string
	DataDir  string // portico's data directory; empty for others

	exited  chan struct{}
	waitErr error
}

// PID is the server's process id.
func (s *Server) PID() int { return s.Cmd.Process.Pid }

// MakeKey writes a new ed25519 key pair with ssh-keygen at path (and path.pub) and returns its
// signer.
func MakeKey(ctx context.Context, path, comment string) (ssh.Signer, error) {
	cmd := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ssh-keygen: %w\n%s", err, out)
	}
	return ReadSigner(path)
}

// ReadSigner reads an unencrypted private key file.
func ReadSigner(path string) (ssh.Signer, error) {
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

// FreePort returns a loopback port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// SSHD configures the reference OpenSSH server.
type SSHD struct {
	Path           string // sshd binary; "" means "sshd" on PATH
	Dir            string // where its config, host key, pid file and log go
	AuthorizedKeys string // contents of its AuthorizedKeysFile (for root)
	Extra          string // more sshd_config lines (e.g. TrustedUserCAKeys, AllowTcpForwarding yes)
}

// sshdConfig is the reference sshd's base configuration: loopback only, public keys from its
// own authorized_keys only, nothing a benchmark does not ask for in Extra. Extra comes first:
// sshd takes the first value it reads for a keyword.
const sshdConfig = `%sPort %d
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

// StartSSHD starts OpenSSH's sshd (`sshd -D -e -f CONFIG`) on a free loopback port. Clients log
// in as root.
func StartSSHD(ctx context.Context, o SSHD) (*Server, error) {
	path := o.Path
	if path == "" {
		path = "sshd"
	}
	abs, err := exec.LookPath(path)
	if err == nil {
		abs, err = filepath.Abs(abs)
	}
	if err != nil {
		return nil, fmt.Errorf("sshd %q not found (install openssh-server or pass its path): %w", path, err)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("sshd must run as root to log in as root; run the benchmark as root")
	}
	if err := ensurePrivsepDir(); err != nil {
		return nil, err
	}
	hostKey := filepath.Join(o.Dir, "sshd_host_ed25519_key")
	signer, err := MakeKey(ctx, hostKey, "sshd")
	if err != nil {
		return nil, fmt.Errorf("sshd host key: %w", err)
	}
	authorized := filepath.Join(o.Dir, "sshd_authorized_keys")
	if err := os.WriteFile(authorized, []byte(o.AuthorizedKeys), 0o600); err != nil {
		return nil, fmt.Errorf("authorized_keys: %w", err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	extra := o.Extra
	if extra != "" && !strings.HasSuffix(extra, "\n") {
		extra += "\n"
	}
	config := filepath.Join(o.Dir, "sshd_config")
	text := fmt.Sprintf(sshdConfig, extra, port, hostKey, filepath.Join(o.Dir, "sshd.pid"), authorized)
	if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
		return nil, fmt.Errorf("sshd_config: %w", err)
	}
	if out, err := exec.CommandContext(ctx, abs, "-t", "-f", config).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("sshd -t -f %s: %w\n%s", config, err, out)
	}
	s := &Server{Name: "sshd", Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		HostKey: signer.PublicKey(), LogPath: filepath.Join(o.Dir, "sshd.log")}
	if err := s.Start(exec.Command(abs, "-D", "-e", "-f", config)); err != nil {
		return nil, err
	}
	return s, s.WaitReady(ctx, "")
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

// Portico configures a `portico serve` to benchmark.
type Portico struct {
	Bin     string   // the portico binary
	Dir     string   // its data directory goes in Dir/data, its log in Dir/portico.log
	Account string   // created offline with `portico account create` before it starts
	PubKey  string   // path of the account's first login key (.pub)
	Args    []string // more `portico serve` flags
	Env     []string // more environment for `portico serve` (KEY=VALUE)
	CPUs    string   // if set, serve runs on these CPUs only (taskset -c CPUs), from its start
}

// StartPortico creates the account offline, then starts `portico serve` on free loopback ports
// with signups closed, no metrics listener and loopback exempt from the per-source limits (a
// benchmark's many clients all come from it), plus o.Args.
func StartPortico(ctx context.Context, o Portico) (*Server, error) {
	data := filepath.Join(o.Dir, "data")
	create := exec.CommandContext(ctx, o.Bin, "account", "create", o.Account, "--key", o.PubKey, "--data-dir", data)
	create.Env = PorticoEnv()
	if out, err := create.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("portico account create: %w\n%s", err, out)
	}
	sshPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	httpPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &Server{Name: "portico", Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(sshPort)),
		HTTPAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)),
		LogPath:  filepath.Join(o.Dir, "portico.log"), DataDir: data}
	args := append([]string{"serve", "--data-dir", data, "--ssh-listen", s.Addr, "--http-listen", s.HTTPAddr,
		"--signups", "closed", "--drain-timeout", "2s", "--metrics-listen", "off", "--per-source-exempt", "127.0.0.0/8"}, o.Args...)
	cmd := OnCPUs(o.CPUs, o.Bin, args...)
	cmd.Env = append(PorticoEnv(), o.Env...)
	if err := s.Start(cmd); err != nil {
		return nil, err
	}
	if err := s.WaitReady(ctx, "http://"+s.HTTPAddr+"/healthz"); err != nil {
		s.Stop()
		return nil, err
	}
	signer, err := ReadSigner(filepath.Join(data, "ssh_host_ed25519_key"))
	if err != nil {
		s.Stop()
		return nil, fmt.Errorf("portico host key: %w", err)
	}
	s.HostKey = signer.PublicKey()
	return s, nil
}

// OnCPUs is the command bin args, run on cpus only (taskset -c cpus) when cpus is not empty.
// taskset execs bin: the process and its PID are bin's, and it starts with that affinity (Go
// sizes GOMAXPROCS from it).
func OnCPUs(cpus, bin string, args ...string) *exec.Cmd {
	if cpus == "" {
		return exec.Command(bin, args...)
	}
	return exec.Command("taskset", append([]string{"-c", cpus, bin}, args...)...)
}

// PorticoEnv is this process's environment without PORTICO_* settings, so that only the
// command line configures the server.
func PorticoEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PORTICO_") {
			env = append(env, kv)
		}
	}
	return env
}

// Start runs cmd with its output in the server's log file.
func (s *Server) Start(cmd *exec.Cmd) error {
	log, err := os.Create(s.LogPath)
	if err != nil {
		return fmt.Errorf("%s log: %w", s.Name, err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.Name, err)
	}
	s.Cmd, s.exited = cmd, make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	return nil
}

// WaitReady waits until the server greets on its SSH address and, if healthz is not empty,
// that URL answers 200.
func (s *Server) WaitReady(ctx context.Context, healthz string) error {
	deadline := time.Now().Add(startTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited before it was ready: %v\n%s", s.Name, s.waitErr, s.LogTail())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if last = sshtest.Greets(s.Addr); last == nil && healthz != "" {
			last = httpOK(client, healthz)
		}
		if last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v: %v\n%s", s.Name, startTimeout, last, s.LogTail())
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

// Stop sends SIGTERM and waits for the server to exit, killing it after stopTimeout.
func (s *Server) Stop() error {
	if s == nil || s.Cmd == nil {
		return nil
	}
	select {
	case <-s.exited:
		return nil
	default:
	}
	if err := s.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM %s: %w", s.Name, err)
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(stopTimeout):
		s.Cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("%s did not exit within %v of SIGTERM; killed", s.Name, stopTimeout)
	}
}

// Alive returns an error when the server has exited.
func (s *Server) Alive() error {
	select {
	case <-s.exited:
		return fmt.Errorf("%s exited: %v\n%s", s.Name, s.waitErr, s.LogTail())
	default:
		return nil
	}
}

// LogTail returns the end of the server's log for error messages.
func (s *Server) LogTail() string {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return ""
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return fmt.Sprintf("--- end of %s ---\n%s", s.LogPath, b)
}

// BuildPortico builds ./cmd/portico of the module in the current directory into a temporary
// directory, which cleanup removes.
func BuildPortico(ctx context.Context) (bin string, cleanup func(), err error) {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if err != nil || root == "." || strings.TrimSpace(string(gomod)) == os.DevNull {
		return "", nil, fmt.Errorf("not inside portico's module (go env GOMOD: %v); run from it or pass -portico", err)
	}
	dir, err := os.MkdirTemp("", "portico-bench-bin-")
	if err != nil {
		return "", nil, fmt.Errorf("temporary directory: %w", err)
	}
	cleanup = func() { os.RemoveAll(dir) }
	bin = filepath.Join(dir, "portico")
	slog.Info("building portico", "module", root)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/portico")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("go build ./cmd/portico: %w\n%s", err, out)
	}
	return bin, cleanup, nil
}
