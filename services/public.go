package services

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Public is how users reach this server, for what services print: the base of site and tunnel
// URLs (PORTICO_PUBLIC_HTTP) and the host and port of ssh, rsync and scp recipes
// (PORTICO_PUBLIC_SSH).
type Public struct {
	HTTP    *url.URL // scheme and host[:port], no path: http://localhost:8080
	SSHHost string   // host users ssh to
	SSHPort int      // port users ssh to; 22 leaves it out of recipes
}

// ParsePublic checks the public HTTP base URL and the public SSH address ("host:port" or
// "host").
func ParsePublic(httpBase, sshAddr string) (Public, error) {
	u, err := url.Parse(httpBase)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return Public{}, fmt.Errorf("public HTTP %q: want http(s)://host[:port]", httpBase)
	}
	u.Path = ""
	p := Public{HTTP: u, SSHPort: 22}
	host, port, err := net.SplitHostPort(sshAddr)
	if err != nil {
		host, port = sshAddr, "22"
	}
	n, err := strconv.Atoi(port)
	if host == "" || strings.ContainsAny(host, " /@") || err != nil || n < 0 || n > 65535 {
		return Public{}, fmt.Errorf("public SSH %q: want host[:port]", sshAddr)
	}
	p.SSHHost, p.SSHPort = host, n
	return p, nil
}

// SiteHost is the host name of the account's site or tunnel called name:
// {account}-{name}.{domain}, or {account}.{domain} when name is the account's own name.
func (p Public) SiteHost(domain, account, name string) string {
	if name == account {
		return account + "." + domain
	}
	return account + "-" + name + "." + domain
}

// SiteURL is the URL visitors use for the account's site or tunnel called name, with the
// public scheme and port: http://alice-blog.localhost:8080/.
func (p Public) SiteURL(account, name string) string {
	u := *p.HTTP
	host := p.SiteHost(u.Hostname(), account, name)
	if port := u.Port(); port != "" {
		host = net.JoinHostPort(host, port)
	}
	u.Host = host
	u.Path = "/"
	return u.String()
}

// SSHCommand is the ssh command line that runs args on this server as user ("" for none):
// "ssh -p 2222 pgs@localhost ls".
func (p Public) SSHCommand(user string, args ...string) string {
	parts := []string{"ssh"}
	if p.SSHPort != 22 && p.SSHPort != 0 {
		parts = append(parts, "-p", strconv.Itoa(p.SSHPort))
	}
	host := p.SSHHost
	if user != "" {
		host = user + "@" + host
	}
	return strings.Join(append(append(parts, host), args...), " ")
}
