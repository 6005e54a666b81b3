// Package auth decides who a connection is and what it may do: login keys, certificates, CA
// options, the principal map and revocations (imported KRLs too) become a Grant or a Refusal.
// It is the only place that decides access; it never talks SSH or writes the access log.
package auth
