package ops_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/services/admin/ops"
	"github.com/portico-sh/portico/services/admin/ops/opstest"
)

// TestKeySquatting: mallory adds carol's public key (she has nothing else of carol's). Carol's
// key must not land in mallory's account: it stays carol's to register or claim.
func TestKeySquatting(t *testing.T) {
	o, store := opstest.New(t)
	mallory := opstest.Register(t, o, "mallory", opstest.Key(t, 1))
	carol := opstest.Key(t, 2)
	carolCA := opstest.Key(t, 3)
	if _, err := o.AddKey(ctx, mallory, opstest.Line(carol, "carol@laptop"), "", false); err != nil {
		t.Fatalf("mallory adds carol's key: %v", err)
	}
	if _, err := o.AddKey(ctx, mallory, opstest.Line(carolCA, "carol-ca"), "", true); err != nil {
		t.Fatalf("mallory adds carol's CA: %v", err)
	}
	a := auth.New(store, auth.Options{SignupsOpen: true})
	for _, service := range auth.Services {
		g, err := a.Authenticate(ctx, auth.Attempt{Key: carol, Service: service, RemoteAddr: opstest.Addr})
		if err == nil && (g.Account != "" || g.AccountID != 0 || g.IsAdmin()) {
			t.Errorf("carol's key on %s lands in account %q: %+v", service, g.Account, g)
		}
	}
	// A certificate signed by carol's CA does not log in to mallory's account.
	cert := &gossh.Certificate{Key: opstest.Key(t, 4), CertType: gossh.UserCert, KeyId: "carol", ValidPrincipals: []string{"admin"},
		ValidBefore: gossh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, opstest.Signer(t, 3)); err != nil {
		t.Fatal(err)
	}
	if g, err := a.Authenticate(ctx, auth.Attempt{Key: cert, Service: auth.Admin, RemoteAddr: opstest.Addr}); err == nil {
		t.Errorf("a certificate of carol's CA lands in account %q", g.Account)
	}
	// Carol registers her own account with her key.
	g, err := o.Register(ctx, opstest.SignupGrant(carol), carol, "carol")
	if err != nil || g.Account != "carol" {
		t.Fatalf("carol registers: %+v, %v", g, err)
	}
	if g, err := a.Authenticate(ctx, auth.Attempt{Key: carol, Service: auth.Pipe, RemoteAddr: opstest.Addr}); err != nil || g.Account != "carol" {
		t.Errorf("carol's key after she registered: %+v, %v", g, err)
	}
}

func TestClaimLoginKey(t *testing.T) {
	o, store := opstest.New(t)
	alice := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	desk := opstest.Key(t, 10)
	added, err := o.AddKey(ctx, alice, opstest.Line(desk, "desk"), "", false)
	if err != nil {
		t.Fatal(err)
	}
	code := added.Claim.Code

	// The pending key gets a claim grant, signups closed or not.
	closed := auth.New(store, auth.Options{})
	claimGrant, err := closed.Authenticate(ctx, auth.Attempt{Key: desk, Service: auth.Admin, RemoteAddr: opstest.Addr})
	if err != nil || claimGrant.Method != auth.MethodClaim || !claimGrant.MayClaim || claimGrant.MayRegister || claimGrant.IsAdmin() {
		t.Fatalf("the pending key's grant: %+v, %v", claimGrant, err)
	}
	// It may do nothing else.
	for name, call := range map[string]func() error{
		"whoami":  func() error { _, err := o.Whoami(claimGrant); return err },
		"keys ls": func() error { _, err := o.ListKeys(ctx, claimGrant); return err },
		"keys add": func() error {
			_, err := o.AddKey(ctx, claimGrant, opstest.Line(opstest.Key(t, 11), ""), "", false)
			return err
		},
		"register": func() error { _, err := o.Register(ctx, claimGrant, desk, "desk"); return err },
		"delete":   func() error { _, err := o.DeleteAccount(ctx, claimGrant); return err },
		"revoke":   func() error { _, err := o.Revoke(ctx, claimGrant, ops.RevokeRequest{KeyID: "x"}); return err },
	} {
		if err := call(); ops.KindOf(err) != ops.Refused {
			t.Errorf("%s with a claim grant: %v, want a refusal", name, err)
		}
	}

	stranger := opstest.Key(t, 20)
	cert := &gossh.Certificate{Key: desk, CertType: gossh.UserCert}
	refusals := []struct {
		name     string
		grant    auth.Grant
		key      gossh.PublicKey
		code     string
		kind     ops.Kind
		contains []string
	}{
		{"a code of another key", opstest.SignupGrant(stranger), stranger, code, ops.NotFound, []string{"no key waiting to be claimed matches"}},
		{"not a code", claimGrant, desk, "hello", ops.Invalid, []string{"not a claim code"}},
		{"a code with an ambiguous letter", claimGrant, desk, "0OOOOOOO", ops.Invalid, []string{"not a claim code"}},
		{"a certificate", claimGrant, cert, code, ops.Refused, []string{"certificate", "IdentitiesOnly=yes"}},
		{"no key", claimGrant, nil, code, ops.Refused, []string{"public key"}},
		{"another connection's key", claimGrant, stranger, code, ops.Refused, []string{"does not match"}},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := o.ClaimKey(ctx, tt.grant, tt.key, tt.code)
			wantErr(t, err, tt.kind, tt.contains...)
			if strings.Contains(err.Error(), "alice") {
				t.Errorf("the refusal names alice: %v", err)
			}
		})
	}

	// The key itself, with its code (in any case): a login key of alice.
	g, k, err := o.ClaimKey(ctx, claimGrant, desk, strings.ToLower(code))
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	if g.Account != "alice" || g.Method != auth.MethodKey || g.Identity != "desk" || !g.IsAdmin() || g.RemoteAddr != opstest.Addr {
		t.Errorf("grant after the claim: %+v", g)
	}
	if k.Name != "desk" || k.State != ops.StateActive || k.Claim != nil {
		t.Errorf("claimed key: %+v", k)
	}
	keys, _ := o.ListKeys(ctx, alice)
	if len(keys) != 2 || keys[1].Name != "desk" || keys[1].State != ops.StateActive {
		t.Errorf("alice's keys after the claim: %+v", keys)
	}
	// Once only.
	_, _, err = o.ClaimKey(ctx, g, desk, code)
	wantErr(t, err, ops.Conflict, "already a login key of account alice")
	_, _, err = o.ClaimKey(ctx, claimGrant, desk, code)
	wantErr(t, err, ops.NotFound)

	// A key active in one account, waiting in another: its holder is told why, by name.
	bob := opstest.Register(t, o, "bob", opstest.Key(t, 2))
	again, err := o.AddKey(ctx, bob, opstest.Line(desk, "alices-desk"), "", false)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = o.ClaimKey(ctx, g, desk, again.Claim.Code)
	wantErr(t, err, ops.Conflict, "already a login key of account alice", "keys rm desk")
	if keys, _ := o.ListKeys(ctx, bob); len(keys) != 2 || !keys[1].IsPending() {
		t.Errorf("bob's keys after the refused claim: %+v", keys)
	}
	// The claim grant cannot be talked into it either: the store refuses.
	_, _, err = o.ClaimKey(ctx, opstest.ClaimGrant(desk), desk, again.Claim.Code)
	wantErr(t, err, ops.Conflict, "already registered to another account")
}

func TestClaimKeyOptionsHold(t *testing.T) {
	o, _ := opstest.New(t)
	alice := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	desk := opstest.Key(t, 10)
	added, err := o.AddKey(ctx, alice, `from="10.0.0.0/8" `+opstest.Line(desk, "desk"), "", false)
	if err != nil {
		t.Fatal(err)
	}
	// Claimed from elsewhere: the key is alice's, but this connection may not use it.
	_, _, err = o.ClaimKey(ctx, opstest.ClaimGrant(desk), desk, added.Claim.Code)
	wantErr(t, err, ops.Failed, `"desk" is now a login key of account alice`, "source address")
	if keys, _ := o.ListKeys(ctx, alice); len(keys) != 2 || keys[1].State != ops.StateActive {
		t.Errorf("alice's keys: %+v", keys)
	}
}

func TestClaimAttemptsAreBounded(t *testing.T) {
	o, _ := opstest.New(t)
	alice := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	desk := opstest.Key(t, 10)
	added, err := o.AddKey(ctx, alice, opstest.Line(desk, "desk"), "", false)
	if err != nil {
		t.Fatal(err)
	}
	// Codes of other keys cost this key's entry nothing.
	for range 2 * db.MaxClaimAttempts {
		_, _, err := o.ClaimKey(ctx, opstest.SignupGrant(opstest.Key(t, 20)), opstest.Key(t, 20), added.Claim.Code)
		wantErr(t, err, ops.NotFound)
	}
	for i := range db.MaxClaimAttempts {
		wrong := auth.NewClaimCode()
		if wrong == added.Claim.Code {
			continue
		}
		_, _, err := o.ClaimKey(ctx, opstest.ClaimGrant(desk), desk, wrong)
		wantErr(t, err, ops.NotFound)
		if keys, _ := o.ListKeys(ctx, alice); (len(keys) == 2) != (i < db.MaxClaimAttempts-1) {
			t.Errorf("after %d wrong codes alice has %d keys", i+1, len(keys))
		}
	}
	_, _, err = o.ClaimKey(ctx, opstest.ClaimGrant(desk), desk, added.Claim.Code)
	wantErr(t, err, ops.NotFound, "must be added again")
}

func TestClaimExpires(t *testing.T) {
	_, store := opstest.New(t)
	now := time.Now()
	cfg := opstest.Config
	cfg.Now = func() time.Time { return now }
	o := ops.New(store, cfg)
	alice := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	desk := opstest.Key(t, 10)
	added, err := o.AddKey(ctx, alice, opstest.Line(desk, "desk"), "", false)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := o.AddKey(ctx, alice, opstest.Line(opstest.Key(t, 11), "ca"), "", true)
	if err != nil {
		t.Fatal(err)
	}
	claimCert := opstest.ClaimCertificate(t, opstest.Signer(t, 11), ca.Claim.Code)
	now = now.Add(ops.ClaimTTL)
	if keys, _ := o.ListKeys(ctx, alice); len(keys) != 1 {
		t.Errorf("keys once the claims expired: %+v", keys)
	}
	if g, err := auth.New(store, auth.Options{Now: cfg.Now}).Authenticate(ctx, auth.Attempt{Key: desk, Service: auth.Admin, RemoteAddr: opstest.Addr}); err == nil {
		t.Errorf("an expired pending key got a grant: %+v", g)
	}
	_, _, err = o.ClaimKey(ctx, opstest.ClaimGrant(desk), desk, added.Claim.Code)
	wantErr(t, err, ops.NotFound)
	_, err = o.AddKey(ctx, alice, claimCert, "", true)
	wantErr(t, err, ops.NotFound, "waits to be claimed")
}

// TestConcurrentClaims: the holder of a key that mallory and alice both added claims both at
// once; it ends in exactly one account.
func TestConcurrentClaims(t *testing.T) {
	o, store := opstest.New(t)
	desk := opstest.Key(t, 10)
	var codes []string
	for i, name := range []string{"alice", "mallory", "erin"} {
		g := opstest.Register(t, o, name, opstest.Key(t, byte(i+1)))
		added, err := o.AddKey(ctx, g, opstest.Line(desk, "desk"), "", false)
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, added.Claim.Code)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []string
	)
	for _, code := range codes {
		wg.Go(func() {
			g, _, err := o.ClaimKey(ctx, opstest.ClaimGrant(desk), desk, code)
			if err == nil {
				mu.Lock()
				wins = append(wins, g.Account)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("claims that won: %v, want one", wins)
	}
	k, err := store.KeyByFingerprint(ctx, auth.Fingerprint(desk))
	if err != nil {
		t.Fatal(err)
	}
	if acct, _ := store.AccountByID(ctx, k.AccountID); acct.Name != wins[0] {
		t.Errorf("the key is in %s, the winner was %s", acct.Name, wins[0])
	}
}

func TestCAClaim(t *testing.T) {
	o, store := opstest.New(t)
	alice := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	bob := opstest.Register(t, o, "bob", opstest.Key(t, 2))
	caSigner := opstest.Signer(t, 11)
	added, err := o.AddKey(ctx, alice, `principals="pgs" `+opstest.Line(caSigner.PublicKey(), "team-ca"), "", true)
	if err != nil {
		t.Fatal(err)
	}
	if added.State != ops.StatePending || !added.IsCA() {
		t.Fatalf("added %+v", added)
	}
	code := added.Claim.Code

	// A certificate the pending CA signed does not log in before the CA is claimed.
	a := auth.New(store, auth.Options{})
	loginCert := func() *gossh.Certificate {
		c := &gossh.Certificate{Key: opstest.Key(t, 30), CertType: gossh.UserCert, KeyId: "bob@laptop",
			ValidPrincipals: []string{"pgs"}, ValidBefore: gossh.CertTimeInfinity}
		if err := c.SignCert(rand.Reader, caSigner); err != nil {
			t.Fatal(err)
		}
		return c
	}
	_, err = a.Authenticate(ctx, auth.Attempt{Key: loginCert(), Service: auth.PGS, RemoteAddr: opstest.Addr})
	if r, ok := auth.AsRefusal(err); !ok || r.Reason != auth.ReasonUnknownCA {
		t.Fatalf("a certificate of the pending CA: %v, want unknown certificate authority", err)
	}
	// Its claim certificate does not log in either.
	claimLine := opstest.ClaimCertificate(t, caSigner, code)
	claimCert, err := auth.ParseCertificateLine(claimLine)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, auth.Attempt{Key: claimCert, Service: auth.Admin, RemoteAddr: opstest.Addr}); err == nil {
		t.Fatal("the claim certificate logs in")
	}

	// Claim certificates that do not claim it.
	other := opstest.Signer(t, 12)
	if _, err := o.AddKey(ctx, alice, opstest.Line(opstest.Key(t, 13), "desk"), "", false); err != nil {
		t.Fatal(err)
	}
	refusals := []struct {
		name     string
		grant    auth.Grant
		line     string
		keyName  string
		kind     ops.Kind
		contains []string
	}{
		{"another code", alice, opstest.ClaimCertificate(t, caSigner, "7KQ2M9XA"), "", ops.Refused, []string{"claim code"}},
		{"signed by a CA nobody added", alice, opstest.ClaimCertificate(t, other, code), "", ops.NotFound, []string{auth.Fingerprint(other.PublicKey())}},
		{"in another account", bob, claimLine, "", ops.NotFound, nil},
		{"with a name", alice, claimLine, "x", ops.Invalid, []string{"no name"}},
		{"signed by a pending login key", alice, opstest.ClaimCertificate(t, opstest.Signer(t, 13), code), "", ops.Invalid, []string{"login key"}},
		{"two lines", alice, claimLine + "\n" + claimLine, "", ops.Invalid, []string{"got 2"}},
		{"garbled", alice, strings.Replace(claimLine, "AAAA", "AAAB", 1), "", ops.Invalid, nil},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			_, err := o.AddKey(ctx, tt.grant, tt.line, tt.keyName, true)
			wantErr(t, err, tt.kind, tt.contains...)
		})
	}
	for _, edit := range map[string]func(*gossh.Certificate){
		"expired":   func(c *gossh.Certificate) { c.ValidBefore = uint64(time.Now().Add(-time.Second).Unix()) },
		"host":      func(c *gossh.Certificate) { c.CertType = gossh.HostCert },
		"key ID":    func(c *gossh.Certificate) { c.KeyId = "alice" },
		"principal": func(c *gossh.Certificate) { c.ValidPrincipals = []string{"pgs"} },
	} {
		c := &gossh.Certificate{Key: opstest.Key(t, 30), CertType: gossh.UserCert, KeyId: auth.ClaimKeyID,
			ValidPrincipals: []string{code}, ValidBefore: gossh.CertTimeInfinity}
		edit(c)
		if err := c.SignCert(rand.Reader, caSigner); err != nil {
			t.Fatal(err)
		}
		_, err := o.AddKey(ctx, alice, string(gossh.MarshalAuthorizedKey(c)), "", true)
		wantErr(t, err, ops.Refused, "does not claim")
	}
	if keys, _ := o.ListKeys(ctx, alice); len(keys) != 3 || !keys[1].IsPending() {
		t.Fatalf("alice's keys after refused claims: %+v", keys)
	}

	// The right certificate activates it, with its options, and --ca is not needed.
	k, err := o.AddKey(ctx, alice, claimLine+"\n", "", false)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	if k.Name != "team-ca" || !k.IsCA() || k.State != ops.StateActive || k.Claim != nil || k.Options != `cert-authority,principals="pgs"` {
		t.Errorf("claimed CA: %+v", k)
	}
	out, _ := json.Marshal(k.Added())
	if string(out) != `{"name":"team-ca","type":"ca","fingerprint":"`+auth.Fingerprint(caSigner.PublicKey())+`","state":"active","claim":null}` {
		t.Errorf("keys add --json: %s", out)
	}
	if g, err := a.Authenticate(ctx, auth.Attempt{Key: loginCert(), Service: auth.PGS, RemoteAddr: opstest.Addr}); err != nil || g.Account != "alice" {
		t.Errorf("a certificate of the claimed CA: %+v, %v", g, err)
	}
	_, err = o.AddKey(ctx, alice, claimLine, "", true)
	wantErr(t, err, ops.Conflict, "already active")

	// Bob adds the same CA: pending, as any key, but alice's used claim certificate does not
	// claim it for him, nor does a claim made for him while alice holds it.
	bobs, err := o.AddKey(ctx, bob, opstest.Line(caSigner.PublicKey(), "alices-ca"), "", true)
	if err != nil || !bobs.IsPending() {
		t.Fatalf("bob adds alice's CA: %+v, %v", bobs, err)
	}
	_, err = o.AddKey(ctx, bob, claimLine, "", true)
	wantErr(t, err, ops.Refused, "claim code")
	_, err = o.AddKey(ctx, bob, opstest.ClaimCertificate(t, caSigner, bobs.Claim.Code), "", true)
	wantErr(t, err, ops.Conflict, "already registered to another account")
}

func TestSignupRate(t *testing.T) {
	_, store := opstest.New(t)
	cfg := opstest.Config
	cfg.SignupRate = ops.SignupRate{Max: 2, Per: time.Hour}
	o := ops.New(store, cfg)
	signup := func(n byte, name string, addr net.Addr) error {
		g := opstest.SignupGrant(opstest.Key(t, n))
		g.RemoteAddr = addr
		_, err := o.Register(ctx, g, opstest.Key(t, n), name)
		return err
	}
	home := &net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 1}
	for i, name := range []string{"alice", "bob"} {
		if err := signup(byte(i+1), name, home); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, signup(3, "carol", &net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 2}), ops.Refused, "too many accounts", "2 per hour")
	if err := signup(3, "carol", &net.TCPAddr{IP: net.ParseIP("192.0.2.11"), Port: 1}); err != nil {
		t.Errorf("a sign-up from another address: %v", err)
	}
	// IPv6: one /64 is one source.
	for i, name := range []string{"dave", "erin"} {
		if err := signup(byte(10+i), name, &net.TCPAddr{IP: net.ParseIP("2001:db8:0:1::" + string(rune('a'+i))), Port: 1}); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, signup(12, "frank", &net.TCPAddr{IP: net.ParseIP("2001:db8:0:1:ffff::1"), Port: 1}), ops.Refused, "too many accounts")
	if err := signup(12, "frank", &net.TCPAddr{IP: net.ParseIP("2001:db8:0:2::1"), Port: 1}); err != nil {
		t.Errorf("a sign-up from another /64: %v", err)
	}
}

func TestParseSignupRate(t *testing.T) {
	for in, want := range map[string]ops.SignupRate{
		"5/h":    {Max: 5, Per: time.Hour},
		"1/s":    {Max: 1, Per: time.Second},
		"10/m":   {Max: 10, Per: time.Minute},
		"100/d":  {Max: 100, Per: 24 * time.Hour},
		"3/30m":  {Max: 3, Per: 30 * time.Minute},
		"off":    {},
		"5":      {Max: -1},
		"0/h":    {Max: -1},
		"-1/h":   {Max: -1},
		"5/year": {Max: -1},
		"5/1ms":  {Max: -1},
		"five/h": {Max: -1},
		"":       {Max: -1},
	} {
		got, err := ops.ParseSignupRate(in)
		if want.Max == -1 {
			if err == nil {
				t.Errorf("ParseSignupRate(%q) = %+v, want an error", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("ParseSignupRate(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
}

type hook struct {
	mu      sync.Mutex
	deleted []string
	err     error
}

func (h *hook) DeleteAccountData(_ context.Context, a db.Account) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.deleted = append(h.deleted, a.Name)
	return h.err
}

func TestDeleteAccount(t *testing.T) {
	_, store := opstest.New(t)
	failing, ok := &hook{err: errors.New("disk on fire")}, &hook{}
	cfg := opstest.Config
	cfg.AccountHooks = []ops.AccountHook{failing, ok}
	o := ops.New(store, cfg)
	aliceKey := opstest.Key(t, 1)
	alice := opstest.Register(t, o, "alice", aliceKey)
	ca := opstest.AddCA(t, o, alice, opstest.Signer(t, 11), opstest.Line(opstest.Key(t, 11), "team-ca"), "")
	if _, err := o.AddKey(ctx, alice, opstest.Line(opstest.Key(t, 12), "pending"), "", false); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Revoke(ctx, alice, ops.RevokeRequest{KeyID: "bob"}); err != nil {
		t.Fatal(err)
	}
	certPGS := auth.Grant{AccountID: alice.AccountID, Account: "alice", Method: auth.MethodCert, Identity: "bob",
		Service: auth.Admin, Services: []auth.Service{auth.PGS}, Cert: &auth.CertFacts{KeyID: "bob"}}
	_, err := o.DeleteAccount(ctx, certPGS)
	wantErr(t, err, ops.Refused, "does not grant admin")
	_, err = o.DeleteAccount(ctx, opstest.SignupGrant(opstest.Key(t, 5)))
	wantErr(t, err, ops.Refused, "not registered")

	before := time.Now()
	until, err := o.DeleteAccount(ctx, alice)
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	if until.Before(before.Add(ops.NameHold)) || until.After(time.Now().Add(ops.NameHold)) {
		t.Errorf("name held until %v, want 90 days from now", until)
	}
	if len(failing.deleted) != 1 || len(ok.deleted) != 1 || ok.deleted[0] != "alice" {
		t.Errorf("hooks ran for %v and %v, want alice once each", failing.deleted, ok.deleted)
	}
	// Its keys are unregistered at once: the login key may sign up, the CA vouches for nothing.
	g, err := auth.New(store, auth.Options{SignupsOpen: true}).Authenticate(ctx, auth.Attempt{Key: aliceKey, Service: auth.Admin, RemoteAddr: opstest.Addr})
	if err != nil || !g.IsSignup() || g.Account != "" {
		t.Errorf("alice's key after the deletion: %+v, %v", g, err)
	}
	if _, err := store.KeyByFingerprint(ctx, ca.Fingerprint); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("alice's CA after the deletion: %v", err)
	}
	// The name is held; the key may go elsewhere.
	_, err = o.Register(ctx, opstest.SignupGrant(opstest.Key(t, 7)), opstest.Key(t, 7), "alice")
	wantErr(t, err, ops.Conflict, "deleted less than 90 days ago")
	_, err = o.CreateAccount(ctx, "alice", opstest.Line(opstest.Key(t, 7), ""))
	wantErr(t, err, ops.Conflict, "deleted less than 90 days ago")
	opstest.Register(t, o, "newalice", aliceKey)

	// A connection of the deleted account reaches nothing, not even a newer account.
	bob := opstest.Register(t, o, "bob", opstest.Key(t, 2))
	if keys, err := o.ListKeys(ctx, alice); err != nil || len(keys) != 0 {
		t.Errorf("the deleted account's connection lists %+v, %v", keys, err)
	}
	_, err = o.AddKey(ctx, alice, opstest.Line(opstest.Key(t, 13), ""), "", false)
	wantErr(t, err, ops.NotFound, "no longer exists")
	_, err = o.DeleteAccount(ctx, alice)
	wantErr(t, err, ops.NotFound, "no longer exists")
	if keys, _ := o.ListKeys(ctx, bob); len(keys) != 1 {
		t.Errorf("bob's keys: %+v", keys)
	}

	// The operator's command.
	if _, err := o.DeleteAccountByName(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	_, err = o.DeleteAccountByName(ctx, "bob")
	wantErr(t, err, ops.NotFound, `no account named "bob"`)
}
