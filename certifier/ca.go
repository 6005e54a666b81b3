package certifier

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/portico-sh/portico/auth"
)

// AgentPrefix in a --ca value means: sign through the ssh-agent at SSH_AUTH_SOCK.
// "agent:" alone uses the agent's only key; "agent:SHA256:..." picks one by fingerprint.
const AgentPrefix = "agent:"

// agentTimeout bounds one exchange with the ssh-agent (a hardware token may ask for a touch).
const agentTimeout = 30 * time.Second

// LoadCA returns the CA signer that --ca names: a private key file (unencrypted, readable by
// its owner only, as ssh-keygen writes it) or the ssh-agent at authSock.
func LoadCA(spec, authSock string) (gossh.Signer, error) {
	if fp, ok := strings.CutPrefix(spec, AgentPrefix); ok {
		return agentCA(authSock, fp)
	}
	if spec == "" {
		return nil, errors.New("no CA: give --ca FILE or --ca agent:")
	}
	info, err := os.Stat(spec)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("CA key %s is readable by others (mode %04o): chmod 600 it", spec, info.Mode().Perm())
	}
	data, err := os.ReadFile(spec)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	signer, err := gossh.ParsePrivateKey(data)
	if _, ok := errors.AsType[*gossh.PassphraseMissingError](err); ok {
		return nil, fmt.Errorf("CA key %s is encrypted: add it to an ssh-agent (ssh-add %s) and use --ca agent:", spec, spec)
	}
	if err != nil {
		return nil, fmt.Errorf("CA key %s: %w", spec, err)
	}
	return signer, nil
}

// agentCA picks the CA key from the agent: by fingerprint, or its only key.
func agentCA(sock, fingerprint string) (gossh.Signer, error) {
	if sock == "" {
		return nil, errors.New("--ca agent: needs SSH_AUTH_SOCK (the ssh-agent holding the CA key)")
	}
	s := &agentSigner{sock: sock}
	keys, err := s.list()
	if err != nil {
		return nil, err
	}
	var found []gossh.PublicKey
	for _, k := range keys {
		pub, err := gossh.ParsePublicKey(k.Blob)
		if err != nil {
			continue
		}
		if _, isCert := pub.(*gossh.Certificate); isCert {
			continue
		}
		if fingerprint == "" || gossh.FingerprintSHA256(pub) == fingerprint {
			found = append(found, pub)
		}
	}
	switch {
	case len(found) == 1:
		s.pub = found[0]
		return s, nil
	case fingerprint != "":
		return nil, fmt.Errorf("the ssh-agent at %s holds no key %s", sock, fingerprint)
	case len(found) == 0:
		return nil, fmt.Errorf("the ssh-agent at %s holds no key: ssh-add the CA key", sock)
	default:
		names := make([]string, len(found))
		for i, k := range found {
			names[i] = gossh.FingerprintSHA256(k)
		}
		return nil, fmt.Errorf("the ssh-agent at %s holds %d keys: choose the CA with --ca agent:FINGERPRINT (%s)", sock, len(found), strings.Join(names, ", "))
	}
}

// agentSigner signs with one key of an ssh-agent, connecting for each signature, so that an
// agent restarted in the meantime is found again and no connection is held idle.
type agentSigner struct {
	sock string
	pub  gossh.PublicKey
	mu   sync.Mutex // one exchange with the agent at a time
}

func (s *agentSigner) PublicKey() gossh.PublicKey { return s.pub }

func (s *agentSigner) Sign(rand io.Reader, data []byte) (*gossh.Signature, error) {
	return s.SignWithAlgorithm(rand, data, "")
}

// SignWithAlgorithm signs data; for an RSA key algorithm picks SHA-256 or SHA-512.
func (s *agentSigner) SignWithAlgorithm(_ io.Reader, data []byte, algorithm string) (*gossh.Signature, error) {
	var sig *gossh.Signature
	err := s.with(func(a agent.ExtendedAgent) error {
		var flags agent.SignatureFlags
		switch algorithm {
		case gossh.KeyAlgoRSASHA256:
			flags = agent.SignatureFlagRsaSha256
		case gossh.KeyAlgoRSASHA512:
			flags = agent.SignatureFlagRsaSha512
		}
		var err error
		sig, err = a.SignWithFlags(s.pub, data, flags)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ssh-agent at %s: signing with %s: %w", s.sock, gossh.FingerprintSHA256(s.pub), err)
	}
	return sig, nil
}

func (s *agentSigner) list() ([]*agent.Key, error) {
	var keys []*agent.Key
	err := s.with(func(a agent.ExtendedAgent) error {
		var err error
		keys, err = a.List()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ssh-agent at %s: %w", s.sock, err)
	}
	return keys, nil
}

// with runs f on a fresh connection to the agent.
func (s *agentSigner) with(f func(agent.ExtendedAgent) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	conn, err := net.DialTimeout("unix", s.sock, agentTimeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(agentTimeout))
	return f(agent.NewClient(conn))
}

// sha2Signer signs with SHA-512 when its key is RSA (for KRL signatures, where the KRL
// library would otherwise sign with SHA-1's ssh-rsa, which OpenSSH refuses).
type sha2Signer struct{ gossh.Signer }

func (s sha2Signer) Sign(rand io.Reader, data []byte) (*gossh.Signature, error) {
	if as, ok := s.Signer.(gossh.AlgorithmSigner); ok && s.PublicKey().Type() == gossh.KeyAlgoRSA {
		return as.SignWithAlgorithm(rand, data, gossh.KeyAlgoRSASHA512)
	}
	return s.Signer.Sign(rand, data)
}

// ClaimKeyID is the key ID of proof-of-possession certificates.
const ClaimKeyID = "portico-claim"

// claimValidity is how long a proof-of-possession certificate lives.
const claimValidity = 15 * time.Minute

// ClaimCertificate returns the certificate line that proves possession of the CA to the
// gateway's keys add --ca: a user certificate for a fresh throwaway ed25519 key, key ID
// portico-claim, principal code, valid from a minute ago (clock skew) for 15 minutes.
func ClaimCertificate(ca gossh.Signer, code string, now time.Time) (string, error) {
	if code == "" || len(code) > 64 || strings.IndexFunc(code, func(r rune) bool {
		return r > unicode.MaxASCII || !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' && r != '_'
	}) >= 0 {
		return "", fmt.Errorf("claim code %q: want the code keys add --ca printed (letters and digits)", code)
	}
	if auth.KnownService(strings.ToLower(code)) {
		// The throwaway key is never kept, but a CA signs no service principal without a person.
		return "", fmt.Errorf("claim code %q is a service name, not a code keys add --ca printed", code)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	key, err := gossh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	cert := &gossh.Certificate{
		Key:             key,
		Serial:          randomSerial(),
		CertType:        gossh.UserCert,
		KeyId:           ClaimKeyID,
		ValidPrincipals: []string{code},
		ValidAfter:      uint64(now.Add(-time.Minute).Unix()),
		ValidBefore:     uint64(now.Add(claimValidity).Unix()),
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		return "", fmt.Errorf("signing the claim certificate: %w", err)
	}
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(cert))) + " " + ClaimKeyID, nil
}

// maxSerial bounds random serials to 53 bits, so that JSON tools (JavaScript, older jq) read
// them exactly.
const maxSerial = 1<<53 - 1

// randomSerial is a random certificate serial in [1, 2^53).
func randomSerial() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:])
		if s := binary.BigEndian.Uint64(b[:]) & maxSerial; s != 0 {
			return s
		}
	}
}
