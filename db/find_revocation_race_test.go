package db_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/portico-sh/portico/db"
)

// TestFindRevocationSnapshotOfKRLRefresh: a KRL source that revoked serials 5 and 7 one by one
// is refreshed to revoke 5-7 as a range (a bitmap's run grew) while a certificate with serial 5
// logs in. The SQLite lookup first asks whether the account has ranges, then looks up; the
// refresh falling between the two must not make serial 5 look unrevoked: it was revoked before
// the refresh and after it.
func TestFindRevocationSnapshotOfKRLRefresh(t *testing.T) {
	ctx := context.Background()
	st, err := db.Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	acct, _, err := st.CreateAccount(ctx, "alice", db.NewKey{Name: "k", Kind: db.KindLogin, Algorithm: "ssh-ed25519", Fingerprint: "SHA256:k", PublicKey: "ssh-ed25519 AAAA"})
	if err != nil {
		t.Fatal(err)
	}
	const ca = "SHA256:ca"
	src := db.NewKRLSource{URL: "https://krl.example/krl", Every: time.Hour}
	points := []db.NewRevocation{
		{Kind: db.RevokeSerial, Value: "5", CAFingerprint: ca, Origin: db.OriginKRL},
		{Kind: db.RevokeSerial, Value: "7", CAFingerprint: ca, Origin: db.OriginKRL},
	}
	if _, err := st.SetKRLSource(ctx, acct.ID, src, "old", points, time.Now()); err != nil {
		t.Fatal(err)
	}
	ref := db.CertRef{Serial: 5, KeyID: "bob", KeyFingerprint: "SHA256:bobkey", KeySHA1: "SHA1:bobkey", CAFingerprint: ca, CASHA1: "SHA1:ca"}
	if _, err := st.FindRevocation(ctx, acct.ID, ref); err != nil {
		t.Fatalf("before the refresh: FindRevocation = %v, want the serial's revocation", err)
	}
	refreshed := false
	db.SetBetweenRevocationQueries(st, func() {
		if refreshed {
			return
		}
		refreshed = true
		rng := []db.NewRevocation{{Kind: db.RevokeSerialRange, Value: "5-7", CAFingerprint: ca, Origin: db.OriginKRL}}
		if _, err := st.SetKRLSource(ctx, acct.ID, src, "new", rng, time.Now()); err != nil {
			t.Error(err)
		}
	})
	r, err := st.FindRevocation(ctx, acct.ID, ref)
	if err != nil {
		t.Fatalf("during the refresh: FindRevocation = %v: a certificate revoked before and after the refresh was let in", err)
	}
	t.Logf("found %s %s", r.Kind, r.Value)
	if _, err := st.FindRevocation(ctx, acct.ID, ref); err != nil {
		t.Fatalf("after the refresh: FindRevocation = %v", err)
	}
}

// TestFindRevocationFirstUseConcurrently: many certificate logins at once on a fresh gateway
// all check revocations before any of its statements is prepared. Each check holds a read
// connection for its snapshot; preparing a statement needs one too. Once, the checks holding
// every read connection waited for the statement cache, whose holder waited for a connection:
// the gateway's logins hung for good (CI saw it as a 10-minute test timeout).
func TestFindRevocationFirstUseConcurrently(t *testing.T) {
	for round := range 5 {
		st, err := db.Open(context.Background(), "", t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		acct, _, err := st.CreateAccount(context.Background(), "alice", db.NewKey{Name: "k", Kind: db.KindLogin, Algorithm: "ssh-ed25519", Fingerprint: "SHA256:k", PublicKey: "ssh-ed25519 AAAA"})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		start := make(chan struct{})
		errs := make(chan error, 64)
		for i := range 64 {
			go func() {
				<-start
				_, err := st.FindRevocation(ctx, acct.ID, db.CertRef{Serial: uint64(i + 1), KeyID: "bob"})
				if errors.Is(err, db.ErrNotFound) {
					err = nil
				}
				errs <- err
			}()
		}
		close(start)
		for range 64 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: a revocation check failed: %v", round, err)
			}
		}
		cancel()
		st.Close()
	}
}
