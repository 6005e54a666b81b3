package gateway_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/gateway"
)

func TestLoadOrCreateHostKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", gateway.HostKeyFile)
	first, created, err := gateway.LoadOrCreateHostKey(path)
	if err != nil || !created {
		t.Fatalf("first start: created %v, %v", created, err)
	}
	if first.PublicKey().Type() != gossh.KeyAlgoED25519 {
		t.Errorf("host key type %s, want ed25519", first.PublicKey().Type())
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("private key mode %o, want 600", mode)
	}
	pem, _ := os.ReadFile(path)
	if !bytes.HasPrefix(pem, []byte("-----BEGIN OPENSSH PRIVATE KEY-----")) {
		t.Errorf("private key is not in OpenSSH format: %.40q", pem)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	parsed, _, _, _, err := gossh.ParseAuthorizedKey(pub)
	if err != nil || !bytes.Equal(parsed.Marshal(), first.PublicKey().Marshal()) {
		t.Errorf(".pub does not hold the public key: %v", err)
	}

	again, created, err := gateway.LoadOrCreateHostKey(path)
	if err != nil || created {
		t.Fatalf("second start: created %v, %v", created, err)
	}
	if !bytes.Equal(again.PublicKey().Marshal(), first.PublicKey().Marshal()) {
		t.Error("the host key changed between starts")
	}
}

func TestLoadHostKeyRejectsGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), gateway.HostKeyFile)
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := gateway.LoadOrCreateHostKey(path); err == nil {
		t.Error("a garbage host key file was accepted")
	}
}

func TestLoadHostKeyRefusesOpenPermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), gateway.HostKeyFile)
	if _, _, err := gateway.LoadOrCreateHostKey(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := gateway.LoadOrCreateHostKey(path)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a host key readable by others: error %v, want one that says chmod 600", err)
	}
}
