package e2e

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/internal/sshtest"
)

// loopback is the only address the tests use.
const loopback = "127.0.0.1"

// How long a server may take to come up (a -race build is slow) and to drain.
const (
	startTimeout = 60 * time.Second
	stopTimeout  = 20 * time.Second
)

// freePort returns a loopback TCP port that was free a moment ago and that no other test of
// this process was given. The server is given the number because it would not tell us a port
// it picked itself. Ports come from below the kernel's ephemeral range, where the many ssh
// clients of the tests take their own ports, so that a client cannot take a server's port
// between this check and the server's bind.
func freePort() (int, error) {
	low := ephemeralLow()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		p := portsBase + rand.IntN(low-portsBase)
		if portsGiven[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(loopback, strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		portsGiven[p] = true
		return p, nil
	}
	return 0, errors.New("no free loopback port below the ephemeral range")
}

// portsBase is the lowest port freePort hands out.
const portsBase = 20000

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// ephemeralLow is the first port of the kernel's ephemeral range (32768 when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= portsBase+1000 {
		return 32768
	}
	return n
}

// endpoints are the loopback ports one test's server may listen on: SSH, HTTP, a spare one
// for an SSH listener bound to one service, and one for the metrics listener.
type endpoints struct {
	SSHPort, HTTPPort, ServicePort, MetricsPort int
}

func newEndpoints() (endpoints, error) {
	var ports [4]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return endpoints{}, err
		}
		ports[i] = p
	}
	return endpoints{SSHPort: ports[0], HTTPPort: ports[1], ServicePort: ports[2], MetricsPort: ports[3]}, nil
}

func (e endpoints) sshAddr() string {
	return net.JoinHostPort(loopback, strconv.Itoa(e.SSHPort))
}

func (e endpoints) httpURL(path string) string {
	return "http://" + net.JoinHostPort(loopback, strconv.Itoa(e.HTTPPort)) + path
}

// server is one running `portico serve`.
type server struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed when the process has exited
	waitErr error         // valid once exited is closed
}

// startServer runs `portico serve args...` in dir with env, its stdout and stderr appended to
// logPath, and waits until it is ready on e.
func startServer(dir string, env, args []string, logPath string, e endpoints) (*server, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	args = withTestDefaults(args, env)
	fmt.Fprintf(logFile, "### portico serve %s\n", strings.Join(args, " "))
	cmd := exec.Command(porticoBin, append([]string{"serve"}, args...)...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := waitReady(e, s.exited); err != nil {
		s.kill()
		return nil, fmt.Errorf("%w\n%s", err, s.logTail())
	}
	return s, nil
}

// withTestDefaults adds to a server's flags what every test server needs unless the test says
// otherwise, with a flag or its PORTICO_ variable in env: no metrics listener (servers of
// parallel tests would share its default port) and loopback exempt from the per-source limits
// and penalties (every client of the tests comes from it; a test of the limits sets its own).
func withTestDefaults(args, env []string) []string {
	for _, d := range []struct{ flag, env, value string }{
		{"metrics-listen", "PORTICO_METRICS_LISTEN", "off"},
		{"per-source-exempt", "PORTICO_PER_SOURCE_EXEMPT", "127.0.0.0/8"},
	} {
		if !hasFlag(args, d.flag) && !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, d.env+"=") }) {
			args = append(args, "--"+d.flag, d.value)
		}
	}
	return args
}

// closed reports whether c is closed (as a process's exited is once it has exited), without
// waiting.
func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and expects the server to drain and exit 0.
func (s *server) stop() error {
	if closed(s.exited) {
		return fmt.Errorf("portico serve had already exited: %v\n%s", s.waitErr, s.logTail())
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		s.kill()
		return fmt.Errorf("portico serve did not exit within %v of SIGTERM\n%s", stopTimeout, s.logTail())
	}
	if s.waitErr != nil {
		return fmt.Errorf("portico serve after SIGTERM: %v (want exit status 0)\n%s", s.waitErr, s.logTail())
	}
	return nil
}

// kill ends the server without asking; for cleanup after a failure.
func (s *server) kill() {
	if closed(s.exited) {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
}

func (s *server) running() bool { return !closed(s.exited) }

// logTail returns the last lines of the server's log, for failure messages.
func (s *server) logTail() string {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return "portico log (" + filepath.Base(s.logPath) + "):\n" + strings.Join(lines, "\n")
}

// waitReady waits until the SSH port greets with an SSH banner and /healthz answers 200. It gives
// up early when exited is closed (the server died).
func waitReady(e endpoints, exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("portico serve exited before it was ready")
		default:
		}
		if last = sshtest.Greets(e.sshAddr()); last == nil {
			resp, err := client.Get(e.httpURL("/healthz"))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
				err = fmt.Errorf("GET /healthz: %s", resp.Status)
			}
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("portico serve not ready after %v: %v", startTimeout, last)
}

// hostKey returns the host key the SSH server at addr offers (the handshake stops there).
func hostKey(addr string) (ssh.PublicKey, error) {
	var key ssh.PublicKey
	errGotKey := errors.New("got the host key")
	config := &ssh.ClientConfig{
		User: "hostkey-probe",
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			key = k
			return errGotKey
		},
		Timeout: 5 * time.Second,
	}
	conn, err := ssh.Dial("tcp", addr, config)
	if err == nil {
		conn.Close()
	}
	if key == nil {
		return nil, fmt.Errorf("no host key from %s: %v", addr, err)
	}
	return key, nil
}

// writeKnownHosts records the host key of the server at e, for its SSH port and its service
// port, in an OpenSSH known_hosts file, so that clients run with StrictHostKeyChecking=yes
// check that they talk to this server.
func writeKnownHosts(path string, e endpoints) error {
	key, err := hostKey(e.sshAddr())
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, port := range []int{e.SSHPort, e.ServicePort} {
		fmt.Fprintf(&b, "[%s]:%d %s", loopback, port, ssh.MarshalAuthorizedKey(key))
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// sshConfig is the client configuration every test's ssh uses: only this server, only the
// given identities, no agent, no prompts, and the server's host key checked.
func sshConfig(e endpoints, knownHosts string) string {
	return fmt.Sprintf(`Host *
  Port %d
  UserKnownHostsFile %s
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  CheckHostIP no
  UpdateHostKeys no
  IdentitiesOnly yes
  IdentityAgent none
  BatchMode yes
  PasswordAuthentication no
  KbdInteractiveAuthentication no
  ConnectTimeout 10
  ServerAliveInterval 5
  ServerAliveCountMax 6
`, e.SSHPort, knownHosts)
}
