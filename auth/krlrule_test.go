package auth

import (
	"context"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/db"
)

// TestRevokedByKRL: rule 10, what an imported KRL revokes, besides rule 8's revocations.
func TestRevokedByKRL(t *testing.T) {
	type rev struct {
		kind   db.RevocationKind
		value  string // "KEY", "KEYSHA1", "CA", "CASHA1" stand for the fingerprints
		ca     string // "team", "rsa" or ""
		origin db.RevocationOrigin
	}
	cases := []struct {
		name     string
		revs     []rev
		serial   uint64
		revoked  bool
		messages []string
	}{
		{name: "serial range", revs: []rev{{db.RevokeSerialRange, "40-49", "team", db.OriginKRL}}, serial: 42, revoked: true,
			messages: []string{"revoked by a KRL imported into the account (by serial range 40-49)"}},
		{name: "serial range ends", revs: []rev{{db.RevokeSerialRange, "42-42", "team", db.OriginKRL}}, serial: 42, revoked: true},
		{name: "serial range of another CA", revs: []rev{{db.RevokeSerialRange, "40-49", "rsa", db.OriginKRL}}, serial: 42},
		{name: "outside the range", revs: []rev{{db.RevokeSerialRange, "43-49", "team", db.OriginKRL}}, serial: 42},
		{name: "KRL serial", revs: []rev{{db.RevokeSerial, "42", "team", db.OriginKRL}}, serial: 42, revoked: true, messages: []string{"by a KRL"}},
		{name: "KRL key ID of this CA", revs: []rev{{db.RevokeKeyID, "bob@laptop", "team", db.OriginKRL}}, serial: 42, revoked: true},
		{name: "KRL key ID of another CA", revs: []rev{{db.RevokeKeyID, "bob@laptop", "rsa", db.OriginKRL}}, serial: 42},
		{name: "key hash, SHA256", revs: []rev{{db.RevokeKeyHash, "KEY", "", db.OriginKRL}}, serial: 42, revoked: true},
		{name: "key hash, SHA1", revs: []rev{{db.RevokeKeyHash, "KEYSHA1", "", db.OriginKRL}}, serial: 42, revoked: true},
		{name: "the CA's key, as sshd's RevokedKeys", revs: []rev{{db.RevokeKey, "CA", "", db.OriginKRL}}, serial: 42, revoked: true},
		{name: "the CA's SHA1", revs: []rev{{db.RevokeKeyHash, "CASHA1", "", db.OriginKRL}}, serial: 42, revoked: true},
		{name: "revoke is told before a KRL", serial: 42, revoked: true,
			revs:     []rev{{db.RevokeSerialRange, "1-100", "team", db.OriginKRL}, {db.RevokeSerial, "42", "", db.OriginRevoke}},
			messages: []string{"(serial 42) is revoked (by serial 42)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			cert := e.cert(t, func(cert *gossh.Certificate) { cert.Serial = c.serial })
			values := map[string]string{
				"KEY": Fingerprint(cert.Key), "KEYSHA1": FingerprintSHA1(cert.Key),
				"CA": Fingerprint(e.ca.PublicKey()), "CASHA1": FingerprintSHA1(e.ca.PublicKey()),
			}
			cas := map[string]string{"team": e.caKey.Fingerprint, "rsa": e.rsaCAKey.Fingerprint}
			for _, r := range c.revs {
				v := r.value
				if f, ok := values[v]; ok {
					v = f
				}
				e.revoke(e.alice.ID, db.NewRevocation{Kind: r.kind, Value: v, CAFingerprint: cas[r.ca], Origin: r.origin})
			}
			a := New(e.store, Options{Now: func() time.Time { return testNow }})
			_, err := a.Authenticate(context.Background(), Attempt{Key: cert, Service: PGS, RemoteAddr: tcp("192.0.2.10:5000")})
			if !c.revoked {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			r := wantReason(t, err, ReasonRevoked)
			for _, m := range c.messages {
				if !strings.Contains(r.Message, m) {
					t.Errorf("message %q does not contain %q", r.Message, m)
				}
			}
		})
	}
}

func TestFingerprintSHA1(t *testing.T) {
	k, _, _, _, err := gossh.ParseAuthorizedKey([]byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINpkT49KY4QeAH8W6IBUiedpRIqR3IM7IcO3JTeUoiDg u2"))
	if err != nil {
		t.Fatal(err)
	}
	// ssh-keygen -l -E sha1 -f u2.pub
	if got, want := FingerprintSHA1(k), "SHA1:iITSj7ztqbi63NAYhpgagsK0Qqo"; got != want {
		t.Errorf("FingerprintSHA1 = %s, want %s", got, want)
	}
}
