package db_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portico-sh/portico/db"
)

// trustContract is the contract of the principal map, KRL imports and KRL sources.
var trustContract = []struct {
	name string
	run  func(*testing.T, db.Store)
}{
	{"PrincipalMap", testPrincipalMap},
	{"PrincipalMapIsBounded", testPrincipalMapIsBounded},
	{"PrincipalMappingsLookup", testPrincipalMappingsLookup},
	{"FindRevocationKRLKinds", testFindRevocationKRLKinds},
	{"SerialRangesMatchLikeAScan", testSerialRangesMatchLikeAScan},
	{"ImportRevocations", testImportRevocations},
	{"ImportKeepsWhatASourceAlsoRevokes", testImportKeepsWhatASourceAlsoRevokes},
	{"RevocationsAreBounded", testRevocationsAreBounded},
	{"KRLSources", testKRLSources},
	{"KRLSourceFetches", testKRLSourceFetches},
	{"KRLSourceBackoff", testKRLSourceBackoff},
	{"ConcurrentKRLClaims", testConcurrentKRLClaims},
	{"KRLClaimsFairPerAccount", testKRLClaimsFairPerAccount},
	{"ListRevocationsPage", testListRevocationsPage},
}

func mapping(principal string, services ...string) db.NewPrincipalMapping {
	return db.NewPrincipalMapping{Principal: principal, Services: services}
}

func testPrincipalMap(t *testing.T, s db.Store) {
	alice, _ := createAccount(t, s, "alice")
	bob, _ := createAccount(t, s, "bob")
	list, err := s.ListPrincipalMappings(ctx, alice.ID)
	if err != nil || list == nil || len(list) != 0 {
		t.Fatalf("ListPrincipalMappings on an empty store = %#v, %v; want an empty list", list, err)
	}
	before := time.Now()
	web, created, err := s.SetPrincipalMapping(ctx, alice.ID, db.NewPrincipalMapping{
		Principal: "web-team", Services: []string{"pgs", "tuns"}, From: []string{"10.0.0.0/8", "!10.0.0.1"}, CAFingerprint: "SHA256:ca",
	})
	after := time.Now()
	if err != nil || !created || web.ID == 0 || web.AccountID != alice.ID || web.Principal != "web-team" ||
		!slices.Equal(web.Services, []string{"pgs", "tuns"}) || !slices.Equal(web.From, []string{"10.0.0.0/8", "!10.0.0.1"}) ||
		web.CAFingerprint != "SHA256:ca" {
		t.Fatalf("SetPrincipalMapping = %+v, %v, %v", web, created, err)
	}
	checkTime(t, "mapping CreatedAt", web.CreatedAt, before, after)
	if !web.UpdatedAt.Equal(web.CreatedAt) {
		t.Errorf("a new mapping's UpdatedAt %v is not its CreatedAt %v", web.UpdatedAt, web.CreatedAt)
	}
	peter, _, err := s.SetPrincipalMapping(ctx, alice.ID, mapping("peter", "admin"))
	if err != nil || peter.From != nil || peter.CAFingerprint != "" {
		t.Fatalf("SetPrincipalMapping(peter) = %+v, %v", peter, err)
	}
	if _, _, err := s.SetPrincipalMapping(ctx, bob.ID, mapping("web-team", "pipe")); err != nil {
		t.Fatal(err)
	}

	// Set again: the same row (id), changed; a principal is case-sensitive, as in sshd.
	web2, created, err := s.SetPrincipalMapping(ctx, alice.ID, mapping("web-team", "pipe"))
	if err != nil || created || web2.ID != web.ID || !slices.Equal(web2.Services, []string{"pipe"}) || web2.From != nil ||
		web2.CAFingerprint != "" || !web2.CreatedAt.Equal(web.CreatedAt) || web2.UpdatedAt.Before(web.UpdatedAt) {
		t.Errorf("SetPrincipalMapping again = %+v, created %v, %v; want id %d changed", web2, created, err, web.ID)
	}
	upper, created, err := s.SetPrincipalMapping(ctx, alice.ID, mapping("Web-Team", "pgs"))
	if err != nil || !created || upper.ID == web.ID {
		t.Errorf("SetPrincipalMapping(Web-Team) = %+v, %v, %v; want a principal of its own", upper, created, err)
	}

	list, err = s.ListPrincipalMappings(ctx, alice.ID)
	if err != nil || len(list) != 3 || list[0].Principal != "Web-Team" || list[1].Principal != "peter" || !reflect.DeepEqual(list[2], web2) {
		t.Errorf("ListPrincipalMappings = %+v, %v; want Web-Team, peter, web-team in byte order", list, err)
	}

	for _, bad := range []db.NewPrincipalMapping{
		{Principal: "", Services: []string{"pgs"}},
		{Principal: "x", Services: nil},
		{Principal: "x", Services: []string{"pgs,tuns"}},
		{Principal: "x\x00y", Services: []string{"pgs"}},
		{Principal: "\xff", Services: []string{"pgs"}},
		{Principal: "x", Services: []string{"pgs"}, From: []string{""}},
	} {
		if _, _, err := s.SetPrincipalMapping(ctx, alice.ID, bad); err == nil {
			t.Errorf("SetPrincipalMapping(%+v): no error", bad)
		}
	}
	_, _, err = s.SetPrincipalMapping(ctx, alice.ID+bob.ID+100, mapping("x", "pgs"))
	wantErr(t, "SetPrincipalMapping in a missing account", err, db.ErrNotFound)

	wantErr(t, "RemovePrincipalMapping of a principal not mapped", s.RemovePrincipalMapping(ctx, alice.ID, "nobody"), db.ErrNotFound)
	if err := s.RemovePrincipalMapping(ctx, alice.ID, "web-team"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "RemovePrincipalMapping again", s.RemovePrincipalMapping(ctx, alice.ID, "web-team"), db.ErrNotFound)
	if list, _ := s.ListPrincipalMappings(ctx, bob.ID); len(list) != 1 {
		t.Errorf("bob's map after alice unmapped her web-team: %+v", list)
	}
	// Deleting the account deletes its map.
	if err := s.DeleteAccount(ctx, alice.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if list, err := s.ListPrincipalMappings(ctx, alice.ID); err != nil || len(list) != 0 {
		t.Errorf("the map of a deleted account = %+v, %v", list, err)
	}
}

func testPrincipalMapIsBounded(t *testing.T, s db.Store) {
	alice, _ := createAccount(t, s, "alice")
	for i := range db.MaxPrincipalMappings {
		if _, _, err := s.SetPrincipalMapping(ctx, alice.ID, mapping(fmt.Sprintf("p%03d", i), "pgs")); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := s.SetPrincipalMapping(ctx, alice.ID, mapping("one-more", "pgs"))
	wantErr(t, "one mapping too many", err, db.ErrTooManyMappings)
	// Changing a mapped principal is still allowed.
	if _, created, err := s.SetPrincipalMapping(ctx, alice.ID, mapping("p000", "tuns")); err != nil || created {
		t.Errorf("changing a mapping at the bound: created %v, %v", created, err)
	}
}

func testPrincipalMappingsLookup(t *testing.T, s db.Store) {
	alice, _ := createAccount(t, s, "alice")
	bob, _ := createAccount(t, s, "bob")
	for _, p := range []string{"web-team", "peter", "ops"} {
		if _, _, err := s.SetPrincipalMapping(ctx, alice.ID, mapping(p, "pgs")); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.SetPrincipalMapping(ctx, bob.ID, mapping("carol", "pipe")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		account    int64
		principals []string
		want       []string
	}{
		{"none", alice.ID, nil, nil},
		{"services and unknown names", alice.ID, []string{"admin", "pgs", "stranger"}, nil},
		{"some", alice.ID, []string{"pgs", "web-team", "ops", "ops"}, []string{"ops", "web-team"}},
		{"another account's", alice.ID, []string{"carol"}, nil},
		{"not text", alice.ID, []string{"\xff", "a\x00b", "", "peter"}, []string{"peter"}},
		{"only the first distinct ones", alice.ID, append(slices.Repeat([]string{"x"}, 10), append(manyNames(db.MaxMappedLookups), "peter")...), nil},
		{"exact case", alice.ID, []string{"Peter", "PETER"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.PrincipalMappings(ctx, tt.account, tt.principals)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, m := range got {
				names = append(names, m.Principal)
			}
			if !slices.Equal(names, tt.want) {
				t.Errorf("PrincipalMappings(%q) = %q, want %q", tt.principals, names, tt.want)
			}
		})
	}
}

func manyNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("name%d", i)
	}
	return out
}

func krl(kind db.RevocationKind, value, ca string) db.NewRevocation {
	return db.NewRevocation{Kind: kind, Value: value, CAFingerprint: ca, Origin: db.OriginKRL}
}

func importAll(t *testing.T, s db.Store, accountID int64, rs ...db.NewRevocation) {
	t.Helper()
	n, err := s.ImportRevocations(ctx, accountID, rs)
	if err != nil || n != len(rs) {
		t.Fatalf("ImportRevocations of %d: %d, %v", len(rs), n, err)
	}
}

func testFindRevocationKRLKinds(t *testing.T, s db.Store) {
	alice, _ := createAccount(t, s, "alice")
	bob, _ := createAccount(t, s, "bob")
	importAll(t, s, alice.ID,
		krl(db.RevokeSerialRange, "100-199", "SHA256:ca1"),
		krl(db.RevokeSerialRange, "1-18446744073709551615", "SHA256:ca9"),
		krl(db.RevokeSerialRange, "18446744073709551610-18446744073709551615", "SHA256:ca1"),
		krl(db.RevokeSerialRange, "1000-1000", ""),
		krl(db.RevokeKeyID, "carol@example.com", "SHA256:ca1"),
		krl(db.RevokeKeyHash, "SHA1:hashofkey", ""),
		krl(db.RevokeKeyHash, "SHA256:caitself", ""),
		krl(db.RevokeSerial, "7", "SHA256:ca1"),
	)
	manual, err := s.AddRevocation(ctx, alice.ID, db.NewRevocation{Kind: db.RevokeSerial, Value: "150"})
	if err != nil {
		t.Fatal(err)
	}
	importAll(t, s, bob.ID, krl(db.RevokeSerialRange, "1-1000000", "SHA256:ca1"))
	all, err := s.ListRevocations(ctx, alice.ID)
	if err != nil || len(all) != 9 {
		t.Fatalf("ListRevocations = %+v, %v", all, err)
	}
	byValue := func(v string) string {
		for _, r := range all {
			if r.Value == v {
				return fmt.Sprintf("%d %s %s", r.ID, r.Kind, r.Value)
			}
		}
		return "missing " + v
	}
	for _, r := range all {
		if r.Value != "150" && (r.Origin != db.OriginKRL || r.SourceID != 0) {
			t.Errorf("imported %+v: want origin krl, no source", r)
		}
	}
	tests := []struct {
		name string
		cert db.CertRef
		want string // the value of the revocation found; "" none
	}{
		{"range start", db.CertRef{Serial: 100, CAFingerprint: "SHA256:ca1"}, "100-199"},
		{"range middle", db.CertRef{Serial: 137, CAFingerprint: "SHA256:ca1"}, "100-199"},
		{"range end", db.CertRef{Serial: 199, CAFingerprint: "SHA256:ca1"}, "100-199"},
		{"just before", db.CertRef{Serial: 99, CAFingerprint: "SHA256:ca1"}, ""},
		{"just after", db.CertRef{Serial: 200, CAFingerprint: "SHA256:ca1"}, ""},
		{"another CA's range", db.CertRef{Serial: 150, CAFingerprint: "SHA256:ca2"}, "150"},
		{"revoke comes before a KRL", db.CertRef{Serial: 150, CAFingerprint: "SHA256:ca1"}, "150"},
		{"whole range", db.CertRef{Serial: 1, CAFingerprint: "SHA256:ca9"}, "1-18446744073709551615"},
		{"whole range, top", db.CertRef{Serial: math.MaxUint64, CAFingerprint: "SHA256:ca9"}, "1-18446744073709551615"},
		{"whole range starts at 1", db.CertRef{Serial: 0, CAFingerprint: "SHA256:ca9"}, ""},
		{"top range", db.CertRef{Serial: math.MaxUint64 - 1, CAFingerprint: "SHA256:ca1"}, "18446744073709551610-18446744073709551615"},
		{"range of every CA", db.CertRef{Serial: 1000, CAFingerprint: "SHA256:other"}, "1000-1000"},
		{"key ID of its CA", db.CertRef{Serial: 5, KeyID: "carol@example.com", CAFingerprint: "SHA256:ca1"}, "carol@example.com"},
		{"key ID of another CA", db.CertRef{Serial: 5, KeyID: "carol@example.com", CAFingerprint: "SHA256:ca2"}, ""},
		{"SHA1 key hash", db.CertRef{Serial: 5, KeyFingerprint: "SHA256:k", KeySHA1: "SHA1:hashofkey", CAFingerprint: "SHA256:ca2"}, "SHA1:hashofkey"},
		{"the CA's key listed", db.CertRef{Serial: 5, KeyFingerprint: "SHA256:k", CAFingerprint: "SHA256:caitself"}, "SHA256:caitself"},
		{"the CA's SHA1 listed", db.CertRef{Serial: 5, CAFingerprint: "SHA256:x", CASHA1: "SHA1:hashofkey"}, "SHA1:hashofkey"},
		{"KRL serial", db.CertRef{Serial: 7, CAFingerprint: "SHA256:ca1"}, "7"},
		{"nothing", db.CertRef{Serial: 5, KeyID: "dave", KeyFingerprint: "SHA256:k", KeySHA1: "SHA1:k", CAFingerprint: "SHA256:ca2", CASHA1: "SHA1:c"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.FindRevocation(ctx, alice.ID, tt.cert)
			if tt.want == "" {
				wantErr(t, fmt.Sprintf("FindRevocation(%+v) = %+v", tt.cert, got), err, db.ErrNotFound)
				return
			}
			if err != nil || fmt.Sprintf("%d %s %s", got.ID, got.Kind, got.Value) != byValue(tt.want) {
				t.Errorf("FindRevocation(%+v) = %+v, %v; want %s", tt.cert, got, err, byValue(tt.want))
			}
			if tt.want == "150" && got != manual {
				t.Errorf("found %+v, want the revocation made by revoke %+v", got, manual)
			}
		})
	}
}

// testSerialRangesMatchLikeAScan: the bucketed lookup of serial ranges finds exactly what a scan
// of every range would, for ranges of every width and serials in, around and outside them.
func testSerialRangesMatchLikeAScan(t *testing.T, s db.Store) {
	alice, _ := createAccount(t, s, "alice")
	rng := rand.New(rand.NewPCG(1, 2))
	type span struct{ from, to uint64 }
	var spans []span
	var rs []db.NewRevocation
	for range 120 {
		width := uint64(1) << rng.IntN(64)
		from := rng.Uint64()
		if rng.IntN(4) == 0 {
			from = rng.Uint64N(1 << 20)
		}
		to := from + rng.Uint64N(width)
		if to < from {
			to = math.MaxUint64
		}
		from = max(from, 1)
		spans = append(spans, span{from, to})
		rs = append(rs, krl(db.RevokeSerialRange, db.SerialRange(from, to), "SHA256:ca"))
	}
	importAll(t, s, alice.ID, rs...)
	var probes []uint64
	for _, sp := range spans[:20] {
		probes = append(probes, sp.from, sp.to, sp.from-1, sp.to+1, sp.from+(sp.to-sp.from)/2)
	}
	for range 15 {
		probes = append(probes, rng.Uint64(), rng.Uint64N(1<<20))
	}
	for _, x := range probes {
		scan := slices.ContainsFunc(spans, func(sp span) bool { return sp.from <= x && x <= sp.to })
		_, err := s.FindRevocation(ctx, alice.ID, db.CertRef{Serial: x, CAFingerprint: "SHA256:ca"})
		if found := err == nil; found != scan || err != nil && !errors.Is(err, db.ErrNotFound) {
			t.Errorf("serial %d: found %v (%v), a scan finds %v", x, found, err, scan)
		}
	}
}

func testImportRevocations(t *testing.T, s db.Store) {
	alice, _ := createAccount(t, s, "alice")
	manual, err := s.AddRevocation(ctx, alice.ID, db.NewRevocation{Kind: db.RevokeSerial, Value: "5", CAFingerprint: "SHA256:ca"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.ImportRevocations(ctx, alice.ID, []db.NewRevocation{
		krl(db.RevokeSerial, "5", "SHA256:ca"), // the same as the manual one: left out
		krl(db.RevokeSerial, "6", "SHA256:ca"),
		krl(db.RevokeSerial, "6", "SHA256:ca"), // twice in one import: once
		krl(db.RevokeSerial, "0006", "SHA256:ca"),
		krl(db.RevokeKeyID, "bob", "SHA256:ca"),
	})
	if err != nil || n != 2 {
		t.Fatalf("ImportRevocations = %d, %v; want 2 added", n, err)
	}
	// Importing again adds nothing.
	if n, err := s.ImportRevocations(ctx, alice.ID, []db.NewRevocation{krl(db.RevokeSerial, "6", "SHA256:ca")}); err != nil || n != 0 {
		t.Errorf("the same import again = %d, %v; want 0", n, err)
	}
	// One bad revocation: nothing is added.
	_, err = s.ImportRevocations(ctx, alice.ID, []db.NewRevocation{krl(db.RevokeSerial, "8", "SHA256:ca"), krl(db.RevokeSerialRange, "9-1", "SHA256:ca")})
	if err == nil {
		t.Error("an import with a bad range: no error")
	}
	list, err := s.ListRevocations(ctx, alice.ID)
	if err != nil || len(list) != 3 || list[0] != manual {
		t.Errorf("revocations after the imports = %+v, %v", list, err)
	}
	_, err = s.ImportRevocations(ctx, alice.ID+100, []db.NewRevocation{krl(db.RevokeSerial, "8", "SHA256:ca")})
	wantErr(t, "ImportRevocations into a missing account", err, db.ErrNotFound)
}

// testImportKeepsWhatASourceAlsoRevokes: an import from stdin of a revocation that a KRL source
// also makes adds it: the source's revocations come and go with its refreshes, and when the
// source's KRL no longer revokes it, the imported one must stay. It was left out as a repeat,
// and the refresh lifted it.
func testImportKeepsWhatASourceAlsoRevokes(t *testing.T, s db.Store) {
	alice, _ := createAccount(t, s, "alice")
	src := db.NewKRLSource{URL: "https://krl.example/krl", Every: time.Hour}
	if _, err := s.SetKRLSource(ctx, alice.ID, src, "h1", []db.NewRevocation{krl(db.RevokeSerial, "5", "SHA256:ca")}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ImportRevocations(ctx, alice.ID, []db.NewRevocation{krl(db.RevokeSerial, "5", "SHA256:ca")}); err != nil || n != 1 {
		t.Errorf("ImportRevocations of what the source revokes = %d, %v; want 1 added", n, err)
	}
	if _, err := s.SetKRLSource(ctx, alice.ID, src, "h2", []db.NewRevocation{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	ref := db.CertRef{Serial: 5, KeyID: "bob", KeyFingerprint: "SHA256:key", KeySHA1: "SHA1:key", CAFingerprint: "SHA256:ca", CASHA1: "SHA1:ca"}
	if _, err := s.FindRevocation(ctx, alice.ID, ref); err != nil {
		t.Errorf("serial 5 after the source stopped revoking it: %v; want the imported revocation", err)
	}
}

// testRevocationsAreBounded: the bound on an account's revocations (MaxRevocations; 500 here, so
// that the test writes few rows) holds for imports, revoke and KRL sources, and a refused
// import adds nothing.
func testRevocationsAreBounded(t *testing.T, s db.Store) {
	const bound = 500
	db.SetRevocationBound(s, bound)
	alice, _ := createAccount(t, s, "alice")
	many := make([]db.NewRevocation, bound+1)
	for i := range many {
		many[i] = krl(db.RevokeSerial, fmt.Sprint(i+1), "SHA256:ca")
	}
	_, err := s.ImportRevocations(ctx, alice.ID, many)
	wantErr(t, "importing one revocation too many", err, db.ErrTooManyRevocations)
	if list, _, err := s.ListRevocationsPage(ctx, alice.ID, 0, 1); err != nil || len(list) != 0 {
		t.Fatalf("a refused import added %+v, %v", list, err)
	}
	importAll(t, s, alice.ID, many[:bound]...)
	_, err = s.AddRevocation(ctx, alice.ID, db.NewRevocation{Kind: db.RevokeKeyID, Value: "bob"})
	wantErr(t, "revoke past the bound", err, db.ErrTooManyRevocations)
	_, err = s.SetKRLSource(ctx, alice.ID, db.NewKRLSource{URL: "https://x/krl"}, "h", []db.NewRevocation{krl(db.RevokeKeyID, "bob", "")}, time.Now())
	wantErr(t, "a KRL source past the bound", err, db.ErrTooManyRevocations)
	if sources, _ := s.ListKRLSources(ctx, alice.ID); len(sources) != 0 {
		t.Errorf("a refused source was kept: %+v", sources)
	}
	// Another account has its own bound.
	bob, _ := createAccount(t, s, "bob")
	importAll(t, s, bob.ID, many[:10]...)
	// Room made by a removal can be used again.
	list, _, _ := s.ListRevocationsPage(ctx, alice.ID, 0, 1)
	if err := s.RemoveRevocation(ctx, alice.ID, list[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRevocation(ctx, alice.ID, db.NewRevocation{Kind: db.RevokeKeyID, Value: "bob"}); err != nil {
		t.Errorf("revoke once there is room again: %v", err)
	}
	if _, err := s.FindRevocation(ctx, alice.ID, db.CertRef{Serial: bound, CAFingerprint: "SHA256:ca"}); err != nil {
		t.Errorf("the last serial: %v", err)
	}
}

func testKRLSources(t *testing.T, s db.Store) {
	alice, _ := createAccount(t, s, "alice")
	bob, _ := createAccount(t, s, "bob")
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	src, err := s.SetKRLSource(ctx, alice.ID, db.NewKRLSource{URL: "https://cert.example.com/krl", Every: 5 * time.Minute}, "hash1",
		[]db.NewRevocation{krl(db.RevokeKeyID, "carol", "SHA256:ca"), krl(db.RevokeSerial, "9", "SHA256:ca"), krl(db.RevokeSerial, "9", "SHA256:ca")}, at)
	if err != nil {
		t.Fatal(err)
	}
	if src.ID == 0 || src.URL != "https://cert.example.com/krl" || src.Every != 5*time.Minute || src.Entries != 2 ||
		src.ContentHash != "hash1" || !src.FetchedAt.Equal(at) || src.NextFetchAt == nil || !src.NextFetchAt.Equal(at.Add(5*time.Minute)) ||
		src.LeaseUntil != nil || src.LastError != "" {
		t.Errorf("SetKRLSource = %+v", src)
	}
	first, _ := s.ListRevocations(ctx, alice.ID)
	if len(first) != 2 || first[0].SourceID != src.ID || first[0].Origin != db.OriginKRL {
		t.Fatalf("the source's revocations = %+v", first)
	}
	// The same URL again: the same source, its revocations replaced (new ids), no longer
	// scheduled.
	src2, err := s.SetKRLSource(ctx, alice.ID, db.NewKRLSource{URL: "https://cert.example.com/krl", CAFingerprint: "SHA256:ca"}, "hash2",
		[]db.NewRevocation{krl(db.RevokeKeyID, "dave", "SHA256:ca")}, at.Add(time.Minute))
	if err != nil || src2.ID != src.ID || src2.Entries != 1 || src2.NextFetchAt != nil || src2.Every != 0 ||
		src2.CAFingerprint != "SHA256:ca" || src2.ContentHash != "hash2" {
		t.Fatalf("SetKRLSource again = %+v, %v", src2, err)
	}
	second, _ := s.ListRevocations(ctx, alice.ID)
	if len(second) != 1 || second[0].Value != "dave" || second[0].ID <= first[1].ID {
		t.Errorf("after the second import: %+v; want only dave, with a new id", second)
	}
	// A manual revocation stays; removing an entry of the source counts.
	manual, err := s.AddRevocation(ctx, alice.ID, db.NewRevocation{Kind: db.RevokeKeyID, Value: "eve"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveRevocation(ctx, alice.ID, second[0].ID); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListKRLSources(ctx, alice.ID); len(list) != 1 || list[0].Entries != 0 {
		t.Errorf("sources after removing the source's one revocation: %+v", list)
	}
	// Sources are bounded and per account.
	for i := 1; i < db.MaxKRLSources; i++ {
		if _, err := s.SetKRLSource(ctx, alice.ID, db.NewKRLSource{URL: fmt.Sprintf("https://x/%d", i)}, "h", nil, at); err != nil {
			t.Fatal(err)
		}
	}
	_, err = s.SetKRLSource(ctx, alice.ID, db.NewKRLSource{URL: "https://x/one-more"}, "h", nil, at)
	wantErr(t, "one KRL source too many", err, db.ErrTooManySources)
	if _, err := s.SetKRLSource(ctx, bob.ID, db.NewKRLSource{URL: "https://cert.example.com/krl"}, "h",
		[]db.NewRevocation{krl(db.RevokeKeyID, "zed", "")}, at); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "RemoveKRLSource of another account's", s.RemoveKRLSource(ctx, bob.ID, src.ID), db.ErrNotFound)
	// Removing a source removes its revocations, not others.
	if _, err := s.SetKRLSource(ctx, alice.ID, db.NewKRLSource{URL: "https://cert.example.com/krl"}, "h3",
		[]db.NewRevocation{krl(db.RevokeKeyID, "fred", "")}, at); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveKRLSource(ctx, alice.ID, src.ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "RemoveKRLSource again", s.RemoveKRLSource(ctx, alice.ID, src.ID), db.ErrNotFound)
	if list, _ := s.ListRevocations(ctx, alice.ID); len(list) != 1 || list[0] != manual {
		t.Errorf("revocations after removing the source: %+v; want only %+v", list, manual)
	}
	if list, _ := s.ListRevocations(ctx, bob.ID); len(list) != 1 {
		t.Errorf("bob's revocations: %+v", list)
	}
	for _, bad := range []db.NewKRLSource{{URL: ""}, {URL: "x", Every: -time.Second}, {URL: "a\x00"}} {
		if _, err := s.SetKRLSource(ctx, alice.ID, bad, "h", nil, at); err == nil {
			t.Errorf("SetKRLSource(%+v): no error", bad)
		}
	}
}

func testKRLSourceFetches(t *testing.T, s db.Store) {
	alice, _ := createAccount(t, s, "alice")
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	once, err := s.SetKRLSource(ctx, alice.ID, db.NewKRLSource{URL: "https://once/krl"}, "h", nil, at)
	if err != nil {
		t.Fatal(err)
	}
	src, err := s.SetKRLSource(ctx, alice.ID, db.NewKRLSource{URL: "https://cert/krl", Every: time.Minute}, "h1",
		[]db.NewRevocation{krl(db.RevokeKeyID, "carol", "")}, at)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.ClaimDueKRLSource(ctx, at.Add(59*time.Second), at.Add(2*time.Minute))
	wantErr(t, "claim before it is due", err, db.ErrNotFound)
	now := at.Add(time.Minute)
	lease := now.Add(time.Minute)
	claimed, err := s.ClaimDueKRLSource(ctx, now, lease)
	if err != nil || claimed.ID != src.ID || claimed.LeaseUntil == nil || !claimed.LeaseUntil.Equal(lease) || claimed.AccountID != alice.ID {
		t.Fatalf("ClaimDueKRLSource = %+v, %v", claimed, err)
	}
	_, err = s.ClaimDueKRLSource(ctx, now, lease)
	wantErr(t, "claim while it is held", err, db.ErrNotFound)

	// A failed fetch keeps the revocations and says why.
	if err := s.FinishKRLFetch(ctx, src.ID, lease, db.KRLFetch{At: now, Err: "HTTP 500"}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "finishing twice", s.FinishKRLFetch(ctx, src.ID, lease, db.KRLFetch{At: now}), db.ErrLeaseLost)
	list, _ := s.ListKRLSources(ctx, alice.ID)
	got := list[1]
	if got.LastError != "HTTP 500" || got.LastErrorAt == nil || got.Entries != 1 || got.LeaseUntil != nil ||
		!got.NextFetchAt.Equal(now.Add(time.Minute)) || got.ContentHash != "h1" {
		t.Errorf("after a failed fetch: %+v", got)
	}
	if list[0].ID != once.ID || list[0].NextFetchAt != nil {
		t.Errorf("the source imported once: %+v", list[0])
	}

	// An unchanged KRL: nothing replaced, the error cleared.
	revs, _ := s.ListRevocations(ctx, alice.ID)
	now = now.Add(time.Minute)
	lease = now.Add(time.Minute)
	if _, err := s.ClaimDueKRLSource(ctx, now, lease); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishKRLFetch(ctx, src.ID, lease, db.KRLFetch{At: now, ContentHash: "h1"}); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.ListRevocations(ctx, alice.ID); !slices.Equal(again, revs) {
		t.Errorf("an unchanged KRL replaced the revocations: %+v, was %+v", again, revs)
	}
	// A changed KRL replaces them.
	now = now.Add(time.Minute)
	lease = now.Add(time.Minute)
	if _, err := s.ClaimDueKRLSource(ctx, now, lease); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishKRLFetch(ctx, src.ID, lease, db.KRLFetch{At: now, ContentHash: "h2",
		Entries: []db.NewRevocation{krl(db.RevokeKeyID, "dave", ""), krl(db.RevokeSerialRange, "10-20", "SHA256:ca")}}); err != nil {
		t.Fatal(err)
	}
	revs, _ = s.ListRevocations(ctx, alice.ID)
	if len(revs) != 2 || revs[0].Value != "dave" || revs[1].Value != "10-20" {
		t.Errorf("after a changed KRL: %+v", revs)
	}
	list, _ = s.ListKRLSources(ctx, alice.ID)
	if got := list[1]; got.LastError != "" || got.Entries != 2 || got.ContentHash != "h2" || !got.FetchedAt.Equal(now) {
		t.Errorf("the source after a changed KRL: %+v", got)
	}
	if _, err := s.FindRevocation(ctx, alice.ID, db.CertRef{Serial: 15, CAFingerprint: "SHA256:ca"}); err != nil {
		t.Errorf("the fetched range: %v", err)
	}

	// A lease that expired can be taken over; the first holder then finds it lost.
	now = now.Add(time.Minute)
	lease1 := now.Add(time.Second)
	if _, err := s.ClaimDueKRLSource(ctx, now, lease1); err != nil {
		t.Fatal(err)
	}
	lease2 := now.Add(time.Minute)
	if _, err := s.ClaimDueKRLSource(ctx, now.Add(2*time.Second), lease2); err != nil {
		t.Fatalf("taking over an expired lease: %v", err)
	}
	wantErr(t, "finishing with a lost lease", s.FinishKRLFetch(ctx, src.ID, lease1, db.KRLFetch{At: now, ContentHash: "x"}), db.ErrLeaseLost)
	// A source removed during its fetch stays removed.
	if err := s.RemoveKRLSource(ctx, alice.ID, src.ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "finishing a removed source", s.FinishKRLFetch(ctx, src.ID, lease2, db.KRLFetch{At: now, ContentHash: "y",
		Entries: []db.NewRevocation{krl(db.RevokeKeyID, "ghost", "")}}), db.ErrLeaseLost)
	if revs, _ := s.ListRevocations(ctx, alice.ID); len(revs) != 0 {
		t.Errorf("revocations after the source was removed: %+v", revs)
	}
}

// testKRLSourceBackoff: each failure in a row doubles the wait before the next fetch; a success
// brings it back to the source's interval.
func testKRLSourceBackoff(t *testing.T, s db.Store) {
	alice, _ := createAccount(t, s, "alice")
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	src, err := s.SetKRLSource(ctx, alice.ID, db.NewKRLSource{URL: "https://slow/krl", Every: time.Minute}, "h", nil, at)
	if err != nil {
		t.Fatal(err)
	}
	now := at.Add(time.Minute)
	for i, wait := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute} {
		lease := now.Add(time.Minute)
		if _, err := s.ClaimDueKRLSource(ctx, now, lease); err != nil {
			t.Fatalf("failure %d: claim at %v: %v", i+1, now, err)
		}
		if err := s.FinishKRLFetch(ctx, src.ID, lease, db.KRLFetch{At: now, Err: "timed out"}); err != nil {
			t.Fatal(err)
		}
		list, _ := s.ListKRLSources(ctx, alice.ID)
		if got := list[0]; got.Failures != i+1 || !got.NextFetchAt.Equal(now.Add(wait)) {
			t.Fatalf("after failure %d: failures %d, next fetch %v; want %v", i+1, got.Failures, got.NextFetchAt, now.Add(wait))
		}
		now = now.Add(wait)
	}
	lease := now.Add(time.Minute)
	if _, err := s.ClaimDueKRLSource(ctx, now, lease); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishKRLFetch(ctx, src.ID, lease, db.KRLFetch{At: now, ContentHash: "h"}); err != nil {
		t.Fatal(err)
	}
	list, _ := s.ListKRLSources(ctx, alice.ID)
	if got := list[0]; got.Failures != 0 || !got.NextFetchAt.Equal(now.Add(time.Minute)) || got.LastError != "" {
		t.Errorf("after a success: %+v", got)
	}
}

func testConcurrentKRLClaims(t *testing.T, s db.Store) {
	alice, _ := createAccount(t, s, "alice")
	at := time.Now().Add(-time.Hour)
	if _, err := s.SetKRLSource(ctx, alice.ID, db.NewKRLSource{URL: "https://cert/krl", Every: time.Minute}, "h", nil, at); err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		claims int
	)
	now := time.Now()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.ClaimDueKRLSource(ctx, now, now.Add(time.Minute))
			switch {
			case err == nil:
				mu.Lock()
				claims++
				mu.Unlock()
			case !errors.Is(err, db.ErrNotFound):
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if claims != 1 {
		t.Errorf("%d of 8 concurrent claims took the source, want 1", claims)
	}
}

func testListRevocationsPage(t *testing.T, s db.Store) {
	alice, _ := createAccount(t, s, "alice")
	var rs []db.NewRevocation
	for i := range 7 {
		rs = append(rs, krl(db.RevokeSerial, fmt.Sprint(i+1), ""))
	}
	importAll(t, s, alice.ID, rs...)
	all, _ := s.ListRevocations(ctx, alice.ID)
	page, total, err := s.ListRevocationsPage(ctx, alice.ID, 0, 3)
	if err != nil || total != 7 || len(page) != 3 || page[0] != all[0] || page[2] != all[2] {
		t.Fatalf("first page = %+v, %d, %v", page, total, err)
	}
	page, total, err = s.ListRevocationsPage(ctx, alice.ID, page[2].ID, 10)
	if err != nil || total != 7 || len(page) != 4 || page[0] != all[3] || page[3] != all[6] {
		t.Errorf("second page = %+v, %d, %v", page, total, err)
	}
}

// testKRLClaimsFairPerAccount: while one source of an account is held, its other due sources
// are passed over and another account's is taken, even when the held account's are due first;
// once the fetch is finished (or its lease ran out) the next of its sources may be taken.
func testKRLClaimsFairPerAccount(t *testing.T, s db.Store) {
	mallory, _ := createAccount(t, s, "mallory")
	alice, _ := createAccount(t, s, "alice")
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	var many []int64
	for i := range 3 {
		src, err := s.SetKRLSource(ctx, mallory.ID, db.NewKRLSource{URL: fmt.Sprintf("https://slow/%d", i), Every: time.Minute}, "h", nil, at)
		if err != nil {
			t.Fatal(err)
		}
		many = append(many, src.ID)
	}
	late, err := s.SetKRLSource(ctx, alice.ID, db.NewKRLSource{URL: "https://fast/krl", Every: time.Minute}, "h", nil, at.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	now := at.Add(2 * time.Minute)
	lease := now.Add(time.Minute)
	first, err := s.ClaimDueKRLSource(ctx, now, lease)
	if err != nil || first.ID != many[0] {
		t.Fatalf("first claim = %+v, %v; want mallory's first source %d", first, err, many[0])
	}
	second, err := s.ClaimDueKRLSource(ctx, now, lease)
	if err != nil || second.ID != late.ID {
		t.Fatalf("second claim = %+v, %v; want alice's source %d, not another of mallory's", second, err, late.ID)
	}
	_, err = s.ClaimDueKRLSource(ctx, now, lease)
	wantErr(t, "claim while each account has one held", err, db.ErrNotFound)
	if err := s.FinishKRLFetch(ctx, first.ID, lease, db.KRLFetch{At: now, Err: "timed out"}); err != nil {
		t.Fatal(err)
	}
	next, err := s.ClaimDueKRLSource(ctx, now, lease)
	if err != nil || next.ID != many[1] {
		t.Fatalf("claim after mallory's fetch finished = %+v, %v; want source %d", next, err, many[1])
	}
	// A lease that ran out (a gateway that died mid-fetch) holds nothing back.
	after := lease.Add(time.Second)
	taken, err := s.ClaimDueKRLSource(ctx, after, after.Add(time.Minute))
	if err != nil || taken.AccountID != mallory.ID {
		t.Fatalf("claim after the leases ran out = %+v, %v; want one of mallory's", taken, err)
	}
}
