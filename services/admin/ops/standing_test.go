package ops_test

import (
	"testing"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/services/admin/ops"
	"github.com/portico-sh/portico/services/admin/ops/opstest"
)

// TestEndedConnectionCannotUndoItsEnd: live access ends a connection whose certificate was
// revoked (or whose key was removed) within seconds, not at once. In those seconds its admin
// grant must not lift its own revocation, point a KRL source elsewhere, map itself more
// services or add a key to come back with: each such operation judges the connection's key
// again first. Revoking more stays possible.
func TestEndedConnectionCannotUndoItsEnd(t *testing.T) {
	e := newTrustEnv(t, opstest.Config)
	certGrant, err := e.authenticate(e.cert(t, e.team, 9, "mallory", "admin"), auth.Admin, "192.0.2.10:5000")
	if err != nil {
		t.Fatal(err)
	}
	// While its grounds hold, the certificate's connection manages the account.
	if _, _, err := e.o.SetPrincipal(ctx, certGrant, ops.PrincipalRequest{Principal: "ops-team", Services: "pgs"}); err != nil {
		t.Fatalf("SetPrincipal before the revocation: %v", err)
	}
	serial := uint64(9)
	rev, err := e.o.Revoke(ctx, e.alice, ops.RevokeRequest{Serial: &serial, CA: "team-ca"})
	if err != nil {
		t.Fatal(err)
	}
	// The revoked connection, before live access ends it:
	err = e.o.RemoveRevocation(ctx, certGrant, rev.ID)
	wantErr(t, err, ops.Refused, "revoked")
	if _, err := e.o.AddKey(ctx, certGrant, opstest.Line(opstest.Key(t, 40), "way-back"), "", false); ops.KindOf(err) != ops.Refused {
		t.Errorf("AddKey on a revoked connection: %v, want refused", err)
	}
	if _, _, err := e.o.SetPrincipal(ctx, certGrant, ops.PrincipalRequest{Principal: "mallory", Services: "admin"}); ops.KindOf(err) != ops.Refused {
		t.Errorf("SetPrincipal on a revoked connection: %v, want refused", err)
	}
	if _, err := e.o.ImportKRLFromURL(ctx, certGrant, "https://krl.example/krl", "team-ca", 0); ops.KindOf(err) != ops.Refused {
		t.Errorf("ImportKRLFromURL on a revoked connection: %v, want refused", err)
	}
	if _, err := e.o.RemoveKRLSource(ctx, certGrant, "1"); ops.KindOf(err) != ops.Refused {
		t.Errorf("RemoveKRLSource on a revoked connection: %v, want refused", err)
	}
	if list, err := e.store.ListRevocations(ctx, e.alice.AccountID); err != nil || len(list) != 1 {
		t.Errorf("revocations after the attempts: %+v, %v; want the one revocation", list, err)
	}
	other := uint64(10)
	if _, err := e.o.Revoke(ctx, certGrant, ops.RevokeRequest{Serial: &other, CA: "team-ca"}); err != nil {
		t.Errorf("Revoke more on a revoked connection: %v, want it done (it only takes access away)", err)
	}

	// A login key removed: its connection adds no key to come back with.
	second := opstest.Signer(t, 41)
	opstest.AddLoginKey(t, e.o, e.alice, second.PublicKey(), opstest.Line(second.PublicKey(), "second"), "")
	secondGrant, err := auth.New(e.store, auth.Options{}).Authenticate(ctx, auth.Attempt{Key: second.PublicKey(), Service: auth.Admin, RemoteAddr: tcpAddr("192.0.2.11:5000")})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := e.store.ListKeys(ctx, e.alice.AccountID)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Fingerprint == auth.Fingerprint(second.PublicKey()) {
			if err := e.store.RemoveKey(ctx, e.alice.AccountID, k.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := e.o.AddKey(ctx, secondGrant, opstest.Line(opstest.Key(t, 42), "way-back"), "", false); ops.KindOf(err) != ops.Refused {
		t.Errorf("AddKey on the connection of a removed login key: %v, want refused", err)
	}
}
