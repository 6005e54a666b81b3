package certifier

import (
	"errors"
	"fmt"
	"net/http"
)

// Reason is the kind of a refused request. Its text appears in the message sent to the client
// and in the audit line.
type Reason string

// The refusal reasons.
const (
	ReasonBadRequest     Reason = "bad request"     // the body is not the JSON /sign takes
	ReasonTooLarge       Reason = "too large"       // the body or header is over its bound
	ReasonNoToken        Reason = "no token"        // no Authorization: Bearer ID_TOKEN
	ReasonMalformedToken Reason = "malformed token" // not a signed JWT, or claims missing
	ReasonAlgorithm      Reason = "algorithm"       // signed with none or an algorithm the issuer does not use
	ReasonSignature      Reason = "signature"       // the issuer's keys do not verify it
	ReasonIssuer         Reason = "issuer"          // issued by another provider
	ReasonAudience       Reason = "audience"        // issued for another client
	ReasonExpired        Reason = "expired"         // the token's exp has passed
	ReasonNotYetValid    Reason = "not yet valid"   // the token's nbf is ahead
	ReasonReplayed       Reason = "replayed"        // this token was already used
	ReasonPublicKey      Reason = "public key"      // public_key is not a usable public key
	ReasonNoServices     Reason = "no services"     // the token's groups map to no service
	ReasonRevoked        Reason = "revoked"         // the identity's key ID is revoked here
	ReasonRateLimited    Reason = "rate limited"    // too many refused requests from this address
	ReasonBusy           Reason = "busy"            // too many requests at once
	ReasonUnavailable    Reason = "unavailable"     // the issuer cannot be reached; nothing was decided
)

// status is the HTTP status of each reason.
var status = map[Reason]int{
	ReasonBadRequest:     http.StatusBadRequest,
	ReasonTooLarge:       http.StatusRequestEntityTooLarge,
	ReasonNoToken:        http.StatusUnauthorized,
	ReasonMalformedToken: http.StatusUnauthorized,
	ReasonAlgorithm:      http.StatusUnauthorized,
	ReasonSignature:      http.StatusUnauthorized,
	ReasonIssuer:         http.StatusUnauthorized,
	ReasonAudience:       http.StatusUnauthorized,
	ReasonExpired:        http.StatusUnauthorized,
	ReasonNotYetValid:    http.StatusUnauthorized,
	ReasonReplayed:       http.StatusUnauthorized,
	ReasonPublicKey:      http.StatusBadRequest,
	ReasonNoServices:     http.StatusForbidden,
	ReasonRevoked:        http.StatusForbidden,
	ReasonRateLimited:    http.StatusTooManyRequests,
	ReasonBusy:           http.StatusServiceUnavailable,
	ReasonUnavailable:    http.StatusServiceUnavailable,
}

// Refusal is a refused request: its reason and the plain message the client is sent.
type Refusal struct {
	Reason  Reason
	Message string
}

func (r *Refusal) Error() string { return r.Message }

// Status is the HTTP status the refusal is sent with.
func (r *Refusal) Status() int { return status[r.Reason] }

func refuse(reason Reason, format string, args ...any) *Refusal {
	return &Refusal{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// AsRefusal returns the Refusal inside err, if any.
func AsRefusal(err error) (*Refusal, bool) {
	var r *Refusal
	ok := errors.As(err, &r)
	return r, ok
}
