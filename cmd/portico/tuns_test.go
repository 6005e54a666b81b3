package main

import (
	"testing"

	"github.com/portico-sh/portico/services/tuns"
)

// The tuns settings as serve hands them to the service.
func TestTunsSettings(t *testing.T) {
	base := withLimitDefaults(settings{sshListen: ":2222", signups: "open", accessLogDays: "90", drainTimeout: "10s", domain: "x",
		pipeBuffer: "1MiB", pipeStall: "10s", signupRate: "5/h", krlInternal: "off", krlMinEvery: "1m"})
	for _, tc := range []struct {
		max, ports string
		wantMax    int
		wantPorts  tuns.PortRange
		ok         bool
	}{
		{"10", "", 10, tuns.PortRange{}, true},
		{"off", "40000-40099", -1, tuns.PortRange{First: 40000, Last: 40099}, true},
		{"3", "41000", 3, tuns.PortRange{First: 41000, Last: 41000}, true},
		{"0", "", 0, tuns.PortRange{}, false},
		{"ten", "", 0, tuns.PortRange{}, false},
		{"10", "40099-40000", 0, tuns.PortRange{}, false},
		{"10", "40000-", 0, tuns.PortRange{}, false},
	} {
		s := base
		s.tunsMax, s.tunsTCPPorts = tc.max, tc.ports
		c, err := s.serveConfig()
		if (err == nil) != tc.ok {
			t.Errorf("max %q ports %q: %v", tc.max, tc.ports, err)
			continue
		}
		if tc.ok && (c.tunsMax != tc.wantMax || c.tunsPorts != tc.wantPorts) {
			t.Errorf("max %q ports %q: %d %+v", tc.max, tc.ports, c.tunsMax, c.tunsPorts)
		}
	}
}
