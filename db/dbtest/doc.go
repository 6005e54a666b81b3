// Package dbtest gives tests a fresh, migrated store: SQLite in a temporary directory, or a
// Postgres database of its own on the server named by PORTICO_TEST_DATABASE_URL, dropped after.
// It is for tests only; nothing outside _test.go files may import it.
package dbtest
