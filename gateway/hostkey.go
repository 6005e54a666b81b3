package gateway

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	gossh "golang.org/x/crypto/ssh"
)

// HostKeyFile is the host key's file name inside the data directory.
const HostKeyFile = "ssh_host_ed25519_key"

// LoadOrCreateHostKey reads the ed25519 host key at path (an OpenSSH private key file), or
// creates it with mode 0600, and its public half at path.pub, when it does not exist yet.
// created reports whether a new key was made.
func LoadOrCreateHostKey(path string) (signer gossh.Signer, created bool, err error) {
	pemBytes, err := os.ReadFile(path)
	if err == nil {
		// Like sshd, refuse a private host key that others may read: it is no longer
		// this server's secret.
		if info, err := os.Stat(path); err != nil {
			return nil, false, fmt.Errorf("host key: %w", err)
		} else if mode := info.Mode().Perm(); mode&0o077 != 0 && runtime.GOOS != "windows" {
			return nil, false, fmt.Errorf("host key %s: permissions %04o are too open: others may read it; run chmod 600 %s", path, mode, path)
		}
		signer, err := gossh.ParsePrivateKey(pemBytes)
		if err != nil {
			return nil, false, fmt.Errorf("host key %s: %w", path, err)
		}
		return signer, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("host key: %w", err)
	}

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("host key: generate: %w", err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "portico host key")
	if err != nil {
		return nil, false, fmt.Errorf("host key: encode: %w", err)
	}
	signer, err = gossh.NewSignerFromKey(priv)
	if err != nil {
		return nil, false, fmt.Errorf("host key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("host key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("host key: %w", err)
	}
	if err := pem.Encode(f, block); err != nil {
		f.Close()
		os.Remove(path)
		return nil, false, fmt.Errorf("host key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, false, fmt.Errorf("host key %s: %w", path, err)
	}
	pub := gossh.MarshalAuthorizedKey(signer.PublicKey())
	if err := os.WriteFile(path+".pub", pub, 0o644); err != nil {
		return nil, false, fmt.Errorf("host key: %w", err)
	}
	return signer, true, nil
}
