package auth

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/netip"
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

// certCheck is the decision on one certificate while its rules run: what each rule has
// learned that a later one needs.
type certCheck struct {
	a      *Authenticator
	ctx    context.Context
	at     Attempt
	cert   *gossh.Certificate
	name   string // the certificate's key ID, quoted, for messages
	now    time.Time
	ip     netip.Addr // the client's address, when haveIP
	haveIP bool
	keyFP  string
	caFP   string
	facts  *CertFacts
	reads  *trustReads // the store's answers, or the trust cache's
	// refusal is what every rule's refusal fills in: the certificate's facts, and its account
	// once the CA's signature verified and the CA was found.
	refusal *Refusal

	ca       db.Key
	caOpts   KeyOptions
	acct     db.Account
	mappings []db.PrincipalMapping // the account's mappings of the certificate's principals, for its CA
	// counted are the certificate's principals that count: those the CA's principals= allows.
	counted       []string
	forceCommand  string
	forced        bool // a force-command is present, perhaps empty
	sourceAddress string
	revocation    *db.Revocation // what FindRevocation found; nil: nothing
	revLooked     bool
	services      []Service // the grant
}

// certRule is one rule of SPEC §2.2: nil when the certificate meets it, else a *Refusal (or a
// store error, on which nothing was decided).
type certRule func(*certCheck) error

// certRules are the rules a certificate must meet, in the order they are checked.
var certRules = []certRule{
	(*certCheck).userCertificate, // 1
	(*certCheck).signature,       // 3, before 2: see there
	(*certCheck).registeredCA,    // 2
	(*certCheck).keySize,
	(*certCheck).validity,        // 4
	(*certCheck).principals,      // 5
	(*certCheck).criticalOptions, // 6
	(*certCheck).clientAddress,   // 7
	(*certCheck).notRevoked,      // 8
	(*certCheck).caOptions,       // 9
	(*certCheck).notInKRL,        // 10
	(*certCheck).grant,           // its services: service principals and the principal map
}

// certificate decides an OpenSSH certificate: every rule of certRules in turn.
func (a *Authenticator) certificate(ctx context.Context, at Attempt, cert *gossh.Certificate) (Grant, error) {
	if cert.Key == nil || cert.SignatureKey == nil {
		return Grant{}, &Refusal{Reason: ReasonSignature, Message: "certificate has no key or no signature key"}
	}
	c := &certCheck{a: a, ctx: ctx, at: at, cert: cert, now: a.now(), keyFP: Fingerprint(cert.Key), caFP: Fingerprint(cert.SignatureKey)}
	c.facts = &CertFacts{
		KeyID:         SanitizeKeyID(cert.KeyId),
		Serial:        cert.Serial,
		CAFingerprint: c.caFP,
		Principals:    sanitizePrincipals(cert.ValidPrincipals),
		ValidBefore:   certTime(cert.ValidBefore),
	}
	c.name = strconv.Quote(c.facts.KeyID)
	c.ip, c.haveIP = clientIP(at.RemoteAddr)
	reads, err := a.beginReads(ctx, certCacheKey(cert.Marshal()))
	if err != nil {
		return Grant{}, fmt.Errorf("auth: looking up certificate authority %s: %w", c.caFP, err)
	}
	c.reads = reads
	// Until the CA's signature verifies, nothing in the certificate is attributed to an
	// account: anyone can name a registered CA as the signer.
	c.refusal = &Refusal{Identity: c.facts.KeyID, Cert: c.facts}
	for _, rule := range certRules {
		if err := rule(c); err != nil {
			return Grant{}, err
		}
	}
	c.reads.done()
	return Grant{
		AccountID:      c.acct.ID,
		Account:        c.acct.Name,
		Method:         MethodCert,
		Identity:       c.facts.KeyID,
		Service:        at.Service,
		Services:       c.services,
		KeyFingerprint: c.keyFP,
		Cert:           c.facts,
		Permits:        permitsOf(cert),
		ForceCommand:   c.forceCommand,
		Forced:         c.forced,
		KeyID:          c.ca.ID,
		RemoteAddr:     at.RemoteAddr,
		ExpiresAt:      earliest(c.facts.ValidBefore, c.caOpts.ExpiryTime),
		PublicKey:      at.Key,
	}, nil
}

// refuse returns the certificate's refusal for reason.
func (c *certCheck) refuse(reason Reason, format string, args ...any) error {
	c.refusal.Reason = reason
	c.refusal.Message = fmt.Sprintf(format, args...)
	return c.refusal
}

// 1. A user certificate.
func (c *certCheck) userCertificate() error {
	if c.cert.CertType != gossh.UserCert {
		return c.refuse(ReasonHostCert, "certificate %s is a host certificate, not a user certificate", c.name)
	}
	return nil
}

// 3. The signature verifies: parsing a certificate does not check it. It is checked before the
// signing key is looked up (2), which needs nothing from the store: a forged certificate is then
// refused the same way whether or not the key it names is registered, so it cannot be used to
// learn which public keys are some account's CAs.
func (c *certCheck) signature() error {
	if c.reads.hit != nil {
		return nil // these very bytes verified when they were cached
	}
	if err := verifyCASignature(c.cert); err != nil {
		return c.refuse(ReasonSignature, "certificate %s has a bad signature: %v", c.name, err)
	}
	return nil
}

// 2. Signed by a registered CA. A login key named as the signer is no CA, and the message is the
// same as for a key nobody registered.
func (c *certCheck) registeredCA() error {
	ca, err := c.reads.keyByFingerprint(c.ctx, c.caFP)
	if errors.Is(err, db.ErrNotFound) || err == nil && ca.Kind != db.KindCA {
		return c.refuse(ReasonUnknownCA, "certificate %s is signed by an unknown certificate authority (%s)", c.name, c.caFP)
	}
	if err != nil {
		return fmt.Errorf("auth: looking up certificate authority %s: %w", c.caFP, err)
	}
	c.ca = ca
	c.facts.CAName = ca.Name
	acct, err := c.reads.accountByID(c.ctx, ca.AccountID)
	if err != nil {
		return fmt.Errorf("auth: looking up the account of certificate authority %s: %w", c.caFP, err)
	}
	c.acct = acct
	c.refusal.AccountID, c.refusal.Account = acct.ID, acct.Name
	return nil
}

// The certificate's own key signs the connection: like sshd (RequiredRSASize), refuse an RSA key
// too small for that signature to mean anything, as keys add refuses it.
func (c *certCheck) keySize() error {
	if bits, ok := rsaBits(c.cert.Key); ok && bits < minRSABits {
		return c.refuse(ReasonSignature, "certificate %s is for an RSA key of %d bits, too small for its signature to be trusted (at least %d bits)", c.name, bits, minRSABits)
	}
	return nil
}

// 4. valid_after <= now < valid_before.
func (c *certCheck) validity() error {
	unixNow := uint64(max(c.now.Unix(), 0))
	if unixNow < c.cert.ValidAfter {
		return c.refuse(ReasonNotYetValid, "certificate %s is not yet valid: it is valid from %s", c.name, certTimeText(c.cert.ValidAfter))
	}
	if c.cert.ValidBefore != gossh.CertTimeInfinity && unixNow >= c.cert.ValidBefore {
		return c.refuse(ReasonExpired, "certificate %s expired at %s", c.name, certTimeText(c.cert.ValidBefore))
	}
	return nil
}

// 5. At least one principal, and at least one portico understands: a service, or a principal
// the account maps for this CA. The map is read only for certificates that list other
// principals.
func (c *certCheck) principals() error {
	if len(c.cert.ValidPrincipals) == 0 {
		return c.refuse(ReasonNoPrincipals, "certificate %s has no principals: sign it with -n and the services it may use (%s)", c.name, serviceList(Services))
	}
	var others []string
	for _, p := range c.cert.ValidPrincipals {
		if !KnownService(p) {
			others = append(others, p)
		}
	}
	if len(others) > 0 {
		mappings, err := c.reads.principalMappings(c.ctx, c.acct.ID, others)
		if err != nil {
			return fmt.Errorf("auth: looking up the principal map of account %d: %w", c.acct.ID, err)
		}
		for _, m := range mappings {
			if m.CAFingerprint == "" || m.CAFingerprint == c.caFP {
				c.mappings = append(c.mappings, m)
			}
		}
	}
	if len(expandPrincipals(c.cert.ValidPrincipals)) == 0 && len(c.mappings) == 0 {
		return c.refuse(ReasonDoesNotGrant, "certificate %s does not grant any service: its principals are %s, and services are %s (the account maps none of them)",
			c.name, principalList(c.cert.ValidPrincipals), serviceList(Services))
	}
	return nil
}

// 6. Every critical option understood and well formed. A duplicate never gets here:
// x/crypto/ssh refuses options that are not in strictly increasing order when it parses the
// certificate, so the connection fails before authentication is asked.
func (c *certCheck) criticalOptions() error {
	for _, opt := range slices.Sorted(maps.Keys(c.cert.CriticalOptions)) {
		v := c.cert.CriticalOptions[opt]
		switch opt {
		case optForceCommand:
			// An empty force-command is accepted and runs nothing (the session handler
			// refuses every exec, shell and subsystem): it never lets the client's command run.
			c.forceCommand, c.forced = v, true
		case optSourceAddress:
			if _, err := parseSourceAddress(v); err != nil {
				return c.refuse(ReasonCriticalOption, "certificate %s has a malformed critical option source-address: %v", c.name, err)
			}
			c.sourceAddress = v
		default:
			return c.refuse(ReasonCriticalOption, "certificate %s has critical option %q, which portico does not understand", c.name, opt)
		}
	}
	return nil
}

// 7. source-address matches the client.
func (c *certCheck) clientAddress() error {
	if c.sourceAddress == "" {
		return nil
	}
	prefixes, _ := parseSourceAddress(c.sourceAddress)
	if !c.haveIP || !prefixesContain(prefixes, c.ip) {
		return c.refuse(ReasonSourceAddress, "certificate %s may not be used from source address %s (it allows %s)", c.name, addrText(c.at.RemoteAddr), c.sourceAddress)
	}
	return nil
}

// lookUpRevocation finds, once, a revocation of the account that matches the certificate: one
// query for rules 8 and 10, through indexes whatever the number of revocations (a KRL may hold
// tens of thousands). A revocation made by revoke comes before one from a KRL.
func (c *certCheck) lookUpRevocation() error {
	if c.revLooked {
		return nil
	}
	// A key ID that is not text (a NUL byte, invalid UTF-8) is not looked up: no revocation can
	// name it, and Postgres refuses such a query argument, which would turn a decision into
	// "unavailable". Such a certificate is revoked by serial or key.
	keyID := c.cert.KeyId
	if !utf8.ValidString(keyID) || strings.ContainsRune(keyID, 0) {
		keyID = ""
	}
	rev, err := c.reads.findRevocation(c.ctx, c.acct.ID, db.CertRef{
		Serial:         c.cert.Serial,
		KeyID:          keyID,
		KeyFingerprint: c.keyFP,
		KeySHA1:        FingerprintSHA1(c.cert.Key),
		CAFingerprint:  c.caFP,
		CASHA1:         FingerprintSHA1(c.cert.SignatureKey),
	})
	switch {
	case err == nil:
		c.revocation = &rev
	case !errors.Is(err, db.ErrNotFound):
		return fmt.Errorf("auth: checking revocations of certificate serial %d: %w", c.cert.Serial, err)
	}
	c.revLooked = true
	return nil
}

// 8. Not revoked (by revoke).
func (c *certCheck) notRevoked() error {
	if err := c.lookUpRevocation(); err != nil {
		return err
	}
	if r := c.revocation; r != nil && r.Origin != db.OriginKRL {
		return c.refuse(ReasonRevoked, "certificate %s (serial %d) is revoked (%s)", c.name, c.cert.Serial, revocationText(*r))
	}
	return nil
}

// 9. The CA's own options hold: from=, expiry-time=, and principals=, which keeps only the
// certificate principals it lists (exactly, as sshd does).
func (c *certCheck) caOptions() error {
	caOpts, err := ParseKeyOptions(c.ca.Options)
	if err != nil {
		return fmt.Errorf("auth: stored options of certificate authority %s: %w", c.caFP, err)
	}
	c.caOpts = caOpts
	if caOpts.From != nil && (!c.haveIP || !matchFrom(caOpts.From, c.ip)) {
		return c.refuse(ReasonSourceAddress, "certificate authority %q may not vouch for source address %s (its from= option)", c.ca.Name, addrText(c.at.RemoteAddr))
	}
	if caOpts.ExpiryTime != nil && !c.now.Before(*caOpts.ExpiryTime) {
		return c.refuse(ReasonExpired, "certificate authority %q expired at %s (its expiry-time option)", c.ca.Name, rfc3339(*caOpts.ExpiryTime))
	}
	c.counted = c.cert.ValidPrincipals
	if caOpts.Principals != nil {
		c.counted = slices.DeleteFunc(slices.Clone(c.cert.ValidPrincipals), func(p string) bool { return !slices.Contains(caOpts.Principals, p) })
		if len(expandPrincipals(c.counted)) == 0 && !slices.ContainsFunc(c.mappings, c.isCounted) {
			return c.refuse(ReasonDoesNotGrant, "certificate %s does not grant any service certificate authority %q may vouch for (the certificate names %s; the authority is limited to %s)",
				c.name, c.ca.Name, principalList(c.cert.ValidPrincipals), principalList(caOpts.Principals))
		}
	}
	return nil
}

func (c *certCheck) isCounted(m db.PrincipalMapping) bool {
	return slices.Contains(c.counted, m.Principal)
}

// 10. Not in a KRL imported for the account.
func (c *certCheck) notInKRL() error {
	if err := c.lookUpRevocation(); err != nil {
		return err
	}
	if r := c.revocation; r != nil {
		return c.refuse(ReasonRevoked, "certificate %s (serial %d) is revoked by a KRL imported into the account (%s)", c.name, c.cert.Serial, revocationText(*r))
	}
	return nil
}

// The grant: the services the counted principals name, and those the principal map gives them
// from this client address; it must include the service asked for.
func (c *certCheck) grant() error {
	services := expandPrincipals(c.counted)
	var fromRefused []db.PrincipalMapping
	for _, m := range c.mappings {
		if !c.isCounted(m) {
			continue
		}
		more, refused := mappedServices(m, c.ip, c.haveIP)
		if refused {
			fromRefused = append(fromRefused, m)
		}
		services = append(services, more...)
	}
	c.services = slices.DeleteFunc(slices.Clone(Services), func(s Service) bool { return !slices.Contains(services, s) })
	if slices.Contains(c.services, c.at.Service) {
		return nil
	}
	// Say "source address" when a mapping would have granted the service from elsewhere.
	for _, m := range fromRefused {
		if slices.Contains(expandPrincipals(m.Services), c.at.Service) {
			return c.refuse(ReasonSourceAddress, "certificate %s may not use %s from source address %s: the account maps its principal %q to %s only from %s",
				c.name, c.at.Service, addrText(c.at.RemoteAddr), SanitizeKeyID(m.Principal), strings.Join(m.Services, ","), strings.Join(m.From, ","))
		}
	}
	if len(c.services) == 0 {
		return c.refuse(ReasonDoesNotGrant, "certificate %s does not grant %s (it grants no service)", c.name, c.at.Service)
	}
	return c.refuse(ReasonDoesNotGrant, "certificate %s does not grant %s (it grants %s)", c.name, c.at.Service, serviceList(c.services))
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
// At most maxShownPrincipals are named, so that a certificate listing thousands makes neither
// the refusal banner nor the access log's reason long.
func principalList(ps []string) string {
	if len(ps) > maxShownPrincipals {
		return strings.Join(sanitizePrincipals(ps[:maxShownPrincipals]), ", ") + fmt.Sprintf(" and %d more", len(ps)-maxShownPrincipals)
	}
	return strings.Join(sanitizePrincipals(ps), ", ")
}

// maxShownPrincipals is how many principals a message names.
const maxShownPrincipals = 16

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
	case db.RevokeSerialRange:
		return "by serial range " + r.Value
	case db.RevokeKeyID:
		return "by key ID"
	case db.RevokeKey, db.RevokeKeyHash:
		return "by key " + r.Value
	default:
		return string(r.Kind)
	}
}

// FingerprintSHA1 returns k's SHA1 fingerprint as OpenSSH prints it (ssh-keygen -l -E sha1):
// "SHA1:" and unpadded base64. KRLs may revoke keys by it.
func FingerprintSHA1(k gossh.PublicKey) string {
	sum := sha1.Sum(k.Marshal())
	return "SHA1:" + base64.RawStdEncoding.EncodeToString(sum[:])
}
