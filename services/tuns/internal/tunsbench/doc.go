// Command tunsbench measures portico's tunnels against OpenSSH's own remote forwarding, and
// HTTP through a tunnel against the local server reached directly. It runs by hand, never in tests.
package main
