// Package login is the user's side of the certifier: it gets an ID token from the team's
// OpenID Connect provider (device flow, or a loopback redirect with PKCE, or a refresh token),
// has the certifier sign a dedicated key, and keeps key, certificate and refresh token under
// the user's config directory. It also writes the ssh_config block that keeps them fresh.
// It never decides access; the certifier and the gateway do.
package login
