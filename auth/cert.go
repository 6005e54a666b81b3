package auth

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/db"
)

// The critical options portico understands.
const (
	optForceCommand  = "force-command"
	optSourceAddress = "source-address"
)

// caSignatureFormats are the signature algorithms accepted from a CA, by CA key type. Like
// OpenSSH's CASignatureAlgorithms default (since 8.2), RSA CAs must sign with SHA-2:
// ssh-rsa (SHA-1) signatures are refused.
var caSignatureFormats = map[string][]string{
	gossh.KeyAlgoED25519:    {gossh.KeyAlgoED25519},
	gossh.KeyAlgoSKED25519:  {gossh.KeyAlgoSKED25519},
	gossh.KeyAlgoECDSA256:   {gossh.KeyAlgoECDSA256},
	gossh.KeyAlgoECDSA384:   {gossh.KeyAlgoECDSA384},
	gossh.KeyAlgoECDSA521:   {gossh.KeyAlgoECDSA521},
	gossh.KeyAlgoSKECDSA256: {gossh.KeyAlgoSKECDSA256},
	gossh.KeyAlgoRSA:        {gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256},
}

// certificate decides an OpenSSH certificate, in the order of SPEC §2.2.
func (a *Authenticator) certificate(ctx context.Context, at Attempt, cert *gossh.Certificate) (Grant, error) {
	if cert.Key == nil || cert.SignatureKey == nil {
		return Grant{}, &Refusal{Reason: ReasonSignature, Message: "certificate has no key or no signature key"}
	}
	keyFP := Fingerprint(cert.Key)
	caFP := Fingerprint(cert.SignatureKey)
	facts := &CertFacts{
		KeyID:         SanitizeKeyID(cert.KeyId),
		Serial:        cert.Serial,
		CAFingerprint: caFP,
		Principals:    sanitizePrincipals(cert.ValidPrincipals),
		ValidBefore:   certTime(cert.ValidBefore),
	}
	name := strconv.Quote(facts.KeyID)
	// Until the CA's signature verifies, nothing in the certificate is attributed to an
	// account: anyone can name a registered CA as the signer.
	refusal := &Refusal{Identity: facts.KeyID, Cert: facts}
	refuse := func(reason Reason, format string, args ...any) (Grant, error) {
		refusal.Reason = reason
		refusal.Message = fmt.Sprintf(format, args...)
		return Grant{}, refusal
	}

	// 1. A user certificate.
	if cert.CertType != gossh.UserCert {
		return refuse(ReasonHostCert, "certificate %s is a host certificate, not a user certificate", name)
	}

	// 3. The signature verifies: parsing a certificate does not check it. It is checked
	// before the signing key is looked up (2), which needs nothing from the store: a forged
	// certificate is then refused the same way whether or not the key it names is registered,
	// so it cannot be used to learn which public keys are some account's CAs.
	if err := verifyCASignature(cert); err != nil {
		return refuse(ReasonSignature, "certificate %s has a bad signature: %v", name, err)
	}

	// 2. Signed by a registered CA. A login key named as the signer is no CA, and the
	// message is the same as for a key nobody registered.
	ca, err := a.store.KeyByFingerprint(ctx, caFP)
	if errors.Is(err, db.ErrNotFound) || err == nil && ca.Kind != db.KindCA {
		return refuse(ReasonUnknownCA, "certificate %s is signed by an unknown certificate authority (%s)", name, caFP)
	}
	if err != nil {
		return Grant{}, fmt.Errorf("auth: looking up certificate authority %s: %w", caFP, err)
	}
	facts.CAName = ca.Name
	acct, err := a.store.AccountByID(ctx, ca.AccountID)
	if err != nil {
		return Grant{}, fmt.Errorf("auth: looking up the account of certificate authority %s: %w", caFP, err)
	}
	refusal.AccountID, refusal.Account = acct.ID, acct.Name

	// The certificate's own key signs the connection: like sshd (RequiredRSASize), refuse
	// an RSA key too small for that signature to mean anything, as keys add refuses it.
	if bits, ok := rsaBits(cert.Key); ok && bits < minRSABits {
		return refuse(ReasonSignature, "certificate %s is for an RSA key of %d bits, too small for its signature to be trusted (at least %d bits)", name, bits, minRSABits)
	}

	// 4. valid_after <= now < valid_before.
	now := a.now()
	unixNow := uint64(max(now.Unix(), 0))
	if unixNow < cert.ValidAfter {
		return refuse(ReasonNotYetValid, "certificate %s is not yet valid: it is valid from %s", name, certTimeText(cert.ValidAfter))
	}
	if cert.ValidBefore != gossh.CertTimeInfinity && unixNow >= cert.ValidBefore {
		return refuse(ReasonExpired, "certificate %s expired at %s", name, certTimeText(cert.ValidBefore))
	}

	// 5. At least one principal, and at least one portico understands.
	if len(cert.ValidPrincipals) == 0 {
		return refuse(ReasonNoPrincipals, "certificate %s has no principals: sign it with -n and the services it may use (%s)", name, serviceList(Services))
	}
	services := expandPrincipals(cert.ValidPrincipals)
	if len(services) == 0 {
		return refuse(ReasonDoesNotGrant, "certificate %s does not grant any service: its principals are %s, and services are %s",
			name, principalList(cert.ValidPrincipals), serviceList(Services))
	}

	// 6. Every critical option understood and well formed. A duplicate never gets here:
	// x/crypto/ssh refuses options that are not in strictly increasing order when it parses
	// the certificate, so the connection fails before authentication is asked.
	var forceCommand string
	var sourceAddress string
	for _, opt := range slices.Sorted(maps.Keys(cert.CriticalOptions)) {
		v := cert.CriticalOptions[opt]
		switch opt {
		case optForceCommand:
			if v == "" {
				return refuse(ReasonCriticalOption, "certificate %s has an empty critical option force-command", name)
			}
			forceCommand = v
		case optSourceAddress:
			if _, err := parseSourceAddress(v); err != nil {
				return refuse(ReasonCriticalOption, "certificate %s has a malformed critical option source-address: %v", name, err)
			}
			sourceAddress = v
		default:
			return refuse(ReasonCriticalOption, "certificate %s has critical option %q, which portico does not understand", name, opt)
		}
	}

	// 7. source-address matches the client.
	ip, haveIP := clientIP(at.RemoteAddr)
	if sourceAddress != "" {
		prefixes, _ := parseSourceAddress(sourceAddress)
		if !haveIP || !prefixesContain(prefixes, ip) {
			return refuse(ReasonSourceAddress, "certificate %s may not be used from source address %s (it allows %s)", name, addrText(at.RemoteAddr), sourceAddress)
		}
	}

	// 8. Not revoked. A key ID that is not text (a NUL byte, invalid UTF-8) is not looked
	// up: no revocation can name it, and Postgres refuses such a query argument, which would
	// turn a decision into "unavailable". Such a certificate is revoked by serial or key.
	revKeyID := cert.KeyId
	if !utf8.ValidString(revKeyID) || strings.ContainsRune(revKeyID, 0) {
		revKeyID = ""
	}
	rev, err := a.store.FindRevocation(ctx, acct.ID, db.CertRef{
		Serial:         cert.Serial,
		KeyID:          revKeyID,
		KeyFingerprint: keyFP,
		CAFingerprint:  caFP,
	})
	switch {
	case err == nil:
		return refuse(ReasonRevoked, "certificate %s (serial %d) is revoked (%s)", name, cert.Serial, revocationText(rev))
	case !errors.Is(err, db.ErrNotFound):
		return Grant{}, fmt.Errorf("auth: checking revocations of certificate serial %d: %w", cert.Serial, err)
	}

	// 9. The CA's own options hold.
	caOpts, err := ParseKeyOptions(ca.Options)
	if err != nil {
		return Grant{}, fmt.Errorf("auth: stored options of certificate authority %s: %w", caFP, err)
	}
	if caOpts.From != nil && (!haveIP || !matchFrom(caOpts.From, ip)) {
		return refuse(ReasonSourceAddress, "certificate authority %q may not vouch for source address %s (its from= option)", ca.Name, addrText(at.RemoteAddr))
	}
	if caOpts.ExpiryTime != nil && !now.Before(*caOpts.ExpiryTime) {
		return refuse(ReasonExpired, "certificate authority %q expired at %s (its expiry-time option)", ca.Name, rfc3339(*caOpts.ExpiryTime))
	}
	if caOpts.Principals != nil {
		allowed := expandPrincipals(caOpts.Principals)
		services = slices.DeleteFunc(services, func(s Service) bool { return !slices.Contains(allowed, s) })
		if len(services) == 0 {
			return refuse(ReasonDoesNotGrant, "certificate %s does not grant any service certificate authority %q may vouch for (the certificate names %s; the authority is limited to %s)",
				name, ca.Name, principalList(cert.ValidPrincipals), strings.Join(caOpts.Principals, ", "))
		}
	}

	g := Grant{
		AccountID:      acct.ID,
		Account:        acct.Name,
		Method:         MethodCert,
		Identity:       facts.KeyID,
		Service:        at.Service,
		Services:       services,
		KeyFingerprint: keyFP,
		Cert:           facts,
		Permits:        permitsOf(cert),
		ForceCommand:   forceCommand,
		KeyID:          ca.ID,
		RemoteAddr:     at.RemoteAddr,
		ExpiresAt:      earliest(facts.ValidBefore, caOpts.ExpiryTime),
	}
	if !g.Allows(at.Service) {
		return refuse(ReasonDoesNotGrant, "certificate %s does not grant %s (it grants %s)", name, at.Service, serviceList(services))
	}
	return g, nil
}

// verifyCASignature checks the CA's signature over the certificate, and that the CA used an
// algorithm portico accepts for its key type.
func verifyCASignature(cert *gossh.Certificate) error {
	if cert.Signature == nil {
		return errors.New("it carries no signature")
	}
	caType := cert.SignatureKey.Type()
	if !slices.Contains(caSignatureFormats[caType], cert.Signature.Format) {
		if caType == gossh.KeyAlgoRSA && cert.Signature.Format == gossh.KeyAlgoRSA {
			return errors.New("the certificate authority signed it with ssh-rsa (SHA-1), which is not accepted: re-sign it with ssh-keygen -t rsa-sha2-512")
		}
		return fmt.Errorf("a %s certificate authority cannot sign with %q", caType, cert.Signature.Format)
	}
	if err := cert.SignatureKey.Verify(certSignedBytes(cert), cert.Signature); err != nil {
		return fmt.Errorf("it was not signed by certificate authority %s", Fingerprint(cert.SignatureKey))
	}
	return nil
}

// certSignedBytes returns the bytes a CA signs: the certificate without its signature. It is
// what x/crypto's unexported bytesForSigning computes: the marshalled certificate with a nil
// signature, less the trailing four-byte length of the empty signature string.
func certSignedBytes(cert *gossh.Certificate) []byte {
	c := *cert
	c.Signature = nil
	out := c.Marshal()
	return out[:len(out)-4]
}

// expandPrincipals returns the services principals name, in Services order: every service
// when they include admin. Principals portico does not know are ignored.
func expandPrincipals(principals []string) []Service {
	if slices.Contains(principals, string(Admin)) {
		return slices.Clone(Services)
	}
	var out []Service
	for _, s := range Services {
		if slices.Contains(principals, string(s)) {
			out = append(out, s)
		}
	}
	return out
}

// principalList shows a certificate's principals in a message, sanitised like key IDs.
func principalList(ps []string) string { return strings.Join(sanitizePrincipals(ps), ", ") }

// sanitizePrincipals returns principals fit to show, sanitised like key IDs: whoever signs
// the certificate chooses them, and they reach its holder's terminal (whoami, the TUI).
func sanitizePrincipals(ps []string) []string {
	shown := make([]string, len(ps))
	for i, p := range ps {
		shown[i] = SanitizeKeyID(p)
	}
	return shown
}

func permitsOf(cert *gossh.Certificate) Permits {
	_, pty := cert.Extensions["permit-pty"]
	_, fwd := cert.Extensions["permit-port-forwarding"]
	return Permits{PTY: pty, PortForwarding: fwd}
}

// certTime converts a certificate timestamp; nil means it never ends.
func certTime(v uint64) *time.Time {
	if v > math.MaxInt64 {
		return nil
	}
	t := time.Unix(int64(v), 0).UTC()
	return &t
}

// certTimeText shows a certificate timestamp in messages.
func certTimeText(v uint64) string {
	if t := certTime(v); t != nil && t.Year() <= 9999 {
		return rfc3339(*t)
	}
	return "the far future"
}

func revocationText(r db.Revocation) string {
	switch r.Kind {
	case db.RevokeSerial:
		return "by serial " + r.Value
	case db.RevokeKeyID:
		return "by key ID"
	case db.RevokeKey:
		return "by key " + r.Value
	default:
		return string(r.Kind)
	}
}
