// Package services is the seam between the gateway and what it serves: the Service interfaces
// a service implements, and the Router that picks a service from the SSH user or listener.
// It never decides access: it reads the auth.Grant the gateway attached to the connection.
package services
