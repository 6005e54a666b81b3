package gateway

import (
	"fmt"
	"net"
	"strings"

	"github.com/portico-sh/portico/auth"
)

// Listener is one SSH listen address, optionally bound to one service.
type Listener struct {
	Addr    string       // host:port, as for net.Listen
	Service auth.Service // empty: the SSH user picks the service
}

func (l Listener) String() string {
	if l.Service == "" {
		return l.Addr
	}
	return string(l.Service) + "=" + l.Addr
}

// ParseListeners parses a comma list of [service=]addr, as PORTICO_SSH_LISTEN takes it
// (":2222,pgs=:2223").
func ParseListeners(s string) ([]Listener, error) {
	var out []Listener
	seen := map[string]bool{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		var l Listener
		if name, addr, ok := strings.Cut(item, "="); ok {
			if !auth.KnownService(name) {
				return nil, fmt.Errorf("ssh listen %q: %q is not a service (want one of %s)", item, name, serviceNames())
			}
			l = Listener{Addr: addr, Service: auth.Service(name)}
		} else {
			l = Listener{Addr: item}
		}
		if _, port, err := net.SplitHostPort(l.Addr); err != nil || port == "" || strings.Contains(l.Addr, "=") {
			return nil, fmt.Errorf("ssh listen %q: want [service=]host:port or :port", item)
		}
		if seen[l.Addr] {
			return nil, fmt.Errorf("ssh listen %q: address %s listed twice", item, l.Addr)
		}
		seen[l.Addr] = true
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("ssh listen %q: no address", s)
	}
	return out, nil
}

func serviceNames() string {
	names := make([]string, len(auth.Services))
	for i, s := range auth.Services {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}
