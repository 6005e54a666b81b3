package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/internal/benchenv"
)

// env is what one bench run set up: keys, a certificate, and the servers.
type env struct {
	dir    string
	key    ssh.Signer // the client's login key
	cert   ssh.Signer // the same key with its certificate (principals admin and root)
	ca     ssh.Signer
	caPath string
	bare   *benchenv.Server
	// bareMemFile is where the bare server writes its memory after a collection (SIGUSR1).
	bareMemFile string
	portico     *benchenv.Server
	sshd        *benchenv.Server // nil with -no-sshd
}

// target is one server as the clients see it.
type target struct {
	name string
	s    *benchenv.Server
	user string // SSH user
	cmd  string // the command each session runs
}

func (e *env) targets() []target {
	ts := []target{
		{"bare x/crypto", e.bare, "bench", "true"},
		{"portico", e.portico, "admin", "whoami"},
	}
	if e.sshd != nil {
		ts = append(ts, target{"sshd", e.sshd, "root", "true"})
	}
	return ts
}

func setup(ctx context.Context, o options) (_ *env, err error) {
	dir, err := os.MkdirTemp("", "portico-gatewaybench-")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir, caPath: filepath.Join(dir, "ca")}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	keyPath := filepath.Join(dir, "client_ed25519")
	if e.key, err = benchenv.MakeKey(ctx, keyPath, "gatewaybench"); err != nil {
		return nil, err
	}
	if e.ca, err = benchenv.MakeKey(ctx, e.caPath, "gatewaybench-ca"); err != nil {
		return nil, err
	}
	if e.cert, err = certify(e.ca, e.key, "bench@gatewaybench", []string{"admin", benchPrincipal}); err != nil {
		return nil, err
	}
	e.bareMemFile = filepath.Join(dir, "bare_host_ed25519_key.memstats")
	if e.bare, err = startBare(ctx, dir, keyPath+".pub", e.caPath+".pub"); err != nil {
		return nil, err
	}
	var env []string
	if o.heapDir != "" {
		env = append(env, "PORTICO_PPROF_LISTEN="+o.pprofAddr)
	}
	e.portico, err = benchenv.StartPortico(ctx, benchenv.Portico{Bin: o.portico, Dir: dir, Account: "alice", PubKey: keyPath + ".pub", Args: o.porticoArgs, Env: env})
	if err != nil {
		return nil, err
	}
	if err := registerCA(e.portico, e.key, e.ca, dir); err != nil {
		return nil, fmt.Errorf("registering the CA on portico: %w", err)
	}
	if !o.noSSHD {
		e.sshd, err = benchenv.StartSSHD(ctx, benchenv.SSHD{
			Path:           o.sshd,
			Dir:            dir,
			AuthorizedKeys: string(ssh.MarshalAuthorizedKey(e.key.PublicKey())),
			Extra:          "TrustedUserCAKeys " + e.caPath + ".pub\nMaxStartups 1000\n",
		})
		if err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (e *env) close() {
	for _, s := range []*benchenv.Server{e.portico, e.bare, e.sshd} {
		if err := s.Stop(); err != nil {
			slog.Warn("stopping server", "server", s.Name, "err", err)
		}
	}
	os.RemoveAll(e.dir)
}

// certify signs a user certificate of key, valid for a day, with every permit.
func certify(ca, key ssh.Signer, keyID string, principals []string) (ssh.Signer, error) {
	now := time.Now()
	cert := &ssh.Certificate{
		Key:             key.PublicKey(),
		CertType:        ssh.UserCert,
		KeyId:           keyID,
		ValidPrincipals: principals,
		ValidAfter:      uint64(now.Add(-time.Minute).Unix()),
		ValidBefore:     uint64(now.Add(24 * time.Hour).Unix()),
		Permissions: ssh.Permissions{Extensions: map[string]string{
			"permit-pty": "", "permit-port-forwarding": "",
		}},
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		return nil, err
	}
	return ssh.NewCertSigner(cert, key)
}

// startBare starts this program as the bare server on a free port.
func startBare(ctx context.Context, dir, keyPub, caPub string) (*benchenv.Server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	hostKeyPath := filepath.Join(dir, "bare_host_ed25519_key")
	hostKey, err := benchenv.MakeKey(ctx, hostKeyPath, "bare")
	if err != nil {
		return nil, err
	}
	port, err := benchenv.FreePort()
	if err != nil {
		return nil, err
	}
	s := &benchenv.Server{Name: "bare", Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		HostKey: hostKey.PublicKey(), LogPath: filepath.Join(dir, "bare.log")}
	if err := s.Start(exec.Command(self, "-serve-bare", s.Addr, hostKeyPath, keyPub, caPub)); err != nil {
		return nil, err
	}
	return s, s.WaitReady(ctx, "")
}

// registerCA adds the CA to portico's account over SSH with the login key, and proves
// possession when portico asks for it: `keys add --ca` makes the CA pending and names a code,
// and a certificate the CA signs for that code activates it.
func registerCA(s *benchenv.Server, key, ca ssh.Signer, dir string) error {
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ca.PublicKey()))) + " bench-ca\n"
	out, err := runAdmin(s, key, "keys add --ca --json", line)
	if err != nil {
		return err
	}
	var added struct {
		State string `json:"state"`
		Claim *struct {
			Code string `json:"code"`
		} `json:"claim"`
	}
	if err := json.Unmarshal([]byte(out), &added); err != nil {
		return fmt.Errorf("keys add --ca --json printed %q: %w", out, err)
	}
	if added.Claim == nil {
		return nil
	}
	throwaway, err := benchenv.MakeKey(context.Background(), filepath.Join(dir, "claim_ed25519"), "claim")
	if err != nil {
		return err
	}
	claim, err := certify(ca, throwaway, "portico-claim", []string{added.Claim.Code})
	if err != nil {
		return err
	}
	cert := claim.PublicKey().(*ssh.Certificate)
	_, err = runAdmin(s, key, "keys add --ca", string(ssh.MarshalAuthorizedKey(cert)))
	return err
}

// runAdmin runs one admin command over SSH with stdin and returns its standard output.
func runAdmin(s *benchenv.Server, key ssh.Signer, cmd, stdin string) (string, error) {
	c, err := ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{
		User: "admin", Auth: []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.FixedHostKey(s.HostKey), Timeout: 10 * time.Second,
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	sess.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	sess.Stderr = &stderr
	out, err := sess.Output(cmd)
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", cmd, err, stderr.String())
	}
	return string(out), nil
}
