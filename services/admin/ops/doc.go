// Package ops is the one set of account operations behind both faces of the admin service,
// the command line and the TUI: sign-up, keys, certificate authorities, revocations, access log.
// It reads the auth.Grant it is given and never decides access itself; it knows nothing of SSH I/O.
package ops
