// Package gatewaytest runs a gateway for the tests of the services behind it: listening on the
// ports its options name, serving until the test ends, its log shown when the test failed.
// It is imported by tests only; it decides nothing and sets no option of the gateway.
package gatewaytest
