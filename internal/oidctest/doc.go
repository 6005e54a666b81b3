// Package oidctest runs a real OpenID Connect provider for tests, on loopback: zitadel/oidc's
// op package with an in-memory store of users in groups and public clients that may use the
// device flow, the authorization code flow with PKCE, and refresh tokens; plus the login pages a
// test drives as a browser would (Browser). It is for tests only: nothing in it is hardened.
package oidctest
