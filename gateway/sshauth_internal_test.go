package gateway

import (
	"context"
	"github.com/portico-sh/portico/internal/sshtest"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/services"
)

// discardStore keeps nothing.
type discardStore struct{}

func (discardStore) AppendAccessBatch(context.Context, []db.AccessEntry, map[int64]time.Time) error {
	return nil
}
func (discardStore) AddSuppressedAccess(context.Context, db.AccessEntry) error { return nil }
func (discardStore) PruneAccess(context.Context, time.Time) (int64, error)     { return 0, nil }
func (discardStore) Ping(context.Context) error                                { return nil }
func (discardStore) AccessVersions(context.Context, []int64) (map[int64]int64, error) {
	return map[int64]int64{}, nil
}

// recordingAuth refuses every key and records the last attempt.
type recordingAuth struct{ last auth.Attempt }

func (a *recordingAuth) Authenticate(_ context.Context, at auth.Attempt) (auth.Grant, error) {
	a.last = at
	return auth.Grant{}, &auth.Refusal{Reason: auth.ReasonNotRegistered, Message: "not registered"}
}

// connMeta is the ConnMetadata of a connection whose SSH user is user.
type connMeta struct {
	gossh.ConnMetadata
	user string
}

func (c connMeta) User() string         { return c.user }
func (c connMeta) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5000} }

// TestDecisionIsForTheRoutedService: the decision is made for the service that the SSH user of
// the signed attempt routes to (the user may change between authentication requests), or for
// the listener's service.
func TestDecisionIsForTheRoutedService(t *testing.T) {
	a := &recordingAuth{}
	router, err := services.NewRouter(services.Unavailable(auth.Admin), services.Unavailable(auth.PGS))
	if err != nil {
		t.Fatal(err)
	}
	signer := sshtest.NewSigner(t)
	g, err := New(Options{Store: discardStore{}, Auth: a, Router: router, HostKey: signer,
		SSH: []Listener{{Addr: "127.0.0.1:0"}}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		bound auth.Service
		user  string
		want  auth.Service
	}{
		{"", "admin", auth.Admin},
		{"", "pgs", auth.PGS},
		{"", "alice", auth.Admin},
		{auth.PGS, "admin", auth.PGS},
	} {
		a.last = auth.Attempt{}
		c, err := g.admission.connect(netip.Prefix{}, false)
		if err != nil {
			t.Fatal(err)
		}
		g.verified(nil, tt.bound, c, newConnState(nil), connMeta{user: tt.user}, signer.PublicKey())
		c.close()
		if a.last.Service != tt.want || a.last.Key == nil {
			t.Errorf("listener %q, user %q: decided for %q, want %q", tt.bound, tt.user, a.last.Service, tt.want)
		}
	}
}
