package opstest

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/db/dbtest"
	"github.com/portico-sh/portico/services/admin/ops"
)

// Config is the server the tests pretend to be.
var Config = ops.Config{Domain: "example.org", SSHHost: "example.org", SSHPort: 2222, SignupsOpen: true}

// New returns operations on a fresh store (dbtest.Open: SQLite unless PORTICO_TEST_DB says
// postgres), and the store.
func New(t testing.TB) (*ops.Ops, db.Store) {
	t.Helper()
	store := dbtest.Open(t)
	return ops.New(store, Config), store
}

// Key returns the ed25519 public key made from seed n: the same n gives the same key.
func Key(t testing.TB, n byte) gossh.PublicKey {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = n
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub, err := gossh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatalf("public key: %v", err)
	}
	return pub
}

// Line is key as an authorized_keys line, with comment when it is not empty.
func Line(key gossh.PublicKey, comment string) string {
	line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(key)))
	if comment != "" {
		line += " " + comment
	}
	return line
}

// SignupGrant is what auth grants an unregistered key on the admin service.
func SignupGrant(key gossh.PublicKey) auth.Grant {
	return auth.Grant{
		Method:         auth.MethodSignup,
		Service:        auth.Admin,
		Services:       []auth.Service{auth.Admin},
		KeyFingerprint: auth.Fingerprint(key),
		Permits:        auth.Permits{PTY: true},
	}
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
