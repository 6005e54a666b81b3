package login

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/certifier"
)

// Files are where the login for one certifier lives: a directory per certifier under the
// user's portico config directory, readable by the user only.
type Files struct {
	Dir          string
	Key          string // the dedicated ed25519 private key (OpenSSH format, 0600)
	PublicKey    string // Key + ".pub"
	Certificate  string // Key + "-cert.pub", where ssh looks for it
	RefreshToken string // the provider's refresh token (0600)
	Provider     string // the provider and client the refresh token is for (0600)
	lock         string
}

// FilesFor returns the files of the certifier at certifierURL under configDir.
func FilesFor(configDir, certifierURL string) (Files, error) {
	u, err := url.Parse(certifierURL)
	if err != nil || u.Host == "" {
		return Files{}, fmt.Errorf("certifier URL %q: want https://HOST[:PORT]", certifierURL)
	}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, strings.TrimSuffix(u.Host+u.Path, "/"))
	dir := filepath.Join(configDir, "certifiers", name)
	key := filepath.Join(dir, "id_ed25519")
	return Files{
		Dir:          dir,
		Key:          key,
		PublicKey:    key + ".pub",
		Certificate:  key + "-cert.pub",
		RefreshToken: filepath.Join(dir, "refresh_token"),
		Provider:     filepath.Join(dir, "provider.json"),
		lock:         filepath.Join(dir, ".lock"),
	}, nil
}

// DefaultConfigDir is the user's portico config directory: $XDG_CONFIG_HOME/portico or
// ~/.config/portico (on macOS ~/Library/Application Support/portico).
func DefaultConfigDir() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "portico")
}

// Lock takes the directory's lock (creating the directory, mode 0700), so that several ssh
// processes refreshing at once use the refresh token one after another.
func (f Files) Lock() (unlock func(), err error) {
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		return nil, err
	}
	file, err := os.OpenFile(f.lock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(file.Fd()), syscall.LOCK_EX); err != nil {
		file.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(file.Fd()), syscall.LOCK_UN)
		file.Close()
	}, nil
}

// LoadOrCreateKey returns the dedicated key, creating it on first use.
func (f Files) LoadOrCreateKey() (gossh.Signer, error) {
	data, err := os.ReadFile(f.Key)
	if err == nil {
		s, err := gossh.ParsePrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", f.Key, err)
		}
		return s, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := gossh.MarshalPrivateKey(priv, "portico login")
	if err != nil {
		return nil, err
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(f.Key, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	pub := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(signer.PublicKey()))) + " portico login\n"
	if err := writeFileAtomic(f.PublicKey, []byte(pub), 0o644); err != nil {
		return nil, err
	}
	return signer, nil
}

// LoadCertificate reads the certificate file, if there is one for key.
func (f Files) LoadCertificate(key gossh.PublicKey) (*gossh.Certificate, error) {
	data, err := os.ReadFile(f.Certificate)
	if err != nil {
		return nil, err
	}
	pub, _, _, _, err := gossh.ParseAuthorizedKey(data)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", f.Certificate, err)
	}
	cert, ok := pub.(*gossh.Certificate)
	if !ok {
		return nil, fmt.Errorf("%s is not a certificate", f.Certificate)
	}
	if key != nil && string(cert.Key.Marshal()) != string(key.Marshal()) {
		return nil, fmt.Errorf("certificate %s is for another key", f.Certificate)
	}
	return cert, nil
}

// readRefreshToken returns the stored refresh token, "" if none.
func (f Files) readRefreshToken() (string, error) {
	data, err := os.ReadFile(f.RefreshToken)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return strings.TrimSpace(string(data)), err
}

// providerRecord is the provider and client a refresh token was issued by and for.
type providerRecord struct {
	Issuer   string `json:"issuer"`
	ClientID string `json:"client_id"`
}

// readProvider returns the recorded provider, ok false if none is recorded.
func (f Files) readProvider() (rec providerRecord, ok bool, err error) {
	data, err := os.ReadFile(f.Provider)
	if errors.Is(err, fs.ErrNotExist) {
		return rec, false, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &rec)
	}
	if err != nil {
		return rec, false, fmt.Errorf("%s: %w", f.Provider, err)
	}
	return rec, true, nil
}

func (f Files) writeProvider(rec providerRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return writeFileAtomic(f.Provider, append(data, '\n'), 0o600)
}

// writeFileAtomic writes data to a temporary file in the same directory and renames it over
// path, so that ssh never reads half a certificate.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// NeedsRefresh reports whether a certificate has less than a third of its life left. Its life
// is counted from when it was issued: the certifier starts validity a minute in the past.
func NeedsRefresh(cert *gossh.Certificate, now time.Time) bool {
	if cert == nil || cert.ValidBefore == gossh.CertTimeInfinity {
		return cert == nil
	}
	before := time.Unix(int64(cert.ValidBefore), 0)
	issued := time.Unix(int64(cert.ValidAfter), 0).Add(certifier.Backdate)
	if issued.After(before) {
		issued = time.Unix(int64(cert.ValidAfter), 0)
	}
	life := before.Sub(issued)
	return before.Sub(now) < life/3
}
