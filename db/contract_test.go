package db_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/db/dbtest"
)

// The contract: every test below runs against each store implementation.

func TestSQLite(t *testing.T) {
	t.Parallel()
	runContract(t, dbtest.SQLite)
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	runContract(t, dbtest.Postgres)
}

func runContract(t *testing.T, open func(testing.TB) db.Store) {
	tests := []struct {
		name string
		run  func(*testing.T, db.Store)
	}{
		{"Accounts", testAccounts},
		{"CreateAccountIsAtomic", testCreateAccountIsAtomic},
		{"Keys", testKeys},
		{"KeyUniqueness", testKeyUniqueness},
		{"RemoveKey", testRemoveKey},
		{"ConcurrentRemovalOfLastLoginKeys", testConcurrentRemovalOfLastLoginKeys},
		{"TouchKey", testTouchKey},
		{"Revocations", testRevocations},
		{"FindRevocation", testFindRevocation},
		{"AccessLog", testAccessLog},
		{"AccessLogLimit", testAccessLogLimit},
		{"PruneAccess", testPruneAccess},
		{"SuppressedAccess", testSuppressedAccess},
		{"ConcurrentUse", testConcurrentUse},
		{"Closed", testClosed},
	}
	tests = append(tests, lifecycleContract...)
	tests = append(tests, trustContract...)
	tests = append(tests, accessVersionsContract...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, open(t))
		})
	}
}

var ctx = context.Background()

var keyCounter struct {
	sync.Mutex
	n int
}

// newKey returns a key with a fingerprint no other call returns.
func newKey(name string, kind db.KeyKind) db.NewKey {
	keyCounter.Lock()
	keyCounter.n++
	n := keyCounter.n
	keyCounter.Unlock()
	k := db.NewKey{
		Name:        name,
		Kind:        kind,
		Algorithm:   "ssh-ed25519",
		Fingerprint: fmt.Sprintf("SHA256:test%040d", n),
		PublicKey:   fmt.Sprintf("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI%d", n),
	}
	if kind == db.KindCA {
		k.Options = `cert-authority,principals="pgs"`
	}
	return k
}

func createAccount(t *testing.T, s db.Store, name string) (db.Account, db.Key) {
	t.Helper()
	a, k, err := s.CreateAccount(ctx, name, newKey("first", db.KindLogin))
	if err != nil {
		t.Fatalf("CreateAccount(%q): %v", name, err)
	}
	return a, k
}

func addKey(t *testing.T, s db.Store, accountID int64, nk db.NewKey) db.Key {
	t.Helper()
	k, err := s.AddKey(ctx, accountID, nk)
	if err != nil {
		t.Fatalf("AddKey(%d, %q): %v", accountID, nk.Name, err)
	}
	return k
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// checkTime checks that a stored time is UTC and lies in [from, to] at microsecond precision.
func checkTime(t *testing.T, what string, got, from, to time.Time) {
	t.Helper()
	if got.Location() != time.UTC {
		t.Errorf("%s = %v: location %v, want UTC", what, got, got.Location())
	}
	if got.Before(from.Truncate(time.Microsecond)) || got.After(to) {
		t.Errorf("%s = %v, want between %v and %v", what, got, from, to)
	}
}

func testAccounts(t *testing.T, s db.Store) {
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	list, err := s.ListAccounts(ctx)
	if err != nil || list == nil || len(list) != 0 {
		t.Fatalf("ListAccounts on an empty store = %#v, %v; want an empty list", list, err)
	}

	before := time.Now()
	first := newKey("laptop", db.KindLogin)
	bob, bobKey, err := s.CreateAccount(ctx, "bob", first)
	if err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	after := time.Now()
	if bob.ID == 0 || bob.Name != "bob" {
		t.Errorf("CreateAccount returned %+v", bob)
	}
	checkTime(t, "account CreatedAt", bob.CreatedAt, before, after)
	if bobKey.ID == 0 || bobKey.AccountID != bob.ID || bobKey.NewKey != first || bobKey.LastUsedAt != nil {
		t.Errorf("CreateAccount returned key %+v", bobKey)
	}
	checkTime(t, "key CreatedAt", bobKey.CreatedAt, before, after)
	alice, _ := createAccount(t, s, "alice")

	got, err := s.AccountByName(ctx, "bob")
	if err != nil || got != bob {
		t.Errorf("AccountByName(bob) = %+v, %v; want %+v", got, err, bob)
	}
	got, err = s.AccountByID(ctx, alice.ID)
	if err != nil || got != alice {
		t.Errorf("AccountByID(%d) = %+v, %v; want %+v", alice.ID, got, err, alice)
	}
	list, err = s.ListAccounts(ctx)
	if err != nil || len(list) != 2 || list[0] != alice || list[1] != bob {
		t.Errorf("ListAccounts = %+v, %v; want alice then bob", list, err)
	}
	keys, err := s.ListKeys(ctx, bob.ID)
	if err != nil || len(keys) != 1 || keys[0].NewKey != first {
		t.Errorf("ListKeys(bob) = %+v, %v; want the first key", keys, err)
	}

	_, err = s.AccountByName(ctx, "carol")
	wantErr(t, "AccountByName(carol)", err, db.ErrNotFound)
	_, err = s.AccountByID(ctx, alice.ID+bob.ID+100)
	wantErr(t, "AccountByID(missing)", err, db.ErrNotFound)

	_, _, err = s.CreateAccount(ctx, "bob", newKey("other", db.KindLogin))
	wantErr(t, "CreateAccount(bob) again", err, db.ErrAccountTaken)
}

func testCreateAccountIsAtomic(t *testing.T, s db.Store) {
	_, aliceKey := createAccount(t, s, "alice")

	// The key is taken: the account must not be left behind.
	taken := newKey("laptop", db.KindLogin)
	taken.Fingerprint = aliceKey.Fingerprint
	_, _, err := s.CreateAccount(ctx, "bob", taken)
	wantErr(t, "CreateAccount with a taken key", err, db.ErrKeyTaken)

	// A CA cannot be the first key; an invalid key is refused before anything is written.
	if _, _, err := s.CreateAccount(ctx, "carol", newKey("ca", db.KindCA)); err == nil {
		t.Error("CreateAccount with a CA as first key: no error")
	}
	if _, _, err := s.CreateAccount(ctx, "dave", newKey("", db.KindLogin)); err == nil {
		t.Error("CreateAccount with an unnamed key: no error")
	}

	for _, name := range []string{"bob", "carol", "dave"} {
		_, err := s.AccountByName(ctx, name)
		wantErr(t, "AccountByName("+name+") after a failed CreateAccount", err, db.ErrNotFound)
	}
	list, err := s.ListAccounts(ctx)
	if err != nil || len(list) != 1 {
		t.Errorf("ListAccounts = %+v, %v; want only alice", list, err)
	}
	// The name is free again.
	createAccount(t, s, "bob")
}

func testKeys(t *testing.T, s db.Store) {
	alice, first := createAccount(t, s, "alice")
	bob, _ := createAccount(t, s, "bob")

	before := time.Now()
	ca := addKey(t, s, alice.ID, newKey("team-ca", db.KindCA))
	after := time.Now()
	if ca.ID == 0 || ca.AccountID != alice.ID || ca.Kind != db.KindCA || ca.Options != `cert-authority,principals="pgs"` {
		t.Errorf("AddKey returned %+v", ca)
	}
	checkTime(t, "key CreatedAt", ca.CreatedAt, before, after)
	desk := addKey(t, s, alice.ID, newKey("desk", db.KindLogin))
	addKey(t, s, bob.ID, newKey("bobs", db.KindLogin))

	keys, err := s.ListKeys(ctx, alice.ID)
	if err != nil {
		t.Fatalf("ListKeys: %v", err)
	}
	want := []db.Key{first, ca, desk}
	if len(keys) != len(want) {
		t.Fatalf("ListKeys = %+v, want %+v", keys, want)
	}
	for i := range want {
		if !sameKey(keys[i], want[i]) {
			t.Errorf("ListKeys[%d] = %+v, want %+v", i, keys[i], want[i])
		}
	}
	keys, err = s.ListKeys(ctx, bob.ID+alice.ID+100)
	if err != nil || keys == nil || len(keys) != 0 {
		t.Errorf("ListKeys(missing account) = %#v, %v; want an empty list", keys, err)
	}

	got, err := s.KeyByFingerprint(ctx, ca.Fingerprint)
	if err != nil || !sameKey(got, ca) {
		t.Errorf("KeyByFingerprint(ca) = %+v, %v; want %+v", got, err, ca)
	}
	_, err = s.KeyByFingerprint(ctx, "SHA256:nobody")
	wantErr(t, "KeyByFingerprint(unknown)", err, db.ErrNotFound)

	_, err = s.AddKey(ctx, alice.ID+bob.ID+100, newKey("lost", db.KindLogin))
	wantErr(t, "AddKey to a missing account", err, db.ErrNotFound)
	for _, bad := range []db.NewKey{
		func() db.NewKey { k := newKey("odd", "other"); return k }(),
		newKey("", db.KindLogin),
		func() db.NewKey { k := newKey("nofp", db.KindLogin); k.Fingerprint = ""; return k }(),
		func() db.NewKey { k := newKey("nokey", db.KindLogin); k.PublicKey = ""; return k }(),
	} {
		if _, err := s.AddKey(ctx, alice.ID, bad); err == nil {
			t.Errorf("AddKey(%+v): no error", bad)
		}
	}
	if keys, _ := s.ListKeys(ctx, alice.ID); len(keys) != 3 {
		t.Errorf("after refused AddKey calls, ListKeys has %d keys, want 3", len(keys))
	}
}

func sameKey(a, b db.Key) bool {
	if (a.LastUsedAt == nil) != (b.LastUsedAt == nil) || a.LastUsedAt != nil && !a.LastUsedAt.Equal(*b.LastUsedAt) {
		return false
	}
	a.LastUsedAt, b.LastUsedAt = nil, nil
	return a == b
}

func testKeyUniqueness(t *testing.T, s db.Store) {
	alice, aliceFirst := createAccount(t, s, "alice")
	bob, _ := createAccount(t, s, "bob")
	aliceCA := addKey(t, s, alice.ID, newKey("ca", db.KindCA))

	tests := []struct {
		what    string
		account int64
		key     db.NewKey
		want    error
	}{
		{"alice's login key as bob's login key", bob.ID, with(newKey("k1", db.KindLogin), aliceFirst.Fingerprint), db.ErrKeyTaken},
		{"alice's login key as bob's CA", bob.ID, with(newKey("k2", db.KindCA), aliceFirst.Fingerprint), db.ErrKeyTaken},
		{"alice's CA as bob's login key", bob.ID, with(newKey("k3", db.KindLogin), aliceCA.Fingerprint), db.ErrKeyTaken},
		{"alice's CA as her own login key", alice.ID, with(newKey("k4", db.KindLogin), aliceCA.Fingerprint), db.ErrKeyTaken},
		{"a name alice uses, in alice", alice.ID, newKey("ca", db.KindLogin), db.ErrNameTaken},
		{"a name alice uses, for a CA", alice.ID, newKey("first", db.KindCA), db.ErrNameTaken},
		{"a name alice uses, in bob", bob.ID, newKey("ca", db.KindLogin), nil},
	}
	for _, tt := range tests {
		_, err := s.AddKey(ctx, tt.account, tt.key)
		if tt.want == nil {
			if err != nil {
				t.Errorf("AddKey: %s: %v", tt.what, err)
			}
			continue
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("AddKey: %s: error %v, want %v", tt.what, err, tt.want)
		}
	}
	_, _, err := s.CreateAccount(ctx, "carol", with(newKey("k5", db.KindLogin), aliceCA.Fingerprint))
	wantErr(t, "CreateAccount with alice's CA", err, db.ErrKeyTaken)
}

func with(k db.NewKey, fingerprint string) db.NewKey {
	k.Fingerprint = fingerprint
	return k
}

func testRemoveKey(t *testing.T, s db.Store) {
	alice, first := createAccount(t, s, "alice")
	bob, bobFirst := createAccount(t, s, "bob")
	ca := addKey(t, s, alice.ID, newKey("ca", db.KindCA))
	second := addKey(t, s, alice.ID, newKey("second", db.KindLogin))

	wantErr(t, "RemoveKey of another account's key", s.RemoveKey(ctx, alice.ID, bobFirst.ID), db.ErrNotFound)
	wantErr(t, "RemoveKey of a missing key", s.RemoveKey(ctx, alice.ID, second.ID+100), db.ErrNotFound)
	wantErr(t, "RemoveKey in a missing account", s.RemoveKey(ctx, alice.ID+bob.ID+100, first.ID), db.ErrNotFound)

	if err := s.RemoveKey(ctx, alice.ID, first.ID); err != nil {
		t.Fatalf("RemoveKey of one of two login keys: %v", err)
	}
	// The CA does not count as a login key.
	wantErr(t, "RemoveKey of the last login key", s.RemoveKey(ctx, alice.ID, second.ID), db.ErrLastLoginKey)
	wantErr(t, "RemoveKey of bob's only key", s.RemoveKey(ctx, bob.ID, bobFirst.ID), db.ErrLastLoginKey)
	if err := s.RemoveKey(ctx, alice.ID, ca.ID); err != nil {
		t.Fatalf("RemoveKey of a CA: %v", err)
	}
	wantErr(t, "RemoveKey of a removed key", s.RemoveKey(ctx, alice.ID, ca.ID), db.ErrNotFound)

	keys, err := s.ListKeys(ctx, alice.ID)
	if err != nil || len(keys) != 1 || keys[0].ID != second.ID {
		t.Errorf("ListKeys after removals = %+v, %v; want only %q", keys, err, second.Name)
	}
	_, err = s.KeyByFingerprint(ctx, first.Fingerprint)
	wantErr(t, "KeyByFingerprint of a removed key", err, db.ErrNotFound)
	// A removed key's fingerprint and name are free again.
	addKey(t, s, bob.ID, with(newKey("alices-old", db.KindLogin), first.Fingerprint))
	addKey(t, s, alice.ID, newKey("first", db.KindCA))
}

func testConcurrentRemovalOfLastLoginKeys(t *testing.T, s db.Store) {
	for round := range 10 {
		a, k1 := createAccount(t, s, fmt.Sprintf("race%d", round))
		k2 := addKey(t, s, a.ID, newKey("second", db.KindLogin))
		addKey(t, s, a.ID, newKey("ca", db.KindCA))

		errs := make([]error, 2)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, k := range []db.Key{k1, k2} {
			wg.Go(func() {
				<-start
				errs[i] = s.RemoveKey(ctx, a.ID, k.ID)
			})
		}
		close(start)
		wg.Wait()

		removed := 0
		for _, err := range errs {
			switch {
			case err == nil:
				removed++
			case !errors.Is(err, db.ErrLastLoginKey):
				t.Fatalf("round %d: concurrent RemoveKey: %v", round, err)
			}
		}
		if removed != 1 {
			t.Fatalf("round %d: %d of two concurrent removals of the last two login keys succeeded, want 1", round, removed)
		}
		keys, err := s.ListKeys(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		logins := 0
		for _, k := range keys {
			if k.Kind == db.KindLogin {
				logins++
			}
		}
		if logins != 1 {
			t.Fatalf("round %d: %d login keys left, want 1", round, logins)
		}
	}
}

func testTouchKey(t *testing.T, s db.Store) {
	_, k := createAccount(t, s, "alice")
	at := time.Date(2026, 11, 22, 6, 30, 15, 123456789, time.FixedZone("CET", 3600))
	if err := s.TouchKey(ctx, k.ID, at); err != nil {
		t.Fatalf("TouchKey: %v", err)
	}
	got, err := s.KeyByFingerprint(ctx, k.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 11, 22, 5, 30, 15, 123456000, time.UTC)
	if got.LastUsedAt == nil || !got.LastUsedAt.Equal(want) || got.LastUsedAt.Location() != time.UTC {
		t.Errorf("LastUsedAt = %v, want %v (UTC, microseconds)", got.LastUsedAt, want)
	}
	wantErr(t, "TouchKey of a missing key", s.TouchKey(ctx, k.ID+100, at), db.ErrNotFound)
}

func testRevocations(t *testing.T, s db.Store) {
	alice, _ := createAccount(t, s, "alice")
	bob, _ := createAccount(t, s, "bob")

	list, err := s.ListRevocations(ctx, alice.ID)
	if err != nil || list == nil || len(list) != 0 {
		t.Fatalf("ListRevocations on an empty store = %#v, %v; want an empty list", list, err)
	}
	before := time.Now()
	r1, err := s.AddRevocation(ctx, alice.ID, db.NewRevocation{Kind: db.RevokeSerial, Value: "0042", CAFingerprint: "SHA256:ca"})
	if err != nil {
		t.Fatalf("AddRevocation: %v", err)
	}
	after := time.Now()
	if r1.ID == 0 || r1.AccountID != alice.ID || r1.Kind != db.RevokeSerial || r1.Value != "42" || r1.CAFingerprint != "SHA256:ca" {
		t.Errorf("AddRevocation returned %+v; want the serial in canonical form 42", r1)
	}
	checkTime(t, "revocation CreatedAt", r1.CreatedAt, before, after)
	r2, err := s.AddRevocation(ctx, alice.ID, db.NewRevocation{Kind: db.RevokeKeyID, Value: "bob@laptop"})
	if err != nil {
		t.Fatalf("AddRevocation: %v", err)
	}
	r3, err := s.AddRevocation(ctx, bob.ID, db.NewRevocation{Kind: db.RevokeKey, Value: "SHA256:key"})
	if err != nil {
		t.Fatalf("AddRevocation: %v", err)
	}

	list, err = s.ListRevocations(ctx, alice.ID)
	if err != nil || len(list) != 2 || list[0] != r1 || list[1] != r2 {
		t.Errorf("ListRevocations(alice) = %+v, %v; want %+v, %+v", list, err, r1, r2)
	}

	for _, bad := range []db.NewRevocation{
		{Kind: db.RevokeSerial, Value: "-1"},
		{Kind: db.RevokeSerial, Value: "18446744073709551616"},
		{Kind: db.RevokeSerial, Value: "twelve"},
		{Kind: db.RevokeKeyID, Value: ""},
		{Kind: db.RevokeKey, Value: "SHA256:x", CAFingerprint: "SHA256:ca"},
		{Kind: db.RevokeKeyHash, Value: "SHA1:x", CAFingerprint: "SHA256:ca"},
		{Kind: db.RevokeSerialRange, Value: "9-3"},
		{Kind: db.RevokeSerialRange, Value: "9"},
		{Kind: db.RevokeKeyID, Value: "bob\x00"},
		{Kind: db.RevokeKeyID, Value: "bob", Origin: "elsewhere"},
		{Kind: "principal", Value: "pgs"},
	} {
		if _, err := s.AddRevocation(ctx, alice.ID, bad); err == nil {
			t.Errorf("AddRevocation(%+v): no error", bad)
		}
	}
	_, err = s.AddRevocation(ctx, alice.ID+bob.ID+100, db.NewRevocation{Kind: db.RevokeKeyID, Value: "x"})
	wantErr(t, "AddRevocation to a missing account", err, db.ErrNotFound)

	wantErr(t, "RemoveRevocation of another account's", s.RemoveRevocation(ctx, alice.ID, r3.ID), db.ErrNotFound)
	if err := s.RemoveRevocation(ctx, alice.ID, r1.ID); err != nil {
		t.Fatalf("RemoveRevocation: %v", err)
	}
	wantErr(t, "RemoveRevocation again", s.RemoveRevocation(ctx, alice.ID, r1.ID), db.ErrNotFound)
	list, err = s.ListRevocations(ctx, alice.ID)
	if err != nil || len(list) != 1 || list[0] != r2 {
		t.Errorf("ListRevocations after removal = %+v, %v; want %+v", list, err, r2)
	}
}

func testFindRevocation(t *testing.T, s db.Store) {
	alice, _ := createAccount(t, s, "alice")
	bob, _ := createAccount(t, s, "bob")
	add := func(accountID int64, r db.NewRevocation) db.Revocation {
		t.Helper()
		got, err := s.AddRevocation(ctx, accountID, r)
		if err != nil {
			t.Fatalf("AddRevocation(%+v): %v", r, err)
		}
		return got
	}
	anyCA := add(alice.ID, db.NewRevocation{Kind: db.RevokeSerial, Value: "7"})
	oneCA := add(alice.ID, db.NewRevocation{Kind: db.RevokeSerial, Value: "8", CAFingerprint: "SHA256:ca1"})
	maxSerial := add(alice.ID, db.NewRevocation{Kind: db.RevokeSerial, Value: "18446744073709551615"})
	keyID := add(alice.ID, db.NewRevocation{Kind: db.RevokeKeyID, Value: "bob@laptop"})
	key := add(alice.ID, db.NewRevocation{Kind: db.RevokeKey, Value: "SHA256:stolen"})
	add(bob.ID, db.NewRevocation{Kind: db.RevokeSerial, Value: "1"})
	add(bob.ID, db.NewRevocation{Kind: db.RevokeKeyID, Value: "carol"})

	tests := []struct {
		name    string
		account int64
		cert    db.CertRef
		want    *db.Revocation
	}{
		{"serial for any CA", alice.ID, db.CertRef{Serial: 7, KeyID: "x", KeyFingerprint: "SHA256:x", CAFingerprint: "SHA256:ca2"}, &anyCA},
		{"serial for any CA, no CA given", alice.ID, db.CertRef{Serial: 7}, &anyCA},
		{"serial for its CA", alice.ID, db.CertRef{Serial: 8, CAFingerprint: "SHA256:ca1"}, &oneCA},
		{"serial for another CA", alice.ID, db.CertRef{Serial: 8, CAFingerprint: "SHA256:ca2"}, nil},
		{"serial for a CA, none given", alice.ID, db.CertRef{Serial: 8}, nil},
		{"largest serial", alice.ID, db.CertRef{Serial: math.MaxUint64}, &maxSerial},
		{"serial not revoked", alice.ID, db.CertRef{Serial: 9, KeyID: "alice", KeyFingerprint: "SHA256:fine"}, nil},
		{"key ID", alice.ID, db.CertRef{Serial: 100, KeyID: "bob@laptop", CAFingerprint: "SHA256:ca1"}, &keyID},
		{"key ID matches exactly", alice.ID, db.CertRef{Serial: 100, KeyID: "Bob@laptop"}, nil},
		{"key ID prefix", alice.ID, db.CertRef{Serial: 100, KeyID: "bob@lap"}, nil},
		{"key", alice.ID, db.CertRef{Serial: 100, KeyID: "dave", KeyFingerprint: "SHA256:stolen"}, &key},
		{"first match wins", alice.ID, db.CertRef{Serial: 7, KeyID: "bob@laptop", KeyFingerprint: "SHA256:stolen"}, &anyCA},
		{"empty certificate", alice.ID, db.CertRef{}, nil},
		{"another account's serial", alice.ID, db.CertRef{Serial: 1}, nil},
		{"another account's key ID", alice.ID, db.CertRef{KeyID: "carol"}, nil},
		{"revocations are per account", bob.ID, db.CertRef{Serial: 7, KeyID: "bob@laptop", KeyFingerprint: "SHA256:stolen"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.FindRevocation(ctx, tt.account, tt.cert)
			if tt.want == nil {
				wantErr(t, fmt.Sprintf("FindRevocation(%+v)", tt.cert), err, db.ErrNotFound)
				return
			}
			if err != nil || got != *tt.want {
				t.Errorf("FindRevocation(%+v) = %+v, %v; want %+v", tt.cert, got, err, *tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func testAccessLog(t *testing.T, s db.Store) {
	alice, _ := createAccount(t, s, "alice")
	bob, _ := createAccount(t, s, "bob")
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	cet := time.FixedZone("CET", 3600)
	entries := []db.AccessEntry{
		{Time: base, AccountID: alice.ID, Account: "alice", Service: "admin", Method: "key", Identity: "laptop",
			KeyFingerprint: "SHA256:a", RemoteAddr: "127.0.0.1:5000", Outcome: "allowed"},
		{Time: base.Add(time.Second).In(cet), AccountID: alice.ID, Account: "alice", Service: "pgs", Method: "cert",
			Identity: "bob@laptop", Serial: ptr(uint64(math.MaxUint64)), KeyFingerprint: "SHA256:b",
			CAFingerprint: "SHA256:ca", RemoteAddr: "[::1]:5001", Outcome: "allowed"},
		{Time: base.Add(2*time.Second + 1500*time.Nanosecond), AccountID: alice.ID, Account: "alice", Service: "admin",
			Method: "cert", Identity: "bob@laptop", Serial: ptr(uint64(0)), KeyFingerprint: "SHA256:b",
			CAFingerprint: "SHA256:ca", RemoteAddr: "[::1]:5002", Outcome: "denied", Reason: "certificate does not grant admin"},
		// Same time as the previous one: the later entry comes first.
		{Time: base.Add(2*time.Second + 1500*time.Nanosecond), AccountID: alice.ID, Account: "alice", Service: "pgs",
			Method: "cert", Identity: "tie", Serial: ptr(uint64(1) << 63), Outcome: "allowed"},
		// An older entry appended last still sorts by time.
		{Time: base.Add(-time.Hour), AccountID: alice.ID, Account: "alice", Service: "tuns", Method: "key",
			Identity: "laptop", Outcome: "allowed"},
		{Time: base, AccountID: bob.ID, Account: "bob", Service: "admin", Method: "key", Identity: "bobs", Outcome: "allowed"},
		{Time: base, Service: "admin", Method: "key", KeyFingerprint: "SHA256:unknown", Outcome: "denied", Reason: "key is not registered"},
	}
	for _, e := range entries {
		if err := s.AppendAccess(ctx, e); err != nil {
			t.Fatalf("AppendAccess(%+v): %v", e, err)
		}
	}
	want := func(idx ...int) []db.AccessEntry {
		var out []db.AccessEntry
		for _, i := range idx {
			e := entries[i]
			e.Time = e.Time.UTC().Truncate(time.Microsecond)
			e.Count = 1 // every appended entry stands for one attempt
			out = append(out, e)
		}
		return out
	}
	tests := []struct {
		account int64
		service string
		limit   int
		want    []db.AccessEntry
	}{
		{alice.ID, "", 0, want(3, 2, 1, 0, 4)},
		{alice.ID, "", -1, want(3, 2, 1, 0, 4)},
		{alice.ID, "", 2, want(3, 2)},
		{alice.ID, "pgs", 0, want(3, 1)},
		{alice.ID, "admin", 1, want(2)},
		{alice.ID, "pipe", 0, nil},
		{bob.ID, "", 0, want(5)},
		{0, "", 0, want(6)},
		{alice.ID + bob.ID + 100, "", 0, nil},
	}
	for _, tt := range tests {
		got, err := s.ListAccess(ctx, tt.account, tt.service, tt.limit)
		if err != nil {
			t.Fatalf("ListAccess(%d, %q, %d): %v", tt.account, tt.service, tt.limit, err)
		}
		if got == nil {
			t.Errorf("ListAccess(%d, %q, %d) = nil, want an empty list", tt.account, tt.service, tt.limit)
		}
		if len(got) != len(tt.want) {
			t.Errorf("ListAccess(%d, %q, %d) = %d entries %+v, want %d", tt.account, tt.service, tt.limit, len(got), got, len(tt.want))
			continue
		}
		for i := range got {
			g := got[i]
			if g.ID == 0 || g.Time.Location() != time.UTC {
				t.Errorf("entry %d: ID %d, time %v; want an ID and a UTC time", i, g.ID, g.Time)
			}
			if i > 0 && g.Time.Equal(got[i-1].Time) && g.ID > got[i-1].ID {
				t.Errorf("entries with the same time are not newest first: %d after %d", g.ID, got[i-1].ID)
			}
			g.ID = 0
			if !sameEntry(g, tt.want[i]) {
				t.Errorf("ListAccess(%d, %q, %d)[%d] = %+v, want %+v", tt.account, tt.service, tt.limit, i, g, tt.want[i])
			}
		}
	}

	// A zero time means now.
	before := time.Now()
	if err := s.AppendAccess(ctx, db.AccessEntry{AccountID: bob.ID, Service: "pipe", Outcome: "allowed"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListAccess(ctx, bob.ID, "pipe", 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("ListAccess(bob, pipe) = %+v, %v", got, err)
	}
	checkTime(t, "entry with zero time", got[0].Time, before, time.Now())

	err = s.AppendAccess(ctx, db.AccessEntry{AccountID: alice.ID + bob.ID + 100, Outcome: "denied"})
	wantErr(t, "AppendAccess for a missing account", err, db.ErrNotFound)
}

func sameEntry(a, b db.AccessEntry) bool {
	if (a.Serial == nil) != (b.Serial == nil) || a.Serial != nil && *a.Serial != *b.Serial {
		return false
	}
	a.Serial, b.Serial = nil, nil
	return a.Time.Equal(b.Time) && a.Time.Location() == b.Time.Location() && a == b
}

func testAccessLogLimit(t *testing.T, s db.Store) {
	alice, _ := createAccount(t, s, "alice")
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for i := range 105 {
		e := db.AccessEntry{Time: base.Add(time.Duration(i) * time.Millisecond), AccountID: alice.ID,
			Account: "alice", Service: "admin", Identity: fmt.Sprint(i), Outcome: "allowed"}
		if err := s.AppendAccess(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct{ limit, want int }{{0, 100}, {-5, 100}, {101, 101}, {1000, 105}} {
		got, err := s.ListAccess(ctx, alice.ID, "", tt.limit)
		if err != nil || len(got) != tt.want {
			t.Errorf("ListAccess(limit %d) = %d entries, %v; want %d", tt.limit, len(got), err, tt.want)
			continue
		}
		if got[0].Identity != "104" {
			t.Errorf("ListAccess(limit %d) starts with %q, want the newest, 104", tt.limit, got[0].Identity)
		}
	}
}

func testPruneAccess(t *testing.T, s db.Store) {
	alice, _ := createAccount(t, s, "alice")
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for i := range 5 {
		e := db.AccessEntry{Time: base.Add(time.Duration(i) * time.Hour), AccountID: alice.ID, Service: "admin",
			Identity: fmt.Sprint(i), Outcome: "allowed"}
		if i == 4 {
			e.AccountID = 0
		}
		if err := s.AppendAccess(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.PruneAccess(ctx, base.Add(2*time.Hour).In(time.FixedZone("EST", -5*3600)))
	if err != nil || n != 2 {
		t.Fatalf("PruneAccess = %d, %v; want 2 (entries strictly before the time)", n, err)
	}
	got, err := s.ListAccess(ctx, alice.ID, "", 0)
	if err != nil || len(got) != 2 || got[0].Identity != "3" || got[1].Identity != "2" {
		t.Errorf("after PruneAccess, ListAccess = %+v, %v; want entries 3 and 2", got, err)
	}
	n, err = s.PruneAccess(ctx, base)
	if err != nil || n != 0 {
		t.Errorf("PruneAccess again = %d, %v; want 0", n, err)
	}
	n, err = s.PruneAccess(ctx, base.Add(24*time.Hour))
	if err != nil || n != 3 {
		t.Errorf("PruneAccess of everything = %d, %v; want 3", n, err)
	}
}

// testConcurrentUse does what many SSH connections do at once: look keys up, check
// revocations, touch keys and append to the access log. None of it may fail.
func testConcurrentUse(t *testing.T, s db.Store) {
	alice, k := createAccount(t, s, "alice")
	const workers, rounds = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				if _, err := s.KeyByFingerprint(ctx, k.Fingerprint); err != nil {
					errs <- err
				}
				if _, err := s.FindRevocation(ctx, alice.ID, db.CertRef{Serial: uint64(i)}); !errors.Is(err, db.ErrNotFound) {
					errs <- err
				}
				if err := s.TouchKey(ctx, k.ID, time.Now()); err != nil {
					errs <- err
				}
				err := s.AppendAccess(ctx, db.AccessEntry{AccountID: alice.ID, Account: "alice", Service: "admin",
					Identity: fmt.Sprintf("%d/%d", w, i), Outcome: "allowed"})
				if err != nil {
					errs <- err
				}
				if w%4 == 0 {
					if _, err := s.AddKey(ctx, alice.ID, newKey(fmt.Sprintf("k%d-%d", w, i), db.KindCA)); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent use: %v", err)
	}
	got, err := s.ListAccess(ctx, alice.ID, "", workers*rounds+1)
	if err != nil || len(got) != workers*rounds {
		t.Errorf("ListAccess after concurrent appends = %d entries, %v; want %d", len(got), err, workers*rounds)
	}
}

func testClosed(t *testing.T, s db.Store) {
	alice, k := createAccount(t, s, "alice")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	calls := map[string]func() error{
		"Ping":          func() error { return s.Ping(ctx) },
		"AccountByName": func() error { _, err := s.AccountByName(ctx, "alice"); return err },
		"CreateAccount": func() error { _, _, err := s.CreateAccount(ctx, "bob", newKey("b", db.KindLogin)); return err },
		"AddKey":        func() error { _, err := s.AddKey(ctx, alice.ID, newKey("b", db.KindLogin)); return err },
		"RemoveKey":     func() error { return s.RemoveKey(ctx, alice.ID, k.ID) },
		"ListAccess":    func() error { _, err := s.ListAccess(ctx, alice.ID, "", 0); return err },
		"AppendAccess":  func() error { return s.AppendAccess(ctx, db.AccessEntry{Outcome: "denied"}) },
		"FindRevocation": func() error {
			_, err := s.FindRevocation(ctx, alice.ID, db.CertRef{})
			if errors.Is(err, db.ErrNotFound) {
				return nil
			}
			return err
		},
	}
	for name, call := range calls {
		if err := call(); err == nil {
			t.Errorf("%s on a closed store: no error", name)
		}
	}
}

// Open's own behaviour.

func TestOpenRefusesUnknownSchemes(t *testing.T) {
	for _, u := range []string{"mysql://root@localhost/portico", "sqlite:///tmp/x.db", "127.0.0.1:5432", "::"} {
		if s, err := db.Open(ctx, u, t.TempDir()); err == nil {
			s.Close()
			t.Errorf("Open(%q): no error", u)
		}
	}
}

func TestOpenUnreachablePostgres(t *testing.T) {
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := db.Open(c, "postgres://postgres:secret@127.0.0.1:1/portico?sslmode=disable&connect_timeout=5", "")
	if err == nil {
		s.Close()
		t.Fatal("Open of an unreachable Postgres: no error")
	}
	if msg := err.Error(); strings.Contains(msg, "secret") {
		t.Errorf("error %q shows the password", msg)
	}
}

func TestOpenSQLiteUnusableDataDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := db.Open(ctx, "", file); err == nil {
		s.Close()
		t.Fatal("Open with a data directory that is a file: no error")
	}
}

func TestSQLiteMigrateThenReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := db.Migrate(ctx, "", dir); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, db.SQLiteFile)); err != nil {
		t.Fatalf("Migrate did not create the database: %v", err)
	}
	s, err := db.Open(ctx, "", dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	createAccount(t, s, "alice")
	if _, err := os.Stat(filepath.Join(dir, db.SQLiteFile+"-wal")); err != nil {
		t.Errorf("the open database has no write-ahead log: %v", err)
	}
	s.Close()
	// Data survives, and migrating again changes nothing.
	if err := db.Migrate(ctx, "", dir); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	s, err = db.Open(ctx, "", dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if _, err := s.AccountByName(ctx, "alice"); err != nil {
		t.Errorf("after reopening: %v", err)
	}
}

// TestSQLiteFilesArePrivate: the embedded database and its write-ahead log are readable by the
// server's user only, even in a data directory others may read.
func TestSQLiteFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := db.Open(ctx, "", dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	createAccount(t, s, "alice")
	for _, name := range []string{db.SQLiteFile, db.SQLiteFile + "-wal", db.SQLiteFile + "-shm"} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if mode := info.Mode().Perm(); mode&0o077 != 0 {
			t.Errorf("%s has mode %o, want no access for group and others", name, mode)
		}
	}
}

func TestPostgresMigrateThenOpen(t *testing.T) {
	t.Parallel()
	u := dbtest.PostgresURL(t)
	if err := db.Migrate(ctx, u, ""); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if err := db.Migrate(ctx, u, ""); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	s, err := db.Open(ctx, u, "")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	createAccount(t, s, "alice")
}
