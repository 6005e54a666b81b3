package services_test

import (
	"testing"

	"github.com/portico-sh/portico/services"
)

func TestPublic(t *testing.T) {
	tests := []struct {
		http, ssh       string
		site, self, cmd string
	}{
		{"http://localhost:8080", "localhost:2222", "http://alice-blog.localhost:8080/", "http://alice.localhost:8080/", "ssh -p 2222 pgs@localhost ls"},
		{"https://example.com", "example.com", "https://alice-blog.example.com/", "https://alice.example.com/", "ssh pgs@example.com ls"},
		{"https://example.com/", "example.com:22", "https://alice-blog.example.com/", "https://alice.example.com/", "ssh pgs@example.com ls"},
	}
	for _, tt := range tests {
		p, err := services.ParsePublic(tt.http, tt.ssh)
		if err != nil {
			t.Fatalf("ParsePublic(%q, %q): %v", tt.http, tt.ssh, err)
		}
		if got := p.SiteURL("alice", "blog"); got != tt.site {
			t.Errorf("SiteURL = %q, want %q", got, tt.site)
		}
		if got := p.SiteURL("alice", "alice"); got != tt.self {
			t.Errorf("SiteURL(own name) = %q, want %q", got, tt.self)
		}
		if got := p.SSHCommand("pgs", "ls"); got != tt.cmd {
			t.Errorf("SSHCommand = %q, want %q", got, tt.cmd)
		}
	}
	for _, bad := range [][2]string{
		{"ftp://example.com", "example.com"},
		{"http://example.com/path", "example.com"},
		{"http://user@example.com", "example.com"},
		{"example.com", "example.com"},
		{"http://example.com", "bob@example.com"},
		{"http://example.com", "example.com:99999"},
		{"http://example.com", ":22"},
	} {
		if _, err := services.ParsePublic(bad[0], bad[1]); err == nil {
			t.Errorf("ParsePublic(%q, %q) accepted it", bad[0], bad[1])
		}
	}
}
