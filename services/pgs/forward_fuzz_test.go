package pgs

import (
	"testing"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/services"
	"github.com/portico-sh/portico/services/pgs/sitepath"
)

// FuzzForwardTarget: whatever host a client names in a direct-tcpip request, an accepted one
// is a valid account and project.
func FuzzForwardTarget(f *testing.F) {
	for _, s := range []string{"alice-blog", "alice", "ALICE-BLOG.localhost", "alice-blog.localhost.", "127.0.0.1", "a--b", "-x", "alice-", "x.y-z"} {
		f.Add(s)
	}
	pub, _ := services.ParsePublic("http://localhost:8080", "localhost:2222")
	s := &Service{public: pub}
	f.Fuzz(func(t *testing.T, host string) {
		account, project, ok := s.forwardTarget(host)
		if !ok {
			return
		}
		if auth.ValidAccountName(account) != nil || sitepath.CheckProject(project) != nil {
			t.Fatalf("%q accepted as %q / %q", host, account, project)
		}
	})
}

// FuzzAcceptedEncoding: any Accept-Encoding header picks br, gzip or nothing.
func FuzzAcceptedEncoding(f *testing.F) {
	for _, s := range []string{"gzip, deflate, br", "br;q=0", "*;q=0.1", "gzip;q=NaN", "br;q=1e9", ";;,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		switch got := acceptedEncoding(header); got {
		case "", "br", "gzip":
		default:
			t.Fatalf("%q gives %q", header, got)
		}
	})
}
