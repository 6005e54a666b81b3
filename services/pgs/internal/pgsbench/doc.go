// Command pgsbench measures portico's pgs service against real rsync to OpenSSH's sshd, and the
// HTTP serving of a deployed site. It runs by hand, never in tests.
package main
