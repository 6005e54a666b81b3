package tuns

import (
	"fmt"
	"regexp"
	"strings"
)

// nameRE is a tunnel NAME: one DNS label part, as pgs project names.
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)

// maxBindAddr bounds the bind address of a forward request, which is echoed in messages.
const maxBindAddr = 255

// Kind is what a tunnel serves, by the remote port it was bound with.
type Kind string

// The kinds of tunnel.
const (
	KindHTTP       Kind = "http"        // 80 or 443: {account}-{name}.{domain} on the HTTP listener
	KindTCPPrivate Kind = "tcp-private" // any other port with a name: direct-tcpip on tuns@ only
	KindTCPPublic  Kind = "tcp-public"  // any other port without a name: a port of the operator's range
)

// unnamed are the bind addresses that name no tunnel: OpenSSH sends "localhost" for
// -R PORT:HOST:HOSTPORT and "" for -R :PORT:... or *:PORT:...
var unnamed = []string{"", "localhost", "*", "0.0.0.0", "::"}

// bindRequest is a forward request as the service reads it.
type bindRequest struct {
	Name string // the NAME, or empty for no name
	Port uint32 // the remote port asked for
	Kind Kind
}

// parseBind reads the bind address and port of a tcpip-forward request. A bad name is refused
// with a reason that names it; it never becomes a random one.
func parseBind(addr string, port uint32) (bindRequest, error) {
	if len(addr) > maxBindAddr {
		return bindRequest{}, fmt.Errorf("the tunnel name is longer than %d bytes", maxBindAddr)
	}
	if port > 65535 {
		return bindRequest{}, fmt.Errorf("port %d is not a TCP port", port)
	}
	b := bindRequest{Port: port}
	named := true
	for _, u := range unnamed {
		if addr == u {
			named = false
		}
	}
	if named {
		if !nameRE.MatchString(addr) {
			return bindRequest{}, fmt.Errorf("%q is not a tunnel name: use 1 to 32 of a-z, 0-9 and '-', starting and ending with a letter or digit", printable(addr))
		}
		b.Name = addr
	}
	switch {
	case port == 80 || port == 443:
		b.Kind = KindHTTP
	case named && port == 0:
		return bindRequest{}, fmt.Errorf("a named tunnel needs a port: -R %s:PORT:localhost:LOCALPORT (80 for HTTP)", addr)
	case named:
		b.Kind = KindTCPPrivate
	default:
		b.Kind = KindTCPPublic
	}
	return b, nil
}

// parseTarget reads the host of a direct-tcpip request to a tunnel: {account}-{NAME}.
func parseTarget(host string) (account, name string, ok bool) {
	if len(host) > maxBindAddr {
		return "", "", false
	}
	account, name, ok = strings.Cut(host, "-")
	if !ok || !nameRE.MatchString(name) {
		return "", "", false
	}
	return account, name, true
}

// printable is s with control and non-ASCII characters replaced, at most 64 bytes, for messages.
func printable(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}
