package certifier

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseMapEntry(t *testing.T) {
	tests := []struct {
		in       string
		group    string
		services string
		err      string
	}{
		{"web-team=pgs,tuns", "web-team", "pgs,tuns", ""},
		{"ops=admin", "ops", "admin", ""},
		{"/eng/web=pgs", "/eng/web", "pgs", ""},
		{"CN=Deployers,OU=Groups=pgs, pipe", "CN=Deployers,OU=Groups", "pgs,pipe", ""},
		{"Web Team=pgs,pgs,tuns", "Web Team", "pgs,tuns", ""},
		{"web-team", "", "", "want GROUP=SERVICES"},
		{"=pgs", "", "", "group name is empty"},
		{"web-team=", "", "", `"" is not a service`},
		{"web-team=pgs,sites", "", "", `"sites" is not a service`},
		{"web-team=pgs,,tuns", "", "", `"" is not a service`},
		{"tab\tgroup=pgs", "", "", "not printable"},
		{strings.Repeat("g", 257) + "=pgs", "", "", "at most 256 bytes"},
	}
	for _, tt := range tests {
		group, services, err := ParseMapEntry(tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ParseMapEntry(%q) error %v, want %q", tt.in, err, tt.err)
		case tt.err == "" && (err != nil || group != tt.group || serviceNames(services) != tt.services):
			t.Errorf("ParseMapEntry(%q) = %q, %v, %v; want %q, %s", tt.in, group, services, err, tt.group, tt.services)
		}
	}
	if _, err := ParseMapping([]string{"ops=admin", "ops=pgs"}); err == nil || !strings.Contains(err.Error(), "mapped twice") {
		t.Errorf("a group mapped twice: %v", err)
	}
}

// Claim-to-principal mapping: the services of every group the token lists, once each, in the
// gateway's order; unknown groups count for nothing.
func TestPrincipals(t *testing.T) {
	m, err := ParseMapping([]string{"web-team=pgs,tuns", "ops=admin", "bots=pipe,pgs", "Web-Team=pipe"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		groups []string
		want   []string
	}{
		{[]string{"web-team"}, []string{"pgs", "tuns"}},
		{[]string{"ops"}, []string{"admin"}},
		{[]string{"ops", "web-team"}, []string{"admin", "pgs", "tuns"}},
		{[]string{"web-team", "bots"}, []string{"pgs", "tuns", "pipe"}},
		{[]string{"sales", "bots"}, []string{"pgs", "pipe"}},
		{[]string{"Web-Team"}, []string{"pipe"}}, // names are matched exactly
		{[]string{"web-team "}, nil},             // ... to the byte
		{[]string{"WEB-TEAM", "sales"}, nil},
		{nil, nil},
	}
	for _, tt := range tests {
		if got := m.Principals(tt.groups); !slices.Equal(got, tt.want) {
			t.Errorf("Principals(%q) = %v, want %v", tt.groups, got, tt.want)
		}
	}
	if s := m.String(); s != "web-team=pgs,tuns ops=admin bots=pipe,pgs Web-Team=pipe" {
		t.Errorf("String() = %q", s)
	}
}

func TestParseExtensions(t *testing.T) {
	for in, want := range map[string]string{
		"permit-pty,permit-port-forwarding": "permit-pty permit-port-forwarding",
		"none":                              "",
		"":                                  "",
		" permit-pty , permit-pty":          "permit-pty",
	} {
		got, err := ParseExtensions(in)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("ParseExtensions(%q) = %v, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseExtensions("permit-pty,permit-everything"); err == nil {
		t.Error("an unknown extension was accepted")
	}
}

// --map values come from the operator's command line and environment.
func FuzzParseMapEntry(f *testing.F) {
	for _, s := range []string{"web-team=pgs,tuns", "ops=admin", "=", "a=b=pgs", "x=pgs,,", "\x00=pgs"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		group, services, err := ParseMapEntry(s)
		if err != nil {
			return
		}
		if group == "" || len(group) > maxGroupName || !utf8.ValidString(group) || len(services) == 0 {
			t.Fatalf("ParseMapEntry(%q) accepted group %q, services %v", s, group, services)
		}
		m, err := ParseMapping([]string{s})
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Principals([]string{group}); len(got) != len(services) {
			t.Fatalf("Principals of the one mapped group %q = %v, want %v", group, got, services)
		}
	})
}
