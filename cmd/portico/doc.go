// Command portico is the operator's command: serve the SSH and HTTP gateway, migrate the
// database, create and list accounts offline. It only reads flags and environment and wires
// packages together; what it runs lives in gateway, auth, db and services.
package main
