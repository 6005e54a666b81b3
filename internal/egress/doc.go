// Package egress fetches small documents from URLs that users chose (a KRL at a certifier's
// /krl) without letting them reach what only the server can: loopback, private, link-local and
// other internal addresses are refused at the address actually dialed, unless the operator
// allows them. It never tells the user what a response said beyond its status and size.
package egress
