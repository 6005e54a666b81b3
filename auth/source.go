package auth

import (
	"net"
	"net/netip"
)

// sourceBitsIPv6 is the block one IPv6 client is counted by: a /64 is what one site or one
// customer of a provider gets, so counting single addresses would let it use billions.
const sourceBitsIPv6 = 64

// Source is the block of addresses that per-source limits count a client by (SPEC §7): its
// IPv4 address, or the /64 around its IPv6 address. IPv4-mapped IPv6 addresses count as
// IPv4. It reports false when a has no IP address.
func Source(a net.Addr) (netip.Prefix, bool) {
	ip, ok := clientIP(a)
	if !ok {
		return netip.Prefix{}, false
	}
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32), true
	}
	p, _ := ip.Prefix(sourceBitsIPv6)
	return p, true
}

// SourceOf is Source as text, as limits record it: "192.0.2.7", "2001:db8:1:2::/64". A
// connection with no IP address counts as its address's text.
func SourceOf(a net.Addr) string {
	p, ok := Source(a)
	switch {
	case ok && p.Addr().Is4():
		return p.Addr().String()
	case ok:
		return p.String()
	case a == nil:
		return ""
	}
	return a.String()
}

// ParseAddressList reads a comma-separated list of addresses and CIDR blocks, as a
// certificate's source-address option takes it ("10.0.0.0/8,192.0.2.7,2001:db8::/32").
func ParseAddressList(v string) ([]netip.Prefix, error) { return parseSourceAddress(v) }

// ListContains reports whether any block of list contains the client address of a.
func ListContains(list []netip.Prefix, a net.Addr) bool {
	ip, ok := clientIP(a)
	return ok && prefixesContain(list, ip)
}
