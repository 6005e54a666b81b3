// Package tui is the admin TUI: bubbletea models for sign-up, the account overview, keys, the
// access log, revocations and help. It calls the account operations of package ops, as the CLI does;
// it runs no SQL, decides no access and knows no SSH plumbing (the admin service wires it up).
package tui
