package main

import (
	"log/slog"
	"net"

	"github.com/portico-sh/portico/services/pgs"
	"github.com/portico-sh/portico/services/tuns"
)

// newTunnels is the tuns service on registry: no tunnel may take the name of one of the
// account's pgs projects, and public TCP ports listen on the HTTP listener's host.
func newTunnels(s *settings, cfg serveConfig, registry tuns.Registry, sites *pgs.Service, sshCommand string, log *slog.Logger) *tuns.Service {
	host, _, err := net.SplitHostPort(s.httpListen)
	if err != nil {
		host = ""
	}
	return tuns.New(tuns.Options{
		Registry:      registry,
		Public:        cfg.public,
		MaxTunnels:    cfg.tunsMax,
		TCPPorts:      cfg.tunsPorts,
		TCPHost:       host,
		Exempt:        cfg.limits.Exempt,
		ProjectExists: sites.ProjectExists,
		SSHCommand:    sshCommand,
		Logger:        log,
	})
}
