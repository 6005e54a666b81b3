// sitebench compares portico's HTTP serving of a deployed site with nginx serving the same
// files from a directory, side by side on loopback with wrk. It is run by hand, never by go test.
package main
