package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// Proof of possession. A key added to an account waits, pending, until its holder proves they
// hold its private half: a login key by running `keys claim CODE` on a connection it
// authenticated itself, a CA by signing a certificate whose principal is CODE. The code ties the
// proof to the one pending entry that printed it.

// ClaimCodeAlphabet are the characters of claim codes: digits and capital letters without those
// easily mistaken for others (0 O, 1 I L), so that a code read aloud or copied by hand survives.
const ClaimCodeAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

// ClaimCodeLen is the length of a claim code: 31^8, about 2^39.6 codes.
const ClaimCodeLen = 8

// ClaimKeyID is the key ID of a certificate that proves possession of a CA.
const ClaimKeyID = "portico-claim"

// NewClaimCode returns a fresh random claim code.
func NewClaimCode() string {
	b := make([]byte, ClaimCodeLen)
	for i := range b {
		b[i] = ClaimCodeAlphabet[randIndex(len(ClaimCodeAlphabet))]
	}
	return string(b)
}

// randIndex returns a uniform random number in [0, n) from crypto/rand, n < 256.
func randIndex(n int) int {
	limit := 256 - 256%n // reject the top values, which would favour small ones
	var one [1]byte
	for {
		if _, err := rand.Read(one[:]); err != nil {
			panic(err) // crypto/rand never fails on supported systems
		}
		if int(one[0]) < limit {
			return int(one[0]) % n
		}
	}
}

// ParseClaimCode reads a claim code as a user types it: case and surrounding spaces do not
// matter. It returns the code in canonical form, or why it is no code.
func ParseClaimCode(s string) (string, error) {
	code := strings.ToUpper(strings.TrimSpace(s))
	if len(code) != ClaimCodeLen {
		return "", fmt.Errorf("%q is not a claim code: a claim code is %d letters and digits, such as 7KQ2M9XA", shortText(s), ClaimCodeLen)
	}
	for _, r := range code {
		if !strings.ContainsRune(ClaimCodeAlphabet, r) {
			return "", fmt.Errorf("%q is not a claim code: a claim code is %d letters and digits, such as 7KQ2M9XA", shortText(s), ClaimCodeLen)
		}
	}
	return code, nil
}

// shortText is user input fit for a message: sanitised like a key ID and cut to 40 characters.
func shortText(s string) string {
	s = SanitizeKeyID(s)
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "..."
	}
	return s
}

// IsCertificateLine reports whether line looks like a certificate, as ssh-keygen -s writes
// one (type, base64, comment), rather than a public key line.
func IsCertificateLine(line string) bool {
	f := strings.Fields(line)
	return len(f) > 0 && strings.HasSuffix(f[0], "-cert-v01@openssh.com")
}

// ParseCertificateLine parses one certificate line, as ssh-keygen -s writes it to KEY-cert.pub:
// type, base64 and an optional comment, without options.
func ParseCertificateLine(line string) (*gossh.Certificate, error) {
	line = strings.TrimSpace(line)
	if strings.ContainsAny(line, "\r\n") {
		return nil, errors.New("expected one certificate line, got several")
	}
	if !IsCertificateLine(line) {
		return nil, errors.New("not a certificate line: want the line of a -cert.pub file (ssh-ed25519-cert-v01@openssh.com AAAA...)")
	}
	key, _, options, rest, err := gossh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, fmt.Errorf("malformed certificate: %v", err)
	}
	if len(options) > 0 || len(rest) > 0 {
		return nil, errors.New("malformed certificate line: want only the certificate, as ssh-keygen writes it")
	}
	cert, ok := key.(*gossh.Certificate)
	if !ok {
		return nil, errors.New("not a certificate")
	}
	return cert, nil
}

// CheckCAClaim decides whether cert proves that whoever made it holds the private half of the
// CA key ca, pending with code: it must be a user certificate, signed by ca (the signature
// verifies, with an algorithm accepted from CAs), valid at now, with key ID portico-claim and
// code among its principals. Only the CA's holder can make one; the key ID and the one-time code
// keep a CA that signs certificates for others (a certifier naming principals after users) from
// being talked into making one.
func CheckCAClaim(cert *gossh.Certificate, ca gossh.PublicKey, code string, now time.Time) error {
	switch {
	case cert.Key == nil || cert.SignatureKey == nil:
		return errors.New("the certificate has no key or no signature key")
	case !bytes.Equal(cert.SignatureKey.Marshal(), ca.Marshal()):
		return fmt.Errorf("the certificate is signed by %s, not by the pending certificate authority %s", Fingerprint(cert.SignatureKey), Fingerprint(ca))
	case cert.CertType != gossh.UserCert:
		return errors.New("it is a host certificate: sign a user certificate (ssh-keygen -s without -h)")
	}
	if err := verifyCASignature(cert); err != nil {
		return fmt.Errorf("the certificate's signature does not verify: %v", err)
	}
	unixNow := uint64(max(now.Unix(), 0))
	if unixNow < cert.ValidAfter {
		return fmt.Errorf("the certificate is not yet valid: it is valid from %s", certTimeText(cert.ValidAfter))
	}
	if cert.ValidBefore != gossh.CertTimeInfinity && unixNow >= cert.ValidBefore {
		return fmt.Errorf("the certificate expired at %s: sign a new one", certTimeText(cert.ValidBefore))
	}
	if cert.KeyId != ClaimKeyID {
		return fmt.Errorf("the certificate's key ID is %q, not %q (ssh-keygen -I %s)", shortText(cert.KeyId), ClaimKeyID, ClaimKeyID)
	}
	for _, p := range cert.ValidPrincipals {
		if p == code {
			return nil
		}
	}
	return errors.New("the certificate's principals do not include this CA's claim code (ssh-keygen -n CODE, with the code keys add printed)")
}

// AdderLine is how a pending key records the key or certificate of the connection that added
// it (db.NewPendingKey.AddedBy): its authorized_keys line.
func AdderLine(key gossh.PublicKey) string {
	if key == nil {
		return ""
	}
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(key)))
}

// AdderAddr is how a pending key records the address of the connection that added it
// (AddedFrom): its IP address, which is all that source-address and from= look at; "" when it
// had none.
func AdderAddr(addr net.Addr) string {
	if ip, ok := clientIP(addr); ok {
		return ip.String()
	}
	return ""
}

// RecheckAdder judges again, now, the connection that added a pending key to account
// accountID, from what the pending key recorded (AdderLine, AdderAddr): nil while that key or
// certificate still manages the account (as Recheck: not revoked, its login key or CA still
// registered, still valid, from that address), else a *Refusal. A key added by a connection
// whose grounds have ended since cannot be claimed: otherwise a certificate, once revoked,
// could still turn a key it added into a login key. An entry that recorded nothing is refused.
func (a *Authenticator) RecheckAdder(ctx context.Context, accountID int64, addedBy, addedFrom string) error {
	if addedBy == "" {
		return &Refusal{Reason: ReasonNotRegistered, AccountID: accountID,
			Message: "the key was added before portico recorded who added it, so that cannot be checked"}
	}
	key, _, _, _, err := gossh.ParseAuthorizedKey([]byte(addedBy))
	if err != nil {
		return fmt.Errorf("auth: the recorded adder of a pending key does not parse: %w", err)
	}
	var remote net.Addr
	if addedFrom != "" {
		ip, err := netip.ParseAddr(addedFrom)
		if err != nil {
			return fmt.Errorf("auth: the recorded address of a pending key's adder does not parse: %w", err)
		}
		remote = net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 0))
	}
	return a.Recheck(ctx, Grant{AccountID: accountID, Service: Admin, PublicKey: key, RemoteAddr: remote})
}
