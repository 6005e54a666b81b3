// Package e2e drives the built portico binary end to end with the real OpenSSH tools and tmux,
// from testscript files in testdata/ that read like the user documentation.
// It holds tests only: it must not import portico's packages or test them from the inside.
package e2e
