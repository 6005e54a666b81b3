package auth

import (
	"net"
	"net/netip"
	"testing"
)

func TestSource(t *testing.T) {
	for _, tt := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 22}, "192.0.2.7/32"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 22}, "192.0.2.7/32"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 22}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 22, Zone: "eth0"}, "fe80::/64"},
	} {
		got, ok := Source(tt.addr)
		if !ok || got != netip.MustParsePrefix(tt.want) {
			t.Errorf("Source(%v) = %v, %v; want %s", tt.addr, got, ok, tt.want)
		}
	}
	if _, ok := Source(nil); ok {
		t.Error("Source(nil) has a source")
	}
	list, err := ParseAddressList("10.0.0.0/8,2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	if !ListContains(list, &net.TCPAddr{IP: net.ParseIP("10.1.2.3")}) || ListContains(list, &net.TCPAddr{IP: net.ParseIP("11.1.2.3")}) ||
		!ListContains(list, &net.TCPAddr{IP: net.ParseIP("2001:db8::9")}) || ListContains(list, nil) {
		t.Error("ListContains does not follow the list")
	}
}

// TestListContainsAcrossFamilies: an address list (PORTICO_PER_SOURCE_EXEMPT, a certificate's
// source-address) holds an IPv4 client whether its socket shows it as IPv4 or IPv4-mapped
// IPv6, and whether the list writes it either way; it never holds a client of the other family,
// nor one outside its blocks; entries that could be read more than one way are refused.
func TestListContainsAcrossFamilies(t *testing.T) {
	for _, tt := range []struct {
		list string
		addr *net.TCPAddr
		want bool
	}{
		{"10.0.0.0/8", &net.TCPAddr{IP: net.ParseIP("::ffff:10.1.2.3")}, true},
		{"::ffff:10.0.0.0/104", &net.TCPAddr{IP: net.ParseIP("10.1.2.3")}, true},
		{"::ffff:10.0.0.0/104", &net.TCPAddr{IP: net.ParseIP("11.1.2.3")}, false},
		{"::ffff:10.1.2.3", &net.TCPAddr{IP: net.ParseIP("10.1.2.3").To4()}, true},
		{"::/0", &net.TCPAddr{IP: net.ParseIP("10.1.2.3")}, false},
		{"0.0.0.0/0", &net.TCPAddr{IP: net.ParseIP("2001:db8::1")}, false},
		{"127.0.0.1", &net.TCPAddr{IP: net.ParseIP("::1")}, false},
		{"2001:db8::1", &net.TCPAddr{IP: net.ParseIP("2001:db8::2")}, false}, // one address, not its /64
		{"fe80::/10", &net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "eth0"}, true},
	} {
		list, err := ParseAddressList(tt.list)
		if err != nil {
			t.Fatalf("ParseAddressList(%q): %v", tt.list, err)
		}
		if got := ListContains(list, tt.addr); got != tt.want {
			t.Errorf("ListContains(%s, %v) = %v, want %v", tt.list, tt.addr, got, tt.want)
		}
	}
	for _, bad := range []string{"10.0.0.1/8", "::ffff:10.0.0.0/8", "", "10.0.0.0/8,", "fe80::1%eth0", "010.0.0.1", "10.0.0.0/33", " 10.0.0.1", "10.0.0.0/8 ,1.2.3.4"} {
		if list, err := ParseAddressList(bad); err == nil {
			t.Errorf("ParseAddressList(%q) = %v, want an error", bad, list)
		}
	}
}
