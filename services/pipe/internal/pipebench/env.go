package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/portico-sh/portico/internal/benchenv"
)

// account is the portico account the benchmark connects as.
const account = "alice"

// server is a running sshd or portico serve.
type server = benchenv.Server

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
	if e.signer, err = benchenv.MakeKey(ctx, e.keyPath, "pipebench"); err != nil {
		return nil, fmt.Errorf("client key: %w", err)
	}
	authorized := string(ssh.MarshalAuthorizedKey(e.signer.PublicKey()))
	if e.sshd, err = benchenv.StartSSHD(ctx, benchenv.SSHD{Path: o.sshd, Dir: dir, AuthorizedKeys: authorized}); err != nil {
		return nil, err
	}
	if !o.noPipe {
		e.portico, err = benchenv.StartPortico(ctx, benchenv.Portico{Bin: o.portico, Dir: dir, Account: account, PubKey: e.keyPath + ".pub"})
		if err != nil {
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
			if err := s.Stop(); err != nil {
				slog.Warn("stopping server", "server", s.Name, "err", err)
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
			b.WriteString(knownhosts.Line([]string{s.Addr}, s.HostKey) + "\n")
		}
	}
	if err := os.WriteFile(e.knownHosts, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	return nil
}
