package admin

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/stripe/krl"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/services/admin/ops/opstest"
)

// TestCLITrust: the principal map and KRL commands, in the order a user would run them.
func TestCLITrust(t *testing.T) {
	o, _ := opstest.New(t)
	aliceKey := opstest.Key(t, 1)
	alice := opstest.Register(t, o, "alice", aliceKey)
	team := opstest.Signer(t, 11)
	opstest.AddCA(t, o, alice, team, opstest.Line(team.PublicKey(), "team-ca"), "")
	usageHint := "run: ssh -p 2222 example.org help\n"
	pgsOnly := alice
	pgsOnly.Services = []auth.Service{auth.PGS}

	kl, err := (&krl.KRL{Sections: []krl.KRLSection{&krl.KRLCertificateSection{CA: team.PublicKey(), Sections: []krl.KRLCertificateSubsection{
		&krl.KRLCertificateSerialList{5}, &krl.KRLCertificateSerialRange{Min: 10, Max: 20}, &krl.KRLCertificateKeyID{"carol\x1b[2J"},
	}}}}).Marshal(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		grant  auth.Grant
		stdin  string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"principals", alice, "", []string{"principals"}, 2, "", "principals needs a subcommand: ls, set, rm"},
		{"principals ls, none", alice, "", []string{"principals", "ls"}, 0, "no principals mapped\n", ""},
		{"principals set", alice, "", []string{"principals", "set", "web-team", "pgs,tuns"}, 0,
			"mapped principal web-team: certificates of any CA listing it get pgs,tuns, from any address\n", ""},
		{"principals set, flags after", alice, "", []string{"principals", "set", "web-team", "tuns", "--from", "10.0.0.0/8", "--ca", "team-ca"}, 0,
			"changed principal web-team: certificates of team-ca listing it get tuns, from 10.0.0.0/8\n", ""},
		{"principals set, flags before", alice, "", []string{"principals", "set", "--from", "192.0.2.7", "peter", "admin"}, 0, "mapped principal peter", ""},
		{"principals ls", alice, "", []string{"principals", "ls"}, 0, "PRINCIPAL  SERVICES  FROM        CA       UPDATED\npeter      admin     192.0.2.7   any CA", ""},
		{"principals set needs services", alice, "", []string{"principals", "set", "ops"}, 2, "", "principals set needs SERVICES"},
		{"principals set a service name", alice, "", []string{"principals", "set", "admin", "pgs"}, 1, "", "service name"},
		{"principals set a bad service", alice, "", []string{"principals", "set", "ops", "ftp"}, 1, "", `"ftp" is not a service`},
		{"principals set an unknown CA", alice, "", []string{"principals", "set", "ops", "pgs", "--ca", "nope"}, 1, "", `no certificate authority named "nope"`},
		{"principals set, not admin", pgsOnly, "", []string{"principals", "set", "ops", "admin"}, 1, "", "does not grant admin"},
		{"principals rm unknown", alice, "", []string{"principals", "rm", "nobody"}, 1, "", `principal "nobody" is not mapped`},
		{"principals rm", alice, "", []string{"principals", "rm", "peter"}, 0, "principal peter unmapped\n", ""},

		{"revocations import --every without --url", alice, "", []string{"revocations", "import", "--every", "5m"}, 2, "", "--every goes only with --url"},
		{"revocations import bad --every", alice, "", []string{"revocations", "import", "--url", "https://x/krl", "--every", "often"}, 2, "", "invalid value"},
		{"revocations import nothing", alice, "", []string{"revocations", "import"}, 1, "", "the KRL is refused: not an OpenSSH KRL"},
		{"revocations import text", alice, "serial: 5\n", []string{"revocations", "import"}, 1, "", "not an OpenSSH KRL (it does not start with SSHKRL; make one with ssh-keygen -k)"},
		{"revocations import, not admin", pgsOnly, string(kl), []string{"revocations", "import"}, 1, "", "does not grant admin"},
		{"revocations import", alice, string(kl), []string{"revocations", "import"}, 0, "imported the KRL: 3 entries, 3 new revocations (0 the account had)\n", ""},
		{"revocations import again", alice, string(kl), []string{"revocations", "import", "--json"}, 0, "\"entries\": 3,\n  \"added\": 0,\n  \"source\": null", ""},
		{"revocations ls", alice, "", []string{"revocations", "ls"}, 0, "3   key_id        carol?[2J  team-ca  krl", ""},
		{"revocations import --url to loopback", alice, "", []string{"revocations", "import", "--url", "http://127.0.0.1:1/krl"}, 1, "", "its address is internal"},
		{"revocations import --url file", alice, "", []string{"revocations", "import", "--url", "file:///etc/passwd"}, 1, "", "only http:// and https://"},
		{"revocations sources, none", alice, "", []string{"revocations", "sources"}, 0, "no KRL sources\n", ""},
		{"revocations sources rm unknown", alice, "", []string{"revocations", "sources", "rm", "7"}, 1, "", `no KRL source "7"`},
		{"revocations sources rm needs one", alice, "", []string{"revocations", "sources", "rm"}, 2, "", "needs ID-OR-URL"},
		{"revocations export", alice, "", []string{"revocations", "export"}, 0, "SSHKRL\n\x00", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(o, tt.grant, aliceKey, tt.stdin, tt.args...)
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
			if strings.ContainsRune(r.stdout+r.stderr, 0x1b) && tt.name != "revocations export" {
				t.Errorf("output carries an escape: %q", r.stdout+r.stderr)
			}
		})
	}
	// The exported KRL reads back as what was imported.
	r := run(o, alice, aliceKey, "", "revocations", "export")
	k, err := auth.ParseKRL([]byte(r.stdout))
	if err != nil || len(k.Entries) != 3 {
		t.Fatalf("the exported KRL: %v, %v", k, err)
	}
	// help lists the new commands.
	r = run(o, alice, aliceKey, "", "help")
	for _, want := range []string{"principals set NAME SERVICES [--from CIDR,...] [--ca CA]", "revocations import [--ca NAME] --url URL [--every DURATION]", "revocations export", "revocations sources rm ID-OR-URL"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("help does not list %q", want)
		}
	}
}
