// Package opstest gives the tests of the admin service and the TUI a store, operations and
// registered accounts with deterministic keys.
// It is for tests only; nothing outside _test.go files may import it.
package opstest
