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
