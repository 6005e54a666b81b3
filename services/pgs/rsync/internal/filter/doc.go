// Package filter parses rsync protocol-27 filter rules (--exclude/--include as the client sends them) and matches names with rsync's wildcard semantics.
// It must not touch the file system or treat a name as anything but a slash-separated path relative to the transfer root.
package filter
