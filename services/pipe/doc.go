// Package pipe is the pipe service: publish and subscribe byte streams over SSH (SPEC §8.1),
// with a bounded buffer per reader and a broker behind an interface. It reads the Grant the
// gateway made and never re-decides who the caller is; topic sharing is decided by auth.
package pipe
