package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"github.com/portico-sh/portico/internal/sshtest"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/db"
)

// env is one account, alice, with a login key and a CA; a second account, carol, with her
// own CA; and keys nobody registered.
type env struct {
	store     *fakeStore
	alice     db.Account
	carol     db.Account
	login     gossh.Signer // alice's login key "laptop"
	loginKey  db.Key
	ca        gossh.Signer // alice's CA "team-ca"
	caKey     db.Key
	carolCA   gossh.Signer
	carolKey  db.Key
	user      gossh.Signer // bob's key: certificates are issued for it, it is not registered
	stranger  gossh.Signer // registered nowhere
	rsaCA     gossh.Signer // alice's RSA CA "rsa-ca"
	rsaCAKey  db.Key
	rsaSigner *rsa.PrivateKey
}

var (
	sharedRSA    *rsa.PrivateKey
	sharedRSAErr error
)

func newEnv(t *testing.T) *env {
	t.Helper()
	if sharedRSA == nil && sharedRSAErr == nil {
		sharedRSA, sharedRSAErr = rsa.GenerateKey(rand.Reader, 2048)
	}
	if sharedRSAErr != nil {
		t.Fatal(sharedRSAErr)
	}
	rsaCA, err := gossh.NewSignerFromKey(sharedRSA)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: newFakeStore(), login: sshtest.NewSigner(t), ca: sshtest.NewSigner(t), carolCA: sshtest.NewSigner(t),
		user: sshtest.NewSigner(t), stranger: sshtest.NewSigner(t), rsaCA: rsaCA, rsaSigner: sharedRSA}
	e.alice = e.store.addAccount("alice")
	e.carol = e.store.addAccount("carol")
	e.loginKey = e.store.addKey(e.alice.ID, "laptop", db.KindLogin, e.login.PublicKey(), "")
	e.caKey = e.store.addKey(e.alice.ID, "team-ca", db.KindCA, e.ca.PublicKey(), "cert-authority")
	e.rsaCAKey = e.store.addKey(e.alice.ID, "rsa-ca", db.KindCA, e.rsaCA.PublicKey(), "cert-authority")
	e.carolKey = e.store.addKey(e.carol.ID, "carol-ca", db.KindCA, e.carolCA.PublicKey(), "cert-authority")
	return e
}

func (e *env) setOptions(k db.Key, options string) {
	k.Options = options
	e.store.keys[k.Fingerprint] = k
}

func (e *env) revoke(accountID int64, r db.NewRevocation) {
	e.store.revs = append(e.store.revs, db.Revocation{ID: int64(len(e.store.revs) + 1), AccountID: accountID, NewRevocation: r})
}

// cert is a certificate for bob's key from alice's CA.
func (e *env) cert(t *testing.T, edit func(*gossh.Certificate)) *gossh.Certificate {
	return userCert(t, e.user.PublicKey(), e.ca, edit)
}

func TestAuthenticate(t *testing.T) {
	type tc struct {
		name     string
		setup    func(e *env)
		key      func(t *testing.T, e *env) gossh.PublicKey
		service  Service  // default pgs
		remote   net.Addr // default 192.0.2.10:5000
		signups  bool     // signups open
		reason   Reason   // "" when a grant is expected
		messages []string // substrings of the refusal message
		check    func(*testing.T, *env, Grant)
		refusal  func(*testing.T, *env, *Refusal)
	}
	withCert := func(edit func(*gossh.Certificate)) func(*testing.T, *env) gossh.PublicKey {
		return func(t *testing.T, e *env) gossh.PublicKey { return e.cert(t, edit) }
	}
	loginKey := func(_ *testing.T, e *env) gossh.PublicKey { return e.login.PublicKey() }
	stranger := func(_ *testing.T, e *env) gossh.PublicKey { return e.stranger.PublicKey() }
	noAccount := func(t *testing.T, e *env, r *Refusal) {
		if r.AccountID != 0 || r.Account != "" {
			t.Errorf("refusal names account %d %q; an unproven signer must not be attributed", r.AccountID, r.Account)
		}
		if strings.Contains(r.Message, "alice") || strings.Contains(r.Message, "carol") {
			t.Errorf("message %q names an account", r.Message)
		}
	}
	aliceRefusal := func(t *testing.T, e *env, r *Refusal) {
		if r.AccountID != e.alice.ID || r.Account != "alice" {
			t.Errorf("refusal account = %d %q, want alice", r.AccountID, r.Account)
		}
	}
	certRefusal := func(t *testing.T, e *env, r *Refusal) {
		aliceRefusal(t, e, r)
		if r.Identity != "bob@laptop" || r.Cert == nil || r.Cert.Serial != 42 || r.Cert.CAName != "team-ca" ||
			r.Cert.CAFingerprint != e.caKey.Fingerprint {
			t.Errorf("refusal identity %q, cert facts %+v: want bob@laptop, serial 42 from team-ca", r.Identity, r.Cert)
		}
	}
	grants := func(want ...Service) func(*testing.T, *env, Grant) {
		return func(t *testing.T, _ *env, g Grant) {
			if !slices.Equal(g.Services, want) {
				t.Errorf("grant services = %v, want %v", g.Services, want)
			}
		}
	}

	cases := []tc{
		// Login keys.
		{
			name: "login key grants every service", key: loginKey, service: Admin,
			check: func(t *testing.T, e *env, g Grant) {
				want := Grant{AccountID: e.alice.ID, Account: "alice", Method: MethodKey, Identity: "laptop",
					Service: Admin, Services: Services, KeyFingerprint: e.loginKey.Fingerprint,
					Permits: Permits{PTY: true, PortForwarding: true}, KeyID: e.loginKey.ID}
				if !grantsEqual(g, want) {
					t.Errorf("grant = %+v\nwant %+v", g, want)
				}
				if !g.IsAdmin() || g.IsSignup() {
					t.Error("a login key grant must be admin and not signup")
				}
			},
		},
		{name: "login key for pipe", key: loginKey, service: Pipe, check: grants(Services...)},
		{
			name: "login key from= matches", key: loginKey,
			setup: func(e *env) { e.setOptions(e.loginKey, `from="192.0.2.0/24,!192.0.2.99"`) },
			check: grants(Services...),
		},
		{
			name: "login key from= mismatch", key: loginKey, remote: tcp("198.51.100.7:22"),
			setup:  func(e *env) { e.setOptions(e.loginKey, `from="192.0.2.0/24"`) },
			reason: ReasonSourceAddress, messages: []string{`key "laptop"`, "198.51.100.7"}, refusal: aliceRefusal,
		},
		{
			name: "login key expiry-time passed", key: loginKey,
			setup:  func(e *env) { e.setOptions(e.loginKey, `expiry-time="20260501"`) },
			reason: ReasonExpired, messages: []string{`key "laptop" expired at 2026-05-01T00:00:00Z`},
		},
		{
			name: "login key expiry-time ahead", key: loginKey,
			setup: func(e *env) { e.setOptions(e.loginKey, `expiry-time="20260601120001"`) },
			check: grants(Services...),
		},
		{
			name: "login key asks for a service that does not exist", key: loginKey, service: "nope",
			reason: ReasonDoesNotGrant, messages: []string{"does not grant nope"},
		},
		{
			name: "CA key used as a plain key", key: func(_ *testing.T, e *env) gossh.PublicKey { return e.ca.PublicKey() },
			reason: ReasonNotRegistered, messages: []string{"not registered as a login key", "certificate authority"},
			refusal: aliceRefusal,
		},

		// Unregistered keys.
		{
			name: "signup open: unregistered key may sign up on admin", key: stranger, service: Admin, signups: true,
			check: func(t *testing.T, e *env, g Grant) {
				want := Grant{Method: MethodSignup, Service: Admin, Services: []Service{Admin},
					KeyFingerprint: Fingerprint(e.stranger.PublicKey()), Permits: Permits{PTY: true}, MayRegister: true}
				if !grantsEqual(g, want) {
					t.Errorf("grant = %+v\nwant %+v", g, want)
				}
				if !g.IsSignup() || g.IsAdmin() {
					t.Error("a signup grant must be signup and not admin")
				}
			},
		},
		{
			name: "signup open: unregistered key refused for pgs", key: stranger, signups: true,
			reason: ReasonNotRegistered, messages: []string{"sign up first"}, refusal: noAccount,
		},
		{
			name: "signups closed", key: stranger, service: Admin,
			reason: ReasonNotRegistered, messages: []string{"signups are closed"}, refusal: noAccount,
		},

		// Pending login keys: a claim grant on admin, whatever the signups setting.
		{
			name: "pending key, signups closed: claim grant", key: stranger, service: Admin,
			setup: func(e *env) { e.store.pending[Fingerprint(e.stranger.PublicKey())] = testNow.Add(time.Minute) },
			check: func(t *testing.T, e *env, g Grant) {
				want := Grant{Method: MethodClaim, Service: Admin, Services: []Service{Admin},
					KeyFingerprint: Fingerprint(e.stranger.PublicKey()), Permits: Permits{PTY: true}, MayClaim: true}
				if !grantsEqual(g, want) {
					t.Errorf("grant = %+v\nwant %+v", g, want)
				}
				if !g.IsSignup() || g.IsAdmin() || g.AccountID != 0 || g.Account != "" {
					t.Error("a claim grant must have no account and not be admin")
				}
			},
		},
		{
			name: "pending key, signups open: claim grant that may also sign up", key: stranger, service: Admin, signups: true,
			setup: func(e *env) { e.store.pending[Fingerprint(e.stranger.PublicKey())] = testNow.Add(time.Minute) },
			check: func(t *testing.T, e *env, g Grant) {
				if g.Method != MethodClaim || !g.MayClaim || !g.MayRegister || g.IsAdmin() {
					t.Errorf("grant = %+v, want a claim grant that may register", g)
				}
			},
		},
		{
			name: "pending key on another service", key: stranger, service: Pipe, signups: true,
			setup:  func(e *env) { e.store.pending[Fingerprint(e.stranger.PublicKey())] = testNow.Add(time.Minute) },
			reason: ReasonNotRegistered, messages: []string{"waits to be claimed", "keys claim"}, refusal: noAccount,
		},
		{
			name: "pending key expired, signups closed", key: stranger, service: Admin,
			setup:  func(e *env) { e.store.pending[Fingerprint(e.stranger.PublicKey())] = testNow },
			reason: ReasonNotRegistered, messages: []string{"signups are closed"}, refusal: noAccount,
		},
		{
			name: "pending key expired, signups open: a plain signup grant", key: stranger, service: Admin, signups: true,
			setup: func(e *env) { e.store.pending[Fingerprint(e.stranger.PublicKey())] = testNow.Add(-time.Second) },
			check: func(t *testing.T, e *env, g Grant) {
				if g.Method != MethodSignup || g.MayClaim || !g.MayRegister {
					t.Errorf("grant = %+v, want a signup grant", g)
				}
			},
		},

		// Certificates: accepted.
		{
			name: "certificate grants its principals", key: withCert(nil),
			check: func(t *testing.T, e *env, g Grant) {
				vb := testNow.Add(time.Hour)
				want := Grant{AccountID: e.alice.ID, Account: "alice", Method: MethodCert, Identity: "bob@laptop",
					Service: PGS, Services: []Service{PGS, Tuns}, KeyFingerprint: Fingerprint(e.user.PublicKey()),
					Cert: &CertFacts{KeyID: "bob@laptop", Serial: 42, CAName: "team-ca", CAFingerprint: e.caKey.Fingerprint,
						Principals: []string{"pgs", "tuns"}, ValidBefore: &vb},
					Permits: Permits{PTY: true}, KeyID: e.caKey.ID}
				if !grantsEqual(g, want) {
					t.Errorf("grant = %+v\ncert %+v\nwant %+v\ncert %+v", g, g.Cert, want, want.Cert)
				}
				if g.IsAdmin() {
					t.Error("a pgs,tuns certificate must not be admin")
				}
			},
		},
		{
			name: "admin principal grants every service", service: Admin,
			key:   withCert(func(c *gossh.Certificate) { c.ValidPrincipals = []string{"admin"} }),
			check: grants(Services...),
		},
		{
			name:  "unknown principals are ignored",
			key:   withCert(func(c *gossh.Certificate) { c.ValidPrincipals = []string{"root", "pgs", "deploy"} }),
			check: grants(PGS),
		},
		{
			name: "certificate that never expires",
			key: withCert(func(c *gossh.Certificate) {
				c.ValidAfter, c.ValidBefore = 0, gossh.CertTimeInfinity
			}),
			check: func(t *testing.T, _ *env, g Grant) {
				if g.Cert.ValidBefore != nil {
					t.Errorf("ValidBefore = %v, want nil for a certificate that never expires", g.Cert.ValidBefore)
				}
			},
		},
		{
			name: "RSA CA signing with rsa-sha2-512",
			key: func(t *testing.T, e *env) gossh.PublicKey {
				return userCert(t, e.user.PublicKey(), e.rsaCA, nil)
			},
			check: func(t *testing.T, e *env, g Grant) {
				if g.Cert.CAName != "rsa-ca" || g.KeyID != e.rsaCAKey.ID {
					t.Errorf("grant from CA %q (key %d), want rsa-ca", g.Cert.CAName, g.KeyID)
				}
			},
		},
		{
			name: "force-command",
			key: withCert(func(c *gossh.Certificate) {
				c.CriticalOptions = map[string]string{"force-command": "pgs deploy --site docs"}
			}),
			check: func(t *testing.T, _ *env, g Grant) {
				if cmd, ok := g.ForcedCommand(); !ok || cmd != "pgs deploy --site docs" {
					t.Errorf("ForcedCommand() = %q, %v", cmd, ok)
				}
			},
		},
		{
			// SPEC: a blank force-command runs nothing the client asked for. It is accepted and
			// present, never read as no force-command at all.
			name: "empty force-command is present",
			key: withCert(func(c *gossh.Certificate) {
				c.CriticalOptions = map[string]string{"force-command": ""}
			}),
			check: func(t *testing.T, _ *env, g Grant) {
				if cmd, ok := g.ForcedCommand(); !ok || cmd != "" || !g.Forced {
					t.Errorf("ForcedCommand() = %q, %v (Forced %v), want an empty command that is present", cmd, ok, g.Forced)
				}
			},
		},
		{
			name: "no force-command",
			key:  withCert(func(c *gossh.Certificate) {}),
			check: func(t *testing.T, _ *env, g Grant) {
				if cmd, ok := g.ForcedCommand(); ok || g.Forced {
					t.Errorf("ForcedCommand() = %q, %v, want none", cmd, ok)
				}
			},
		},
		{
			name: "permits come from extensions",
			key: withCert(func(c *gossh.Certificate) {
				c.Extensions = map[string]string{"permit-port-forwarding": "", "permit-agent-forwarding": ""}
			}),
			check: func(t *testing.T, _ *env, g Grant) {
				if g.Permits != (Permits{PortForwarding: true}) {
					t.Errorf("Permits = %+v, want port forwarding only", g.Permits)
				}
			},
		},
		{
			name: "no extensions: no permits",
			key:  withCert(func(c *gossh.Certificate) { c.Extensions = nil }),
			check: func(t *testing.T, _ *env, g Grant) {
				if g.Permits != (Permits{}) {
					t.Errorf("Permits = %+v, want none", g.Permits)
				}
			},
		},

		// Certificates: refused, in the order of SPEC §2.2.
		{
			name:   "host certificate",
			key:    withCert(func(c *gossh.Certificate) { c.CertType = gossh.HostCert }),
			reason: ReasonHostCert, messages: []string{`certificate "bob@laptop" is a host certificate`},
			refusal: noAccount,
		},
		{
			name: "signed by an unregistered key",
			key: func(t *testing.T, e *env) gossh.PublicKey {
				return userCert(t, e.user.PublicKey(), e.stranger, nil)
			},
			reason: ReasonUnknownCA, refusal: noAccount,
		},
		{
			name: "signed by a registered login key",
			key: func(t *testing.T, e *env) gossh.PublicKey {
				return userCert(t, e.user.PublicKey(), e.login, nil)
			},
			reason: ReasonUnknownCA, refusal: noAccount,
		},
		{
			name:  "removed CA",
			setup: func(e *env) { delete(e.store.keys, e.caKey.Fingerprint) },
			key:   withCert(nil), reason: ReasonUnknownCA, refusal: noAccount,
		},
		{
			name: "garbage signature from a registered CA",
			key: func(t *testing.T, e *env) gossh.PublicKey {
				c := e.cert(t, nil)
				blob := make([]byte, len(c.Signature.Blob))
				if _, err := rand.Read(blob); err != nil {
					t.Fatal(err)
				}
				c.Signature.Blob = blob
				return reparse(t, c)
			},
			reason: ReasonSignature, messages: []string{"bad signature", "not signed by certificate authority"},
			refusal: noAccount,
		},
		{
			name: "signed by another key but naming a registered CA",
			key: func(t *testing.T, e *env) gossh.PublicKey {
				c := userCert(t, e.user.PublicKey(), e.stranger, nil)
				c.SignatureKey = e.ca.PublicKey()
				return reparse(t, c)
			},
			reason: ReasonSignature, refusal: noAccount,
		},
		{
			name: "certificate changed after signing",
			key: func(t *testing.T, e *env) gossh.PublicKey {
				c := e.cert(t, nil)
				c.ValidPrincipals = []string{"admin"}
				return reparse(t, c)
			},
			service: Admin, reason: ReasonSignature,
		},
		{
			name: "RSA CA signing with ssh-rsa (SHA-1)",
			key: func(t *testing.T, e *env) gossh.PublicKey {
				sha1, err := gossh.NewSignerWithAlgorithms(e.rsaCA.(gossh.AlgorithmSigner), []string{gossh.KeyAlgoRSA})
				if err != nil {
					t.Fatal(err)
				}
				return userCert(t, e.user.PublicKey(), sha1, nil)
			},
			reason: ReasonSignature, messages: []string{"ssh-rsa (SHA-1)", "rsa-sha2-512"},
		},
		{
			name: "expired",
			key: withCert(func(c *gossh.Certificate) {
				c.ValidAfter, c.ValidBefore = uint64(testNow.Add(-48*time.Hour).Unix()), uint64(testNow.Unix())
			}),
			reason: ReasonExpired, messages: []string{`certificate "bob@laptop" expired at 2026-06-01T12:00:00Z`},
			refusal: certRefusal,
		},
		{
			name:   "not yet valid",
			key:    withCert(func(c *gossh.Certificate) { c.ValidAfter = uint64(testNow.Add(time.Second).Unix()) }),
			reason: ReasonNotYetValid, messages: []string{"valid from 2026-06-01T12:00:01Z"}, refusal: certRefusal,
		},
		{
			name:   "not valid before the far future",
			key:    withCert(func(c *gossh.Certificate) { c.ValidAfter = 1<<64 - 2 }),
			reason: ReasonNotYetValid,
		},
		{
			name:   "no principals",
			key:    withCert(func(c *gossh.Certificate) { c.ValidPrincipals = nil }),
			reason: ReasonNoPrincipals, refusal: certRefusal,
		},
		{
			name:   "only unknown principals",
			key:    withCert(func(c *gossh.Certificate) { c.ValidPrincipals = []string{"root", "git"} }),
			reason: ReasonDoesNotGrant, messages: []string{"root, git"}, refusal: certRefusal,
		},
		{
			name: "unknown critical option",
			key: withCert(func(c *gossh.Certificate) {
				c.CriticalOptions = map[string]string{"verify-required": ""}
			}),
			reason: ReasonCriticalOption, messages: []string{`"verify-required"`}, refusal: certRefusal,
		},
		{
			name: "malformed source-address: bad CIDR",
			key: withCert(func(c *gossh.Certificate) {
				c.CriticalOptions = map[string]string{"source-address": "192.0.2.0/33"}
			}),
			reason: ReasonCriticalOption, messages: []string{"source-address", "192.0.2.0/33"},
		},
		{
			name: "malformed source-address: host name",
			key: withCert(func(c *gossh.Certificate) {
				c.CriticalOptions = map[string]string{"source-address": "192.0.2.10,example.com"}
			}),
			reason: ReasonCriticalOption, messages: []string{"example.com"},
		},
		{
			// OpenSSH refuses it ("inconsistent mask length"); ssh-keygen will not sign it.
			name: "malformed source-address: host bits set",
			key: withCert(func(c *gossh.Certificate) {
				c.CriticalOptions = map[string]string{"source-address": "192.0.2.10/24"}
			}),
			reason: ReasonCriticalOption, messages: []string{"host bits set"},
		},
		{
			name: "malformed source-address: empty",
			key: withCert(func(c *gossh.Certificate) {
				c.CriticalOptions = map[string]string{"source-address": ""}
			}),
			reason: ReasonCriticalOption,
		},
		{
			name: "source-address matches IPv4",
			key: withCert(func(c *gossh.Certificate) {
				c.CriticalOptions = map[string]string{"source-address": "10.0.0.0/8,192.0.2.10"}
			}),
			check: grants(PGS, Tuns),
		},
		{
			name: "source-address matches IPv4-mapped client address", remote: tcp("[::ffff:192.0.2.10]:5000"),
			key: withCert(func(c *gossh.Certificate) {
				c.CriticalOptions = map[string]string{"source-address": "192.0.2.0/24"}
			}),
			check: grants(PGS, Tuns),
		},
		{
			name: "source-address matches IPv6", remote: tcp("[2001:db8::5]:22"),
			key: withCert(func(c *gossh.Certificate) {
				c.CriticalOptions = map[string]string{"source-address": "192.0.2.0/24,2001:db8::/32"}
			}),
			check: grants(PGS, Tuns),
		},
		{
			name: "source-address mismatch IPv4", remote: tcp("198.51.100.7:22"),
			key: withCert(func(c *gossh.Certificate) {
				c.CriticalOptions = map[string]string{"source-address": "192.0.2.0/24"}
			}),
			reason: ReasonSourceAddress, messages: []string{"198.51.100.7", "192.0.2.0/24"}, refusal: certRefusal,
		},
		{
			name: "source-address mismatch IPv6", remote: tcp("[2001:db9::5]:22"),
			key: withCert(func(c *gossh.Certificate) {
				c.CriticalOptions = map[string]string{"source-address": "2001:db8::/32"}
			}),
			reason: ReasonSourceAddress,
		},
		{
			name: "source-address with no client address", remote: pipeAddr{},
			key: withCert(func(c *gossh.Certificate) {
				c.CriticalOptions = map[string]string{"source-address": "0.0.0.0/0"}
			}),
			reason: ReasonSourceAddress,
		},
		{
			name:   "revoked by serial for every CA",
			setup:  func(e *env) { e.revoke(e.alice.ID, db.NewRevocation{Kind: db.RevokeSerial, Value: "42"}) },
			key:    withCert(nil),
			reason: ReasonRevoked, messages: []string{"serial 42"}, refusal: certRefusal,
		},
		{
			name: "revoked by serial for this CA",
			setup: func(e *env) {
				e.revoke(e.alice.ID, db.NewRevocation{Kind: db.RevokeSerial, Value: "42", CAFingerprint: e.caKey.Fingerprint})
			},
			key: withCert(nil), reason: ReasonRevoked,
		},
		{
			name: "serial revoked for another CA only",
			setup: func(e *env) {
				e.revoke(e.alice.ID, db.NewRevocation{Kind: db.RevokeSerial, Value: "42", CAFingerprint: e.rsaCAKey.Fingerprint})
			},
			key: withCert(nil), check: grants(PGS, Tuns),
		},
		{
			name:  "serial revoked by another account",
			setup: func(e *env) { e.revoke(e.carol.ID, db.NewRevocation{Kind: db.RevokeSerial, Value: "42"}) },
			key:   withCert(nil), check: grants(PGS, Tuns),
		},
		{
			name: "revoked by raw key ID",
			setup: func(e *env) {
				e.revoke(e.alice.ID, db.NewRevocation{Kind: db.RevokeKeyID, Value: "bob\x1b[31m@laptop"})
			},
			key:    withCert(func(c *gossh.Certificate) { c.KeyId = "bob\x1b[31m@laptop" }),
			reason: ReasonRevoked, messages: []string{`"bob?[31m@laptop"`, "by key ID"},
		},
		{
			name: "revoked by key",
			setup: func(e *env) {
				e.revoke(e.alice.ID, db.NewRevocation{Kind: db.RevokeKey, Value: Fingerprint(e.user.PublicKey())})
			},
			key: withCert(nil), reason: ReasonRevoked,
		},
		{
			name:   "CA from= mismatch",
			setup:  func(e *env) { e.setOptions(e.caKey, `cert-authority,from="10.*"`) },
			key:    withCert(nil),
			reason: ReasonSourceAddress, messages: []string{`certificate authority "team-ca"`, "192.0.2.10"}, refusal: certRefusal,
		},
		{
			name:   "CA from= negated match",
			setup:  func(e *env) { e.setOptions(e.caKey, `cert-authority,from="192.0.2.*,!192.0.2.10"`) },
			key:    withCert(nil),
			reason: ReasonSourceAddress,
		},
		{
			name: "CA from= match", remote: tcp("192.0.2.11:5000"),
			setup: func(e *env) { e.setOptions(e.caKey, `cert-authority,from="192.0.2.*,!192.0.2.10"`) },
			key:   withCert(nil), check: grants(PGS, Tuns),
		},
		{
			name:   "CA expiry-time passed",
			setup:  func(e *env) { e.setOptions(e.caKey, `cert-authority,expiry-time="202606011200"`) },
			key:    withCert(nil),
			reason: ReasonExpired, messages: []string{`certificate authority "team-ca" expired at 2026-06-01T12:00:00Z`},
		},
		{
			name:  "CA expiry-time ahead",
			setup: func(e *env) { e.setOptions(e.caKey, `cert-authority,expiry-time="20270101"`) },
			key:   withCert(nil), check: grants(PGS, Tuns),
		},
		{
			name:  "CA principals= limits the grant",
			setup: func(e *env) { e.setOptions(e.caKey, `cert-authority,principals="pgs,pipe"`) },
			key:   withCert(nil), check: grants(PGS),
		},
		{
			name:   "CA principals= names principals exactly, as sshd: admin is not listed",
			setup:  func(e *env) { e.setOptions(e.caKey, `cert-authority,principals="pgs,pipe"`) },
			key:    withCert(func(c *gossh.Certificate) { c.ValidPrincipals = []string{"admin"} }),
			reason: ReasonDoesNotGrant, messages: []string{"the authority is limited to pgs, pipe"},
		},
		{
			name:  "CA principals= admin",
			setup: func(e *env) { e.setOptions(e.caKey, `cert-authority,principals="admin"`) },
			key:   withCert(func(c *gossh.Certificate) { c.ValidPrincipals = []string{"admin", "pgs"} }),
			check: grants(Admin, PGS, Tuns, Pipe),
		},
		{
			name: "CA principals= refuses a service it does not list", service: Tuns,
			setup:  func(e *env) { e.setOptions(e.caKey, `cert-authority,principals="pgs"`) },
			key:    withCert(nil),
			reason: ReasonDoesNotGrant, messages: []string{`certificate "bob@laptop" does not grant tuns (it grants pgs)`},
		},
		{
			name:   "CA principals= and certificate principals do not meet",
			setup:  func(e *env) { e.setOptions(e.caKey, `cert-authority,principals="pipe"`) },
			key:    withCert(nil),
			reason: ReasonDoesNotGrant, messages: []string{"limited to pipe"},
		},
		{
			name: "certificate does not grant the service asked for", service: Admin,
			key:    withCert(nil),
			reason: ReasonDoesNotGrant, messages: []string{`certificate "bob@laptop" does not grant admin (it grants pgs, tuns)`},
			refusal: certRefusal,
		},
		{
			name: "another account's CA and revocations stay theirs",
			key: func(t *testing.T, e *env) gossh.PublicKey {
				return userCert(t, e.user.PublicKey(), e.carolCA, nil)
			},
			setup: func(e *env) { e.revoke(e.alice.ID, db.NewRevocation{Kind: db.RevokeSerial, Value: "42"}) },
			check: func(t *testing.T, e *env, g Grant) {
				if g.Account != "carol" || g.Cert.CAName != "carol-ca" {
					t.Errorf("grant for %q by %q, want carol by carol-ca", g.Account, g.Cert.CAName)
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			if c.setup != nil {
				c.setup(e)
			}
			at := Attempt{Key: c.key(t, e), Service: c.service, RemoteAddr: c.remote}
			if at.Service == "" {
				at.Service = PGS
			}
			if at.RemoteAddr == nil {
				at.RemoteAddr = tcp("192.0.2.10:5000")
			}
			a := New(e.store, Options{SignupsOpen: c.signups, Now: func() time.Time { return testNow }})
			g, err := a.Authenticate(context.Background(), at)
			if c.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if g.Service != at.Service {
					t.Errorf("grant service = %q, want %q", g.Service, at.Service)
				}
				if !g.Allows(at.Service) {
					t.Errorf("grant %v does not include the service asked for", g.Services)
				}
				if g.RemoteAddr != at.RemoteAddr {
					t.Errorf("grant remote address = %v, want %v", g.RemoteAddr, at.RemoteAddr)
				}
				if c.check != nil {
					c.check(t, e, g)
				}
				return
			}
			r := wantReason(t, err, c.reason)
			if !strings.Contains(r.Message, string(c.reason)) {
				t.Errorf("message %q does not contain the reason %q", r.Message, c.reason)
			}
			for _, m := range c.messages {
				if !strings.Contains(r.Message, m) {
					t.Errorf("message %q does not contain %q", r.Message, m)
				}
			}
			if c.refusal != nil {
				c.refusal(t, e, r)
			}
		})
	}
}

// grantsEqual compares grants, and the certificate facts they point to.
func grantsEqual(a, b Grant) bool {
	if (a.Cert == nil) != (b.Cert == nil) {
		return false
	}
	if a.Cert != nil {
		ca, cb := *a.Cert, *b.Cert
		if !slices.Equal(ca.Principals, cb.Principals) || (ca.ValidBefore == nil) != (cb.ValidBefore == nil) ||
			ca.ValidBefore != nil && !ca.ValidBefore.Equal(*cb.ValidBefore) {
			return false
		}
		if ca.KeyID != cb.KeyID || ca.Serial != cb.Serial || ca.CAName != cb.CAName || ca.CAFingerprint != cb.CAFingerprint {
			return false
		}
	}
	if !slices.Equal(a.Services, b.Services) {
		return false
	}
	a.Cert, b.Cert, a.Services, b.Services = nil, nil, nil, nil
	return a.AccountID == b.AccountID && a.Account == b.Account && a.Method == b.Method &&
		a.Identity == b.Identity && a.Service == b.Service && a.KeyFingerprint == b.KeyFingerprint &&
		a.Permits == b.Permits && a.ForceCommand == b.ForceCommand && a.Forced == b.Forced && a.KeyID == b.KeyID &&
		a.MayRegister == b.MayRegister && a.MayClaim == b.MayClaim
}

// pipeAddr is a net.Addr with no IP, like net.Pipe's.
type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

func TestAuthenticateStoreErrors(t *testing.T) {
	e := newEnv(t)
	a := New(e.store, Options{SignupsOpen: true, Now: func() time.Time { return testNow }})
	e.store.err = errBoom
	for name, key := range map[string]gossh.PublicKey{
		"login key":   e.login.PublicKey(),
		"certificate": e.cert(t, nil),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := a.Authenticate(context.Background(), Attempt{Key: key, Service: PGS, RemoteAddr: tcp("192.0.2.10:1")})
			if !errors.Is(err, errBoom) {
				t.Fatalf("err = %v, want the store error", err)
			}
			if _, ok := AsRefusal(err); ok {
				t.Fatal("a store error must not be a refusal: nothing was decided")
			}
		})
	}
}

// TestAuthenticateRevocationStoreError checks that a failing revocation lookup does not
// let a certificate in.
func TestAuthenticateRevocationStoreError(t *testing.T) {
	e := newEnv(t)
	s := &failingRevocations{fakeStore: e.store}
	a := New(s, Options{Now: func() time.Time { return testNow }})
	_, err := a.Authenticate(context.Background(), Attempt{Key: e.cert(t, nil), Service: PGS, RemoteAddr: tcp("192.0.2.10:1")})
	if !errors.Is(err, errBoom) {
		t.Fatalf("err = %v, want the store error", err)
	}
}

type failingRevocations struct{ *fakeStore }

func (failingRevocations) FindRevocation(context.Context, int64, db.CertRef) (db.Revocation, error) {
	return db.Revocation{}, errBoom
}

// TestAuthenticateIsPure checks that a decision depends on nothing but its attempt: a refused
// certificate does not change what the next attempt with a login key gets, and vice versa.
func TestAuthenticateIsPure(t *testing.T) {
	e := newEnv(t)
	a := New(e.store, Options{Now: func() time.Time { return testNow }})
	ctx := context.Background()
	addr := tcp("192.0.2.10:1")
	for range 2 {
		if _, err := a.Authenticate(ctx, Attempt{Key: e.cert(t, nil), Service: Admin, RemoteAddr: addr}); err == nil {
			t.Fatal("pgs,tuns certificate accepted for admin")
		}
		g, err := a.Authenticate(ctx, Attempt{Key: e.login.PublicKey(), Service: Admin, RemoteAddr: addr})
		if err != nil || g.Method != MethodKey {
			t.Fatalf("login key after a refused certificate: %+v, %v", g, err)
		}
	}
}

// TestDuplicateCriticalOption builds a certificate whose critical options list
// source-address twice, correctly signed by a registered CA, so that the duplicate is its only
// fault. x/crypto/ssh refuses it while parsing (options must be in strictly increasing order),
// so the server refuses the connection before authentication is asked; if a later x/crypto
// merged duplicates instead, this test fails and Authenticate must learn to see them.
func TestDuplicateCriticalOption(t *testing.T) {
	e := newEnv(t)
	opt := slices.Concat(sshString([]byte("source-address")), sshString(sshString([]byte("192.0.2.0/24"))))
	build := func(options []byte) []byte {
		c := &gossh.Certificate{
			Nonce: []byte("nonce"), Key: e.user.PublicKey(), Serial: 7, CertType: gossh.UserCert, KeyId: "dup",
			ValidPrincipals: []string{"pgs"}, ValidAfter: 0, ValidBefore: gossh.CertTimeInfinity,
			Permissions:  gossh.Permissions{CriticalOptions: map[string]string{"source-address": "192.0.2.0/24"}},
			SignatureKey: e.ca.PublicKey(),
		}
		unsigned := c.Marshal() // no signature: ends with an empty signature string
		unsigned = unsigned[:len(unsigned)-4]
		field := sshString(opt)
		i := strings.Index(string(unsigned), string(field))
		if i < 0 {
			t.Fatal("critical options not found in the marshalled certificate")
		}
		signed := slices.Concat(unsigned[:i], sshString(options), unsigned[i+len(field):])
		sig, err := e.ca.Sign(rand.Reader, signed)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Concat(signed, sshString(gossh.Marshal(sig)))
	}

	// Control: the same construction with the option once is a good certificate.
	k, err := gossh.ParsePublicKey(build(opt))
	if err != nil {
		t.Fatalf("control certificate does not parse: %v", err)
	}
	a := New(e.store, Options{Now: func() time.Time { return testNow }})
	if _, err := a.Authenticate(context.Background(), Attempt{Key: k, Service: PGS, RemoteAddr: tcp("192.0.2.10:1")}); err != nil {
		t.Fatalf("control certificate refused: %v", err)
	}

	if k, err := gossh.ParsePublicKey(build(slices.Concat(opt, opt))); err == nil {
		t.Fatalf("certificate with a duplicate critical option parsed (options %v)", k.(*gossh.Certificate).CriticalOptions)
	}
}

func sshString(b []byte) []byte {
	n := len(b)
	return append([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, b...)
}

// TestForgedCertificateRevealsNothing: a certificate whose signature does not verify is
// refused the same way whatever key it names as its signer (a CA of alice, a CA of another
// account, a login key, a key nobody registered), so that forging certificates cannot tell a
// stranger which public keys are registered as CAs. Nothing is attributed to an account.
func TestForgedCertificateRevealsNothing(t *testing.T) {
	e := newEnv(t)
	a := New(e.store, Options{Now: func() time.Time { return testNow }})
	signers := map[string]gossh.Signer{
		"alice's CA":     e.ca,
		"carol's CA":     e.carolCA,
		"a login key":    e.login,
		"an unknown key": e.stranger,
	}
	forger := sshtest.NewSigner(t)
	var first string
	for what, signer := range signers {
		c := userCert(t, e.user.PublicKey(), forger, nil)
		c.SignatureKey = signer.PublicKey()
		_, err := a.Authenticate(context.Background(), Attempt{Key: reparse(t, c), Service: PGS, RemoteAddr: tcp("192.0.2.10:1")})
		r, ok := AsRefusal(err)
		if !ok {
			t.Fatalf("naming %s: got %v, want a refusal", what, err)
		}
		if r.Reason != ReasonSignature || r.AccountID != 0 || r.Account != "" || r.Cert.CAName != "" {
			t.Errorf("naming %s: refusal %q (account %q, CA name %q): %s; want %q for no account",
				what, r.Reason, r.Account, r.Cert.CAName, r.Message, ReasonSignature)
		}
		msg := strings.ReplaceAll(r.Message, Fingerprint(signer.PublicKey()), "FP")
		if first == "" {
			first = msg
		} else if msg != first {
			t.Errorf("naming %s: message %q differs from %q", what, msg, first)
		}
	}
}

// revocationStrictStore is the fake store with Postgres's limit on text: a NUL byte or
// invalid UTF-8 in a query argument is an error.
type revocationStrictStore struct{ *fakeStore }

func (s revocationStrictStore) FindRevocation(ctx context.Context, accountID int64, c db.CertRef) (db.Revocation, error) {
	if !utf8.ValidString(c.KeyID) || strings.ContainsRune(c.KeyID, 0) {
		return db.Revocation{}, errors.New("invalid byte sequence for encoding UTF8")
	}
	return s.fakeStore.FindRevocation(ctx, accountID, c)
}

// TestKeyIDThatNoRevocationCanName: a certificate whose key ID holds bytes a store cannot take
// as text is still decided (it cannot be revoked by key ID, only by serial or key), instead of
// failing as if the database were down.
func TestKeyIDThatNoRevocationCanName(t *testing.T) {
	e := newEnv(t)
	a := New(revocationStrictStore{e.store}, Options{Now: func() time.Time { return testNow }})
	at := func(keyID string) Attempt {
		c := e.cert(t, func(c *gossh.Certificate) { c.KeyId = keyID })
		return Attempt{Key: c, Service: PGS, RemoteAddr: tcp("192.0.2.10:1")}
	}
	for _, id := range []string{"bob\x00laptop", "bob\xff"} {
		g, err := a.Authenticate(context.Background(), at(id))
		if err != nil {
			t.Errorf("key ID %q: %v, want accepted", id, err)
		} else if g.Identity != SanitizeKeyID(id) {
			t.Errorf("key ID %q: identity %q", id, g.Identity)
		}
	}
	e.revoke(e.alice.ID, db.NewRevocation{Kind: db.RevokeSerial, Value: "42"})
	_, err := a.Authenticate(context.Background(), at("bob\xff"))
	wantReason(t, err, ReasonRevoked)
}

// TestCertificateForSmallRSAKey: a certificate for an RSA key smaller than portico registers
// is refused, like sshd's RequiredRSASize, even when a registered CA signed it.
func TestCertificateForSmallRSAKey(t *testing.T) {
	e := newEnv(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallKey, err := gossh.NewPublicKey(&small.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	a := New(e.store, Options{Now: func() time.Time { return testNow }})
	_, err = a.Authenticate(context.Background(), Attempt{Key: userCert(t, smallKey, e.ca, nil), Service: PGS, RemoteAddr: tcp("192.0.2.10:1")})
	r := wantReason(t, err, ReasonSignature)
	if r.Account != "alice" || !strings.Contains(r.Message, "1024 bits") {
		t.Errorf("refusal %+v", r)
	}
}

// TestCertificateFactsAreSanitised: what the certificate's signer chose and portico shows
// (key ID, principals) carries no terminal control sequences.
func TestCertificateFactsAreSanitised(t *testing.T) {
	e := newEnv(t)
	a := New(e.store, Options{Now: func() time.Time { return testNow }})
	c := e.cert(t, func(c *gossh.Certificate) {
		c.KeyId = "bob\x1b]0;owned\x07"
		c.ValidPrincipals = []string{"pgs", "\x1b[2J\x1b[31mdeploy"}
	})
	g, err := a.Authenticate(context.Background(), Attempt{Key: c, Service: PGS, RemoteAddr: tcp("192.0.2.10:1")})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append([]string{g.Identity, g.Cert.KeyID}, g.Cert.Principals...) {
		if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			t.Errorf("certificate fact %q holds control characters", s)
		}
	}
	if !slices.Equal(g.Cert.Principals, []string{"pgs", "?[2J?[31mdeploy"}) {
		t.Errorf("principals %q", g.Cert.Principals)
	}
}

type failingPending struct{ *fakeStore }

func (failingPending) HasPendingLoginKey(context.Context, string, time.Time) (bool, error) {
	return false, errBoom
}

// TestAuthenticatePendingStoreError: when whether a key is pending cannot be read, an
// unregistered key gets no grant at all (not even a signup grant) and no refusal.
func TestAuthenticatePendingStoreError(t *testing.T) {
	e := newEnv(t)
	a := New(failingPending{e.store}, Options{SignupsOpen: true, Now: func() time.Time { return testNow }})
	_, err := a.Authenticate(context.Background(), Attempt{Key: e.stranger.PublicKey(), Service: Admin, RemoteAddr: tcp("192.0.2.10:1")})
	if !errors.Is(err, errBoom) {
		t.Fatalf("err = %v, want the store error", err)
	}
	if _, ok := AsRefusal(err); ok {
		t.Fatal("a store error must not be a refusal")
	}
}
