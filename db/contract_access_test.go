package db_test

import (
	"errors"
	"testing"
	"time"

	"github.com/portico-sh/portico/db"
)

// accessVersionsContract is the contract of the access versions that live access polls.
var accessVersionsContract = []struct {
	name string
	run  func(*testing.T, db.Store)
}{
	{"AccessVersions", testAccessVersions},
	{"AppendAccessBatch", testAppendAccessBatch},
}

// testAccessVersions: an account's access version rises when one of its keys or CAs is removed,
// a revocation is added or a principal is mapped, changed or unmapped, and only then; another
// account's does not move; a deleted account has none. AccessVersion reads the same one version.
func testAccessVersions(t *testing.T, s db.Store) {
	alice, aliceKey, err := s.CreateAccount(ctx, "alice", newKey("laptop", db.KindLogin))
	if err != nil {
		t.Fatal(err)
	}
	bob, _, err := s.CreateAccount(ctx, "bob", newKey("laptop", db.KindLogin))
	if err != nil {
		t.Fatal(err)
	}
	versions := func() map[int64]int64 {
		t.Helper()
		v, err := s.AccessVersions(ctx, []int64{alice.ID, bob.ID, 999999})
		if err != nil {
			t.Fatal(err)
		}
		for id, want := range v {
			if got, err := s.AccessVersion(ctx, id); err != nil || got != want {
				t.Fatalf("AccessVersion(%d) = %d, %v; AccessVersions says %d", id, got, err, want)
			}
		}
		return v
	}
	start := versions()
	if len(start) != 2 {
		t.Fatalf("versions %v, want alice's and bob's only", start)
	}
	step := func(what string, moved bool, do func() error) {
		t.Helper()
		before := versions()
		if err := do(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		after := versions()
		if got := after[alice.ID] > before[alice.ID]; got != moved {
			t.Errorf("%s: alice's version %d → %d, want it to move: %v", what, before[alice.ID], after[alice.ID], moved)
		}
		if after[bob.ID] != before[bob.ID] {
			t.Errorf("%s: bob's version moved %d → %d", what, before[bob.ID], after[bob.ID])
		}
	}
	var second, ca db.Key
	step("adding a login key", false, func() (err error) {
		second, err = s.AddKey(ctx, alice.ID, newKey("desktop", db.KindLogin))
		return err
	})
	step("adding a CA", false, func() (err error) {
		ca, err = s.AddKey(ctx, alice.ID, newKey("team-ca", db.KindCA))
		return err
	})
	step("touching a key", false, func() error { return s.TouchKey(ctx, aliceKey.ID, time.Now()) })
	step("an access-log entry", false, func() error {
		return s.AppendAccess(ctx, db.AccessEntry{Time: time.Now(), AccountID: alice.ID, Account: "alice", Outcome: "allowed"})
	})
	step("removing a login key", true, func() error { return s.RemoveKey(ctx, alice.ID, second.ID) })
	step("removing a CA", true, func() error { return s.RemoveKey(ctx, alice.ID, ca.ID) })
	var r db.Revocation
	step("adding a revocation", true, func() (err error) {
		r, err = s.AddRevocation(ctx, alice.ID, db.NewRevocation{Kind: db.RevokeKeyID, Value: "bob@laptop"})
		return err
	})
	step("lifting a revocation", false, func() error { return s.RemoveRevocation(ctx, alice.ID, r.ID) })
	// Mapping a new principal only gives more, but auth's trust cache must see it at once.
	step("mapping a principal", true, func() error {
		_, _, err := s.SetPrincipalMapping(ctx, alice.ID, db.NewPrincipalMapping{Principal: "web-team", Services: []string{"pgs", "tuns"}})
		return err
	})
	step("changing a mapping", true, func() error {
		_, _, err := s.SetPrincipalMapping(ctx, alice.ID, db.NewPrincipalMapping{Principal: "web-team", Services: []string{"pgs"}})
		return err
	})
	step("removing a mapping", true, func() error { return s.RemovePrincipalMapping(ctx, alice.ID, "web-team") })
	if err := s.DeleteAccount(ctx, alice.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if v, ok := versions()[alice.ID]; ok {
		t.Errorf("a deleted account still has access version %d", v)
	}
	if v, err := s.AccessVersion(ctx, alice.ID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("AccessVersion of a deleted account: %d, %v; want ErrNotFound", v, err)
	}
	ids := make([]int64, 1200) // more than one query's worth of parameters
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	if _, err := s.AccessVersions(ctx, ids); err != nil {
		t.Errorf("1,200 accounts at once: %v", err)
	}
}

// testAppendAccessBatch: a batch appends every entry and touches every key; an entry of an
// account deleted meanwhile is kept under the account's name, and a removed key is skipped.
func testAppendAccessBatch(t *testing.T, s db.Store) {
	alice, key, err := s.CreateAccount(ctx, "alice", newKey("laptop", db.KindLogin))
	if err != nil {
		t.Fatal(err)
	}
	gone, _, err := s.CreateAccount(ctx, "gone", newKey("laptop", db.KindLogin))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAccount(ctx, gone.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	entries := []db.AccessEntry{
		{Time: at, AccountID: alice.ID, Account: "alice", Service: "pgs", Method: "key", Identity: "laptop", Outcome: "allowed"},
		{Time: at.Add(time.Second), AccountID: gone.ID, Account: "gone", Service: "admin", Method: "key", Identity: "laptop", Outcome: "allowed"},
		{Time: at.Add(2 * time.Second), Service: "admin", Method: "key", Outcome: "denied", Reason: "not registered"},
	}
	touched := map[int64]time.Time{key.ID: at, 999999: at}
	if err := s.AppendAccessBatch(ctx, entries, touched); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListAccess(ctx, alice.ID, "", 10)
	if err != nil || len(got) != 1 || got[0].Identity != "laptop" || !got[0].Time.Equal(at) {
		t.Errorf("alice's log %+v, %v", got, err)
	}
	keys, err := s.ListKeys(ctx, alice.ID)
	if err != nil || len(keys) != 1 || keys[0].LastUsedAt == nil || !keys[0].LastUsedAt.Equal(at) {
		t.Errorf("alice's key after the batch: %+v, %v", keys, err)
	}
	if err := s.AppendAccessBatch(ctx, nil, nil); err != nil {
		t.Errorf("an empty batch: %v", err)
	}
}
