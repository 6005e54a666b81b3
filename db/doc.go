// Package db is portico's store: accounts, keys and CAs, revocations and the access log,
// with one interface per concern, implemented for SQLite and Postgres and tested by one suite.
// It stores and retrieves; it never decides access (that is package auth).
package db
