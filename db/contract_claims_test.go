package db_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/portico-sh/portico/db"
)

// lifecycleContract is the contract of pending keys, sign-ups, account deletion and ids.
var lifecycleContract = []struct {
	name string
	run  func(*testing.T, db.Store)
}{
	{"IDsAreNeverReused", testIDsAreNeverReused},
	{"PendingKeys", testPendingKeys},
	{"PendingKeysExpire", testPendingKeysExpire},
	{"PendingKeysAreBounded", testPendingKeysAreBounded},
	{"ClaimLoginKey", testClaimLoginKey},
	{"PendingLoginKeyRecordsItsAdder", testPendingLoginKeyRecordsItsAdder},
	{"UndoClaim", testUndoClaim},
	{"ClaimAttemptsAreBounded", testClaimAttemptsAreBounded},
	{"ConcurrentClaims", testConcurrentClaims},
	{"ConcurrentActivations", testConcurrentActivations},
	{"ConcurrentWrongClaims", testConcurrentWrongClaims},
	{"ActivatePendingKey", testActivatePendingKey},
	{"CreateAccountDropsPendingEntries", testCreateAccountDropsPendingEntries},
	{"SignUpRate", testSignUpRate},
	{"ConcurrentSignUps", testConcurrentSignUps},
	{"DeleteAccount", testDeleteAccount},
}

var codeCounter struct {
	sync.Mutex
	n int
}

// pending returns a pending version of k with a fresh code, expiring 15 minutes after at.
func pending(k db.NewKey, at time.Time) db.NewPendingKey {
	codeCounter.Lock()
	codeCounter.n++
	n := codeCounter.n
	codeCounter.Unlock()
	return db.NewPendingKey{NewKey: k, Code: fmt.Sprintf("C%07d", n), ExpiresAt: at.Add(15 * time.Minute)}
}

func addPending(t *testing.T, s db.Store, accountID int64, p db.NewPendingKey, at time.Time) db.PendingKey {
	t.Helper()
	got, err := s.AddPendingKey(ctx, accountID, p, at)
	if err != nil {
		t.Fatalf("AddPendingKey(%d, %q): %v", accountID, p.Name, err)
	}
	return got
}

func pendingNames(t *testing.T, s db.Store, accountID int64, at time.Time) []string {
	t.Helper()
	list, err := s.ListPendingKeys(ctx, accountID, at)
	if err != nil {
		t.Fatalf("ListPendingKeys(%d): %v", accountID, err)
	}
	names := []string{}
	for _, p := range list {
		names = append(names, p.Name)
	}
	return names
}

func testIDsAreNeverReused(t *testing.T, s db.Store) {
	// A stale `revocations rm ID` must never lift a newer revocation: the id of the newest
	// revocation, once removed, is not given to the next one.
	alice, first := createAccount(t, s, "alice")
	r1, err := s.AddRevocation(ctx, alice.ID, db.NewRevocation{Kind: db.RevokeSerial, Value: "1"})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.AddRevocation(ctx, alice.ID, db.NewRevocation{Kind: db.RevokeSerial, Value: "2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveRevocation(ctx, alice.ID, r2.ID); err != nil {
		t.Fatal(err)
	}
	r3, err := s.AddRevocation(ctx, alice.ID, db.NewRevocation{Kind: db.RevokeKeyID, Value: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if r3.ID == r2.ID || r3.ID == r1.ID {
		t.Errorf("revocation ids %d, %d, then %d after removing %d: an id was reused", r1.ID, r2.ID, r3.ID, r2.ID)
	}
	if err := s.RemoveRevocation(ctx, alice.ID, r2.ID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("removing revocation %d a second time: %v, want ErrNotFound (and revocation %d kept)", r2.ID, err, r3.ID)
	}

	// The same for keys and accounts: a connection that outlives its key or account must not
	// find a newer one under the same id.
	k := addKey(t, s, alice.ID, newKey("desk", db.KindLogin))
	if err := s.RemoveKey(ctx, alice.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	k2 := addKey(t, s, alice.ID, newKey("desk2", db.KindLogin))
	if k2.ID == k.ID || k2.ID == first.ID {
		t.Errorf("key id %d reused after removing key %d", k2.ID, k.ID)
	}
	bob, _ := createAccount(t, s, "bob")
	if err := s.DeleteAccount(ctx, bob.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	carol, _ := createAccount(t, s, "carol")
	if carol.ID == bob.ID {
		t.Errorf("account id %d reused after deleting bob", carol.ID)
	}
}

func testPendingKeys(t *testing.T, s db.Store) {
	now := time.Now()
	alice, aliceFirst := createAccount(t, s, "alice")
	bob, bobFirst := createAccount(t, s, "bob")

	p := pending(newKey("desk", db.KindLogin), now)
	got := addPending(t, s, alice.ID, p, now)
	if got.ID == 0 || got.AccountID != alice.ID || got.NewKey != p.NewKey || got.Code != p.Code || got.Attempts != 0 {
		t.Errorf("AddPendingKey returned %+v", got)
	}
	checkTime(t, "pending CreatedAt", got.CreatedAt, now, now)
	if !got.ExpiresAt.Equal(p.ExpiresAt.Truncate(time.Microsecond)) {
		t.Errorf("ExpiresAt = %v, want %v", got.ExpiresAt, p.ExpiresAt)
	}
	list, err := s.ListPendingKeys(ctx, alice.ID, now)
	if err != nil || len(list) != 1 || list[0] != got {
		t.Errorf("ListPendingKeys = %+v, %v; want %+v", list, err, got)
	}
	if theirs := pendingNames(t, s, bob.ID, now); len(theirs) != 0 {
		t.Errorf("bob sees alice's pending keys: %v", theirs)
	}
	byFP, err := s.PendingKeyByFingerprint(ctx, alice.ID, p.Fingerprint, now)
	if err != nil || byFP != got {
		t.Errorf("PendingKeyByFingerprint = %+v, %v", byFP, err)
	}
	_, err = s.PendingKeyByFingerprint(ctx, bob.ID, p.Fingerprint, now)
	wantErr(t, "PendingKeyByFingerprint in another account", err, db.ErrNotFound)

	// A pending key grants nothing: it is no key of any account.
	_, err = s.KeyByFingerprint(ctx, p.Fingerprint)
	wantErr(t, "KeyByFingerprint(pending)", err, db.ErrNotFound)
	if keys, _ := s.ListKeys(ctx, alice.ID); len(keys) != 1 {
		t.Errorf("ListKeys has the pending key: %+v", keys)
	}
	if ok, err := s.HasPendingLoginKey(ctx, p.Fingerprint, now); err != nil || !ok {
		t.Errorf("HasPendingLoginKey(pending login) = %v, %v", ok, err)
	}
	ca := addPending(t, s, alice.ID, pending(newKey("team-ca", db.KindCA), now), now)
	if ok, err := s.HasPendingLoginKey(ctx, ca.Fingerprint, now); err != nil || ok {
		t.Errorf("HasPendingLoginKey(pending CA) = %v, %v; want false", ok, err)
	}
	if ok, err := s.HasPendingLoginKey(ctx, aliceFirst.Fingerprint, now); err != nil || ok {
		t.Errorf("HasPendingLoginKey(active key) = %v, %v; want false", ok, err)
	}

	// Pending entries never block: the same key may wait in another account, and a key
	// active in another account may wait here.
	addPending(t, s, bob.ID, pending(p.NewKey, now), now)
	addPending(t, s, bob.ID, pending(with(newKey("alices", db.KindLogin), aliceFirst.Fingerprint), now), now)
	addPending(t, s, alice.ID, pending(with(newKey("bobs", db.KindCA), bobFirst.Fingerprint), now), now)

	tests := []struct {
		what string
		key  db.NewPendingKey
		want error
	}{
		{"a name of an active key", pending(newKey("first", db.KindLogin), now), db.ErrNameTaken},
		{"a name of a pending key", pending(newKey("desk", db.KindLogin), now), db.ErrNameTaken},
		{"a key active in this account", pending(with(newKey("again", db.KindLogin), aliceFirst.Fingerprint), now), db.ErrKeyTaken},
		{"a key pending in this account", pending(with(newKey("again", db.KindCA), p.Fingerprint), now), db.ErrPendingTaken},
		{"a code in use", func() db.NewPendingKey { k := pending(newKey("other", db.KindLogin), now); k.Code = p.Code; return k }(), db.ErrCodeTaken},
		{"no code", func() db.NewPendingKey { k := pending(newKey("other", db.KindLogin), now); k.Code = ""; return k }(), nil},
		{"no expiry", func() db.NewPendingKey {
			k := pending(newKey("other", db.KindLogin), now)
			k.ExpiresAt = time.Time{}
			return k
		}(), nil},
	}
	for _, tt := range tests {
		_, err := s.AddPendingKey(ctx, alice.ID, tt.key, now)
		if tt.want == nil {
			if err == nil {
				t.Errorf("AddPendingKey(%s): no error", tt.what)
			}
			continue
		}
		wantErr(t, "AddPendingKey("+tt.what+")", err, tt.want)
	}
	_, err = s.AddPendingKey(ctx, alice.ID+bob.ID+100, pending(newKey("lost", db.KindLogin), now), now)
	wantErr(t, "AddPendingKey to a missing account", err, db.ErrNotFound)

	// Active keys cannot take a pending key's name either.
	_, err = s.AddKey(ctx, alice.ID, newKey("desk", db.KindLogin))
	wantErr(t, "AddKey with a pending key's name", err, db.ErrNameTaken)

	if names := pendingNames(t, s, alice.ID, now); len(names) != 3 {
		t.Errorf("alice's pending keys after refusals: %v, want desk, team-ca, bobs", names)
	}
	if err := s.RemovePendingKey(ctx, bob.ID, got.ID); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("bob removed alice's pending key: %v", err)
	}
	if err := s.RemovePendingKey(ctx, alice.ID, got.ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "RemovePendingKey twice", s.RemovePendingKey(ctx, alice.ID, got.ID), db.ErrNotFound)
	// Bob's entry for the same key is his own.
	if ok, _ := s.HasPendingLoginKey(ctx, p.Fingerprint, now); !ok {
		t.Error("removing alice's entry removed bob's")
	}
}

func testPendingKeysExpire(t *testing.T, s db.Store) {
	now := time.Now()
	alice, _ := createAccount(t, s, "alice")
	p := addPending(t, s, alice.ID, pending(newKey("desk", db.KindLogin), now), now)
	last := p.ExpiresAt.Add(-time.Microsecond)
	if names := pendingNames(t, s, alice.ID, last); len(names) != 1 {
		t.Errorf("pending keys just before expiry: %v", names)
	}
	for _, at := range []time.Time{p.ExpiresAt, p.ExpiresAt.Add(time.Hour)} {
		if names := pendingNames(t, s, alice.ID, at); len(names) != 0 {
			t.Errorf("pending keys at %v, expiry %v: %v", at, p.ExpiresAt, names)
		}
		if ok, _ := s.HasPendingLoginKey(ctx, p.Fingerprint, at); ok {
			t.Errorf("HasPendingLoginKey at %v, after expiry %v", at, p.ExpiresAt)
		}
		_, err := s.ClaimLoginKey(ctx, p.Fingerprint, p.Code, at)
		wantErr(t, "ClaimLoginKey after expiry", err, db.ErrNotFound)
		_, err = s.ActivatePendingKey(ctx, alice.ID, p.ID, at)
		wantErr(t, "ActivatePendingKey after expiry", err, db.ErrNotFound)
	}
	// An expired entry holds neither its name, nor its key, nor its code.
	later := p.ExpiresAt.Add(time.Minute)
	again := pending(p.NewKey, later)
	again.Code = p.Code
	addPending(t, s, alice.ID, again, later)
	if names := pendingNames(t, s, alice.ID, later); len(names) != 1 {
		t.Errorf("pending keys after adding an expired one again: %v", names)
	}
}

func testPendingKeysAreBounded(t *testing.T, s db.Store) {
	now := time.Now()
	alice, _ := createAccount(t, s, "alice")
	bob, _ := createAccount(t, s, "bob")
	var last db.PendingKey
	for i := range db.MaxPendingKeys {
		last = addPending(t, s, alice.ID, pending(newKey(fmt.Sprintf("k%d", i), db.KindLogin), now), now)
	}
	_, err := s.AddPendingKey(ctx, alice.ID, pending(newKey("one-more", db.KindLogin), now), now)
	wantErr(t, "AddPendingKey beyond the bound", err, db.ErrTooManyPending)
	addPending(t, s, bob.ID, pending(newKey("bobs", db.KindLogin), now), now)
	if err := s.RemovePendingKey(ctx, alice.ID, last.ID); err != nil {
		t.Fatal(err)
	}
	addPending(t, s, alice.ID, pending(newKey("one-more", db.KindLogin), now), now)
	// Expired entries do not count.
	later := now.Add(time.Hour)
	addPending(t, s, alice.ID, pending(newKey("later", db.KindLogin), later), later)
}

func testClaimLoginKey(t *testing.T, s db.Store) {
	now := time.Now()
	alice, _ := createAccount(t, s, "alice")
	bob, bobFirst := createAccount(t, s, "bob")
	mallory, _ := createAccount(t, s, "mallory")
	desk := newKey("desk", db.KindLogin)
	aliceEntry := addPending(t, s, alice.ID, pending(desk, now), now)
	malloryEntry := addPending(t, s, mallory.ID, pending(with(newKey("squat", db.KindLogin), desk.Fingerprint), now), now)

	// The code of another key's entry claims nothing.
	other := addPending(t, s, bob.ID, pending(newKey("bobdesk", db.KindLogin), now), now)
	_, err := s.ClaimLoginKey(ctx, desk.Fingerprint, other.Code, now)
	wantErr(t, "ClaimLoginKey with another key's code", err, db.ErrNotFound)
	_, err = s.ClaimLoginKey(ctx, other.Fingerprint, aliceEntry.Code, now)
	wantErr(t, "ClaimLoginKey of alice's code from bob's key", err, db.ErrNotFound)
	if names := pendingNames(t, s, alice.ID, now); len(names) != 1 {
		t.Fatalf("alice's entry after wrong claims: %v", names)
	}

	k, err := s.ClaimLoginKey(ctx, desk.Fingerprint, aliceEntry.Code, now)
	if err != nil {
		t.Fatalf("ClaimLoginKey: %v", err)
	}
	if k.AccountID != alice.ID || k.NewKey != desk || k.ID == 0 {
		t.Errorf("claimed key = %+v", k)
	}
	got, err := s.KeyByFingerprint(ctx, desk.Fingerprint)
	if err != nil || got.AccountID != alice.ID {
		t.Errorf("KeyByFingerprint after the claim = %+v, %v", got, err)
	}
	// Every entry of the key is gone: mallory's squat too.
	for _, a := range []db.Account{alice, mallory} {
		if names := pendingNames(t, s, a.ID, now); len(names) != 0 {
			t.Errorf("%s's pending keys after the claim: %v", a.Name, names)
		}
	}
	_, err = s.ClaimLoginKey(ctx, desk.Fingerprint, malloryEntry.Code, now)
	wantErr(t, "ClaimLoginKey of a dropped entry", err, db.ErrNotFound)
	_, err = s.ClaimLoginKey(ctx, desk.Fingerprint, aliceEntry.Code, now)
	wantErr(t, "ClaimLoginKey twice", err, db.ErrNotFound)

	// A key active in one account may wait in another, but that claim fails and the entry
	// stays, for its holder to remove the key there first.
	again := addPending(t, s, mallory.ID, pending(with(newKey("bobs", db.KindLogin), bobFirst.Fingerprint), now), now)
	_, err = s.ClaimLoginKey(ctx, bobFirst.Fingerprint, again.Code, now)
	wantErr(t, "ClaimLoginKey of a key active elsewhere", err, db.ErrKeyTaken)
	if names := pendingNames(t, s, mallory.ID, now); len(names) != 1 {
		t.Errorf("mallory's entry after the refused claim: %v", names)
	}
	got, err = s.KeyByFingerprint(ctx, bobFirst.Fingerprint)
	if err != nil || got.AccountID != bob.ID {
		t.Errorf("bob's key after mallory's claim: %+v, %v", got, err)
	}

	// A CA waits to be activated by a certificate, never claimed as a login key.
	ca := addPending(t, s, alice.ID, pending(newKey("ca", db.KindCA), now), now)
	_, err = s.ClaimLoginKey(ctx, ca.Fingerprint, ca.Code, now)
	wantErr(t, "ClaimLoginKey of a CA", err, db.ErrNotFound)
}

func testClaimAttemptsAreBounded(t *testing.T, s db.Store) {
	now := time.Now()
	alice, _ := createAccount(t, s, "alice")
	bob, _ := createAccount(t, s, "bob")
	desk := newKey("desk", db.KindLogin)
	aliceEntry := addPending(t, s, alice.ID, pending(desk, now), now)
	bobEntry := addPending(t, s, bob.ID, pending(with(newKey("desk", db.KindLogin), desk.Fingerprint), now), now)
	otherEntry := addPending(t, s, bob.ID, pending(newKey("other", db.KindLogin), now), now)

	for i := range db.MaxClaimAttempts - 1 {
		_, err := s.ClaimLoginKey(ctx, desk.Fingerprint, fmt.Sprintf("WRONG%03d", i), now)
		wantErr(t, "ClaimLoginKey with a wrong code", err, db.ErrNotFound)
	}
	list, err := s.ListPendingKeys(ctx, alice.ID, now)
	if err != nil || len(list) != 1 || list[0].Attempts != db.MaxClaimAttempts-1 {
		t.Fatalf("alice's entry after %d wrong codes: %+v, %v", db.MaxClaimAttempts-1, list, err)
	}
	// One more wrong code and every entry of that key is gone, even with the right code.
	_, err = s.ClaimLoginKey(ctx, desk.Fingerprint, "WRONGXXX", now)
	wantErr(t, "the last wrong code", err, db.ErrNotFound)
	_, err = s.ClaimLoginKey(ctx, desk.Fingerprint, aliceEntry.Code, now)
	wantErr(t, "the right code after too many wrong ones", err, db.ErrNotFound)
	_, err = s.ClaimLoginKey(ctx, desk.Fingerprint, bobEntry.Code, now)
	wantErr(t, "bob's right code after too many wrong ones", err, db.ErrNotFound)
	// Another key's entry does not pay for them.
	if _, err := s.ClaimLoginKey(ctx, otherEntry.Fingerprint, otherEntry.Code, now); err != nil {
		t.Errorf("another key's claim after the flood: %v", err)
	}
}

func testConcurrentClaims(t *testing.T, s db.Store) {
	now := time.Now()
	desk := newKey("desk", db.KindLogin)
	var entries []db.PendingKey
	for _, name := range []string{"alice", "bob", "carol", "dave"} {
		a, _ := createAccount(t, s, name)
		entries = append(entries, addPending(t, s, a.ID, pending(with(newKey("desk", db.KindLogin), desk.Fingerprint), now), now))
	}
	// The key's holder runs every claim at once, twice: one wins.
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		won    []db.Key
		others []error
	)
	for range 2 {
		for _, e := range entries {
			wg.Go(func() {
				k, err := s.ClaimLoginKey(ctx, desk.Fingerprint, e.Code, now)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					won = append(won, k)
				} else {
					others = append(others, err)
				}
			})
		}
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("%d claims won (%+v), want 1; others: %v", len(won), won, others)
	}
	for _, err := range others {
		if !errors.Is(err, db.ErrNotFound) && !errors.Is(err, db.ErrKeyTaken) {
			t.Errorf("a losing claim failed with %v, want ErrNotFound or ErrKeyTaken", err)
		}
	}
	got, err := s.KeyByFingerprint(ctx, desk.Fingerprint)
	if err != nil || got.AccountID != won[0].AccountID {
		t.Errorf("KeyByFingerprint = %+v, %v; want the winner's", got, err)
	}
}

func testActivatePendingKey(t *testing.T, s db.Store) {
	now := time.Now()
	alice, _ := createAccount(t, s, "alice")
	bob, _ := createAccount(t, s, "bob")
	caKey := newKey("team-ca", db.KindCA)
	aliceCA := addPending(t, s, alice.ID, pending(caKey, now), now)
	bobCA := addPending(t, s, bob.ID, pending(with(newKey("team-ca", db.KindCA), caKey.Fingerprint), now), now)

	_, err := s.ActivatePendingKey(ctx, bob.ID, aliceCA.ID, now)
	wantErr(t, "ActivatePendingKey of another account's entry", err, db.ErrNotFound)
	k, err := s.ActivatePendingKey(ctx, alice.ID, aliceCA.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	if k.AccountID != alice.ID || k.NewKey != caKey {
		t.Errorf("activated key = %+v", k)
	}
	if got, err := s.KeyByFingerprint(ctx, caKey.Fingerprint); err != nil || got.ID != k.ID || got.Kind != db.KindCA {
		t.Errorf("KeyByFingerprint after activation = %+v, %v", got, err)
	}
	_, err = s.ActivatePendingKey(ctx, bob.ID, bobCA.ID, now)
	wantErr(t, "ActivatePendingKey of a dropped entry", err, db.ErrNotFound)
	_, err = s.ActivatePendingKey(ctx, alice.ID, aliceCA.ID, now)
	wantErr(t, "ActivatePendingKey twice", err, db.ErrNotFound)

	// Active elsewhere: refused, the entry stays.
	again := addPending(t, s, bob.ID, pending(with(newKey("team-ca", db.KindCA), caKey.Fingerprint), now), now)
	_, err = s.ActivatePendingKey(ctx, bob.ID, again.ID, now)
	wantErr(t, "ActivatePendingKey of a key active elsewhere", err, db.ErrKeyTaken)
	if names := pendingNames(t, s, bob.ID, now); len(names) != 1 {
		t.Errorf("bob's entry after the refusal: %v", names)
	}
}

func testCreateAccountDropsPendingEntries(t *testing.T, s db.Store) {
	now := time.Now()
	mallory, _ := createAccount(t, s, "mallory")
	carolKey := newKey("carol", db.KindLogin)
	addPending(t, s, mallory.ID, pending(carolKey, now), now)
	// Pending entries never block: carol registers her own key, and mallory's squat goes.
	carol, k, err := s.CreateAccount(ctx, "carol", carolKey)
	if err != nil {
		t.Fatalf("CreateAccount with a key pending elsewhere: %v", err)
	}
	if names := pendingNames(t, s, mallory.ID, now); len(names) != 0 {
		t.Errorf("mallory's pending entry of carol's key is still there: %v", names)
	}
	if got, err := s.KeyByFingerprint(ctx, carolKey.Fingerprint); err != nil || got.ID != k.ID || got.AccountID != carol.ID {
		t.Errorf("KeyByFingerprint = %+v, %v", got, err)
	}
	daveKey := newKey("dave", db.KindLogin)
	addPending(t, s, mallory.ID, pending(daveKey, now), now)
	if _, _, err := s.SignUp(ctx, "dave", daveKey, db.SignupLimit{Source: "192.0.2.1", Max: 5, Window: time.Hour}); err != nil {
		t.Fatalf("SignUp with a key pending elsewhere: %v", err)
	}
	if names := pendingNames(t, s, mallory.ID, now); len(names) != 0 {
		t.Errorf("mallory's pending entry of dave's key is still there: %v", names)
	}
}

func testSignUpRate(t *testing.T, s db.Store) {
	limit := db.SignupLimit{Source: "192.0.2.7", Max: 2, Window: time.Hour}
	for _, name := range []string{"alice", "bob"} {
		if _, _, err := s.SignUp(ctx, name, newKey("first", db.KindLogin), limit); err != nil {
			t.Fatalf("SignUp(%s): %v", name, err)
		}
	}
	_, _, err := s.SignUp(ctx, "carol", newKey("first", db.KindLogin), limit)
	wantErr(t, "the third sign-up from one source", err, db.ErrSignupRate)
	_, err = s.AccountByName(ctx, "carol")
	wantErr(t, "AccountByName(carol) after a refused sign-up", err, db.ErrNotFound)

	// Another source has its own count; a refused sign-up (a taken name) counts nothing.
	other := db.SignupLimit{Source: "2001:db8:1:2::/64", Max: 2, Window: time.Hour}
	_, _, err = s.SignUp(ctx, "alice", newKey("first", db.KindLogin), other)
	wantErr(t, "SignUp of a taken name", err, db.ErrAccountTaken)
	for _, name := range []string{"carol", "dave"} {
		if _, _, err := s.SignUp(ctx, name, newKey("first", db.KindLogin), other); err != nil {
			t.Fatalf("SignUp(%s) from another source: %v", name, err)
		}
	}
	// Deleting the accounts does not give the sign-ups back.
	bob, _ := s.AccountByName(ctx, "bob")
	if err := s.DeleteAccount(ctx, bob.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.SignUp(ctx, "erin", newKey("first", db.KindLogin), limit)
	wantErr(t, "a sign-up after deleting an account", err, db.ErrSignupRate)
	// A window that has passed, and no limit.
	short := db.SignupLimit{Source: limit.Source, Max: 2, Window: time.Microsecond}
	time.Sleep(time.Millisecond)
	if _, _, err := s.SignUp(ctx, "erin", newKey("first", db.KindLogin), short); err != nil {
		t.Errorf("SignUp once the window has passed: %v", err)
	}
	for _, name := range []string{"frank", "grace", "heidi"} {
		if _, _, err := s.SignUp(ctx, name, newKey("first", db.KindLogin), db.SignupLimit{Source: limit.Source}); err != nil {
			t.Errorf("SignUp(%s) without a limit: %v", name, err)
		}
	}
}

func testConcurrentSignUps(t *testing.T, s db.Store) {
	limit := db.SignupLimit{Source: "198.51.100.9", Max: 3, Window: time.Hour}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
	)
	for i := range 8 {
		wg.Go(func() {
			_, _, err := s.SignUp(ctx, fmt.Sprintf("user%d", i), newKey("first", db.KindLogin), limit)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				created++
			case !errors.Is(err, db.ErrSignupRate):
				t.Errorf("SignUp: %v", err)
			}
		})
	}
	wg.Wait()
	if created != limit.Max {
		t.Errorf("%d concurrent sign-ups from one source succeeded, want %d", created, limit.Max)
	}
}

func testDeleteAccount(t *testing.T, s db.Store) {
	now := time.Now()
	alice, aliceFirst := createAccount(t, s, "alice")
	bob, bobFirst := createAccount(t, s, "bob")
	ca := addKey(t, s, alice.ID, newKey("ca", db.KindCA))
	pend := addPending(t, s, alice.ID, pending(newKey("desk", db.KindLogin), now), now)
	addPending(t, s, bob.ID, pending(with(newKey("alices", db.KindLogin), pend.Fingerprint), now), now)
	if _, err := s.AddRevocation(ctx, alice.ID, db.NewRevocation{Kind: db.RevokeKeyID, Value: "x"}); err != nil {
		t.Fatal(err)
	}
	entry := db.AccessEntry{Time: now, AccountID: alice.ID, Account: "alice", Service: "admin", Method: "key", Outcome: "allowed"}
	if err := s.AppendAccess(ctx, entry); err != nil {
		t.Fatal(err)
	}

	holdUntil := now.Add(90 * 24 * time.Hour)
	if err := s.DeleteAccount(ctx, alice.ID, holdUntil); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	_, err := s.AccountByID(ctx, alice.ID)
	wantErr(t, "AccountByID(deleted)", err, db.ErrNotFound)
	for _, fp := range []string{aliceFirst.Fingerprint, ca.Fingerprint} {
		_, err := s.KeyByFingerprint(ctx, fp)
		wantErr(t, "KeyByFingerprint of a deleted account's key", err, db.ErrNotFound)
	}
	if keys, _ := s.ListKeys(ctx, alice.ID); len(keys) != 0 {
		t.Errorf("keys of the deleted account: %+v", keys)
	}
	if names := pendingNames(t, s, alice.ID, now); len(names) != 0 {
		t.Errorf("pending keys of the deleted account: %v", names)
	}
	if revs, _ := s.ListRevocations(ctx, alice.ID); len(revs) != 0 {
		t.Errorf("revocations of the deleted account: %+v", revs)
	}
	// The access log keeps the decisions, under the account's name, with no account.
	entries, err := s.ListAccess(ctx, 0, "", 10)
	if err != nil || len(entries) != 1 || entries[0].Account != "alice" || entries[0].AccountID != 0 {
		t.Errorf("access log after the deletion: %+v, %v", entries, err)
	}
	// Bob's account is untouched, pending entries included.
	if got, err := s.KeyByFingerprint(ctx, bobFirst.Fingerprint); err != nil || got.AccountID != bob.ID {
		t.Errorf("bob's key: %+v, %v", got, err)
	}
	if names := pendingNames(t, s, bob.ID, now); len(names) != 1 {
		t.Errorf("bob's pending keys: %v", names)
	}
	// The keys are free at once; the name is held.
	if _, _, err := s.CreateAccount(ctx, "carol", with(newKey("first", db.KindLogin), aliceFirst.Fingerprint)); err != nil {
		t.Errorf("registering a deleted account's key: %v", err)
	}
	_, _, err = s.CreateAccount(ctx, "alice", newKey("first", db.KindLogin))
	wantErr(t, "CreateAccount(alice) while held", err, db.ErrNameHeld)
	_, _, err = s.SignUp(ctx, "alice", newKey("first", db.KindLogin), db.SignupLimit{Source: "192.0.2.1", Max: 5, Window: time.Hour})
	wantErr(t, "SignUp(alice) while held", err, db.ErrNameHeld)
	// Nothing can be added to the deleted account.
	_, err = s.AddPendingKey(ctx, alice.ID, pending(newKey("late", db.KindLogin), now), now)
	wantErr(t, "AddPendingKey to a deleted account", err, db.ErrNotFound)
	_, err = s.AddKey(ctx, alice.ID, newKey("late", db.KindLogin))
	wantErr(t, "AddKey to a deleted account", err, db.ErrNotFound)
	wantErr(t, "DeleteAccount twice", s.DeleteAccount(ctx, alice.ID, holdUntil), db.ErrNotFound)

	// Once the hold has passed, the name may be registered again.
	dave, _ := createAccount(t, s, "dave")
	if err := s.DeleteAccount(ctx, dave.ID, time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	again, _ := createAccount(t, s, "dave")
	if again.ID == dave.ID {
		t.Errorf("the new dave has the deleted dave's id %d", dave.ID)
	}
}

// testConcurrentActivations: the holder of a CA that four accounts added activates it in all
// four at once (and registers an account with it as a login key, too): one wins, cleanly.
func testConcurrentActivations(t *testing.T, s db.Store) {
	now := time.Now()
	ca := newKey("ca", db.KindCA)
	type entry struct{ account, id int64 }
	var entries []entry
	for _, name := range []string{"alice", "bob", "carol", "dave"} {
		a, _ := createAccount(t, s, name)
		p := addPending(t, s, a.ID, pending(with(newKey("ca", db.KindCA), ca.Fingerprint), now), now)
		entries = append(entries, entry{a.ID, p.ID})
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	record := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, db.ErrNotFound) && !errors.Is(err, db.ErrKeyTaken):
			t.Errorf("a losing activation failed with %v, want ErrNotFound or ErrKeyTaken", err)
		}
	}
	for range 2 {
		for _, e := range entries {
			wg.Go(func() {
				_, err := s.ActivatePendingKey(ctx, e.account, e.id, now)
				record(err)
			})
		}
	}
	wg.Go(func() {
		first := with(newKey("first", db.KindLogin), ca.Fingerprint)
		_, _, err := s.CreateAccount(ctx, "erin", first)
		record(err)
	})
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d activations or sign-ups won, want 1", wins)
	}
	if _, err := s.KeyByFingerprint(ctx, ca.Fingerprint); err != nil {
		t.Errorf("KeyByFingerprint: %v", err)
	}
}

func testConcurrentWrongClaims(t *testing.T, s db.Store) {
	now := time.Now()
	alice, _ := createAccount(t, s, "alice")
	bob, _ := createAccount(t, s, "bob")
	desk := newKey("desk", db.KindLogin)
	addPending(t, s, alice.ID, pending(desk, now), now)
	addPending(t, s, bob.ID, pending(with(newKey("desk", db.KindLogin), desk.Fingerprint), now), now)
	// Many guesses at once: each is counted, whatever else runs, and the entries go.
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			_, err := s.ClaimLoginKey(ctx, desk.Fingerprint, fmt.Sprintf("W%07d", i), now)
			if !errors.Is(err, db.ErrNotFound) {
				t.Errorf("a wrong claim: %v, want ErrNotFound", err)
			}
		})
	}
	wg.Wait()
	for _, a := range []db.Account{alice, bob} {
		if names := pendingNames(t, s, a.ID, now); len(names) != 0 {
			t.Errorf("%s's entry after 30 wrong codes: %v", a.Name, names)
		}
	}
}

// testPendingLoginKeyRecordsItsAdder: a pending key keeps the key or certificate and address of
// the connection that added it, for the claim to judge again; PendingLoginKey finds a login
// key's entry by fingerprint and code without counting a miss as a wrong attempt.
func testPendingLoginKeyRecordsItsAdder(t *testing.T, s db.Store) {
	alice, _ := createAccount(t, s, "alice")
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	pk := pending(newKey("desk", db.KindLogin), at)
	pk.AddedBy = "ssh-ed25519-cert-v01@openssh.com AAAAexample"
	pk.AddedFrom = "192.0.2.10"
	p := addPending(t, s, alice.ID, pk, at)
	ca := pending(newKey("team", db.KindCA), at)
	addPending(t, s, alice.ID, ca, at)

	got, err := s.PendingLoginKey(ctx, pk.Fingerprint, pk.Code, at)
	if err != nil || got.ID != p.ID || got.AccountID != alice.ID || got.AddedBy != pk.AddedBy || got.AddedFrom != pk.AddedFrom {
		t.Fatalf("PendingLoginKey = %+v, %v; want entry %d with its adder", got, err, p.ID)
	}
	list, _ := s.ListPendingKeys(ctx, alice.ID, at)
	if len(list) != 2 || list[0].AddedBy != pk.AddedBy || list[0].AddedFrom != pk.AddedFrom {
		t.Errorf("ListPendingKeys = %+v", list)
	}
	for name, lookup := range map[string]func() (db.PendingKey, error){
		"a wrong code":  func() (db.PendingKey, error) { return s.PendingLoginKey(ctx, pk.Fingerprint, "WRONG234", at) },
		"a CA's entry":  func() (db.PendingKey, error) { return s.PendingLoginKey(ctx, ca.Fingerprint, ca.Code, at) },
		"after expiry":  func() (db.PendingKey, error) { return s.PendingLoginKey(ctx, pk.Fingerprint, pk.Code, pk.ExpiresAt) },
		"another's key": func() (db.PendingKey, error) { return s.PendingLoginKey(ctx, ca.Fingerprint, pk.Code, at) },
	} {
		_, err := lookup()
		wantErr(t, name, err, db.ErrNotFound)
	}
	// Misses are not wrong attempts.
	if got, _ := s.PendingKeyByFingerprint(ctx, alice.ID, pk.Fingerprint, at); got.Attempts != 0 {
		t.Errorf("attempts after PendingLoginKey misses: %d, want 0", got.Attempts)
	}
}

// testUndoClaim: UndoClaim removes a claimed login key even when it has become the account's
// last login key (where RemoveKey keeps it), and only a login key of that account.
func testUndoClaim(t *testing.T, s db.Store) {
	now := time.Now()
	alice, first := createAccount(t, s, "alice")
	bob, bobFirst := createAccount(t, s, "bob")
	ca, err := s.AddKey(ctx, alice.ID, newKey("team", db.KindCA))
	if err != nil {
		t.Fatal(err)
	}
	desk := newKey("desk", db.KindLogin)
	entry := addPending(t, s, alice.ID, pending(desk, now), now)
	k, err := s.ClaimLoginKey(ctx, desk.Fingerprint, entry.Code, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveKey(ctx, alice.ID, first.ID); err != nil {
		t.Fatalf("removing alice's first key while desk is claimed: %v", err)
	}
	wantErr(t, "RemoveKey of the last login key", s.RemoveKey(ctx, alice.ID, k.ID), db.ErrLastLoginKey)

	wantErr(t, "UndoClaim in another account", s.UndoClaim(ctx, bob.ID, k.ID), db.ErrNotFound)
	wantErr(t, "UndoClaim of a CA", s.UndoClaim(ctx, alice.ID, ca.ID), db.ErrNotFound)
	if err := s.UndoClaim(ctx, alice.ID, k.ID); err != nil {
		t.Fatalf("UndoClaim of the last login key: %v", err)
	}
	_, err = s.KeyByFingerprint(ctx, desk.Fingerprint)
	wantErr(t, "KeyByFingerprint after UndoClaim", err, db.ErrNotFound)
	wantErr(t, "UndoClaim twice", s.UndoClaim(ctx, alice.ID, k.ID), db.ErrNotFound)
	for _, key := range []db.Key{ca, bobFirst} {
		if _, err := s.KeyByFingerprint(ctx, key.Fingerprint); err != nil {
			t.Errorf("key %s after UndoClaim: %v", key.Name, err)
		}
	}
}
