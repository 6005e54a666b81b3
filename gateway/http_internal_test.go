package gateway

import "testing"

func TestSiteOf(t *testing.T) {
	tests := []struct {
		host, domain  string
		account, name string
		ok            bool
	}{
		{"alice-blog.example.com", "example.com", "alice", "blog", true},
		{"alice-blog.example.com:8080", "example.com", "alice", "blog", true},
		{"Alice-Blog.Example.COM.", "example.com", "alice", "blog", true},
		{"alice-my-blog.example.com", "example.com", "alice", "my-blog", true},
		{"alice-blog.localhost", "localhost", "alice", "blog", true},
		{"example.com", "example.com", "", "", false},
		{"alice.example.com", "example.com", "alice", "alice", true},
		{"alice.example.com:8080", "example.com", "alice", "alice", true},
		{"admin.example.com", "example.com", "", "", false},
		{"alice-.example.com", "example.com", "", "", false},
		{"-blog.example.com", "example.com", "", "", false},
		{"admin-blog.example.com", "example.com", "", "", false}, // reserved account name
		{"a.alice-blog.example.com", "example.com", "", "", false},
		{"alice-blog.example.org", "example.com", "", "", false},
		{"alice-blogexample.com", "example.com", "", "", false},
		{"[::1]:8080", "example.com", "", "", false},
	}
	for _, tt := range tests {
		account, name, ok := siteOf(tt.host, tt.domain)
		if account != tt.account || name != tt.name || ok != tt.ok {
			t.Errorf("siteOf(%q, %q) = %q, %q, %v; want %q, %q, %v", tt.host, tt.domain, account, name, ok, tt.account, tt.name, tt.ok)
		}
	}
}

func TestSoftwareVersion(t *testing.T) {
	for in, want := range map[string]string{
		"":                 "",
		"v1.2.3":           "v1.2.3",
		"(devel)":          "devel",
		"v0.0.0-2026-abc":  "v0.0.0_2026_abc",
		"v1.0.0+dirty x\r": "v1.0.0+dirtyx",
	} {
		if got := softwareVersion(in); got != want {
			t.Errorf("softwareVersion(%q) = %q, want %q", in, got, want)
		}
	}
}
