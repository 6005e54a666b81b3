package auth

import "errors"

// Reason is a refusal's kind. Its text is one of the words SPEC §2.5 promises users.
type Reason string

// The refusal reasons. Each value appears verbatim in the message shown to the client.
const (
	ReasonExpired        Reason = "expired"
	ReasonNotYetValid    Reason = "not yet valid"
	ReasonDoesNotGrant   Reason = "does not grant"
	ReasonRevoked        Reason = "revoked"
	ReasonSourceAddress  Reason = "source address"
	ReasonNotRegistered  Reason = "not registered"
	ReasonSignature      Reason = "signature"
	ReasonHostCert       Reason = "host certificate"
	ReasonCriticalOption Reason = "critical option"
	ReasonNoPrincipals   Reason = "no principals"
	ReasonUnknownCA      Reason = "unknown certificate authority"
	ReasonUnavailable    Reason = "unavailable" // the store could not be reached; nothing was decided
)

// Refusal is a typed authentication refusal. Message is shown to the client verbatim and
// contains the Reason's words; it never reveals anything about other accounts.
type Refusal struct {
	Reason  Reason
	Message string
	// Account and Identity are filled in when known, for the access log only.
	AccountID int64
	Account   string
	Identity  string
	Cert      *CertFacts
	// Quiet refusals are not shown to the client, only logged: one reason per refused
	// attempt, and nothing after a certificate's refusal that could contradict it.
	Quiet bool
}

func (r *Refusal) Error() string { return r.Message }

// AsRefusal returns the Refusal inside err, if any.
func AsRefusal(err error) (*Refusal, bool) {
	var r *Refusal
	ok := errors.As(err, &r)
	return r, ok
}
