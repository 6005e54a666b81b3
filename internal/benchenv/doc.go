// Package benchenv starts what portico's bench commands compare side by side on loopback: a
// `portico serve` with an account, OpenSSH's sshd, keys, free ports; and reads the CPU time and
// memory of their processes from /proc. It is for benchmarks run by hand, never for tests.
package benchenv
