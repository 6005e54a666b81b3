package ops_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/krl"
	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/services/admin/ops"
	"github.com/portico-sh/portico/services/admin/ops/opstest"
)

// trustEnv is alice with a login key and two CAs (team-ca, other-ca), a pending CA, and bob with
// his own CA.
type trustEnv struct {
	o                 *ops.Ops
	store             db.Store
	alice, bob        auth.Grant
	team, other, bobs gossh.Signer
	pending           gossh.Signer
	user              gossh.Signer // the key certificates are issued for
}

func newTrustEnv(t testing.TB, cfg ops.Config) *trustEnv {
	t.Helper()
	_, store := opstest.New(t)
	o := ops.New(store, cfg)
	e := &trustEnv{o: o, store: store, team: opstest.Signer(t, 11), other: opstest.Signer(t, 12), bobs: opstest.Signer(t, 13),
		pending: opstest.Signer(t, 14), user: opstest.Signer(t, 20)}
	e.alice = opstest.Register(t, o, "alice", opstest.Key(t, 1))
	e.bob = opstest.Register(t, o, "bob", opstest.Key(t, 2))
	opstest.AddCA(t, o, e.alice, e.team, opstest.Line(e.team.PublicKey(), "team-ca"), "")
	opstest.AddCA(t, o, e.alice, e.other, opstest.Line(e.other.PublicKey(), "other-ca"), "")
	opstest.AddCA(t, o, e.bob, e.bobs, opstest.Line(e.bobs.PublicKey(), "bob-ca"), "")
	if _, err := o.AddKey(ctx, e.alice, opstest.Line(e.pending.PublicKey(), "pending-ca"), "", true); err != nil {
		t.Fatal(err)
	}
	return e
}

// cert is a certificate for the user's key from ca with serial, key ID and principals.
func (e *trustEnv) cert(t *testing.T, ca gossh.Signer, serial uint64, keyID string, principals ...string) *gossh.Certificate {
	t.Helper()
	c := &gossh.Certificate{
		Key: e.user.PublicKey(), Serial: serial, CertType: gossh.UserCert, KeyId: keyID, ValidPrincipals: principals,
		ValidAfter: uint64(time.Now().Add(-time.Hour).Unix()), ValidBefore: uint64(time.Now().Add(time.Hour).Unix()),
	}
	if err := c.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	return c
}

// authenticate decides cert for service from addr, as the gateway would, on the real store.
func (e *trustEnv) authenticate(cert *gossh.Certificate, service auth.Service, addr string) (auth.Grant, error) {
	return auth.New(e.store, auth.Options{}).Authenticate(ctx, auth.Attempt{Key: cert, Service: service, RemoteAddr: tcpAddr(addr)})
}

func tcpAddr(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }

func sha1Of(k gossh.PublicKey) [sha1.Size]byte { return sha1.Sum(k.Marshal()) }

func TestPrincipals(t *testing.T) {
	e := newTrustEnv(t, opstest.Config)
	list, err := e.o.ListPrincipals(ctx, e.alice)
	if err != nil || list == nil || len(list) != 0 {
		t.Fatalf("ListPrincipals = %#v, %v", list, err)
	}
	web, created, err := e.o.SetPrincipal(ctx, e.alice, ops.PrincipalRequest{Principal: "web-team", Services: "tuns,pgs", From: "192.0.2.0/24, !192.0.2.66", CA: "team-ca"})
	if err != nil || !created || web.Principal != "web-team" || !slices.Equal(web.Services, []string{"pgs", "tuns"}) ||
		!slices.Equal(web.From, []string{"192.0.2.0/24", "!192.0.2.66"}) || web.CAName != "team-ca" || web.CAFingerprint != auth.Fingerprint(e.team.PublicKey()) {
		t.Fatalf("SetPrincipal = %+v, %v, %v", web, created, err)
	}
	if _, created, err := e.o.SetPrincipal(ctx, e.alice, ops.PrincipalRequest{Principal: "peter", Services: "admin,pgs"}); err != nil || !created {
		t.Fatal(err)
	}

	// Through the real store, the gateway's decision follows the map.
	g, err := e.authenticate(e.cert(t, e.team, 1, "carol", "web-team"), auth.Tuns, "192.0.2.10:5000")
	if err != nil || !slices.Equal(g.Services, []auth.Service{auth.PGS, auth.Tuns}) {
		t.Errorf("web-team from team-ca: %+v, %v", g.Services, err)
	}
	if _, err := e.authenticate(e.cert(t, e.team, 1, "carol", "web-team"), auth.PGS, "192.0.2.66:5000"); !isRefusal(err, auth.ReasonSourceAddress) {
		t.Errorf("web-team from a --from address left out: %v", err)
	}
	if _, err := e.authenticate(e.cert(t, e.other, 1, "carol", "web-team"), auth.PGS, "192.0.2.10:5000"); !isRefusal(err, auth.ReasonDoesNotGrant) {
		t.Errorf("web-team from other-ca (the mapping is for team-ca): %v", err)
	}
	if g, err := e.authenticate(e.cert(t, e.other, 1, "peter", "peter"), auth.Admin, "198.51.100.1:5000"); err != nil || !g.IsAdmin() {
		t.Errorf("peter: %+v, %v", g, err)
	}
	if _, err := e.authenticate(e.cert(t, e.bobs, 1, "carol", "web-team"), auth.PGS, "192.0.2.10:5000"); !isRefusal(err, auth.ReasonDoesNotGrant) {
		t.Errorf("web-team from bob's CA (alice's map): %v", err)
	}

	// Changing a mapping takes effect at once.
	changed, created, err := e.o.SetPrincipal(ctx, e.alice, ops.PrincipalRequest{Principal: "web-team", Services: "pipe"})
	if err != nil || created || changed.From != nil || changed.CAFingerprint != "" {
		t.Fatalf("SetPrincipal again = %+v, %v, %v", changed, created, err)
	}
	if _, err := e.authenticate(e.cert(t, e.team, 1, "carol", "web-team"), auth.Tuns, "192.0.2.10:5000"); !isRefusal(err, auth.ReasonDoesNotGrant) {
		t.Errorf("tuns after web-team was changed to pipe: %v", err)
	}
	list, err = e.o.ListPrincipals(ctx, e.alice)
	if err != nil || len(list) != 2 || list[0].Principal != "peter" || !slices.Equal(list[0].Services, []string{"admin"}) || list[1].Principal != "web-team" {
		t.Errorf("ListPrincipals = %+v, %v", list, err)
	}
	if bobs, _ := e.o.ListPrincipals(ctx, e.bob); len(bobs) != 0 {
		t.Errorf("bob sees %+v", bobs)
	}

	bad := []struct {
		req   ops.PrincipalRequest
		kind  ops.Kind
		parts []string
	}{
		{ops.PrincipalRequest{Principal: "admin", Services: "pgs"}, ops.Invalid, []string{"service name"}},
		{ops.PrincipalRequest{Principal: "PIPE", Services: "pgs"}, ops.Invalid, []string{"service name"}},
		{ops.PrincipalRequest{Principal: "web team", Services: "pgs"}, ops.Invalid, []string{"space"}},
		{ops.PrincipalRequest{Principal: "x\x1b[2J", Services: "pgs"}, ops.Invalid, []string{"unprintable"}},
		{ops.PrincipalRequest{Principal: "ops", Services: "pgs,git"}, ops.Invalid, []string{`"git" is not a service`}},
		{ops.PrincipalRequest{Principal: "ops", Services: ""}, ops.Invalid, []string{"not a service"}},
		{ops.PrincipalRequest{Principal: "ops", Services: "pgs", From: "example.com"}, ops.Invalid, []string{"--from"}},
		{ops.PrincipalRequest{Principal: "ops", Services: "pgs", From: "10.0.0.1/8"}, ops.Invalid, []string{"host bits"}},
		{ops.PrincipalRequest{Principal: "ops", Services: "pgs", CA: "nope"}, ops.NotFound, []string{`no certificate authority named "nope"`}},
		{ops.PrincipalRequest{Principal: "ops", Services: "pgs", CA: "pending-ca"}, ops.Invalid, []string{"waits to be claimed"}},
		{ops.PrincipalRequest{Principal: "ops", Services: "pgs", CA: "bob-ca"}, ops.NotFound, []string{"bob-ca"}},
	}
	for _, b := range bad {
		_, _, err := e.o.SetPrincipal(ctx, e.alice, b.req)
		wantErr(t, err, b.kind, b.parts...)
		if err != nil && strings.ContainsRune(err.Error(), 0x1b) {
			t.Errorf("error %q carries an escape", err)
		}
	}
	// Only a connection that may manage the account maps principals.
	pgsOnly := e.alice
	pgsOnly.Services = []auth.Service{auth.PGS}
	_, _, err = e.o.SetPrincipal(ctx, pgsOnly, ops.PrincipalRequest{Principal: "ops", Services: "admin"})
	wantErr(t, err, ops.Refused, "does not grant admin")
	_, err = e.o.ListPrincipals(ctx, pgsOnly)
	wantErr(t, err, ops.Refused)

	wantErr(t, e.o.RemovePrincipal(ctx, e.alice, "nobody"), ops.NotFound, "not mapped")
	wantErr(t, e.o.RemovePrincipal(ctx, e.alice, "no\xffbody\x00"), ops.NotFound, "not mapped")
	if err := e.o.RemovePrincipal(ctx, e.alice, "peter"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.authenticate(e.cert(t, e.other, 1, "peter", "peter"), auth.Admin, "198.51.100.1:5000"); !isRefusal(err, auth.ReasonDoesNotGrant) {
		t.Errorf("peter after his mapping was removed: %v", err)
	}
}

func isRefusal(err error, reason auth.Reason) bool {
	r, ok := auth.AsRefusal(err)
	return ok && r.Reason == reason
}

// krlOf is a KRL with the given sections, signed by signers.
func krlOf(t *testing.T, sections []krl.KRLSection, signers ...gossh.Signer) []byte {
	t.Helper()
	b, err := (&krl.KRL{Sections: sections}).Marshal(rand.Reader, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func certs(ca gossh.PublicKey, subs ...krl.KRLCertificateSubsection) krl.KRLSection {
	return &krl.KRLCertificateSection{CA: ca, Sections: subs}
}

func serials(s ...uint64) *krl.KRLCertificateSerialList {
	l := krl.KRLCertificateSerialList(s)
	return &l
}

func keyIDs(ids ...string) *krl.KRLCertificateKeyID {
	l := krl.KRLCertificateKeyID(ids)
	return &l
}

func TestImportKRL(t *testing.T) {
	e := newTrustEnv(t, opstest.Config)
	team := e.team.PublicKey()
	stolen := opstest.Key(t, 30)
	sha1Revoked := opstest.Key(t, 31)
	data := krlOf(t, []krl.KRLSection{
		certs(team, serials(5, 7), &krl.KRLCertificateSerialRange{Min: 100, Max: 199}, keyIDs("carol@example.com")),
		&krl.KRLExplicitKeySection{stolen},
		&krl.KRLFingerprintSection{sha1Of(sha1Revoked)},
	})
	res, err := e.o.ImportKRL(ctx, e.alice, data, "")
	if err != nil || res.Entries != 6 || res.Added != 6 || res.Source != nil {
		t.Fatalf("ImportKRL = %+v, %v", res, err)
	}
	revs, err := e.o.ListRevocations(ctx, e.alice)
	if err != nil || len(revs) != 6 {
		t.Fatalf("revocations = %+v, %v", revs, err)
	}
	for _, r := range revs {
		if r.Origin != "krl" || r.Source != nil {
			t.Errorf("imported revocation %+v: want origin krl", r)
		}
		if (r.Kind == "serial" || r.Kind == "serial_range" || r.Kind == "key_id") && (r.CAName != "team-ca" || r.CAFingerprint != auth.Fingerprint(team)) {
			t.Errorf("imported revocation %+v: want team-ca", r)
		}
	}
	for _, c := range []struct {
		name    string
		cert    *gossh.Certificate
		revoked bool
	}{
		{"serial in the range", e.cert(t, e.team, 150, "x", "pgs"), true},
		{"serial after the range", e.cert(t, e.team, 200, "x", "pgs"), false},
		{"listed serial", e.cert(t, e.team, 7, "x", "pgs"), true},
		{"same serial from another CA", e.cert(t, e.other, 7, "x", "pgs"), false},
		{"key ID", e.cert(t, e.team, 9, "carol@example.com", "pgs"), true},
		{"key ID of another CA", e.cert(t, e.other, 9, "carol@example.com", "pgs"), false},
	} {
		_, err := e.authenticate(c.cert, auth.PGS, "192.0.2.10:5000")
		if got := isRefusal(err, auth.ReasonRevoked); got != c.revoked {
			t.Errorf("%s: %v, want revoked %v", c.name, err, c.revoked)
		}
	}
	stolenCert := &gossh.Certificate{Key: stolen, Serial: 1, CertType: gossh.UserCert, KeyId: "s", ValidPrincipals: []string{"pgs"}, ValidBefore: gossh.CertTimeInfinity}
	if err := stolenCert.SignCert(rand.Reader, e.other); err != nil {
		t.Fatal(err)
	}
	if _, err := e.authenticate(stolenCert, auth.PGS, "192.0.2.10:5000"); !isRefusal(err, auth.ReasonRevoked) {
		t.Errorf("a certificate of a revoked key: %v", err)
	}

	// Again: nothing new.
	if res, err := e.o.ImportKRL(ctx, e.alice, data, ""); err != nil || res.Added != 0 || res.Entries != 6 {
		t.Errorf("the same KRL again = %+v, %v", res, err)
	}
	// A section for any CA needs --ca, and is then for that CA.
	anyCA := krlOf(t, []krl.KRLSection{certs(nil, keyIDs("dave"))})
	_, err = e.o.ImportKRL(ctx, e.alice, anyCA, "")
	wantErr(t, err, ops.Invalid, "any certificate authority", "--ca NAME", "nothing was changed")
	if res, err := e.o.ImportKRL(ctx, e.alice, anyCA, "other-ca"); err != nil || res.Added != 1 {
		t.Fatalf("a section for any CA with --ca other-ca = %+v, %v", res, err)
	}
	if _, err := e.authenticate(e.cert(t, e.other, 9, "dave", "pgs"), auth.PGS, "192.0.2.10:5000"); !isRefusal(err, auth.ReasonRevoked) {
		t.Errorf("dave of other-ca: %v", err)
	}
	if _, err := e.authenticate(e.cert(t, e.team, 9, "dave", "pgs"), auth.PGS, "192.0.2.10:5000"); err != nil {
		t.Errorf("dave of team-ca: %v", err)
	}
	// Signed by the account's CA.
	if _, err := e.o.ImportKRL(ctx, e.alice, krlOf(t, []krl.KRLSection{certs(team, serials(999))}, e.team), ""); err != nil {
		t.Errorf("a KRL signed by team-ca: %v", err)
	}
}

// TestImportKRLRefused: each KRL portico refuses is refused whole, with the reason, and changes
// nothing.
func TestImportKRLRefused(t *testing.T) {
	e := newTrustEnv(t, opstest.Config)
	team, other := e.team.PublicKey(), e.other.PublicKey()
	stranger := opstest.Signer(t, 40)
	good := certs(team, serials(5))
	cases := []struct {
		name  string
		data  []byte
		ca    string
		kind  ops.Kind
		parts []string
	}{
		{"malformed", []byte("serial: 5\nid: SECRET\n"), "", ops.Invalid, []string{"not an OpenSSH KRL"}},
		{"cut short", krlOf(t, []krl.KRLSection{good})[:60], "", ops.Invalid, []string{"malformed KRL"}},
		{"another account's CA", krlOf(t, []krl.KRLSection{good, certs(e.bobs.PublicKey(), serials(6))}), "", ops.Invalid,
			[]string{auth.Fingerprint(e.bobs.PublicKey()), "not one of this account's"}},
		{"an unknown CA", krlOf(t, []krl.KRLSection{good, certs(stranger.PublicKey(), keyIDs("x"))}), "", ops.Invalid, []string{"not one of this account's"}},
		{"a CA waiting to be claimed", krlOf(t, []krl.KRLSection{certs(e.pending.PublicKey(), serials(6))}), "", ops.Invalid, []string{"not one of this account's"}},
		{"any CA without --ca", krlOf(t, []krl.KRLSection{good, certs(nil, serials(8))}), "", ops.Invalid, []string{"any certificate authority", "--ca"}},
		{"a CA other than --ca", krlOf(t, []krl.KRLSection{certs(team, serials(5)), certs(other, serials(6))}), "team-ca", ops.Invalid,
			[]string{"not of " + auth.Fingerprint(team) + " (--ca)"}},
		{"signed by a stranger", krlOf(t, []krl.KRLSection{good}, stranger), "", ops.Invalid, []string{"signed by " + auth.Fingerprint(stranger.PublicKey())}},
		{"signed by another account's CA", krlOf(t, []krl.KRLSection{good}, e.bobs), "", ops.Invalid, []string{"signed by", "not one of this account's"}},
		{"--ca unknown", krlOf(t, []krl.KRLSection{good}), "nope", ops.NotFound, []string{"nope"}},
		{"--ca a login key", krlOf(t, []krl.KRLSection{good}), e.alice.Identity, ops.Invalid, []string{"not a certificate authority"}},
		{"--ca another account's", krlOf(t, []krl.KRLSection{good}), "bob-ca", ops.NotFound, []string{"bob-ca"}},
		{"serial 0", krlOf(t, []krl.KRLSection{certs(team, serials(5, 0))}), "", ops.Invalid, []string{"serial 0"}},
		{"empty", nil, "", ops.Invalid, []string{"not an OpenSSH KRL"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.o.ImportKRL(ctx, e.alice, c.data, c.ca)
			wantErr(t, err, c.kind, c.parts...)
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error %q quotes the KRL", err)
			}
			if revs, _ := e.o.ListRevocations(ctx, e.alice); len(revs) != 0 {
				t.Errorf("a refused KRL changed the revocations: %+v", revs)
			}
		})
	}
	pgsOnly := e.alice
	pgsOnly.Services = []auth.Service{auth.PGS}
	_, err := e.o.ImportKRL(ctx, pgsOnly, krlOf(t, []krl.KRLSection{good}), "")
	wantErr(t, err, ops.Refused, "does not grant admin")
}

func TestExportKRL(t *testing.T) {
	e := newTrustEnv(t, opstest.Config)
	team := e.team.PublicKey()
	revoke := func(req ops.RevokeRequest) {
		t.Helper()
		if _, err := e.o.Revoke(ctx, e.alice, req); err != nil {
			t.Fatal(err)
		}
	}
	serial := func(n uint64) *uint64 { return &n }
	revoke(ops.RevokeRequest{Serial: serial(42), CA: "team-ca"})
	revoke(ops.RevokeRequest{Serial: serial(43)})
	revoke(ops.RevokeRequest{Serial: serial(0), CA: "team-ca"}) // OpenSSH refuses serial 0 in a KRL
	revoke(ops.RevokeRequest{KeyID: "bob@laptop"})
	revoke(ops.RevokeRequest{Key: auth.Fingerprint(opstest.Key(t, 30))})
	if _, err := e.o.ImportKRL(ctx, e.alice, krlOf(t, []krl.KRLSection{
		certs(team, &krl.KRLCertificateSerialRange{Min: 100, Max: 199}),
		certs(e.other.PublicKey(), serials(7)),
		&krl.KRLFingerprintSection{sha1Of(opstest.Key(t, 31))},
	}), ""); err != nil {
		t.Fatal(err)
	}
	// other-ca goes: its serial is left out of the export.
	if _, err := e.o.RemoveKey(ctx, e.alice, "other-ca"); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	res, err := e.o.ExportKRL(ctx, e.alice, &buf)
	if err != nil || res.Revocations != 6 || res.Skipped != 2 {
		t.Fatalf("ExportKRL = %+v, %v; want 6 written, 2 left out", res, err)
	}
	k, err := auth.ParseKRL(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, en := range k.Entries {
		ca := "-"
		if en.Certificate {
			ca = "any"
			if en.CA != nil {
				ca = auth.Fingerprint(en.CA)
			}
		}
		got = append(got, string(en.Kind)+" "+en.Value+" "+ca)
	}
	slices.Sort(got)
	fp := auth.Fingerprint(team)
	want := []string{
		"key_hash " + auth.Fingerprint(opstest.Key(t, 30)) + " -",
		"key_hash " + auth.FingerprintSHA1(opstest.Key(t, 31)) + " -",
		"key_id bob@laptop any",
		"serial 42 " + fp,
		"serial 43 any",
		"serial_range 100-199 " + fp,
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("exported:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Bob's export holds none of alice's.
	buf.Reset()
	if res, err := e.o.ExportKRL(ctx, e.bob, &buf); err != nil || res.Revocations != 0 {
		t.Errorf("bob's export = %+v, %v", res, err)
	}
}

// krlServer serves a KRL that the test changes, and counts requests.
type krlServer struct {
	mu     sync.Mutex
	body   []byte
	status int
	hits   int
}

func (s *krlServer) set(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

func (s *krlServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hits++
	w.WriteHeader(s.status)
	w.Write(s.body)
}

func TestImportKRLFromURL(t *testing.T) {
	now := time.Now()
	cfg := opstest.Config
	cfg.Now = func() time.Time { return now }
	cfg.KRL = ops.KRLConfig{AllowInternal: true, MinEvery: time.Minute, FetchTimeout: 2 * time.Second}
	e := newTrustEnv(t, cfg)
	team := e.team.PublicKey()
	ks := &krlServer{}
	ks.set(200, krlOf(t, []krl.KRLSection{certs(team, serials(5, 6))}))
	srv := httptest.NewServer(ks)
	defer srv.Close()
	url := srv.URL + "/krl"

	res, err := e.o.ImportKRLFromURL(ctx, e.alice, url, "", 5*time.Minute)
	if err != nil || res.Entries != 2 || res.Source == nil || res.Source.URL != url || res.Source.Every != "5m0s" ||
		res.Source.NextFetchAt == nil || !res.Source.NextFetchAt.Equal(now.Add(5*time.Minute).Truncate(time.Microsecond)) || res.Source.Entries != 2 {
		t.Fatalf("ImportKRLFromURL = %+v (source %+v), %v", res, res.Source, err)
	}
	revs, _ := e.o.ListRevocations(ctx, e.alice)
	if len(revs) != 2 || revs[0].Source == nil || *revs[0].Source != url {
		t.Errorf("revocations from the URL: %+v", revs)
	}
	// A manual revocation is not the source's.
	if _, err := e.o.Revoke(ctx, e.alice, ops.RevokeRequest{KeyID: "eve"}); err != nil {
		t.Fatal(err)
	}

	// The scheduled refresh: not before it is due; then it replaces the source's revocations.
	ks.set(200, krlOf(t, []krl.KRLSection{certs(team, &krl.KRLCertificateSerialRange{Min: 10, Max: 20})}))
	if n := e.o.RefreshKRLSources(ctx); n != 0 {
		t.Errorf("refreshed %d sources before any was due", n)
	}
	now = now.Add(5 * time.Minute)
	if n := e.o.RefreshKRLSources(ctx); n != 1 {
		t.Fatalf("refreshed %d sources, want 1", n)
	}
	revs, _ = e.o.ListRevocations(ctx, e.alice)
	if len(revs) != 2 || revs[0].Value != "eve" || revs[1].Value != "10-20" {
		t.Errorf("after the refresh: %+v", revs)
	}
	if _, err := e.authenticate(e.cert(t, e.team, 15, "x", "pgs"), auth.PGS, "192.0.2.10:5000"); !isRefusal(err, auth.ReasonRevoked) {
		t.Errorf("serial 15 after the refresh: %v", err)
	}
	if _, err := e.authenticate(e.cert(t, e.team, 5, "x", "pgs"), auth.PGS, "192.0.2.10:5000"); err != nil {
		t.Errorf("serial 5, no longer in the KRL: %v", err)
	}
	// Unchanged: nothing replaced.
	now = now.Add(5 * time.Minute)
	e.o.RefreshKRLSources(ctx)
	if again, _ := e.o.ListRevocations(ctx, e.alice); again[1].ID != revs[1].ID {
		t.Errorf("an unchanged KRL replaced the revocations: %+v, was %+v", again, revs)
	}
	// A failure keeps the revocations and says why, without quoting the answer.
	ks.set(500, []byte("SECRET stack trace"))
	now = now.Add(5 * time.Minute)
	e.o.RefreshKRLSources(ctx)
	srcs, err := e.o.ListKRLSources(ctx, e.alice)
	if err != nil || len(srcs) != 1 || !strings.Contains(srcs[0].LastError, "HTTP 500") || srcs[0].LastErrorAt == nil || srcs[0].Entries != 1 {
		t.Fatalf("sources after a failed fetch: %+v, %v", srcs, err)
	}
	if strings.Contains(srcs[0].LastError, "SECRET") {
		t.Errorf("last error %q quotes the answer", srcs[0].LastError)
	}
	// A KRL that became unacceptable (another account's CA) is refused, and kept out.
	ks.set(200, krlOf(t, []krl.KRLSection{certs(e.bobs.PublicKey(), serials(1))}))
	now = now.Add(5 * time.Minute)
	e.o.RefreshKRLSources(ctx)
	srcs, _ = e.o.ListKRLSources(ctx, e.alice)
	if !strings.Contains(srcs[0].LastError, "not one of this account's") || srcs[0].Entries != 1 {
		t.Errorf("after a refused KRL: %+v", srcs[0])
	}

	// Importing the URL again, without --every, replaces and stops the schedule.
	ks.set(200, krlOf(t, []krl.KRLSection{certs(team, serials(77))}))
	res, err = e.o.ImportKRLFromURL(ctx, e.alice, url, "", 0)
	if err != nil || res.Source.Every != "" || res.Source.NextFetchAt != nil || res.Source.LastError != "" {
		t.Fatalf("import again without --every = %+v, %v", res.Source, err)
	}
	hits := ks.hits
	now = now.Add(time.Hour)
	e.o.RefreshKRLSources(ctx)
	if ks.hits != hits {
		t.Errorf("a source imported once was fetched again")
	}
	// Removing the source lifts its revocations, not others.
	if _, err := e.o.RemoveKRLSource(ctx, e.alice, url); err != nil {
		t.Fatal(err)
	}
	if revs, _ := e.o.ListRevocations(ctx, e.alice); len(revs) != 1 || revs[0].Value != "eve" {
		t.Errorf("after removing the source: %+v", revs)
	}
	_, err = e.o.RemoveKRLSource(ctx, e.alice, url)
	wantErr(t, err, ops.NotFound)
}

// TestKRLWorkIsShared: an account runs one KRL import at a time on a gateway, so that it cannot
// take every slot; another account's import goes on meanwhile.
func TestKRLWorkIsShared(t *testing.T) {
	cfg := opstest.Config
	cfg.KRL = ops.KRLConfig{AllowInternal: true, FetchTimeout: 5 * time.Second}
	e := newTrustEnv(t, cfg)
	arrived, release := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(arrived)
		<-release
		w.WriteHeader(http.StatusNotFound)
	}))
	defer slow.Close()
	done := make(chan error, 1)
	go func() {
		_, err := e.o.ImportKRLFromURL(ctx, e.alice, slow.URL+"/krl", "", 0)
		done <- err
	}()
	<-arrived
	good := krlOf(t, []krl.KRLSection{certs(e.team.PublicKey(), serials(5))})
	_, err := e.o.ImportKRL(ctx, e.alice, good, "")
	wantErr(t, err, ops.Refused, "another KRL import or export of this account is running")
	_, err = e.o.ExportKRL(ctx, e.alice, &bytes.Buffer{})
	wantErr(t, err, ops.Refused, "another KRL import")
	bobKRL := krlOf(t, []krl.KRLSection{certs(e.bobs.PublicKey(), serials(5))})
	if _, err := e.o.ImportKRL(ctx, e.bob, bobKRL, ""); err != nil {
		t.Errorf("bob's import while alice's runs: %v", err)
	}
	close(release)
	if err := <-done; ops.KindOf(err) != ops.Failed {
		t.Errorf("the slow import: %v", err)
	}
	if _, err := e.o.ImportKRL(ctx, e.alice, good, ""); err != nil {
		t.Errorf("alice's import once hers ended: %v", err)
	}
}

func TestImportKRLFromURLRefused(t *testing.T) {
	cfg := opstest.Config
	cfg.KRL = ops.KRLConfig{MinEvery: time.Minute, FetchTimeout: 2 * time.Second} // internal addresses refused
	e := newTrustEnv(t, cfg)
	ks := &krlServer{}
	ks.set(200, krlOf(t, []krl.KRLSection{certs(e.team.PublicKey(), serials(5))}))
	srv := httptest.NewServer(ks)
	defer srv.Close()
	allowing := cfg
	allowing.KRL.AllowInternal = true
	open := ops.New(e.store, allowing)

	cases := []struct {
		name  string
		o     *ops.Ops
		url   string
		every time.Duration
		kind  ops.Kind
		parts []string
	}{
		{"loopback", e.o, srv.URL + "/krl", 0, ops.Failed, []string{"its address is internal", "PORTICO_KRL_ALLOW_INTERNAL", "nothing was changed"}},
		{"metadata service", e.o, "http://169.254.169.254/latest", 0, ops.Failed, []string{"its address is internal"}},
		{"file URL", e.o, "file:///etc/passwd", 0, ops.Invalid, []string{"only http:// and https://"}},
		{"password in the URL", open, "http://u:pw@" + strings.TrimPrefix(srv.URL, "http://"), 0, ops.Invalid, []string{"user name or password"}},
		{"every too short", open, srv.URL, 30 * time.Second, ops.Invalid, []string{"--every 30s", "from 1m0s"}},
		{"every too long", open, srv.URL, 30 * 24 * time.Hour, ops.Invalid, []string{"--every"}},
		{"not found", open, srv.URL + "/nothing", 0, ops.Failed, []string{"HTTP"}},
	}
	ks404 := httptest.NewServer(http.NotFoundHandler())
	defer ks404.Close()
	cases[len(cases)-1].url = ks404.URL
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.o.ImportKRLFromURL(ctx, e.alice, c.url, "", c.every)
			wantErr(t, err, c.kind, c.parts...)
			if strings.Contains(err.Error(), "pw@") {
				t.Errorf("error %q shows the password", err)
			}
			if srcs, _ := e.o.ListKRLSources(ctx, e.alice); len(srcs) != 0 {
				t.Errorf("a refused import left a source: %+v", srcs)
			}
		})
	}
	// Sources are bounded.
	for i := range db.MaxKRLSources {
		if _, err := open.ImportKRLFromURL(ctx, e.alice, srv.URL+"/krl?n="+string(rune('a'+i)), "", 0); err != nil {
			t.Fatal(err)
		}
	}
	_, err := open.ImportKRLFromURL(ctx, e.alice, srv.URL+"/krl?n=more", "", 0)
	wantErr(t, err, ops.Refused, "the most it may")
}

// FuzzImportKRL: the whole import path (parse, the account's CAs, the store) takes any bytes: an
// import either adds exactly what it says, or is refused with an *ops.Error and changes nothing.
func FuzzImportKRL(f *testing.F) {
	e := newTrustEnv(f, opstest.Config)
	team := e.team.PublicKey()
	for _, k := range [][]krl.KRLSection{
		{certs(team, serials(5, 7), &krl.KRLCertificateSerialRange{Min: 100, Max: 199}, keyIDs("carol"))},
		{certs(nil, keyIDs("any")), &krl.KRLFingerprintSHA256Section{{1, 2, 3}}},
		{certs(e.bobs.PublicKey(), serials(1))},
		{&krl.KRLExplicitKeySection{e.user.PublicKey()}, &krl.KRLFingerprintSection{{9}}},
	} {
		b, err := (&krl.KRL{Sections: k}).Marshal(rand.Reader)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "")
		f.Add(b, "team-ca")
	}
	var maxID int64 // the largest revocation id seen
	count := func(t *testing.T) int {
		_, total, err := e.store.ListRevocationsPage(ctx, e.alice.AccountID, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		return total
	}
	f.Fuzz(func(t *testing.T, data []byte, ca string) {
		if count(t) > 10_000 {
			// Start again, so that imports are not all refused for the account's bound.
			e = newTrustEnv(f, opstest.Config)
			maxID = 0
		}
		before := count(t)
		res, err := e.o.ImportKRL(ctx, e.alice, data, ca)
		after := count(t)
		if err != nil {
			if ops.KindOf(err) == ops.Failed {
				t.Fatalf("the store failed: %v", err)
			}
			if after != before {
				t.Fatalf("a refused import (%v) changed the revocations: %d, were %d", err, after, before)
			}
			return
		}
		if after != before+res.Added || res.Added > res.Entries || res.Entries > auth.MaxKRLEntries {
			t.Fatalf("import %+v: %d revocations, were %d", res, after, before)
		}
		for {
			added, _, err := e.o.RevocationsPage(ctx, e.alice, maxID, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(added) == 0 {
				break
			}
			for _, r := range added {
				if r.CAFingerprint != "" && r.CAName != "team-ca" && r.CAName != "other-ca" {
					t.Fatalf("imported %+v: for a CA that is not alice's", r)
				}
			}
			maxID = added[len(added)-1].ID
		}
	})
}
