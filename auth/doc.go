// Package auth decides who a connection is and what it may do: login keys, OpenSSH user
// certificates, CA key options and revocations become one Grant or one typed Refusal.
// It is the only place that decides access; it never talks SSH or writes the access log.
package auth
