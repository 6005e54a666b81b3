// Package tuns is the tunnel service: ssh -R forwards become HTTP tunnels at
// {account}-{name}.{domain}, private TCP tunnels reached over SSH, or public TCP ports.
// It reads the connection's Grant and asks auth who may reach a tunnel; it decides no access itself.
package tuns
