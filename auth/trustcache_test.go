package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/db/dbtest"
	"github.com/portico-sh/portico/internal/sshtest"
)

// countingStore counts the reads auth makes besides the access version, to tell a login the
// trust cache answered from one that read the store.
type countingStore struct {
	db.Store
	reads atomic.Int64
}

func (s *countingStore) KeyByFingerprint(ctx context.Context, fp string) (db.Key, error) {
	s.reads.Add(1)
	return s.Store.KeyByFingerprint(ctx, fp)
}

func (s *countingStore) AccountByID(ctx context.Context, id int64) (db.Account, error) {
	s.reads.Add(1)
	return s.Store.AccountByID(ctx, id)
}

func (s *countingStore) FindRevocation(ctx context.Context, id int64, c db.CertRef) (db.Revocation, error) {
	s.reads.Add(1)
	return s.Store.FindRevocation(ctx, id, c)
}

func (s *countingStore) PrincipalMappings(ctx context.Context, id int64, ps []string) ([]db.PrincipalMapping, error) {
	s.reads.Add(1)
	return s.Store.PrincipalMappings(ctx, id, ps)
}

// trustFixture is an account with two login keys and a CA, a certificate of that CA, and a
// principal mapping; the gateway's Authenticator reads one store, and every change goes
// through another (on Postgres, another connection pool on the same database: another
// gateway).
type trustFixture struct {
	gateway  *countingStore // what the Authenticator reads
	other    db.Store       // where changes are made
	a        *auth.Authenticator
	acct     db.Account
	login    gossh.Signer // the first login key
	desktop  db.Key       // the second login key
	desktopS gossh.Signer
	ca       db.Key
	caS      gossh.Signer
	cert     *gossh.Certificate
	now      time.Time
}

var trustAddr = &netAddr{"192.0.2.10:40000"}

func newTrustFixture(t *testing.T, gw, other db.Store) *trustFixture {
	t.Helper()
	ctx := context.Background()
	f := &trustFixture{gateway: &countingStore{Store: gw}, other: other, now: time.Now()}
	f.a = auth.New(f.gateway, auth.Options{Now: func() time.Time { return f.now }})
	f.login, f.desktopS, f.caS = sshtest.NewSigner(t), sshtest.NewSigner(t), sshtest.NewSigner(t)
	var err error
	f.acct, _, err = other.CreateAccount(ctx, "alice", keyLine(t, "", f.login.PublicKey()).NewKey("laptop"))
	if err != nil {
		t.Fatal(err)
	}
	if f.desktop, err = other.AddKey(ctx, f.acct.ID, keyLine(t, "", f.desktopS.PublicKey()).NewKey("desktop")); err != nil {
		t.Fatal(err)
	}
	if f.ca, err = other.AddKey(ctx, f.acct.ID, keyLine(t, "cert-authority", f.caS.PublicKey()).NewKey("team-ca")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.SetPrincipalMapping(ctx, f.acct.ID, db.NewPrincipalMapping{Principal: "web-team", Services: []string{"tuns"}}); err != nil {
		t.Fatal(err)
	}
	f.cert = &gossh.Certificate{
		Key: sshtest.NewSigner(t).PublicKey(), Serial: 9, CertType: gossh.UserCert, KeyId: "bob@laptop",
		ValidPrincipals: []string{"pgs", "web-team", "ops"},
		ValidAfter:      uint64(f.now.Add(-time.Minute).Unix()), ValidBefore: uint64(f.now.Add(time.Hour).Unix()),
		Permissions: gossh.Permissions{Extensions: map[string]string{"permit-pty": ""}},
	}
	if err := f.cert.SignCert(rand.Reader, f.caS); err != nil {
		t.Fatal(err)
	}
	return f
}

func keyLine(t *testing.T, opts string, k gossh.PublicKey) auth.KeyLine {
	t.Helper()
	line := sshtest.AuthorizedKey(k)
	if opts != "" {
		line = opts + " " + line
	}
	l, err := auth.ParseKeyLine(line)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// login is one attempt: which key, for which service.
type login struct {
	name    string
	key     func(f *trustFixture) gossh.PublicKey
	service auth.Service
}

var (
	certTuns  = login{"certificate for tuns (mapped)", func(f *trustFixture) gossh.PublicKey { return f.cert }, auth.Tuns}
	certPGS   = login{"certificate for pgs", func(f *trustFixture) gossh.PublicKey { return f.cert }, auth.PGS}
	certAdmin = login{"certificate for admin", func(f *trustFixture) gossh.PublicKey { return f.cert }, auth.Admin}
	keyAdmin  = login{"login key for admin", func(f *trustFixture) gossh.PublicKey { return f.desktopS.PublicKey() }, auth.Admin}
)

func (f *trustFixture) try(l login) (auth.Grant, error) {
	return f.a.Authenticate(context.Background(), auth.Attempt{Key: l.key(f), Service: l.service, RemoteAddr: trustAddr})
}

func revokeWith(r db.NewRevocation) func(*testing.T, *trustFixture) {
	return func(t *testing.T, f *trustFixture) {
		if _, err := f.other.AddRevocation(context.Background(), f.acct.ID, r); err != nil {
			t.Fatal(err)
		}
	}
}

func importWith(rs ...db.NewRevocation) func(*testing.T, *trustFixture) {
	return func(t *testing.T, f *trustFixture) {
		if _, err := f.other.ImportRevocations(context.Background(), f.acct.ID, rs); err != nil {
			t.Fatal(err)
		}
	}
}

func mapWith(m db.NewPrincipalMapping) func(*testing.T, *trustFixture) {
	return func(t *testing.T, f *trustFixture) {
		if _, _, err := f.other.SetPrincipalMapping(context.Background(), f.acct.ID, m); err != nil {
			t.Fatal(err)
		}
	}
}

func sha256FP(k gossh.PublicKey) string {
	sum := sha256.Sum256(k.Marshal())
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// trustChanges are the changes of what grounds a login that the next login must see, made
// after the login was cached: each restricting one (SPEC §2.2's grounds) and those that give
// more back. want is the refusal's reason, or "" when the login must now be allowed.
var trustChanges = []struct {
	name   string
	before login // cached first (allowed); the change is then judged on after
	change func(*testing.T, *trustFixture)
	after  login
	want   auth.Reason
}{
	{"revoke serial", certPGS, revokeWith(db.NewRevocation{Kind: db.RevokeSerial, Value: "9"}), certPGS, auth.ReasonRevoked},
	{"revoke serial of this CA", certPGS, func(t *testing.T, f *trustFixture) {
		revokeWith(db.NewRevocation{Kind: db.RevokeSerial, Value: "9", CAFingerprint: f.ca.Fingerprint})(t, f)
	}, certPGS, auth.ReasonRevoked},
	{"revoke key ID", certPGS, revokeWith(db.NewRevocation{Kind: db.RevokeKeyID, Value: "bob@laptop"}), certPGS, auth.ReasonRevoked},
	{"revoke the certificate's key", certPGS, func(t *testing.T, f *trustFixture) {
		revokeWith(db.NewRevocation{Kind: db.RevokeKey, Value: sha256FP(f.cert.Key)})(t, f)
	}, certPGS, auth.ReasonRevoked},
	{"KRL: serial range", certPGS, importWith(db.NewRevocation{Kind: db.RevokeSerialRange, Value: db.SerialRange(5, 12), Origin: db.OriginKRL}), certPGS, auth.ReasonRevoked},
	{"KRL: key hash of the CA", certPGS, func(t *testing.T, f *trustFixture) {
		importWith(db.NewRevocation{Kind: db.RevokeKeyHash, Value: auth.FingerprintSHA1(f.caS.PublicKey()), Origin: db.OriginKRL})(t, f)
	}, certPGS, auth.ReasonRevoked},
	{"KRL source", certPGS, func(t *testing.T, f *trustFixture) {
		_, err := f.other.SetKRLSource(context.Background(), f.acct.ID, db.NewKRLSource{URL: "https://example.com/krl"}, "00",
			[]db.NewRevocation{{Kind: db.RevokeKeyID, Value: "bob@laptop", Origin: db.OriginKRL}}, f.now)
		if err != nil {
			t.Fatal(err)
		}
	}, certPGS, auth.ReasonRevoked},
	{"remove the CA", certPGS, func(t *testing.T, f *trustFixture) {
		if err := f.other.RemoveKey(context.Background(), f.acct.ID, f.ca.ID); err != nil {
			t.Fatal(err)
		}
	}, certPGS, auth.ReasonUnknownCA},
	{"CA re-added with principals=", certPGS, func(t *testing.T, f *trustFixture) {
		ctx := context.Background()
		if err := f.other.RemoveKey(ctx, f.acct.ID, f.ca.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.other.AddKey(ctx, f.acct.ID, keyLine(t, `cert-authority,principals="tuns"`, f.caS.PublicKey()).NewKey("team-ca")); err != nil {
			t.Fatal(err)
		}
	}, certPGS, auth.ReasonDoesNotGrant},
	{"CA re-added with from=", certPGS, func(t *testing.T, f *trustFixture) {
		ctx := context.Background()
		if err := f.other.RemoveKey(ctx, f.acct.ID, f.ca.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.other.AddKey(ctx, f.acct.ID, keyLine(t, `cert-authority,from="10.0.0.0/8"`, f.caS.PublicKey()).NewKey("team-ca")); err != nil {
			t.Fatal(err)
		}
	}, certPGS, auth.ReasonSourceAddress},
	{"CA re-added with expiry-time=", certPGS, func(t *testing.T, f *trustFixture) {
		ctx := context.Background()
		if err := f.other.RemoveKey(ctx, f.acct.ID, f.ca.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.other.AddKey(ctx, f.acct.ID, keyLine(t, `cert-authority,expiry-time="20200101"`, f.caS.PublicKey()).NewKey("team-ca")); err != nil {
			t.Fatal(err)
		}
	}, certPGS, auth.ReasonExpired},
	{"mapping changed", certTuns, mapWith(db.NewPrincipalMapping{Principal: "web-team", Services: []string{"pipe"}}), certTuns, auth.ReasonDoesNotGrant},
	{"mapping given --from", certTuns, mapWith(db.NewPrincipalMapping{Principal: "web-team", Services: []string{"tuns"}, From: []string{"10.0.0.0/8"}}), certTuns, auth.ReasonSourceAddress},
	{"mapping given --ca of another CA", certTuns, mapWith(db.NewPrincipalMapping{Principal: "web-team", Services: []string{"tuns"}, CAFingerprint: "SHA256:" + strconv.Itoa(42)}), certTuns, auth.ReasonDoesNotGrant},
	{"mapping removed", certTuns, func(t *testing.T, f *trustFixture) {
		if err := f.other.RemovePrincipalMapping(context.Background(), f.acct.ID, "web-team"); err != nil {
			t.Fatal(err)
		}
	}, certTuns, auth.ReasonDoesNotGrant},
	{"principal mapped (gives more)", certPGS, mapWith(db.NewPrincipalMapping{Principal: "ops", Services: []string{"admin"}}), certAdmin, ""},
	{"revocation lifted (gives back)", certPGS, func(t *testing.T, f *trustFixture) {
		ctx := context.Background()
		r, err := f.other.AddRevocation(ctx, f.acct.ID, db.NewRevocation{Kind: db.RevokeSerial, Value: "9"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.try(certPGS); err == nil {
			t.Fatal("a revoked certificate was allowed")
		}
		if err := f.other.RemoveRevocation(ctx, f.acct.ID, r.ID); err != nil {
			t.Fatal(err)
		}
	}, certPGS, ""},
	{"remove a login key", keyAdmin, func(t *testing.T, f *trustFixture) {
		if err := f.other.RemoveKey(context.Background(), f.acct.ID, f.desktop.ID); err != nil {
			t.Fatal(err)
		}
	}, keyAdmin, auth.ReasonNotRegistered},
	{"login key re-added with from=", keyAdmin, func(t *testing.T, f *trustFixture) {
		ctx := context.Background()
		if err := f.other.RemoveKey(ctx, f.acct.ID, f.desktop.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.other.AddKey(ctx, f.acct.ID, keyLine(t, `from="10.0.0.0/8"`, f.desktopS.PublicKey()).NewKey("desktop")); err != nil {
			t.Fatal(err)
		}
	}, keyAdmin, auth.ReasonSourceAddress},
	{"delete the account (key)", keyAdmin, func(t *testing.T, f *trustFixture) {
		if err := f.other.DeleteAccount(context.Background(), f.acct.ID, f.now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}, keyAdmin, auth.ReasonNotRegistered},
	{"delete the account (certificate)", certPGS, func(t *testing.T, f *trustFixture) {
		if err := f.other.DeleteAccount(context.Background(), f.acct.ID, f.now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}, certPGS, auth.ReasonUnknownCA},
}

// TestTrustCacheSeesEveryChange: after a login was cached (the second identical login reads
// nothing but the access version), each kind of trust change made through another store is
// seen by the very next login, on SQLite and on Postgres with two gateways' stores on one
// database.
func TestTrustCacheSeesEveryChange(t *testing.T) {
	stores := []struct {
		name string
		open func(t *testing.T) (gw, other db.Store)
	}{
		{"sqlite", func(t *testing.T) (db.Store, db.Store) { s := dbtest.SQLite(t); return s, s }},
		{"postgres", func(t *testing.T) (db.Store, db.Store) {
			url := dbtest.PostgresURL(t)
			return openPostgres(t, url), openPostgres(t, url)
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			for _, tc := range trustChanges {
				t.Run(tc.name, func(t *testing.T) {
					gw, other := st.open(t)
					f := newTrustFixture(t, gw, other)
					for i := range 2 {
						if _, err := f.try(tc.before); err != nil {
							t.Fatalf("%s before the change: %v", tc.before.name, err)
						}
						if i == 0 {
							f.gateway.reads.Store(0)
						}
					}
					if n := f.gateway.reads.Load(); n != 0 {
						t.Fatalf("a cached %s read the store %d times besides the access version", tc.before.name, n)
					}
					tc.change(t, f)
					g, err := f.try(tc.after)
					if tc.want == "" {
						if err != nil || !g.Allows(tc.after.service) {
							t.Fatalf("%s after the change: %+v, %v; want it allowed", tc.after.name, g, err)
						}
						return
					}
					if r, ok := auth.AsRefusal(err); !ok || r.Reason != tc.want {
						t.Fatalf("%s after the change: %+v, %v; want refused (%s)", tc.after.name, g, err, tc.want)
					}
					// And again, now that the first login after the change read the store.
					if _, err := f.try(tc.after); err == nil {
						t.Fatalf("%s allowed on the second login after the change", tc.after.name)
					}
				})
			}
		})
	}
}

// openPostgres opens another store (another gateway's pool) on the test database url.
func openPostgres(t *testing.T, url string) db.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := db.Open(ctx, url, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestTrustCacheBound: however many certificates and keys log in, the cache holds at most its
// named number of entries and bytes, and what it dropped is read from the store again.
func TestTrustCacheBound(t *testing.T) {
	gw := dbtest.SQLite(t)
	f := newTrustFixture(t, gw, gw)
	const limit = 5
	f.a = auth.New(f.gateway, auth.Options{Now: func() time.Time { return f.now }, TrustCacheEntries: limit})
	certs := make([]*gossh.Certificate, 3*limit)
	for i := range certs {
		c := *f.cert
		c.Serial = uint64(100 + i)
		if err := c.SignCert(rand.Reader, f.caS); err != nil {
			t.Fatal(err)
		}
		certs[i] = &c
		if _, err := f.a.Authenticate(context.Background(), auth.Attempt{Key: &c, Service: auth.PGS, RemoteAddr: trustAddr}); err != nil {
			t.Fatal(err)
		}
		if n, _ := auth.TrustCacheLen(f.a); n > limit {
			t.Fatalf("after %d certificates the cache holds %d entries, more than %d", i+1, n, limit)
		}
	}
	if n, _ := auth.TrustCacheLen(f.a); n != limit {
		t.Fatalf("the cache holds %d entries, want %d", n, limit)
	}
	// The oldest went: it reads the store again; the newest did not.
	f.gateway.reads.Store(0)
	if _, err := f.a.Authenticate(context.Background(), auth.Attempt{Key: certs[len(certs)-1], Service: auth.PGS, RemoteAddr: trustAddr}); err != nil {
		t.Fatal(err)
	}
	if n := f.gateway.reads.Load(); n != 0 {
		t.Fatalf("the newest certificate read the store %d times", n)
	}
	if _, err := f.a.Authenticate(context.Background(), auth.Attempt{Key: certs[0], Service: auth.PGS, RemoteAddr: trustAddr}); err != nil {
		t.Fatal(err)
	}
	if n := f.gateway.reads.Load(); n == 0 {
		t.Fatal("the oldest certificate was still cached past the bound")
	}

	// A byte bound of about two entries.
	f.a = auth.New(f.gateway, auth.Options{Now: func() time.Time { return f.now }, TrustCacheBytes: 2 * 1024})
	for _, c := range certs {
		if _, err := f.a.Authenticate(context.Background(), auth.Attempt{Key: c, Service: auth.PGS, RemoteAddr: trustAddr}); err != nil {
			t.Fatal(err)
		}
		if n, b := auth.TrustCacheLen(f.a); b > 2*1024 || n > 3 {
			t.Fatalf("the cache holds %d entries of %d bytes, past its 2 KiB", n, b)
		}
	}
	if n, _ := auth.TrustCacheLen(f.a); n == 0 {
		t.Fatal("the cache holds nothing")
	}

	// Turned off, it holds nothing and every login reads the store.
	f.a = auth.New(f.gateway, auth.Options{Now: func() time.Time { return f.now }, TrustCacheEntries: -1})
	for range 2 {
		f.gateway.reads.Store(0)
		if _, err := f.a.Authenticate(context.Background(), auth.Attempt{Key: certs[0], Service: auth.PGS, RemoteAddr: trustAddr}); err != nil {
			t.Fatal(err)
		}
		if f.gateway.reads.Load() == 0 {
			t.Fatal("a login with the cache off read nothing")
		}
	}
}
