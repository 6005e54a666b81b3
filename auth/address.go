package auth

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// clientIP returns the IP address of a connection's remote end, with IPv4-mapped IPv6
// addresses (::ffff:10.0.0.1) unmapped and any zone dropped.
func clientIP(a net.Addr) (netip.Addr, bool) {
	var ip netip.Addr
	switch a := a.(type) {
	case nil:
		return netip.Addr{}, false
	case *net.TCPAddr:
		ip = a.AddrPort().Addr()
	case *net.UDPAddr:
		ip = a.AddrPort().Addr()
	case *net.IPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		s := a.String()
		if ap, err := netip.ParseAddrPort(s); err == nil {
			ip = ap.Addr()
		} else if ip, err = netip.ParseAddr(s); err != nil {
			return netip.Addr{}, false
		}
	}
	if !ip.IsValid() {
		return netip.Addr{}, false
	}
	return ip.Unmap().WithZone(""), true
}

// parseAddrOrPrefix reads an address ("10.0.0.1", "::1") or a CIDR block ("10.0.0.0/8",
// "::1/128") as a prefix; IPv4-mapped IPv6 forms are read as IPv4. A block with host bits set
// ("10.0.0.1/8") is refused, as OpenSSH refuses it ("inconsistent mask length"): it is
// unclear whether the address or the network was meant.
func parseAddrOrPrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		ip, err := netip.ParseAddr(s)
		if err != nil || ip.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR block", s)
		}
		ip = ip.Unmap()
		return netip.PrefixFrom(ip, ip.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR block", s)
	}
	if ip := p.Addr(); ip.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR block", s)
		}
		p = netip.PrefixFrom(ip.Unmap(), p.Bits()-96)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set: the network is %s", s, m)
	}
	return p, nil
}

// hasWildcard reports whether an address pattern uses * or ?.
func hasWildcard(p string) bool { return strings.ContainsAny(p, "*?") }

// checkFromPattern validates one entry of a from= list: an optional '!', then an address, a
// CIDR block, or a wildcard pattern over an address's text. portico matches addresses only
// (it never looks up host names), so host name patterns are refused rather than never matching.
func checkFromPattern(p string) error {
	p = strings.TrimPrefix(p, "!")
	switch {
	case p == "":
		return errors.New("empty pattern")
	case hasWildcard(p):
		for _, r := range p {
			if !strings.ContainsRune("0123456789abcdefABCDEF.:*?", r) {
				return fmt.Errorf("pattern %q: portico matches client addresses, not host names", p)
			}
		}
		return nil
	default:
		_, err := parseAddrOrPrefix(p)
		return err
	}
}

// matchFrom applies a from= pattern list to ip as OpenSSH does for addresses: any matching
// negated pattern refuses, otherwise any matching pattern admits.
func matchFrom(patterns []string, ip netip.Addr) bool {
	matched := false
	for _, p := range patterns {
		negated := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		var ok bool
		if hasWildcard(p) {
			ok = wildcardMatch(strings.ToLower(p), ip.String())
		} else if prefix, err := parseAddrOrPrefix(p); err == nil {
			ok = prefix.Contains(ip)
		}
		if ok && negated {
			return false
		}
		matched = matched || ok
	}
	return matched
}

// wildcardMatch reports whether s matches pattern, where * matches any run of characters and
// ? any one character (OpenSSH's match_pattern). It backtracks only to the last *, so it
// takes time proportional to len(pattern)*len(s): a from= pattern is the key owner's to
// write, and trying every split at every * (as a naive recursion does) takes exponential time
// on patterns such as "*?*?*?...x".
func wildcardMatch(pattern, s string) bool {
	p, i := 0, 0
	star, next := -1, 0 // the last * seen, and where in s its match would grow to
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, next = p, i
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case star >= 0:
			next++
			p, i = star+1, next
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// parseSourceAddress reads a certificate's source-address critical option: a comma-separated
// list of addresses and CIDR blocks (no wildcards, no negation), as OpenSSH's match_cidr_list.
func parseSourceAddress(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(v, ",") {
		p, err := parseAddrOrPrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
