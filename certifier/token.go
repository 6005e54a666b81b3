package certifier

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// Bounds on what a token may make the certifier do or hold.
const (
	maxTokenBytes   = 32 << 10         // an ID token (Azure AD's with 200 groups is about 10 KiB)
	maxKeyIDBytes   = 256              // the email or subject that becomes the certificate's key ID
	discoveryRetry  = 5 * time.Second  // how soon a failed discovery is tried again
	nbfLeeway       = 5 * time.Minute  // go-oidc's clock-skew allowance for nbf
	maxReplayMemory = 100_000          // ID tokens remembered as used, until they expire
	idpTimeout      = 10 * time.Second // one request to the identity provider
)

// asymmetricAlgs are the JWS algorithms an ID token may be signed with: those of the issuer's
// discovery document among these, else RS256 (OpenID Connect's mandatory one). Symmetric (HS*)
// and none never verify here.
var asymmetricAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA,
}

// Identity is what a verified ID token says about its holder.
type Identity struct {
	Subject       string
	Email         string
	EmailVerified bool
	Groups        []string
	Expiry        time.Time
}

// KeyID is the certificate key ID of the identity: the email when the provider says it is
// verified, else the subject (an unverified email could name someone else).
func (id Identity) KeyID() string {
	if id.Email != "" && id.EmailVerified {
		return id.Email
	}
	return id.Subject
}

// tokenVerifier checks ID tokens with go-oidc: discovery, the issuer's JWKS, issuer, audience,
// expiry and algorithm. Discovery happens on first use and is retried after a failure.
type tokenVerifier struct {
	issuer, clientID, groupsClaim string
	client                        *http.Client
	now                           func() time.Time
	replays                       *replayCache

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	algs     []string
	lastErr  error
	lastTry  time.Time
}

func newTokenVerifier(issuer, clientID, groupsClaim string, client *http.Client, now func() time.Time) *tokenVerifier {
	return &tokenVerifier{issuer: issuer, clientID: clientID, groupsClaim: groupsClaim, client: client, now: now,
		replays: newReplayCache(maxReplayMemory)}
}

// discover returns the verifier, running OpenID Connect discovery the first time.
func (v *tokenVerifier) discover(ctx context.Context) (*oidc.IDTokenVerifier, []string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.verifier != nil {
		return v.verifier, v.algs, nil
	}
	if v.lastErr != nil && v.now().Sub(v.lastTry) < discoveryRetry {
		return nil, nil, v.lastErr
	}
	v.lastTry = v.now()
	ctx, cancel := context.WithTimeout(ctx, idpTimeout)
	defer cancel()
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, v.client), v.issuer)
	if err != nil {
		v.lastErr = fmt.Errorf("discovery at %s: %w", v.issuer, err)
		return nil, nil, v.lastErr
	}
	var meta struct {
		Algs    []string `json:"id_token_signing_alg_values_supported"`
		JWKSURI string   `json:"jwks_uri"`
	}
	if err := p.Claims(&meta); err != nil {
		v.lastErr = fmt.Errorf("discovery at %s: %w", v.issuer, err)
		return nil, nil, v.lastErr
	}
	// The keys decide every signature: they come over https, as the discovery document did.
	if u, err := url.Parse(meta.JWKSURI); err != nil || checkSecure(u) != nil {
		v.lastErr = fmt.Errorf("discovery at %s: the key set %q is not https", v.issuer, meta.JWKSURI)
		return nil, nil, v.lastErr
	}
	algs := slices.DeleteFunc(slices.Clone(meta.Algs), func(a string) bool { return !slices.Contains(asymmetricAlgs, a) })
	if len(algs) == 0 {
		algs = []string{oidc.RS256}
	}
	// The key set keeps the client for its fetches; cancelling ctx does not stop it.
	v.verifier = p.VerifierContext(oidc.ClientContext(context.Background(), v.client), &oidc.Config{
		ClientID:             v.clientID,
		SupportedSigningAlgs: algs,
		Now:                  v.now,
	})
	v.algs, v.lastErr = algs, nil
	return v.verifier, v.algs, nil
}

// Verify checks an ID token and returns who it names. A token that verifies is remembered
// until it expires and refused if presented again. When a token verified but is refused for
// what it says (or for being replayed), the identity is returned with the refusal.
func (v *tokenVerifier) Verify(ctx context.Context, raw string) (Identity, error) {
	if raw == "" {
		return Identity{}, refuse(ReasonNoToken, "no ID token: send Authorization: Bearer ID_TOKEN (portico login does)")
	}
	if len(raw) > maxTokenBytes {
		return Identity{}, refuse(ReasonMalformedToken, "malformed token: an ID token has at most %d bytes", maxTokenBytes)
	}
	if err := compactJWT(raw); err != nil {
		return Identity{}, refuse(ReasonMalformedToken, "malformed token: %v", err)
	}
	verifier, algs, err := v.discover(ctx)
	if err != nil {
		return Identity{}, refuse(ReasonUnavailable, "the identity provider is unavailable, try again later (%v)", err)
	}
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		return Identity{}, v.explain(raw, algs, err)
	}
	var payload json.RawMessage
	if err := idt.Claims(&payload); err != nil {
		return Identity{}, refuse(ReasonMalformedToken, "malformed token: its claims do not parse: %v", err)
	}
	if err := checkClaimNames(payload, v.groupsClaim); err != nil {
		return Identity{}, refuse(ReasonMalformedToken, "malformed token: %v", err)
	}
	var c tokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Identity{}, refuse(ReasonMalformedToken, "malformed token: its claims do not parse: %v", err)
	}
	if err := checkTokenType(raw, c); err != nil {
		return Identity{}, err
	}
	// OpenID Connect Core 3.1.3.7: with several audiences there must be an authorized party,
	// and an authorized party must be this client.
	if c.AZP != "" && c.AZP != v.clientID || c.AZP == "" && len(idt.Audience) > 1 {
		return Identity{}, refuse(ReasonAudience, "wrong audience: the ID token was issued to %s, not to client %q", shown(c.AZP), v.clientID)
	}
	id := Identity{Subject: idt.Subject, Email: c.Email, EmailVerified: c.EmailVerified.true(), Expiry: idt.Expiry}
	if id.Groups, err = groupsOf(c.raw[v.groupsClaim], v.groupsClaim); err != nil {
		return id, refuse(ReasonMalformedToken, "malformed token: %v", err)
	}
	if id.Subject == "" {
		return id, refuse(ReasonMalformedToken, "malformed token: the ID token has no subject (sub)")
	}
	if err := checkKeyID(id.KeyID()); err != nil {
		return id, refuse(ReasonMalformedToken, "malformed token: %v", err)
	}
	switch v.replays.use(signedContent(raw), id.Expiry, v.now()) {
	case errReplayed:
		return id, refuse(ReasonReplayed, "replayed token: this ID token was already used; get a new one (portico login)")
	case errReplayFull:
		return id, refuse(ReasonBusy, "busy: too many unexpired ID tokens were used recently; try again later")
	}
	return id, nil
}

// explain turns go-oidc's refusal of raw into a Refusal that says which check failed. The
// token's header and claims are read without verification, only to choose the words.
func (v *tokenVerifier) explain(raw string, algs []string, err error) *Refusal {
	if expired, ok := errors.AsType[*oidc.TokenExpiredError](err); ok {
		return refuse(ReasonExpired, "expired token: the ID token expired at %s; get a new one (portico login)", expired.Expiry.UTC().Format(time.RFC3339))
	}
	jws, perr := jose.ParseSigned(raw, anyAlgorithm)
	if perr != nil || len(jws.Signatures) != 1 {
		return refuse(ReasonMalformedToken, "malformed token: not a signed JWT (%v)", err)
	}
	alg := jws.Signatures[0].Header.Algorithm
	if !slices.Contains(algs, alg) {
		return refuse(ReasonAlgorithm, "unexpected algorithm: the ID token is signed with %s; this issuer signs with %s", shown(alg), strings.Join(algs, ", "))
	}
	var c struct {
		Issuer    string       `json:"iss"`
		Audience  audience     `json:"aud"`
		NotBefore *json.Number `json:"nbf"`
	}
	if json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c) != nil {
		return refuse(ReasonMalformedToken, "malformed token: its claims do not parse")
	}
	switch {
	case c.Issuer != v.issuer:
		return refuse(ReasonIssuer, "foreign token: the ID token was issued by %s, not by %s", shown(c.Issuer), v.issuer)
	case !slices.Contains(c.Audience, v.clientID):
		return refuse(ReasonAudience, "wrong audience: the ID token is for %s, not for client %q", shown(strings.Join(c.Audience, ", ")), v.clientID)
	}
	if c.NotBefore != nil {
		if nbf, err := c.NotBefore.Int64(); err == nil && time.Unix(nbf, 0).After(v.now().Add(nbfLeeway)) {
			return refuse(ReasonNotYetValid, "token not yet valid: the ID token is valid from %s", time.Unix(nbf, 0).UTC().Format(time.RFC3339))
		}
	}
	return refuse(ReasonSignature, "bad signature: the ID token does not verify with the keys of %s", v.issuer)
}

// checkTokenType refuses the provider's other signed tokens, which can carry the same issuer,
// audience and keys as an ID token: JWT access tokens (typ at+jwt, RFC 9068, or the claims
// below), logout tokens (typ logout+jwt, an events claim) and Keycloak's access and refresh
// tokens (typ claim).
func checkTokenType(raw string, c tokenClaims) error {
	jws, err := jose.ParseSigned(raw, anyAlgorithm)
	if err != nil || len(jws.Signatures) != 1 {
		return refuse(ReasonMalformedToken, "malformed token: not a signed JWT")
	}
	if typ, _ := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType].(string); typ != "" &&
		!strings.EqualFold(typ, "JWT") && !strings.EqualFold(typ, "application/jwt") {
		return refuse(ReasonMalformedToken, "not an ID token: its type is %s", shown(typ))
	}
	if _, ok := c.raw["events"]; ok {
		return refuse(ReasonMalformedToken, "not an ID token: it has an events claim (a logout token)")
	}
	var typ string
	if json.Unmarshal(c.raw["typ"], &typ) == nil {
		switch strings.ToLower(typ) {
		case "bearer", "refresh", "offline", "logout":
			return refuse(ReasonMalformedToken, "not an ID token: its typ claim is %s", shown(typ))
		}
	}
	// Access tokens that say JWT: a scope (RFC 9068, Okta, Azure AD, Auth0, Hydra), Cognito's
	// token_use, or RFC 9068's client_id and jti without the authorized party an ID token
	// names (zitadel). ID tokens carry no scope.
	for _, claim := range []string{"scope", "scp"} {
		if _, ok := c.raw[claim]; ok {
			return refuse(ReasonMalformedToken, "not an ID token: it has a %s claim (an access token)", claim)
		}
	}
	var use string
	if raw, ok := c.raw["token_use"]; ok && (json.Unmarshal(raw, &use) != nil || use != "id") {
		return refuse(ReasonMalformedToken, "not an ID token: its token_use claim is %s (an access token)", shown(string(raw)))
	}
	_, hasClientID := c.raw["client_id"]
	_, hasJTI := c.raw["jti"]
	if hasClientID && hasJTI && c.AZP == "" {
		return refuse(ReasonMalformedToken, "not an ID token: it has client_id and jti but no azp (an access token)")
	}
	return nil
}

// readClaims are the claims the certifier or go-oidc read into Go structs, whose JSON decoding
// matches member names ignoring case (and Unicode folding: ſ is s) and keeps the last of
// duplicates.
var readClaims = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "nonce", "at_hash", "azp", "email",
	"email_verified", "typ", "events", "scope", "scp", "token_use", "client_id", "jti", "_claim_names", "_claim_sources"}

// checkClaimNames refuses claims that could be read two ways: a member name that appears twice
// (RFC 7519 lets a parser refuse them), or one that differs only in case from a claim the
// certifier reads (say Email beside email), which Go's decoding would take for it.
func checkClaimNames(payload []byte, groupsClaim string) error {
	dec := json.NewDecoder(bytes.NewReader(payload))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("its claims are not a JSON object")
	}
	known := append(slices.Clone(readClaims), groupsClaim)
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return errors.New("its claims do not parse")
		}
		name, _ := t.(string)
		if seen[name] {
			return fmt.Errorf("the claim %s appears twice", shown(name))
		}
		seen[name] = true
		for _, k := range known {
			if name != k && strings.EqualFold(name, k) {
				return fmt.Errorf("the claim %s is spelled like %q but is not it", shown(name), k)
			}
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return errors.New("its claims do not parse")
		}
	}
	return nil
}

// anyAlgorithm lets go-jose parse a token whatever its algorithm, so that explain can name it.
var anyAlgorithm = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512,
	jose.PS256, jose.PS384, jose.PS512, jose.EdDSA, jose.HS256, jose.HS384, jose.HS512, "none",
}

// shown quotes text from a token for a message, shortened.
func shown(s string) string {
	if s == "" {
		return "nobody"
	}
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// audience is the aud claim: one string or a list.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// tokenClaims are the claims the certifier reads besides go-oidc's.
type tokenClaims struct {
	AZP           string   `json:"azp"`
	Email         string   `json:"email"`
	EmailVerified flexBool `json:"email_verified"`
	raw           map[string]json.RawMessage
}

func (c *tokenClaims) UnmarshalJSON(b []byte) error {
	type plain tokenClaims
	if err := json.Unmarshal(b, (*plain)(c)); err != nil {
		return err
	}
	return json.Unmarshal(b, &c.raw)
}

// flexBool is a boolean claim that some providers (AWS Cognito) send as "true" or "false".
type flexBool struct{ v bool }

func (f *flexBool) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &f.v); err == nil {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("email_verified is neither a boolean nor \"true\"/\"false\"")
	}
	f.v = s == "true"
	return nil
}

func (f flexBool) true() bool { return f.v }

// groupsOf reads the groups claim: a list of strings, one string, or absent (no groups).
func groupsOf(raw json.RawMessage, claim string) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("the %q claim is not a list of group names", claim)
	}
	return many, nil
}

// checkKeyID refuses a key ID that would not read well in logs and KRLs.
func checkKeyID(s string) error {
	switch {
	case len(s) > maxKeyIDBytes:
		return fmt.Errorf("the email or subject has more than %d bytes", maxKeyIDBytes)
	case !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return errors.New("the email or subject has characters that are not printable")
	}
	return nil
}

// replayCache remembers the ID tokens that were used, until they expire: a token gets one
// certificate. It holds at most max tokens; when full of unexpired ones it refuses more.
type replayCache struct {
	mu   sync.Mutex
	max  int
	seen map[[sha256.Size]byte]time.Time
}

func newReplayCache(max int) *replayCache {
	return &replayCache{max: max, seen: map[[sha256.Size]byte]time.Time{}}
}

// compactJWT refuses a token that is not a JWS in compact serialization with each part in
// canonical base64url, as issuers write them. go-jose also reads the JSON serialization (whose
// spacing and member order are free) and decodes base64 leniently (spare bits, the header's
// padding, line breaks), so the same signed token would otherwise come in endless spellings,
// each new to the replay check.
func compactJWT(raw string) error {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return errors.New("not a JWT in compact form (header.payload.signature)")
	}
	for _, part := range parts {
		b, err := base64.RawURLEncoding.Strict().DecodeString(part)
		if err != nil || base64.RawURLEncoding.EncodeToString(b) != part {
			return errors.New("a part of the JWT is not canonical base64url")
		}
	}
	return nil
}

// signedContent is what the issuer signed: the token's header and payload (canonical, see
// compactJWT), without the signature. A token is remembered by it, not by its text: base64
// lets the last character of the signature change without changing the signature, and an
// ECDSA signature (r, s) has a twin (r, n-s) that verifies too.
func signedContent(raw string) string {
	if i := strings.LastIndexByte(raw, '.'); i >= 0 {
		return raw[:i]
	}
	return raw
}

var (
	errReplayed   = errors.New("token already used")
	errReplayFull = errors.New("too many tokens remembered")
)

// use records a token (by its signed content) as used until expiry: errReplayed if it already
// was, errReplayFull if the cache holds max unexpired tokens.
func (c *replayCache) use(content string, expiry, now time.Time) error {
	key := sha256.Sum256([]byte(content))
	c.mu.Lock()
	defer c.mu.Unlock()
	if until, ok := c.seen[key]; ok && now.Before(until) {
		return errReplayed
	}
	if len(c.seen) >= c.max {
		for k, until := range c.seen {
			if !now.Before(until) {
				delete(c.seen, k)
			}
		}
		if len(c.seen) >= c.max {
			return errReplayFull
		}
	}
	c.seen[key] = expiry
	return nil
}
