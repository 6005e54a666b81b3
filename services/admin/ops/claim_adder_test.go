package ops_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/services/admin/ops"
	"github.com/portico-sh/portico/services/admin/ops/opstest"
)

// TestClaimAfterTheAdderLostAccess: a login key added on a connection whose grounds end before
// the key is claimed (its certificate revoked, its CA removed) cannot be claimed, and its entry
// is dropped; while they hold, the claim works.
func TestClaimAfterTheAdderLostAccess(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, e *trustEnv) // ends the adder's grounds; nil: they hold
	}{
		{name: "grounds hold"},
		{name: "certificate revoked by serial", end: func(t *testing.T, e *trustEnv) {
			serial := uint64(77)
			if _, err := e.o.Revoke(ctx, e.alice, ops.RevokeRequest{Serial: &serial}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "certificate revoked by key ID", end: func(t *testing.T, e *trustEnv) {
			if _, err := e.o.Revoke(ctx, e.alice, ops.RevokeRequest{KeyID: "bob@laptop"}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "certificate's key revoked", end: func(t *testing.T, e *trustEnv) {
			if _, err := e.o.Revoke(ctx, e.alice, ops.RevokeRequest{Key: auth.Fingerprint(e.user.PublicKey())}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "CA removed", end: func(t *testing.T, e *trustEnv) {
			if _, err := e.o.RemoveKey(ctx, e.alice, "team-ca"); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTrustEnv(t, opstest.Config)
			bob, err := e.authenticate(e.cert(t, e.team, 77, "bob@laptop", "admin"), auth.Admin, "192.0.2.10:5000")
			if err != nil {
				t.Fatal(err)
			}
			desk := opstest.Key(t, 30)
			added, err := e.o.AddKey(ctx, bob, opstest.Line(desk, "desk"), "", false)
			if err != nil {
				t.Fatal(err)
			}
			if tc.end != nil {
				tc.end(t, e)
			}
			_, k, err := e.o.ClaimKey(ctx, opstest.ClaimGrant(desk), desk, added.Claim.Code)
			if tc.end == nil {
				if err != nil || k.Fingerprint != auth.Fingerprint(desk) || k.State != "active" {
					t.Fatalf("claim while the adder's grounds hold = %+v, %v", k, err)
				}
				return
			}
			if ops.KindOf(err) != ops.Refused {
				t.Fatalf("claim after the adder lost access = %+v, %v; want a refusal", k, err)
			}
			assertNotClaimed(t, e.o, e.store, e.alice, desk)
			// The entry is gone: the code is now a wrong code like any other.
			_, _, err = e.o.ClaimKey(ctx, opstest.ClaimGrant(desk), desk, added.Claim.Code)
			if ops.KindOf(err) != ops.NotFound {
				t.Errorf("claiming again: %v, want not found", err)
			}
		})
	}
}

// TestClaimAfterTheAddingLoginKeyWasRemoved: a key added by a login key removed since cannot be
// claimed.
func TestClaimAfterTheAddingLoginKeyWasRemoved(t *testing.T) {
	o, store := opstest.New(t)
	alice := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	laptopKey := opstest.Key(t, 2)
	opstest.AddLoginKey(t, o, alice, laptopKey, opstest.Line(laptopKey, "laptop"), "")
	laptop, err := auth.New(store, auth.Options{}).Authenticate(ctx, auth.Attempt{Key: laptopKey, Service: auth.Admin, RemoteAddr: opstest.Addr})
	if err != nil {
		t.Fatal(err)
	}
	desk := opstest.Key(t, 30)
	added, err := o.AddKey(ctx, laptop, opstest.Line(desk, "desk"), "", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.RemoveKey(ctx, alice, "laptop"); err != nil {
		t.Fatal(err)
	}
	_, k, err := o.ClaimKey(ctx, opstest.ClaimGrant(desk), desk, added.Claim.Code)
	if ops.KindOf(err) != ops.Refused {
		t.Fatalf("claim after the adding key was removed = %+v, %v; want a refusal", k, err)
	}
	assertNotClaimed(t, o, store, alice, desk)
}

// TestClaimUndoneWhenARevocationLandsDuringIt: a revocation that another gateway commits after
// the check before the claim, but before the claim, still keeps the key out: the claim is
// judged again once committed, and undone.
func TestClaimUndoneWhenARevocationLandsDuringIt(t *testing.T) {
	_, store := opstest.New(t)
	racing := &racingStore{Store: store}
	o := ops.New(racing, opstest.Config)
	alice := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	desk, code := racingClaim(t, o, store, racing, alice)
	_, k, err := o.ClaimKey(ctx, opstest.ClaimGrant(desk), desk, code)
	if ops.KindOf(err) != ops.Refused {
		t.Fatalf("claim with a revocation landing during it = %+v, %v; want a refusal", k, err)
	}
	assertNotClaimed(t, o, store, alice, desk)
}

// racingClaim registers the CA team-ca in alice's account, has a certificate of it (key ID bob,
// principal admin) add the login key desk, and sets racing to revoke that certificate just
// before the claim reaches the store. It returns desk and its claim code.
func racingClaim(t *testing.T, o *ops.Ops, store db.Store, racing *racingStore, alice auth.Grant) (gossh.PublicKey, string) {
	t.Helper()
	team := opstest.Signer(t, 11)
	opstest.AddCA(t, o, alice, team, opstest.Line(team.PublicKey(), "team-ca"), "")
	user := opstest.Signer(t, 20)
	c := &gossh.Certificate{
		Key: user.PublicKey(), Serial: 9, CertType: gossh.UserCert, KeyId: "bob", ValidPrincipals: []string{"admin"},
		ValidAfter: uint64(time.Now().Add(-time.Hour).Unix()), ValidBefore: uint64(time.Now().Add(time.Hour).Unix()),
	}
	if err := c.SignCert(rand.Reader, team); err != nil {
		t.Fatal(err)
	}
	bob, err := auth.New(store, auth.Options{}).Authenticate(ctx, auth.Attempt{Key: c, Service: auth.Admin, RemoteAddr: opstest.Addr})
	if err != nil {
		t.Fatal(err)
	}
	desk := opstest.Key(t, 30)
	added, err := o.AddKey(ctx, bob, opstest.Line(desk, "desk"), "", false)
	if err != nil {
		t.Fatal(err)
	}
	racing.before = func() {
		if _, err := o.Revoke(ctx, alice, ops.RevokeRequest{KeyID: "bob"}); err != nil {
			t.Error(err)
		}
	}
	return desk, added.Claim.Code
}

// assertNotClaimed fails unless key is neither a key nor a pending key of the account of g,
// and does not log in to it.
func assertNotClaimed(t *testing.T, o *ops.Ops, store db.Store, g auth.Grant, key gossh.PublicKey) {
	t.Helper()
	keys, err := o.ListKeys(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Fingerprint == auth.Fingerprint(key) {
			t.Errorf("after the refused claim the account lists the key: %+v (want it dropped)", k)
		}
	}
	ng, err := auth.New(store, auth.Options{}).Authenticate(ctx, auth.Attempt{Key: key, Service: auth.Admin, RemoteAddr: opstest.Addr})
	if err == nil && ng.AccountID != 0 {
		t.Errorf("the key logs in to account %d", ng.AccountID)
	}
}

// racingStore runs before just before each claim it passes on, and after just after each
// claim that succeeded.
type racingStore struct {
	db.Store
	before, after func()
}

func (s *racingStore) ClaimLoginKey(ctx context.Context, fingerprint, code string, now time.Time) (db.Key, error) {
	if s.before != nil {
		s.before()
	}
	k, err := s.Store.ClaimLoginKey(ctx, fingerprint, code, now)
	if err == nil && s.after != nil {
		s.after()
	}
	return k, err
}

// TestClaimUndoneWhenTheOtherLoginKeysWentMeanwhile: a claim that raced a revocation of its
// adder is undone even when, between the claim and its undoing, the account's other login
// keys were removed (by the freshly claimed key itself on another gateway, say), which leaves
// the claimed key the account's last login key: the undo is not a "keys rm", and the key of
// a revoked adder must never stay.
func TestClaimUndoneWhenTheOtherLoginKeysWentMeanwhile(t *testing.T) {
	_, store := opstest.New(t)
	racing := &racingStore{Store: store}
	o := ops.New(racing, opstest.Config)
	first := opstest.Key(t, 1)
	alice := opstest.Register(t, o, "alice", first)
	desk, code := racingClaim(t, o, store, racing, alice)
	racing.after = func() {
		// The claimed key, now a login key, removes the account's first login key.
		k, err := store.KeyByFingerprint(ctx, auth.Fingerprint(first))
		if err != nil {
			t.Fatal(err)
		}
		if err := store.RemoveKey(ctx, k.AccountID, k.ID); err != nil {
			t.Errorf("removing the first login key after the claim: %v", err)
		}
	}
	_, k, err := o.ClaimKey(ctx, opstest.ClaimGrant(desk), desk, code)
	if ops.KindOf(err) != ops.Refused {
		t.Errorf("claim with a revocation landing during it = %+v, %v; want a refusal", k, err)
	}
	assertNotClaimed(t, o, store, alice, desk)
}
