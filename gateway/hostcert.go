package gateway

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// HostCertificate is the host key's OpenSSH host certificate (PORTICO_HOST_CERT), which clients
// that trust its CA accept without a host-key prompt.
type HostCertificate struct {
	Signer gossh.Signer       // the host key presenting the certificate
	Cert   *gossh.Certificate // as read, its signature checked
}

// LoadHostCertificate reads the host certificate at path (what `ssh-keygen -s HOSTCA -h`
// writes) and checks that it is a host certificate of hostKey, signed by its CA, valid now.
func LoadHostCertificate(path string, hostKey gossh.Signer, now time.Time) (*HostCertificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("host certificate: %w", err)
	}
	pub, _, _, _, err := gossh.ParseAuthorizedKey(b)
	if err != nil {
		return nil, fmt.Errorf("host certificate %s: %w", path, err)
	}
	cert, ok := pub.(*gossh.Certificate)
	switch {
	case !ok:
		return nil, fmt.Errorf("host certificate %s: it is a plain %s key, not a certificate", path, pub.Type())
	case cert.CertType != gossh.HostCert:
		return nil, fmt.Errorf("host certificate %s: it is a user certificate; sign the host key with ssh-keygen -h", path)
	case !bytes.Equal(cert.Key.Marshal(), hostKey.PublicKey().Marshal()):
		return nil, fmt.Errorf("host certificate %s certifies key %s, not this server's host key %s",
			path, gossh.FingerprintSHA256(cert.Key), gossh.FingerprintSHA256(hostKey.PublicKey()))
	}
	if len(cert.ValidPrincipals) == 0 {
		return nil, fmt.Errorf("host certificate %s names no host: sign it with ssh-keygen -h -n HOSTNAME", path)
	}
	// CheckCert verifies the CA's signature and the validity window.
	checker := gossh.CertChecker{Clock: func() time.Time { return now }}
	if err := checker.CheckCert(cert.ValidPrincipals[0], cert); err != nil {
		return nil, fmt.Errorf("host certificate %s: %w", path, err)
	}
	signer, err := gossh.NewCertSigner(cert, hostKey)
	if err != nil {
		return nil, fmt.Errorf("host certificate %s: %w", path, err)
	}
	return &HostCertificate{Signer: signer, Cert: cert}, nil
}

// KnownHostsLine is the line a client puts in known_hosts to trust every host certificate of
// this one's CA for host at port: `@cert-authority [host]:port ssh-ed25519 AAAA...`.
func (h *HostCertificate) KnownHostsLine(host string, port int) string {
	pattern := host
	if port != 22 && port != 0 {
		pattern = "[" + host + "]:" + strconv.Itoa(port)
	}
	return "@cert-authority " + pattern + " " + strings.TrimSpace(string(gossh.MarshalAuthorizedKey(h.Cert.SignatureKey)))
}
