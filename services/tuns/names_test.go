package tuns

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseBind(t *testing.T) {
	for _, tc := range []struct {
		addr string
		port uint32
		want bindRequest
		err  string
	}{
		{"dev", 80, bindRequest{Name: "dev", Port: 80, Kind: KindHTTP}, ""},
		{"dev", 443, bindRequest{Name: "dev", Port: 443, Kind: KindHTTP}, ""},
		{"a", 80, bindRequest{Name: "a", Port: 80, Kind: KindHTTP}, ""},
		{"my-app-2", 80, bindRequest{Name: "my-app-2", Port: 80, Kind: KindHTTP}, ""},
		{strings.Repeat("a", 32), 80, bindRequest{Name: strings.Repeat("a", 32), Port: 80, Kind: KindHTTP}, ""},
		{"", 80, bindRequest{Port: 80, Kind: KindHTTP}, ""},
		{"localhost", 80, bindRequest{Port: 80, Kind: KindHTTP}, ""},
		{"*", 443, bindRequest{Port: 443, Kind: KindHTTP}, ""},
		{"0.0.0.0", 80, bindRequest{Port: 80, Kind: KindHTTP}, ""},
		{"::", 80, bindRequest{Port: 80, Kind: KindHTTP}, ""},
		{"db", 5432, bindRequest{Name: "db", Port: 5432, Kind: KindTCPPrivate}, ""},
		{"box", 22, bindRequest{Name: "box", Port: 22, Kind: KindTCPPrivate}, ""},
		{"localhost", 0, bindRequest{Port: 0, Kind: KindTCPPublic}, ""},
		{"", 25565, bindRequest{Port: 25565, Kind: KindTCPPublic}, ""},
		{"db", 0, bindRequest{}, "needs a port"},
		{"dev", 65536, bindRequest{}, "is not a TCP port"},
		{strings.Repeat("a", 33), 80, bindRequest{}, "is not a tunnel name"},
		{strings.Repeat("a", 256), 80, bindRequest{}, "longer than 255 bytes"},
		{"Dev", 80, bindRequest{}, "is not a tunnel name"},
		{"-dev", 80, bindRequest{}, "is not a tunnel name"},
		{"dev-", 80, bindRequest{}, "is not a tunnel name"},
		{"d_v", 80, bindRequest{}, "is not a tunnel name"},
		{"d.v", 80, bindRequest{}, "is not a tunnel name"},
		{"127.0.0.1", 80, bindRequest{}, "is not a tunnel name"},
		{"::1", 80, bindRequest{}, "is not a tunnel name"},
		{"d\x00v", 80, bindRequest{}, "is not a tunnel name"},
		{"dev.", 80, bindRequest{}, "is not a tunnel name"},
		{"d\u0435v", 80, bindRequest{}, "is not a tunnel name"}, // Cyrillic e
		{"DEV", 443, bindRequest{}, "is not a tunnel name"},
		{"dev\n", 80, bindRequest{}, "is not a tunnel name"},
		{"alice-dev", 80, bindRequest{Name: "alice-dev", Port: 80, Kind: KindHTTP}, ""}, // {account}-alice-dev: never alice's
		{"dev", 4294967216, bindRequest{}, "is not a TCP port"},                         // -80 as uint32
	} {
		got, err := parseBind(tc.addr, tc.port)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("parseBind(%q, %d): %v", tc.addr, tc.port, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("parseBind(%q, %d): %v, want %q", tc.addr, tc.port, err, tc.err)
		case tc.err == "" && got != tc.want:
			t.Errorf("parseBind(%q, %d) = %+v, want %+v", tc.addr, tc.port, got, tc.want)
		}
	}
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		host, account, name string
		ok                  bool
	}{
		{"alice-db", "alice", "db", true},
		{"alice-my-db", "alice", "my-db", true},
		{"alice", "", "", false},
		{"alice-", "", "", false},
		{"alice-DB", "", "", false},
		{"127.0.0.1", "", "", false},
		{"", "", "", false},
	} {
		a, n, ok := parseTarget(tc.host)
		if ok != tc.ok || a != tc.account || n != tc.name {
			t.Errorf("parseTarget(%q) = %q, %q, %v", tc.host, a, n, ok)
		}
	}
}

func TestParsePortRange(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want PortRange
		ok   bool
	}{
		{"", PortRange{}, true},
		{"40000-40099", PortRange{40000, 40099}, true},
		{"5000", PortRange{5000, 5000}, true},
		{"40099-40000", PortRange{}, false},
		{"0-10", PortRange{}, false},
		{"1-70000", PortRange{}, false},
		{"a-b", PortRange{}, false},
		{"80-90", PortRange{}, false},
	} {
		got, err := ParsePortRange(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParsePortRange(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

func TestParseOptions(t *testing.T) {
	o, err := parseOptions([]string{"quiet", "allow=bob,carol", "host-header=example.test"})
	if err != nil || !o.quiet || len(o.allow) != 2 || o.hostHeader != "example.test" {
		t.Fatalf("parseOptions = %+v, %v", o, err)
	}
	for _, bad := range [][]string{{"--json"}, {"quiet=1"}, {"allow"}, {"allow=Bob"}, {"host-header="},
		{"host-header=a b"}, {"host-header=" + strings.Repeat("a", 256)}, {"frob"}} {
		if _, err := parseOptions(bad); err == nil {
			t.Errorf("parseOptions(%q) accepted", bad)
		}
	}
}

func TestRegistryClaim(t *testing.T) {
	r := NewMemoryRegistry()
	mk := func(account, name string) *Tunnel { return &Tunnel{Account: account, Name: name, Port: 80} }
	a1 := mk("alice", "dev")
	if taken, err := r.Claim(a1, 2); err != nil || taken != nil {
		t.Fatal(taken, err)
	}
	a2 := mk("alice", "dev")
	if taken, err := r.Claim(a2, 2); err != nil || taken != a1 {
		t.Fatalf("takeover: %v %v", taken, err)
	}
	r.Release(a1) // the old holder's release must not free the new one's name
	if !r.TunnelLive("alice", "dev") {
		t.Fatal("the taken-over tunnel's release freed the name")
	}
	if _, err := r.Claim(mk("alice", "api"), 2); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Claim(mk("alice", "third"), 2); err == nil {
		t.Fatal("a third tunnel past the limit of 2 was claimed")
	}
	if _, err := r.Claim(mk("bob", "dev"), 2); err != nil {
		t.Fatal("bob's dev is not alice's:", err)
	}
	if n := len(r.Tunnels("alice")); n != 2 {
		t.Fatalf("alice has %d tunnels", n)
	}
}

// FuzzParseBind: any bind address and port either parse into a valid name and kind, or are
// refused with a printable reason.
func FuzzParseBind(f *testing.F) {
	for _, s := range []string{"dev", "", "localhost", "a-b", "A", "\xff", strings.Repeat("x", 300)} {
		f.Add(s, uint32(80))
	}
	f.Fuzz(func(t *testing.T, addr string, port uint32) {
		b, err := parseBind(addr, port)
		if err != nil {
			msg := err.Error()
			if !utf8.ValidString(msg) || strings.ContainsAny(msg, "\x00\r\n") || len(msg) > 400 {
				t.Fatalf("reason %q is not printable", msg)
			}
			return
		}
		if b.Name != "" && !nameRE.MatchString(b.Name) {
			t.Fatalf("name %q accepted", b.Name)
		}
		if port > 65535 {
			t.Fatalf("port %d accepted", port)
		}
		if a, n, ok := parseTarget("alice-" + b.Name); b.Name != "" && (!ok || a != "alice" || n != b.Name) {
			t.Fatalf("host alice-%s does not read back", b.Name)
		}
	})
}

// FuzzParseOptions: any session words are read into options or refused with a printable
// reason; what is accepted is within bounds.
func FuzzParseOptions(f *testing.F) {
	for _, s := range []string{"quiet", "allow=bob,carol", "host-header=example.test", "allow=", "x=y", "host-header=\x00"} {
		f.Add(s, "quiet")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		o, err := parseOptions([]string{a, b})
		if err != nil {
			if msg := err.Error(); !utf8.ValidString(msg) || strings.ContainsAny(msg, "\x00\r\n") {
				t.Fatalf("reason %q is not printable", msg)
			}
			return
		}
		if len(o.hostHeader) > maxHostHeader || strings.ContainsFunc(o.hostHeader, func(r rune) bool { return r <= ' ' || r > '~' }) {
			t.Fatalf("host header %q accepted", o.hostHeader)
		}
	})
}

// FuzzParseTarget: a direct-tcpip host reads as ACCOUNT-NAME with a valid name, or not at all.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"alice-db", "alice", "-db", "alice-", "a-b-c", "\xff-db"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		account, name, ok := parseTarget(host)
		if ok && (!nameRE.MatchString(name) || account+"-"+name != host) {
			t.Fatalf("parseTarget(%q) = %q, %q", host, account, name)
		}
	})
}
