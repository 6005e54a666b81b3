package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// cmdWaitDelay bounds how long Wait waits for a killed client's output to close.
const cmdWaitDelay = 5 * time.Second

// sshArgs are OpenSSH client options for a connection to s as user: no user configuration, the
// benchmark's key and known_hosts only, no compression, no multiplexing, the forced cipher
// (if any). logLevel is ERROR for measured connections and DEBUG1 for the cipher probe.
func (e *env) sshArgs(s *server, cipher, logLevel, user string) []string {
	host, port, _ := net.SplitHostPort(s.Addr)
	args := []string{
		"-F", "/dev/null", "-T", "-p", port, "-i", e.keyPath,
		"-o", "IdentitiesOnly=yes",
		"-o", "BatchMode=yes",
		"-o", "LogLevel=" + logLevel,
		"-o", "UserKnownHostsFile=" + e.knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "Compression=no",
		"-o", "ControlMaster=no",
		"-o", "ControlPath=none",
		"-o", "ForwardAgent=no",
		"-o", "ForwardX11=no",
		"-o", "ConnectTimeout=10",
	}
	if cipher != "" {
		args = append(args, "-c", cipher)
	}
	return append(args, user+"@"+host)
}

// sshCommand is OpenSSH's client running remote on s as user.
func (e *env) sshCommand(ctx context.Context, s *server, cipher, user string, remote ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ssh", append(e.sshArgs(s, cipher, "ERROR", user), remote...)...)
	cmd.WaitDelay = cmdWaitDelay
	return cmd
}

// negotiation is what a connection agreed on, as `ssh -v` reports it.
type negotiation struct {
	kex, hostKey, cipher, mac string
}

func (n negotiation) String() string {
	return fmt.Sprintf("kex %s, host key %s, cipher %s, MAC %s", n.kex, n.hostKey, n.cipher, n.mac)
}

var (
	kexLine     = regexp.MustCompile(`kex: algorithm: (\S+)`)
	hostKeyLine = regexp.MustCompile(`kex: host key algorithm: (\S+)`)
	cipherLine  = regexp.MustCompile(`kex: server->client cipher: (\S+) MAC: (\S+)`)
)

// probe runs `ssh -v USER@s REMOTE` once and returns the negotiated algorithms. The remote
// command's own output and exit status do not matter, only that the key exchange happened.
func (e *env) probe(ctx context.Context, s *server, cipher, user, remote string) (negotiation, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	args := append(e.sshArgs(s, cipher, "DEBUG1", user), remote)
	cmd := exec.CommandContext(ctx, "ssh", args...)
	cmd.WaitDelay = cmdWaitDelay
	out, err := cmd.CombinedOutput()
	var n negotiation
	if m := kexLine.FindSubmatch(out); m != nil {
		n.kex = string(m[1])
	}
	if m := hostKeyLine.FindSubmatch(out); m != nil {
		n.hostKey = string(m[1])
	}
	m := cipherLine.FindSubmatch(out)
	if m == nil {
		return n, fmt.Errorf("ssh -v to %s: no cipher negotiated (%v)\n%s", s.Name, err, lastLines(out, 15))
	}
	n.cipher, n.mac = string(m[1]), string(m[2])
	return n, nil
}

// lastLines returns the last n lines of b.
func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// dial opens a golang.org/x/crypto/ssh connection to s as user, pinned to s's host key and
// limited to cipher (if not empty).
func (e *env) dial(s *server, cipher, user string) (*ssh.Client, error) {
	config := &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(e.signer)},
		HostKeyCallback: ssh.FixedHostKey(s.HostKey),
		Timeout:         10 * time.Second,
	}
	if cipher != "" {
		config.Ciphers = []string{cipher}
	}
	c, err := ssh.Dial("tcp", s.Addr, config)
	if err != nil {
		return nil, fmt.Errorf("connect to %s as %s: %w", s.Name, user, err)
	}
	return c, nil
}

// sshVersion returns `ssh -V`'s line.
func sshVersion() string {
	out, err := exec.Command("ssh", "-V").CombinedOutput()
	if err != nil {
		return "ssh -V: " + err.Error()
	}
	return strings.TrimSpace(string(out))
}
