package auth

import (
	"net"
	"slices"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// Service is a service name, which is also a certificate principal.
type Service string

// The services a grant can name. Admin grants every service and account management.
const (
	Admin Service = "admin"
	PGS   Service = "pgs"
	Tuns  Service = "tuns"
	Pipe  Service = "pipe"
)

// Services lists every known service in a stable order.
var Services = []Service{Admin, PGS, Tuns, Pipe}

// KnownService reports whether name is a service (and so a principal portico understands).
func KnownService(name string) bool { return slices.Contains(Services, Service(name)) }

// Method says how a connection authenticated.
type Method string

// Authentication methods.
const (
	MethodKey    Method = "key"    // a registered login key
	MethodCert   Method = "cert"   // a user certificate signed by a registered CA
	MethodSignup Method = "signup" // an unregistered key that may only sign up
	MethodClaim  Method = "claim"  // a pending login key, which may claim itself (and sign up if signups are open)
)

// Grant is the outcome of a successful authentication: who the connection is and what it may
// do. It travels with the connection; services read it and never re-decide access.
type Grant struct {
	AccountID      int64     // 0 for a signup grant
	Account        string    // empty for a signup grant
	Method         Method    // key, cert or signup
	Identity       string    // login key name or sanitised certificate key ID
	Service        Service   // the service this connection asked for
	Services       []Service // every service this connection may use, in Services order
	KeyFingerprint string    // SHA256 fingerprint of the key that signed (the certificate's key for certs)
	Cert           *CertFacts
	Permits        Permits
	ForceCommand   string // every exec, shell or subsystem runs this instead; read with ForcedCommand
	Forced         bool   // a force-command is present, even an empty one (which runs nothing)
	KeyID          int64  // the store's id of the login key or CA that vouched for this connection
	// ExpiresAt is when the grant's grounds lapse by themselves: the certificate's valid_before,
	// or a key's or CA's expiry-time option, whichever comes first; nil when never.
	ExpiresAt  *time.Time
	RemoteAddr net.Addr
	// PublicKey is the key (a *gossh.Certificate for certificates) whose signature verified:
	// what Recheck judges again. Nil only in grants made by hand.
	PublicKey gossh.PublicKey

	// What a grant without an account (IsSignup) allows besides help.
	MayRegister bool // register an account: signups are open
	MayClaim    bool // keys claim CODE: the key waits to be claimed as a login key somewhere
}

// ForcedCommand reports the force-command of the grant, if it has one: ok with an empty or
// blank command means one is present and runs nothing. A non-empty ForceCommand is forced
// even when Forced was not set (a grant made by hand).
func (g Grant) ForcedCommand() (command string, ok bool) {
	return g.ForceCommand, g.Forced || g.ForceCommand != ""
}

// CertFacts records the facts of an accepted certificate.
type CertFacts struct {
	KeyID         string // sanitised key ID
	Serial        uint64
	CAName        string
	CAFingerprint string
	Principals    []string   // as listed in the certificate, each sanitised like KeyID
	ValidBefore   *time.Time // nil when the certificate never expires
}

// Permits are the OpenSSH extensions that matter to portico.
type Permits struct {
	PTY            bool // permit-pty
	PortForwarding bool // permit-port-forwarding
}

// Allows reports whether the grant includes service s.
func (g Grant) Allows(s Service) bool { return slices.Contains(g.Services, s) }

// IsAdmin reports whether the grant may manage the account.
func (g Grant) IsAdmin() bool { return !g.IsSignup() && g.AccountID != 0 && g.Allows(Admin) }

// IsSignup reports whether the connection is a key of no account, which may only sign up or
// claim itself (MayRegister, MayClaim): a signup or claim grant.
func (g Grant) IsSignup() bool { return g.Method == MethodSignup || g.Method == MethodClaim }
