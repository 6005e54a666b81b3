// Package admin is the admin service: the account's command line (`ssh admin@HOST COMMAND`) and,
// with a terminal, the TUI; both are faces of the operations in package ops.
// It never decides access (it reads the session's auth.Grant) and never touches the store itself.
package admin
