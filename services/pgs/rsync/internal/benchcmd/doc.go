// Command benchcmd compares portico's rsync server with the real `rsync --server` through the same -e wrapper and prints a table.
// It must not run as part of go test, and it only writes below its own temporary directory (and
// to the -cpuprofile directory when one is given).
package main
