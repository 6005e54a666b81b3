// Package gateway runs portico's network servers: the SSH server, whose public-key callbacks ask
// package auth for a decision and record it, the HTTP server (sites, /healthz) and /metrics.
// It routes sessions to services and enforces the grant's permits; it never decides access itself.
package gateway
