// Package certifier is the team's certificate service: it checks an OpenID Connect ID token
// (signature from the issuer's JWKS, issuer, audience, expiry, algorithm) and signs an hour-long
// OpenSSH user certificate whose principals are the services the token's groups map to. It keeps
// its state (audit log, issued certificates, revocations) in files and never decides gateway access.
package certifier
