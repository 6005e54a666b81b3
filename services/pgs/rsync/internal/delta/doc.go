// Package delta computes rsync protocol-27 block checksums and finds a new file's blocks in an old
// file's checksums, streaming the new file through a bounded window (the sender's delta search).
// It does no I/O on the wire format of tokens and never trusts a peer-sent sum head without Validate.
package delta
