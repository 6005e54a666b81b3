package ops_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/services/admin/ops"
	"github.com/portico-sh/portico/services/admin/ops/opstest"
)

var ctx = context.Background()

// wantErr checks that err is an *ops.Error of kind with a message containing every part.
func wantErr(t *testing.T, err error, kind ops.Kind, parts ...string) {
	t.Helper()
	var oe *ops.Error
	if !errors.As(err, &oe) {
		t.Fatalf("error = %v (%T), want an *ops.Error of kind %v", err, err, kind)
	}
	if oe.Kind != kind {
		t.Errorf("error %q is of kind %v, want %v", oe.Message, oe.Kind, kind)
	}
	for _, p := range parts {
		if !strings.Contains(oe.Message, p) {
			t.Errorf("error %q does not contain %q", oe.Message, p)
		}
	}
}

func TestRegister(t *testing.T) {
	o, _ := opstest.New(t)
	key := opstest.Key(t, 1)
	g, err := o.Register(ctx, opstest.SignupGrant(key), key, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if g.Account != "alice" || g.AccountID == 0 || g.Method != auth.MethodKey || !g.IsAdmin() ||
		g.KeyFingerprint != auth.Fingerprint(key) || !strings.HasPrefix(g.Identity, "ed25519-") || len(g.Identity) != len("ed25519-")+8 {
		t.Errorf("grant after register = %+v", g)
	}
	keys, err := o.ListKeys(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].Name != g.Identity || keys[0].Type != "login" || keys[0].Fingerprint != auth.Fingerprint(key) {
		t.Errorf("keys after register = %+v", keys)
	}
}

func TestRegisterRefusals(t *testing.T) {
	o, store := opstest.New(t)
	alice := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	fresh := opstest.Key(t, 2)
	cert := &gossh.Certificate{Key: fresh, CertType: gossh.UserCert}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallRSA, err := gossh.NewPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		o        *ops.Ops
		grant    auth.Grant
		key      gossh.PublicKey
		account  string
		kind     ops.Kind
		contains []string
	}{
		{"empty name", o, opstest.SignupGrant(fresh), fresh, "", ops.Invalid, []string{"empty"}},
		{"one letter", o, opstest.SignupGrant(fresh), fresh, "a", ops.Invalid, []string{"2 to 30"}},
		{"too long", o, opstest.SignupGrant(fresh), fresh, strings.Repeat("a", 31), ops.Invalid, []string{"2 to 30"}},
		{"uppercase", o, opstest.SignupGrant(fresh), fresh, "Bob", ops.Invalid, []string{"lowercase"}},
		{"digit first", o, opstest.SignupGrant(fresh), fresh, "9bob", ops.Invalid, []string{"start with"}},
		{"hyphen", o, opstest.SignupGrant(fresh), fresh, "bob-smith", ops.Invalid, []string{"hyphen"}},
		{"reserved admin", o, opstest.SignupGrant(fresh), fresh, "admin", ops.Invalid, []string{"reserved"}},
		{"reserved register", o, opstest.SignupGrant(fresh), fresh, "register", ops.Invalid, []string{"reserved"}},
		{"taken", o, opstest.SignupGrant(fresh), fresh, "alice", ops.Conflict, []string{"taken"}},
		{"already registered", o, alice, opstest.Key(t, 1), "bob", ops.Refused, []string{"already registered", "alice"}},
		{"key of another connection", o, opstest.SignupGrant(opstest.Key(t, 3)), fresh, "bob", ops.Refused, []string{"does not match"}},
		{"certificate", o, opstest.SignupGrant(fresh), cert, "bob", ops.Refused, []string{"certificate"}},
		{"no key", o, opstest.SignupGrant(fresh), nil, "bob", ops.Refused, []string{"public key"}},
		{"small RSA key", o, opstest.SignupGrant(smallRSA), smallRSA, "bob", ops.Invalid, []string{"1024 bits is too small"}},
		{"signups closed", ops.New(store, ops.Config{SSHHost: "example.org", SSHPort: 2222}), opstest.SignupGrant(fresh), fresh, "bob", ops.Refused, []string{"signups are closed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.o.Register(ctx, tt.grant, tt.key, tt.account)
			wantErr(t, err, tt.kind, tt.contains...)
		})
	}
	accounts, err := store.ListAccounts(ctx)
	if err != nil || len(accounts) != 1 {
		t.Errorf("accounts after refused registrations = %v, %v; want alice alone", accounts, err)
	}
}

func TestCreateAccount(t *testing.T) {
	o, store := opstest.New(t)
	acct, err := o.CreateAccount(ctx, "alice", opstest.Line(opstest.Key(t, 1), "alice@laptop")+"\n")
	if err != nil {
		t.Fatal(err)
	}
	if acct.Name != "alice" {
		t.Errorf("account = %+v", acct)
	}
	keys, err := store.ListKeys(ctx, acct.ID)
	if err != nil || len(keys) != 1 || keys[0].Name != "alice@laptop" || keys[0].Kind != db.KindLogin {
		t.Errorf("keys = %+v, %v", keys, err)
	}

	tests := []struct {
		name, account, line string
		kind                ops.Kind
		contains            []string
	}{
		{"bad name", "Alice", opstest.Line(opstest.Key(t, 2), ""), ops.Invalid, []string{"lowercase"}},
		{"reserved name", "root", opstest.Line(opstest.Key(t, 2), ""), ops.Invalid, []string{"reserved"}},
		{"taken name", "alice", opstest.Line(opstest.Key(t, 2), ""), ops.Conflict, []string{"taken"}},
		{"key taken", "bob", opstest.Line(opstest.Key(t, 1), ""), ops.Conflict, []string{"already registered"}},
		{"CA as first key", "bob", "cert-authority " + opstest.Line(opstest.Key(t, 2), ""), ops.Invalid, []string{"login key"}},
		{"garbage", "bob", "ssh-ed25519 !!!", ops.Invalid, []string{"base64"}},
		{"no key", "bob", "", ops.Invalid, []string{"no key given"}},
		{"unknown option", "bob", "no-pty " + opstest.Line(opstest.Key(t, 2), ""), ops.Invalid, []string{`"no-pty"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := o.CreateAccount(ctx, tt.account, tt.line)
			wantErr(t, err, tt.kind, tt.contains...)
		})
	}
}

func TestAddKey(t *testing.T) {
	past := time.Now().Add(-48 * time.Hour).UTC().Format("20060102")
	future := time.Now().Add(48 * time.Hour).UTC().Format("20060102")
	tests := []struct {
		name    string
		line    string
		keyName string
		ca      bool
		want    ops.Key // Name, Type, Options checked
	}{
		{"comment is the name", opstest.Line(opstest.Key(t, 10), "bob@laptop"), "", false,
			ops.Key{Name: "bob@laptop", Type: "login"}},
		{"--name wins", opstest.Line(opstest.Key(t, 10), "bob@laptop"), "work", false,
			ops.Key{Name: "work", Type: "login"}},
		{"spaces in the comment", opstest.Line(opstest.Key(t, 10), "bob on  laptop"), "", false,
			ops.Key{Name: "bob-on-laptop", Type: "login"}},
		{"no comment", opstest.Line(opstest.Key(t, 10), ""), "", false,
			ops.Key{Name: "ed25519-" + alnum8(auth.Fingerprint(opstest.Key(t, 10))), Type: "login"}},
		{"--ca", opstest.Line(opstest.Key(t, 10), "team-ca"), "", true,
			ops.Key{Name: "team-ca", Type: "ca", Options: "cert-authority"}},
		{"cert-authority option", "cert-authority " + opstest.Line(opstest.Key(t, 10), "team-ca"), "", false,
			ops.Key{Name: "team-ca", Type: "ca", Options: "cert-authority"}},
		{"principals with --ca", `principals="pgs,tuns" ` + opstest.Line(opstest.Key(t, 10), "ca"), "", true,
			ops.Key{Name: "ca", Type: "ca", Options: `cert-authority,principals="pgs,tuns"`}},
		{"every option", `cert-authority,principals="pipe",from="10.0.0.0/8",expiry-time="` + future + `" ` + opstest.Line(opstest.Key(t, 10), "ca"), "", false,
			ops.Key{Name: "ca", Type: "ca", Options: `cert-authority,principals="pipe",from="10.0.0.0/8",expiry-time="` + future + `"`}},
		{"from on a login key", `from="192.0.2.*" ` + opstest.Line(opstest.Key(t, 10), "bob"), "", false,
			ops.Key{Name: "bob", Type: "login", Options: `from="192.0.2.*"`}},
		{"blank lines and comments around", "\n# bob's key\n" + opstest.Line(opstest.Key(t, 10), "bob") + "\n\n", "", false,
			ops.Key{Name: "bob", Type: "login"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, store := opstest.New(t)
			g := opstest.Register(t, o, "alice", opstest.Key(t, 1))
			before := time.Now()
			k, err := o.AddKey(ctx, g, tt.line, tt.keyName, tt.ca)
			if err != nil {
				t.Fatal(err)
			}
			if k.Name != tt.want.Name || k.Type != tt.want.Type || k.Options != tt.want.Options ||
				k.Fingerprint != auth.Fingerprint(opstest.Key(t, 10)) || k.Algorithm != "ssh-ed25519" {
				t.Errorf("added %+v, want name %q type %q options %q", k, tt.want.Name, tt.want.Type, tt.want.Options)
			}
			// It waits to be claimed, with a fresh code and the command that claims it.
			if k.State != ops.StatePending || k.Claim == nil {
				t.Fatalf("added %+v, want a pending key with a claim", k)
			}
			if _, err := auth.ParseClaimCode(k.Claim.Code); err != nil {
				t.Errorf("claim code: %v", err)
			}
			want := "ssh -o IdentitiesOnly=yes -i ~/.ssh/id_ed25519 -p 2222 admin@example.org keys claim " + k.Claim.Code
			if k.IsCA() {
				want = "ssh-keygen -s CA_KEY -I portico-claim -n " + k.Claim.Code + " -V +15m SOME_KEY.pub"
			}
			if k.Claim.Command != want {
				t.Errorf("claim command %q, want %q", k.Claim.Command, want)
			}
			if exp := k.Claim.ExpiresAt.Time; exp.Before(before.Add(ops.ClaimTTL).Add(-time.Second)) || exp.After(time.Now().Add(ops.ClaimTTL)) {
				t.Errorf("claim expires at %v, want 15 minutes from now", exp)
			}
			keys, _ := o.ListKeys(ctx, g)
			if len(keys) != 2 || keys[1].Fingerprint != k.Fingerprint || keys[1].State != ops.StatePending || keys[1].Claim.Code != k.Claim.Code {
				t.Errorf("keys = %+v, want the first and the pending one", keys)
			}
			// It grants nothing, and it is no CA.
			if _, err := auth.New(store, auth.Options{}).Authenticate(ctx, auth.Attempt{Key: opstest.Key(t, 10), Service: auth.PGS, RemoteAddr: opstest.Addr}); err == nil {
				t.Error("the pending key logs in to pgs")
			}
		})
	}

	badTests := []struct {
		name     string
		line     string
		keyName  string
		ca       bool
		kind     ops.Kind
		contains []string
	}{
		{"empty", "  \n", "", false, ops.Invalid, []string{"no key given"}},
		{"two lines", opstest.Line(opstest.Key(t, 10), "") + "\n" + opstest.Line(opstest.Key(t, 11), ""), "", false, ops.Invalid, []string{"got 2"}},
		{"garbage", "hello world", "", false, ops.Invalid, nil},
		{"bad base64", "ssh-ed25519 AAAA!!!", "", false, ops.Invalid, []string{"base64"}},
		{"unsupported type", "ssh-dss AAAAB3NzaC1kc3M=", "", false, ops.Invalid, []string{"DSA"}},
		{"unknown option named", "no-pty " + opstest.Line(opstest.Key(t, 10), ""), "", false, ops.Invalid, []string{`"no-pty"`}},
		{"unknown option among known", `cert-authority,command="ls" ` + opstest.Line(opstest.Key(t, 10), ""), "", false, ops.Invalid, []string{`"command"`}},
		{"principals on a login key", `principals="pgs" ` + opstest.Line(opstest.Key(t, 10), ""), "", false, ops.Invalid, []string{"principals"}},
		{"principal that cannot be mapped", `cert-authority,principals="pgs,-rf" ` + opstest.Line(opstest.Key(t, 10), ""), "", false, ops.Invalid, []string{`"-rf"`}},
		{"bad from", `from="not an address" ` + opstest.Line(opstest.Key(t, 10), ""), "", false, ops.Invalid, []string{"from"}},
		{"bad expiry-time", `expiry-time="tomorrow" ` + opstest.Line(opstest.Key(t, 10), ""), "", false, ops.Invalid, []string{"expiry-time"}},
		{"expiry-time passed", `expiry-time="` + past + `" ` + opstest.Line(opstest.Key(t, 10), ""), "", false, ops.Invalid, []string{"already passed"}},
		{"name with a space", opstest.Line(opstest.Key(t, 10), ""), "my key", false, ops.Invalid, []string{"space"}},
		{"name like a fingerprint", opstest.Line(opstest.Key(t, 10), ""), "SHA256:abc", false, ops.Invalid, []string{"SHA256:"}},
		{"name too long", opstest.Line(opstest.Key(t, 10), ""), strings.Repeat("n", 65), false, ops.Invalid, []string{"longer than 64"}},
		{"key already in the account", opstest.Line(opstest.Key(t, 1), "again"), "", false, ops.Conflict, []string{"already a key of this account"}},
		{"key already pending in the account", opstest.Line(opstest.Key(t, 20), "again"), "", false, ops.Conflict, []string{"already waiting", "keys rm"}},
		{"name taken", opstest.Line(opstest.Key(t, 10), "dup"), "dup", false, ops.Conflict, []string{`named "dup"`}},
		{"name of the first key", opstest.Line(opstest.Key(t, 10), ""), "ed25519-" + alnum8(auth.Fingerprint(opstest.Key(t, 1))), false, ops.Conflict, []string{"named"}},
		{"a certificate that claims no CA here", "ssh-ed25519-cert-v01@openssh.com AAAA", "", false, ops.Invalid, []string{"certificate"}},
	}
	o, _ := opstest.New(t)
	g := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	opstest.Register(t, o, "bob", opstest.Key(t, 2))
	if _, err := o.AddKey(ctx, g, opstest.Line(opstest.Key(t, 20), "dup"), "", false); err != nil {
		t.Fatal(err)
	}
	for _, tt := range badTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := o.AddKey(ctx, g, tt.line, tt.keyName, tt.ca)
			wantErr(t, err, tt.kind, tt.contains...)
		})
	}
	if keys, _ := o.ListKeys(ctx, g); len(keys) != 2 {
		t.Errorf("refused adds changed the keys: %+v", keys)
	}
	// A key of another account is taken as pending, as any key is: adding it tells nothing.
	k, err := o.AddKey(ctx, g, opstest.Line(opstest.Key(t, 2), "bobs"), "", true)
	if err != nil || k.State != ops.StatePending {
		t.Errorf("adding bob's key to alice: %+v, %v; want a pending key", k, err)
	}
}

func alnum8(fp string) string {
	var b strings.Builder
	for _, r := range strings.TrimPrefix(fp, "SHA256:") {
		if b.Len() == 8 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestRemoveKey(t *testing.T) {
	o, _ := opstest.New(t)
	g := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	bob := opstest.Register(t, o, "bob", opstest.Key(t, 2))
	opstest.AddLoginKey(t, o, g, opstest.Key(t, 10), opstest.Line(opstest.Key(t, 10), "laptop"), "")
	opstest.AddLoginKey(t, o, g, opstest.Key(t, 11), opstest.Line(opstest.Key(t, 11), "desktop"), "")
	opstest.AddCA(t, o, g, opstest.Signer(t, 12), "cert-authority "+opstest.Line(opstest.Key(t, 12), "ca"), "")
	// Pending keys are removed the same way.
	if _, err := o.AddKey(ctx, g, opstest.Line(opstest.Key(t, 13), "tablet"), "", false); err != nil {
		t.Fatal(err)
	}
	if _, err := o.AddKey(ctx, g, opstest.Line(opstest.Key(t, 14), "pending-ca"), "", true); err != nil {
		t.Fatal(err)
	}
	if k, err := o.RemoveKey(ctx, g, "tablet"); err != nil || !k.IsPending() {
		t.Fatalf("remove a pending key by name = %+v, %v", k, err)
	}
	if k, err := o.RemoveKey(ctx, g, auth.Fingerprint(opstest.Key(t, 14))); err != nil || !k.IsPending() || !k.IsCA() {
		t.Fatalf("remove a pending CA by fingerprint = %+v, %v", k, err)
	}
	if _, err := o.AddKey(ctx, g, opstest.Line(opstest.Key(t, 13), "tablet"), "", false); err != nil {
		t.Fatalf("adding a removed pending key again: %v", err)
	}

	k, err := o.RemoveKey(ctx, g, "laptop")
	if err != nil || k.Name != "laptop" {
		t.Fatalf("remove by name = %+v, %v", k, err)
	}
	k, err = o.RemoveKey(ctx, g, auth.Fingerprint(opstest.Key(t, 12)))
	if err != nil || k.Name != "ca" || !k.IsCA() {
		t.Fatalf("remove by fingerprint = %+v, %v", k, err)
	}
	_, err = o.RemoveKey(ctx, g, "laptop")
	wantErr(t, err, ops.NotFound, `"laptop"`)
	_, err = o.RemoveKey(ctx, g, auth.Fingerprint(opstest.Key(t, 2)))
	wantErr(t, err, ops.NotFound) // bob's key: not in alice's account, and nothing said about bob
	_, err = o.RemoveKey(ctx, g, "")
	wantErr(t, err, ops.Invalid)

	if _, err := o.RemoveKey(ctx, g, "desktop"); err != nil {
		t.Fatal(err)
	}
	// A pending login key is no login key yet: the first one is still the last.
	_, err = o.RemoveKey(ctx, g, g.Identity)
	wantErr(t, err, ops.Refused, "last login key")
	_, err = o.RemoveKey(ctx, bob, bob.Identity)
	wantErr(t, err, ops.Refused, "last login key")
}

func TestLogs(t *testing.T) {
	o, store := opstest.New(t)
	g := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	bob := opstest.Register(t, o, "bob", opstest.Key(t, 2))
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	serial := uint64(7)
	for i, e := range []db.AccessEntry{
		{AccountID: g.AccountID, Account: "alice", Service: "admin", Method: "key", Identity: g.Identity, Outcome: "allowed"},
		{AccountID: g.AccountID, Account: "alice", Service: "pgs", Method: "cert", Identity: "bob@laptop", Serial: &serial, Outcome: "allowed"},
		{AccountID: g.AccountID, Account: "alice", Service: "admin", Method: "cert", Identity: "bob@laptop", Serial: &serial, Outcome: "denied", Reason: "certificate does not grant admin"},
		{AccountID: bob.AccountID, Account: "bob", Service: "admin", Method: "key", Identity: bob.Identity, Outcome: "allowed"},
	} {
		e.Time = base.Add(time.Duration(i) * time.Minute)
		e.KeyFingerprint = g.KeyFingerprint
		e.RemoteAddr = "192.0.2.1:5555"
		if err := store.AppendAccess(ctx, e); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		service string
		limit   int
		want    []string // outcome/service of each entry, newest first
	}{
		{"", 0, []string{"denied/admin", "allowed/pgs", "allowed/admin"}},
		{"", 2, []string{"denied/admin", "allowed/pgs"}},
		{"admin", 0, []string{"denied/admin", "allowed/admin"}},
		{"pgs", 10, []string{"allowed/pgs"}},
		{"pipe", 0, nil},
	}
	for _, tt := range tests {
		entries, err := o.Logs(ctx, g, tt.service, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Outcome+"/"+e.Service)
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("Logs(%q, %d) = %v, want %v", tt.service, tt.limit, got, tt.want)
		}
	}

	_, err := o.Logs(ctx, g, "ftp", 0)
	wantErr(t, err, ops.Invalid, `"ftp"`)
	_, err = o.Logs(ctx, g, "", -1)
	wantErr(t, err, ops.Invalid, "limit")
	_, err = o.Logs(ctx, g, "", ops.MaxLogLimit+1)
	wantErr(t, err, ops.Invalid, "limit")
}

func TestRevoke(t *testing.T) {
	o, _ := opstest.New(t)
	g := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	bob := opstest.Register(t, o, "bob", opstest.Key(t, 2))
	ca := opstest.AddCA(t, o, g, opstest.Signer(t, 12), opstest.Line(opstest.Key(t, 12), "team-ca"), "")
	bobCA := opstest.AddCA(t, o, bob, opstest.Signer(t, 13), opstest.Line(opstest.Key(t, 13), "bob-ca"), "")
	if _, err := o.AddKey(ctx, g, opstest.Line(opstest.Key(t, 14), "pending-ca"), "", true); err != nil {
		t.Fatal(err)
	}
	serial := func(n uint64) *uint64 { return &n }
	certKey := auth.Fingerprint(opstest.Key(t, 30))

	good := []struct {
		name string
		req  ops.RevokeRequest
		want ops.Revocation // Kind, Value, CAFingerprint checked
	}{
		{"serial of every CA", ops.RevokeRequest{Serial: serial(42)}, ops.Revocation{Kind: "serial", Value: "42"}},
		{"serial zero", ops.RevokeRequest{Serial: serial(0)}, ops.Revocation{Kind: "serial", Value: "0"}},
		{"largest serial", ops.RevokeRequest{Serial: serial(1<<64 - 1)}, ops.Revocation{Kind: "serial", Value: "18446744073709551615"}},
		{"serial of a CA by name", ops.RevokeRequest{Serial: serial(7), CA: "team-ca"}, ops.Revocation{Kind: "serial", Value: "7", CAFingerprint: ca.Fingerprint}},
		{"serial of a CA by fingerprint", ops.RevokeRequest{Serial: serial(8), CA: ca.Fingerprint}, ops.Revocation{Kind: "serial", Value: "8", CAFingerprint: ca.Fingerprint}},
		{"key ID", ops.RevokeRequest{KeyID: "bob@laptop"}, ops.Revocation{Kind: "key_id", Value: "bob@laptop"}},
		{"key", ops.RevokeRequest{Key: certKey}, ops.Revocation{Kind: "key", Value: certKey}},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			r, err := o.Revoke(ctx, g, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if r.ID == 0 || r.Kind != tt.want.Kind || r.Value != tt.want.Value || r.CAFingerprint != tt.want.CAFingerprint {
				t.Errorf("revocation = %+v, want %+v", r, tt.want)
			}
		})
	}

	bad := []struct {
		name     string
		req      ops.RevokeRequest
		kind     ops.Kind
		contains []string
	}{
		{"nothing", ops.RevokeRequest{}, ops.Invalid, []string{"exactly one"}},
		{"serial and key ID", ops.RevokeRequest{Serial: serial(1), KeyID: "x"}, ops.Invalid, []string{"exactly one"}},
		{"key ID and key", ops.RevokeRequest{KeyID: "x", Key: certKey}, ops.Invalid, []string{"exactly one"}},
		{"CA without serial", ops.RevokeRequest{KeyID: "x", CA: "team-ca"}, ops.Invalid, []string{"only be named with a serial"}},
		{"unknown CA", ops.RevokeRequest{Serial: serial(1), CA: "nope"}, ops.NotFound, []string{`"nope"`}},
		{"CA of another account", ops.RevokeRequest{Serial: serial(1), CA: bobCA.Fingerprint}, ops.NotFound, nil},
		{"login key as CA", ops.RevokeRequest{Serial: serial(1), CA: g.Identity}, ops.Invalid, []string{"login key"}},
		{"pending CA", ops.RevokeRequest{Serial: serial(1), CA: "pending-ca"}, ops.Invalid, []string{"waits to be claimed"}},
		{"key ID with a control character", ops.RevokeRequest{KeyID: "bob\x1b[2J"}, ops.Invalid, []string{"printable"}},
		{"key ID too long", ops.RevokeRequest{KeyID: strings.Repeat("k", 129)}, ops.Invalid, []string{"128"}},
		{"key not a fingerprint", ops.RevokeRequest{Key: "bob.pub"}, ops.Invalid, []string{"fingerprint"}},
		{"key MD5 fingerprint", ops.RevokeRequest{Key: "MD5:aa:bb"}, ops.Invalid, []string{"fingerprint"}},
		{"key fingerprint cut short", ops.RevokeRequest{Key: certKey[:20]}, ops.Invalid, []string{"fingerprint"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := o.Revoke(ctx, g, tt.req)
			wantErr(t, err, tt.kind, tt.contains...)
		})
	}

	list, err := o.ListRevocations(ctx, g)
	if err != nil || len(list) != len(good) {
		t.Fatalf("revocations = %+v, %v; want %d", list, err, len(good))
	}
	if err := o.RemoveRevocation(ctx, g, list[0].ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, o.RemoveRevocation(ctx, g, list[0].ID), ops.NotFound, "no revocation")
	wantErr(t, o.RemoveRevocation(ctx, bob, list[1].ID), ops.NotFound, "no revocation")
	if after, _ := o.ListRevocations(ctx, g); len(after) != len(good)-1 {
		t.Errorf("%d revocations after removing one, want %d", len(after), len(good)-1)
	}
	if theirs, _ := o.ListRevocations(ctx, bob); len(theirs) != 0 {
		t.Errorf("bob sees alice's revocations: %+v", theirs)
	}
}

func TestGrants(t *testing.T) {
	o, _ := opstest.New(t)
	g := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	signup := opstest.SignupGrant(opstest.Key(t, 5))
	certPGS := auth.Grant{
		AccountID: g.AccountID, Account: "alice", Method: auth.MethodCert, Identity: "bob@laptop",
		Service: auth.Admin, Services: []auth.Service{auth.PGS, auth.Tuns},
		Cert: &auth.CertFacts{KeyID: "bob@laptop", Serial: 3},
	}
	calls := map[string]func(auth.Grant) error{
		"ListKeys": func(g auth.Grant) error { _, err := o.ListKeys(ctx, g); return err },
		"AddKey": func(g auth.Grant) error {
			_, err := o.AddKey(ctx, g, opstest.Line(opstest.Key(t, 9), ""), "", false)
			return err
		},
		"RemoveKey":        func(g auth.Grant) error { _, err := o.RemoveKey(ctx, g, "x"); return err },
		"Logs":             func(g auth.Grant) error { _, err := o.Logs(ctx, g, "", 0); return err },
		"Revoke":           func(g auth.Grant) error { _, err := o.Revoke(ctx, g, ops.RevokeRequest{KeyID: "x"}); return err },
		"ListRevocations":  func(g auth.Grant) error { _, err := o.ListRevocations(ctx, g); return err },
		"RemoveRevocation": func(g auth.Grant) error { return o.RemoveRevocation(ctx, g, 1) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			wantErr(t, call(signup), ops.Refused, "this key is not registered; run: ssh -p 2222 example.org register NAME")
			wantErr(t, call(certPGS), ops.Refused, "does not grant admin")
		})
	}
	_, err := o.Whoami(signup)
	wantErr(t, err, ops.Refused, "not registered")
	if _, err := o.Whoami(certPGS); err != nil {
		t.Errorf("whoami for a certificate without admin: %v", err)
	}
	if keys, _ := o.ListKeys(ctx, g); len(keys) != 1 {
		t.Errorf("refused calls changed the keys: %+v", keys)
	}
}

func TestRecipes(t *testing.T) {
	o, _ := opstest.New(t)
	g := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	text := o.Recipes(g)
	for _, want := range []string{
		"ssh-keygen -s ~/.ssh/alice_ca -I bob@laptop -n pgs,tuns -V +52w bob.pub",
		"ssh-keygen -s ~/.ssh/alice_ca -I bob@laptop -n admin",
		"ssh -p 2222 admin@example.org keys add --ca < ~/.ssh/alice_ca.pub",
		"config for example.org (account alice)",
		"  Host pgs\n    HostName example.org\n    Port 2222\n    User pgs\n    IdentitiesOnly yes\n    IdentityFile ~/.ssh/bob\n    CertificateFile ~/.ssh/bob-cert.pub\n",
		"rsync -e ssh -rv ./public/ pgs:/site/",
		"ssh -p 2222 admin@example.org revoke --serial 2 --ca alice_ca",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("recipes lack %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "@cert-authority") {
		t.Errorf("recipes without a host certificate name one:\n%s", text)
	}
	line := "@cert-authority [example.org]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH"
	withCert := ops.New(nil, ops.Config{Domain: "example.org", SSHPort: 2222, KnownHostsLine: line})
	if text := withCert.Recipes(g); !strings.Contains(text, "~/.ssh/known_hosts:\n\n  "+line+"\n") {
		t.Errorf("recipes with a host certificate lack its known_hosts line:\n%s", text)
	}
	port22 := ops.New(nil, ops.Config{Domain: "git.example.com", SSHPort: 22})
	if text := port22.Recipes(g); !strings.Contains(text, "ssh admin@git.example.com keys add") || !strings.Contains(text, "HostName git.example.com\n    Port 22\n") {
		t.Errorf("recipes for port 22 and the domain as host:\n%s", text)
	}
}
