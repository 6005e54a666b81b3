package gateway_test

import (
	"slices"
	"testing"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/gateway"
)

func TestParseListeners(t *testing.T) {
	tests := []struct {
		in   string
		want []gateway.Listener
	}{
		{":2222", []gateway.Listener{{Addr: ":2222"}}},
		{":2222,pgs=:2223", []gateway.Listener{{Addr: ":2222"}, {Addr: ":2223", Service: auth.PGS}}},
		{" 127.0.0.1:22 , tuns=[::1]:2224 ,", []gateway.Listener{{Addr: "127.0.0.1:22"}, {Addr: "[::1]:2224", Service: auth.Tuns}}},
		{"admin=0.0.0.0:2222", []gateway.Listener{{Addr: "0.0.0.0:2222", Service: auth.Admin}}},
	}
	for _, tt := range tests {
		got, err := gateway.ParseListeners(tt.in)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseListeners(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseListenersRejects(t *testing.T) {
	for _, in := range []string{
		"",
		",",
		"2222",             // no colon
		"pastes=:2223",     // not a service
		"PGS=:2223",        // service names are lower case
		":2222,:2222",      // twice
		"pgs=",             // no address
		"localhost",        // no port
		":2222,pipe=2223",  // no colon in the second
		"127.0.0.1:",       // empty port
		"=:2222",           // empty service
		"pgs=tuns=:2222",   // two services
		"[::1:2222",        // malformed
		"pgs=:2223,admin=", // empty address
	} {
		if got, err := gateway.ParseListeners(in); err == nil {
			t.Errorf("ParseListeners(%q) = %v, want an error", in, got)
		}
	}
}
