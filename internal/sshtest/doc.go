// Package sshtest holds what the tests of several packages need: fresh SSH keys in the forms
// portico stores them, and a log buffer safe to share with a server goroutine.
// It is imported by tests only; it decides and stores nothing.
package sshtest
