package opstest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/db/dbtest"
	"github.com/portico-sh/portico/services/admin/ops"
)

// Config is the server the tests pretend to be.
var Config = ops.Config{Domain: "example.org", SSHHost: "example.org", SSHPort: 2222, SignupsOpen: true}

// Addr is the client address of the connections the helpers pretend to have.
var Addr net.Addr = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 40000}

// New returns operations on a fresh store (dbtest.Open: SQLite unless PORTICO_TEST_DB says
// postgres), and the store.
func New(t testing.TB) (*ops.Ops, db.Store) {
	t.Helper()
	store := dbtest.Open(t)
	return ops.New(store, Config), store
}

// Signer returns the ed25519 signer made from seed n: the same n gives the same key.
func Signer(t testing.TB, n byte) gossh.Signer {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = n
	}
	s, err := gossh.NewSignerFromKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatalf("signer: %v", err)
	}
	return s
}

// Key returns the ed25519 public key made from seed n: the same n gives the same key.
func Key(t testing.TB, n byte) gossh.PublicKey {
	t.Helper()
	return Signer(t, n).PublicKey()
}

// Line is key as an authorized_keys line, with comment when it is not empty.
func Line(key gossh.PublicKey, comment string) string {
	line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(key)))
	if comment != "" {
		line += " " + comment
	}
	return line
}

// SignupGrant is what auth grants an unregistered key on the admin service with signups open.
func SignupGrant(key gossh.PublicKey) auth.Grant {
	return auth.Grant{
		Method:         auth.MethodSignup,
		Service:        auth.Admin,
		Services:       []auth.Service{auth.Admin},
		KeyFingerprint: auth.Fingerprint(key),
		Permits:        auth.Permits{PTY: true},
		RemoteAddr:     Addr,
		MayRegister:    true,
	}
}

// ClaimGrant is what auth grants a key that waits to be claimed, with signups closed.
func ClaimGrant(key gossh.PublicKey) auth.Grant {
	g := SignupGrant(key)
	g.Method, g.MayRegister, g.MayClaim = auth.MethodClaim, false, true
	return g
}

// Register creates account name with key as its first login key and returns the grant of a
// connection with that key.
func Register(t testing.TB, o *ops.Ops, name string, key gossh.PublicKey) auth.Grant {
	t.Helper()
	g, err := o.Register(context.Background(), SignupGrant(key), key, name)
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return g
}

// AddLoginKey adds line (the authorized_keys line of key, with options and a comment) to the
// account of g and claims it with key, as keys add and keys claim do, and returns the key.
func AddLoginKey(t testing.TB, o *ops.Ops, g auth.Grant, key gossh.PublicKey, line, name string) ops.Key {
	t.Helper()
	added, err := o.AddKey(context.Background(), g, line, name, false)
	if err != nil {
		t.Fatalf("keys add %q: %v", line, err)
	}
	_, k, err := o.ClaimKey(context.Background(), ClaimGrant(key), key, added.Claim.Code)
	if err != nil {
		t.Fatalf("keys claim %s: %v", added.Claim.Code, err)
	}
	return k
}

// AddCA adds line (the authorized_keys line of ca's public key, with options and a comment) to
// the account of g as a CA and activates it with a claim certificate signed by ca, as keys add
// --ca does twice, and returns the CA.
func AddCA(t testing.TB, o *ops.Ops, g auth.Grant, ca gossh.Signer, line, name string) ops.Key {
	t.Helper()
	added, err := o.AddKey(context.Background(), g, line, name, true)
	if err != nil {
		t.Fatalf("keys add --ca %q: %v", line, err)
	}
	k, err := o.AddKey(context.Background(), g, ClaimCertificate(t, ca, added.Claim.Code), "", true)
	if err != nil {
		t.Fatalf("keys add --ca (claim certificate for %s): %v", added.Claim.Code, err)
	}
	return k
}

// ClaimCertificate is the certificate line that `ssh-keygen -s CA -I portico-claim -n CODE -V
// +15m` writes for a fresh key.
func ClaimCertificate(t testing.TB, ca gossh.Signer, code string) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	holder, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	c := &gossh.Certificate{
		Key:             holder.PublicKey(),
		CertType:        gossh.UserCert,
		KeyId:           auth.ClaimKeyID,
		ValidPrincipals: []string{code},
		ValidAfter:      uint64(time.Now().Add(-time.Minute).Unix()),
		ValidBefore:     uint64(time.Now().Add(15 * time.Minute).Unix()),
	}
	if err := c.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(c)))
}
