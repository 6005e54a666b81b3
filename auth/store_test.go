package auth_test

import (
	"context"
	"crypto/rand"
	"github.com/portico-sh/portico/internal/sshtest"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/db/dbtest"
)

// TestWithSQLiteStore runs the decision against the real store, from authorized_keys lines
// through registration, revocation and removal, as the admin commands do.
func TestWithSQLiteStore(t *testing.T) {
	ctx := context.Background()
	store := dbtest.SQLite(t)
	now := time.Now()
	a := auth.New(store, auth.Options{Now: func() time.Time { return now }})
	addr := &netAddr{"192.0.2.10:40000"}

	login, ca, user := sshtest.NewSigner(t), sshtest.NewSigner(t), sshtest.NewSigner(t)
	loginLine, err := auth.ParseKeyLine(sshtest.AuthorizedKey(login.PublicKey()) + " laptop")
	if err != nil {
		t.Fatal(err)
	}
	acct, _, err := store.CreateAccount(ctx, "alice", loginLine.NewKey(loginLine.Comment))
	if err != nil {
		t.Fatal(err)
	}
	caLine, err := auth.ParseKeyLine(`cert-authority,principals="pgs" ` + sshtest.AuthorizedKey(ca.PublicKey()) + " team-ca")
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := store.AddKey(ctx, acct.ID, caLine.NewKey(caLine.Comment))
	if err != nil {
		t.Fatal(err)
	}
	if caKey.Kind != db.KindCA || caKey.Options != `cert-authority,principals="pgs"` {
		t.Fatalf("stored CA %+v", caKey)
	}

	g, err := a.Authenticate(ctx, auth.Attempt{Key: login.PublicKey(), Service: auth.Admin, RemoteAddr: addr})
	if err != nil || g.Account != "alice" || g.Identity != "laptop" || g.Method != auth.MethodKey {
		t.Fatalf("login key: %+v, %v", g, err)
	}

	cert := &gossh.Certificate{
		Key: user.PublicKey(), Serial: 9, CertType: gossh.UserCert, KeyId: "bob@laptop",
		ValidPrincipals: []string{"pgs", "tuns"},
		ValidAfter:      uint64(now.Add(-time.Minute).Unix()), ValidBefore: uint64(now.Add(time.Hour).Unix()),
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	g, err = a.Authenticate(ctx, auth.Attempt{Key: cert, Service: auth.PGS, RemoteAddr: addr})
	if err != nil || g.Account != "alice" || g.Identity != "bob@laptop" || len(g.Services) != 1 || g.KeyID != caKey.ID {
		t.Fatalf("certificate: %+v, %v", g, err)
	}
	_, err = a.Authenticate(ctx, auth.Attempt{Key: cert, Service: auth.Tuns, RemoteAddr: addr})
	if r, ok := auth.AsRefusal(err); !ok || r.Reason != auth.ReasonDoesNotGrant {
		t.Fatalf("tuns past the CA's principals=: %v", err)
	}

	if _, err := store.AddRevocation(ctx, acct.ID, db.NewRevocation{Kind: db.RevokeSerial, Value: "9", CAFingerprint: caKey.Fingerprint}); err != nil {
		t.Fatal(err)
	}
	_, err = a.Authenticate(ctx, auth.Attempt{Key: cert, Service: auth.PGS, RemoteAddr: addr})
	if r, ok := auth.AsRefusal(err); !ok || r.Reason != auth.ReasonRevoked || r.Account != "alice" {
		t.Fatalf("revoked serial: %v", err)
	}

	if err := store.RemoveKey(ctx, acct.ID, caKey.ID); err != nil {
		t.Fatal(err)
	}
	_, err = a.Authenticate(ctx, auth.Attempt{Key: cert, Service: auth.PGS, RemoteAddr: addr})
	if r, ok := auth.AsRefusal(err); !ok || r.Reason != auth.ReasonUnknownCA {
		t.Fatalf("removed CA: %v", err)
	}

	_, err = a.Authenticate(ctx, auth.Attempt{Key: user.PublicKey(), Service: auth.Admin, RemoteAddr: addr})
	if r, ok := auth.AsRefusal(err); !ok || r.Reason != auth.ReasonNotRegistered || strings.Contains(r.Message, "alice") {
		t.Fatalf("unregistered key: %v", err)
	}
}

type netAddr struct{ s string }

func (a *netAddr) Network() string { return "tcp" }
func (a *netAddr) String() string  { return a.s }
