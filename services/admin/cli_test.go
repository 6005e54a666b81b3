package admin

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/services/admin/ops"
	"github.com/portico-sh/portico/services/admin/ops/opstest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

type result struct {
	code           int
	stdout, stderr string
}

func run(o *ops.Ops, g auth.Grant, key gossh.PublicKey, stdin string, args ...string) result {
	var stdout, stderr bytes.Buffer
	c := &cli{
		ctx:    context.Background(),
		ops:    o,
		grant:  g,
		key:    key,
		stdin:  strings.NewReader(stdin),
		stdout: &stdout,
		stderr: &stderr,
	}
	code := c.run(args)
	return result{code, stdout.String(), stderr.String()}
}

func TestCLI(t *testing.T) {
	o, _ := opstest.New(t)
	aliceKey := opstest.Key(t, 1)
	alice := opstest.Register(t, o, "alice", aliceKey)
	newKey := opstest.Key(t, 2)
	signup := opstest.SignupGrant(newKey)
	opstest.AddCA(t, o, alice, opstest.Signer(t, 11), opstest.Line(opstest.Key(t, 11), "team-ca"), "")
	// A pending key of alice's, and the grant of its connection.
	pendingKey := opstest.Key(t, 20)
	pending, err := o.AddKey(context.Background(), alice, opstest.Line(pendingKey, "desk"), "", false)
	if err != nil {
		t.Fatal(err)
	}
	claim := opstest.ClaimGrant(pendingKey)
	notRegistered := "portico: this key is not registered; run: ssh -p 2222 example.org register NAME\n"
	notClaimed := "portico: this key is not registered yet: it waits to be claimed; run: ssh -p 2222 example.org keys claim CODE with the code you were given\n"
	usageHint := "run: ssh -p 2222 example.org help\n"

	tests := []struct {
		name   string
		grant  auth.Grant
		stdin  string
		args   []string
		code   int
		stdout string // substring; "" checks nothing
		stderr string // substring; "" means stderr must be empty
	}{
		{"help", alice, "", []string{"help"}, 0, "keys add [--name NAME] [--ca] [--json]", ""},
		{"help lists claim", alice, "", []string{"help"}, 0, "keys claim CODE", ""},
		{"help lists account delete", alice, "", []string{"help"}, 0, "account delete --yes", ""},
		{"help for a claim", claim, "", []string{"help"}, 0, "This key waits to be claimed: run ssh -p 2222 example.org keys claim CODE", ""},
		{"no command is help", alice, "", nil, 0, "revocations rm ID", ""},
		{"--help", alice, "", []string{"--help"}, 0, "register NAME", ""},
		{"help for a signup", signup, "", []string{"help"}, 0, "This key is not registered yet: run ssh -p 2222 example.org register NAME", ""},
		{"unknown command", alice, "", []string{"frobnicate"}, 2, "", `portico: unknown command "frobnicate"` + "\n" + usageHint},
		{"unknown command for a signup", signup, "", []string{"frobnicate"}, 2, "", "unknown command"},
		{"keys alone", alice, "", []string{"keys"}, 2, "", "keys needs a subcommand: ls, add, claim, rm"},
		{"keys unknown", alice, "", []string{"keys", "list"}, 2, "", `unknown command "keys list"; keys has: ls, add, claim, rm`},
		{"revocations alone", alice, "", []string{"revocations"}, 2, "", "ls, rm"},
		{"unknown flag", alice, "", []string{"whoami", "--yaml"}, 2, "", "whoami: flag provided but not defined: -yaml"},
		{"extra argument", alice, "", []string{"whoami", "bob"}, 2, "", `unexpected argument "bob"`},
		{"flag help", alice, "", []string{"keys", "add", "-h"}, 0, "usage: keys add [--name NAME] [--ca] [--json]\n", ""},
		{"whoami", alice, "", []string{"whoami"}, 0, "account   alice\nmethod    key\n", ""},
		{"whoami for a signup", signup, "", []string{"whoami"}, 1, "", notRegistered},
		{"keys ls for a signup", signup, "", []string{"keys", "ls"}, 1, "", notRegistered},
		{"keys add for a signup", signup, opstest.Line(newKey, ""), []string{"keys", "add"}, 1, "", notRegistered},
		{"logs for a signup", signup, "", []string{"logs"}, 1, "", notRegistered},
		{"revoke for a signup", signup, "", []string{"revoke", "--serial", "1"}, 1, "", notRegistered},
		{"whoami for a claim", claim, "", []string{"whoami"}, 1, "", notClaimed},
		{"keys ls for a claim", claim, "", []string{"keys", "ls"}, 1, "", notClaimed},
		{"register for a claim, signups closed", claim, "", []string{"register", "desk"}, 1, "", "signups are closed"},
		{"account delete for a claim", claim, "", []string{"account", "delete", "--yes"}, 1, "", notClaimed},
		{"keys claim without a code", claim, "", []string{"keys", "claim"}, 2, "", "keys claim needs CODE"},
		{"keys claim a bad code", claim, "", []string{"keys", "claim", "hello"}, 1, "", "not a claim code"},
		{"keys claim a wrong code", claim, "", []string{"keys", "claim", "7KQ2M9XA"}, 1, "", "no key waiting to be claimed matches"},
		{"keys claim from another key", signup, "", []string{"keys", "claim", pending.Claim.Code}, 1, "", "no key waiting to be claimed matches"},
		{"keys claim from an account's key", alice, "", []string{"keys", "claim", pending.Claim.Code}, 1, "", "already a login key of account alice"},
		{"keys claim", claim, "", []string{"keys", "claim", pending.Claim.Code}, 0, `key "desk" (SHA256:`, ""},
		{"keys claim again", claim, "", []string{"keys", "claim", pending.Claim.Code}, 1, "", "no key waiting to be claimed matches"},
		{"account", alice, "", []string{"account"}, 2, "", "account needs a subcommand: delete"},
		{"account delete without --yes", alice, "", []string{"account", "delete"}, 2, "", "account delete deletes account alice for good"},
		{"register without a name", signup, "", []string{"register"}, 2, "", "register needs NAME"},
		{"register two names", signup, "", []string{"register", "bob", "carol"}, 2, "", `unexpected argument "carol"`},
		{"register a bad name", signup, "", []string{"register", "Bob"}, 1, "", "portico: account name \"Bob\" must start with a lowercase letter\n"},
		{"register a reserved name", signup, "", []string{"register", "www"}, 1, "", "reserved"},
		{"register a taken name", signup, "", []string{"register", "alice"}, 1, "", "taken"},
		{"register when registered", alice, "", []string{"register", "bob"}, 1, "", "already registered to account alice"},
		{"keys add", alice, opstest.Line(opstest.Key(t, 10), "bob@laptop") + "\n", []string{"keys", "add"}, 0, `added login key "bob@laptop" (SHA256:`, ""},
		{"keys add prints the claim", alice, opstest.Line(opstest.Key(t, 13), "bob@desk") + "\n", []string{"keys", "add"}, 0, "pending: it grants nothing until its holder claims it.\nBefore 20", ""},
		{"keys add prints the claim command", alice, opstest.Line(opstest.Key(t, 14), "bob@tablet") + "\n", []string{"keys", "add"}, 0, "\n\n  ssh -o IdentitiesOnly=yes -i ~/.ssh/id_ed25519 -p 2222 admin@example.org keys claim ", ""},
		{"keys add --ca --name", alice, opstest.Line(opstest.Key(t, 12), "x"), []string{"keys", "add", "--ca", "--name", "other-ca"}, 0, `added certificate authority "other-ca"`, ""},
		{"keys add --ca prints the claim", alice, opstest.Line(opstest.Key(t, 15), "x"), []string{"keys", "add", "--ca"}, 0, "  ssh-keygen -s CA_KEY -I portico-claim -n ", ""},
		{"keys add --ca prints how to feed it", alice, opstest.Line(opstest.Key(t, 16), "y"), []string{"keys", "add", "--ca"}, 0, "then feed it to keys add:\n\n  ssh -p 2222 admin@example.org keys add --ca < SOME_KEY-cert.pub\n", ""},
		{"keys add a claim certificate", alice, opstest.ClaimCertificate(t, opstest.Signer(t, 12), "7KQ2M9XA"), []string{"keys", "add", "--ca"}, 1, "", `does not claim certificate authority "other-ca"`},
		{"keys add unknown option", alice, "no-port-forwarding " + opstest.Line(opstest.Key(t, 12), ""), []string{"keys", "add"}, 1, "", `unknown option "no-port-forwarding"`},
		{"keys add nothing", alice, "", []string{"keys", "add"}, 1, "", "no key given"},
		{"keys add --name without value", alice, "", []string{"keys", "add", "--name"}, 2, "", "flag needs an argument"},
		{"keys ls", alice, "", []string{"keys", "ls"}, 0, "NAME", ""},
		{"keys ls shows the state", alice, "", []string{"keys", "ls"}, 0, "pending  ssh-ed25519", ""},
		{"keys ls shows the claims", alice, "", []string{"keys", "ls"}, 0, "certificate authority \"other-ca\" waits to be claimed until 20", ""},
		{"keys rm without argument", alice, "", []string{"keys", "rm"}, 2, "", "keys rm needs NAME-OR-FINGERPRINT"},
		{"keys rm unknown", alice, "", []string{"keys", "rm", "nope"}, 1, "", `no key named or with fingerprint "nope"`},
		{"keys rm", alice, "", []string{"keys", "rm", "bob@laptop"}, 0, `removed login key "bob@laptop"`, ""},
		{"keys rm a claimed key", alice, "", []string{"keys", "rm", "desk"}, 0, `removed login key "desk"`, ""},
		{"keys rm the last login key", alice, "", []string{"keys", "rm", alice.Identity}, 1, "", "last login key"},
		{"logs", alice, "", []string{"logs"}, 0, "no access log entries\n", ""},
		{"logs bad limit", alice, "", []string{"logs", "--limit", "ten"}, 2, "", "invalid value"},
		{"logs zero limit", alice, "", []string{"logs", "--limit", "0"}, 2, "", "not between 1 and 10000"},
		{"logs unknown service", alice, "", []string{"logs", "--service", "ftp"}, 1, "", `unknown service "ftp"`},
		{"revoke nothing", alice, "", []string{"revoke"}, 2, "", "exactly one of --serial N, --key-id ID or --key FINGERPRINT"},
		{"revoke two kinds", alice, "", []string{"revoke", "--serial", "1", "--key-id", "bob"}, 2, "", "exactly one"},
		{"revoke --ca alone", alice, "", []string{"revoke", "--key-id", "bob", "--ca", "team-ca"}, 2, "", "--ca goes only with --serial"},
		{"revoke bad serial", alice, "", []string{"revoke", "--serial", "-1"}, 2, "", "want a decimal serial"},
		{"revoke unknown CA", alice, "", []string{"revoke", "--serial", "1", "--ca", "nope"}, 1, "", `no certificate authority named "nope"`},
		{"revoke bad fingerprint", alice, "", []string{"revoke", "--key", "SHA256:nope"}, 1, "", "not a key fingerprint"},
		{"revoke serial of a CA", alice, "", []string{"revoke", "--serial", "42", "--ca", "team-ca"}, 0, "revoked serial 42 of CA team-ca SHA256:", ""},
		{"revoke key ID", alice, "", []string{"revoke", "--key-id", "bob@laptop"}, 0, `revoked key ID "bob@laptop" (revocation 2)`, ""},
		{"revocations ls", alice, "", []string{"revocations", "ls"}, 0, "ID  KIND", ""},
		{"revocations rm not a number", alice, "", []string{"revocations", "rm", "first"}, 2, "", "not a revocation ID"},
		{"revocations rm unknown", alice, "", []string{"revocations", "rm", "99"}, 1, "", "no revocation 99"},
		{"revocations rm", alice, "", []string{"revocations", "rm", "1"}, 0, "revocation 1 removed\n", ""},
		{"register", signup, "", []string{"register", "bob"}, 0, "account bob created; this key is its first login key, named \"ed25519-", ""},
		{"account delete", alice, "", []string{"account", "delete", "--yes"}, 0, "account alice deleted; its name is held until 20", ""},
		{"whoami after the deletion", alice, "", []string{"whoami"}, 0, "account   alice", ""},
		{"keys add after the deletion", alice, opstest.Line(opstest.Key(t, 17), ""), []string{"keys", "add"}, 1, "", "this account no longer exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := aliceKey
			switch {
			case tt.grant.MayClaim:
				key = pendingKey
			case tt.grant.IsSignup():
				key = newKey
			}
			r := run(o, tt.grant, key, tt.stdin, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit status %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, tt.stdout) {
				t.Errorf("stdout %q does not contain %q", r.stdout, tt.stdout)
			}
			if tt.stderr == "" && r.stderr != "" || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr %q, want it to contain %q", r.stderr, tt.stderr)
			}
			if tt.code == exitUsage && !strings.HasSuffix(r.stderr, usageHint) {
				t.Errorf("usage error %q does not end with the hint %q", r.stderr, usageHint)
			}
		})
	}
}

// volatile matches the store's creation and use times in JSON output, which the golden files
// show as "<time>". The pattern is the promised format, so any other format fails the test.
var volatile = regexp.MustCompile(`("(?:created_at|updated_at|last_used_at|expires_at)": )"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"`)

// claimCode matches a fresh claim code in JSON output, shown as <code>.
var claimCode = regexp.MustCompile(`("code": "|keys claim )[2-9A-HJKMNP-Z]{8}`)

func TestJSON(t *testing.T) {
	o, store := opstest.New(t)
	alice := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	ctx := context.Background()
	ca := opstest.AddCA(t, o, alice, opstest.Signer(t, 11), `principals="pgs,tuns" `+opstest.Line(opstest.Key(t, 11), "team-ca"), "")
	laptopKey := opstest.Key(t, 10)
	laptop, err := o.AddKey(ctx, alice, `from="192.0.2.0/24" `+opstest.Line(laptopKey, "alice@laptop"), "", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.ClaimLoginKey(ctx, laptop.Fingerprint, laptop.Claim.Code, time.Now()); err != nil {
		t.Fatal(err)
	}
	// One key waits to be claimed: its code and expiry are the test's to blank out.
	desk, err := o.AddKey(ctx, alice, opstest.Line(opstest.Key(t, 12), "alice@desk"), "", false)
	if err != nil {
		t.Fatal(err)
	}
	// A CA waits to be claimed by the certificate the keys-add-ca test feeds.
	ciCA, err := o.AddKey(ctx, alice, opstest.Line(opstest.Key(t, 14), "ci-ca"), "", true)
	if err != nil {
		t.Fatal(err)
	}
	active, err := store.KeyByFingerprint(ctx, laptop.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.TouchKey(ctx, active.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	serial := uint64(3)
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for _, e := range []db.AccessEntry{
		{Time: at, AccountID: alice.AccountID, Account: "alice", Service: "admin", Method: "key", Identity: alice.Identity,
			KeyFingerprint: alice.KeyFingerprint, RemoteAddr: "192.0.2.1:50000", Outcome: "allowed"},
		{Time: at.Add(time.Minute), AccountID: alice.AccountID, Account: "alice", Service: "admin", Method: "cert", Identity: "bob@laptop",
			Serial: &serial, KeyFingerprint: auth.Fingerprint(opstest.Key(t, 30)), CAFingerprint: ca.Fingerprint,
			RemoteAddr: "192.0.2.2:50001", Outcome: "denied", Reason: `certificate "bob@laptop" does not grant admin`},
	} {
		if err := store.AppendAccess(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, req := range []ops.RevokeRequest{{Serial: &serial, CA: "team-ca"}, {KeyID: "bob@laptop"}, {Key: auth.Fingerprint(opstest.Key(t, 30))}} {
		if _, err := o.Revoke(ctx, alice, req); err != nil {
			t.Fatal(err)
		}
	}
	validBefore := time.Date(2027, 11, 1, 0, 0, 0, 0, time.UTC)
	bob := auth.Grant{
		AccountID: alice.AccountID, Account: "alice", Method: auth.MethodCert, Identity: "bob@laptop",
		Service: auth.Admin, Services: []auth.Service{auth.Admin, auth.PGS, auth.Tuns, auth.Pipe},
		KeyFingerprint: auth.Fingerprint(opstest.Key(t, 30)),
		Cert: &auth.CertFacts{KeyID: "bob@laptop", Serial: 4, CAName: "team-ca", CAFingerprint: ca.Fingerprint,
			Principals: []string{"admin"}, ValidBefore: &validBefore},
	}
	forever := bob
	forever.Cert = &auth.CertFacts{KeyID: "ci", Serial: 0, CAName: "team-ca", CAFingerprint: ca.Fingerprint, Principals: []string{"admin", "build"}}
	forced := bob
	forced.ForceCommand = "pipe pub deploys"
	for _, req := range []ops.PrincipalRequest{
		{Principal: "web-team", Services: "pgs,tuns", From: "192.0.2.0/24,!192.0.2.1", CA: "team-ca"},
		{Principal: "peter", Services: "admin"},
	} {
		if _, _, err := o.SetPrincipal(ctx, alice, req); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		golden string
		grant  auth.Grant
		args   []string
		stdin  string
	}{
		{"keys-add.json", alice, []string{"keys", "add", "--json"}, opstest.Line(opstest.Key(t, 13), "alice@tablet")},
		{"keys-add-ca.json", alice, []string{"keys", "add", "--json"}, opstest.ClaimCertificate(t, opstest.Signer(t, 14), ciCA.Claim.Code)},
		{"whoami-key.json", alice, []string{"whoami", "--json"}, ""},
		{"whoami-cert.json", bob, []string{"whoami", "--json"}, ""},
		{"whoami-cert-forever.json", forever, []string{"whoami", "--json"}, ""},
		{"whoami-force-command.json", forced, []string{"whoami", "--json"}, ""},
		{"principals.json", alice, []string{"principals", "ls", "--json"}, ""},
		{"keys.json", alice, []string{"keys", "ls", "--json"}, ""},
		{"logs.json", alice, []string{"logs", "--json"}, ""},
		{"logs-empty.json", alice, []string{"logs", "--json", "--service", "pipe"}, ""},
		{"revocations.json", alice, []string{"revocations", "ls", "--json"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			r := run(o, tt.grant, nil, tt.stdin, tt.args...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit status %d, stderr %q", r.code, r.stderr)
			}
			got := volatile.ReplaceAllString(r.stdout, `$1"<time>"`)
			got = strings.ReplaceAll(got, desk.Claim.Code, "<code>")
			got = claimCode.ReplaceAllString(got, `$1<code>`)
			path := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s differs (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}
