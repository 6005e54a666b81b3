// Package gateway runs portico's network servers: the SSH server, whose public-key callbacks ask
// package auth for a decision and record it, and the HTTP server (sites, /healthz, /metrics).
// It routes sessions to services and enforces the grant's permits; it never decides access itself.
package gateway
