package auth

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/db"
)

// TestPrincipalMap: the account-side principal map (SPEC §2.2, "Principal map"), decided with the
// rest of the certificate rules.
func TestPrincipalMap(t *testing.T) {
	type mapping struct {
		principal, services, from string
		ca                        string // "team", "carol" (another account's) or "" (any)
	}
	cases := []struct {
		name       string
		mappings   []mapping
		caOptions  string   // alice's CA's options; default cert-authority
		principals []string // the certificate's; default pgs, tuns
		service    Service  // default pgs
		remote     string   // default 192.0.2.10
		fromCarol  bool     // the certificate is signed by carol's CA
		want       []Service
		reason     Reason
		messages   []string
	}{
		{name: "a mapped principal grants its services", mappings: []mapping{{"web-team", "pgs,tuns", "", ""}},
			principals: []string{"web-team"}, want: []Service{PGS, Tuns}},
		{name: "mapped to admin: every service", mappings: []mapping{{"peter", "admin", "", ""}},
			principals: []string{"peter"}, service: Admin, want: []Service{Admin, PGS, Tuns, Pipe}},
		{name: "service principals and mapped ones add up", mappings: []mapping{{"web-team", "tuns", "", ""}},
			principals: []string{"pipe", "web-team"}, service: Tuns, want: []Service{Tuns, Pipe}},
		{name: "several mapped principals", mappings: []mapping{{"web-team", "pgs", "", ""}, {"buildserver", "pipe", "", ""}},
			principals: []string{"web-team", "buildserver", "stranger"}, want: []Service{PGS, Pipe}},
		{name: "unmapped principals grant nothing", mappings: []mapping{{"web-team", "pgs", "", ""}},
			principals: []string{"ops", "peter"}, reason: ReasonDoesNotGrant, messages: []string{"does not grant any service", "maps none of them"}},
		{name: "does not grant a service the mapping leaves out", mappings: []mapping{{"web-team", "pgs", "", ""}},
			principals: []string{"web-team"}, service: Tuns, reason: ReasonDoesNotGrant, messages: []string{"does not grant tuns (it grants pgs)"}},
		{name: "principals match exactly", mappings: []mapping{{"web-team", "pgs", "", ""}},
			principals: []string{"Web-Team", "web-team "}, reason: ReasonDoesNotGrant},

		// --ca
		{name: "--ca this CA", mappings: []mapping{{"web-team", "pgs", "", "team"}},
			principals: []string{"web-team"}, want: []Service{PGS}},
		{name: "--ca another CA of the account", mappings: []mapping{{"web-team", "pgs", "", "rsa"}},
			principals: []string{"web-team"}, reason: ReasonDoesNotGrant, messages: []string{"maps none of them"}},
		{name: "another account's map never applies", mappings: []mapping{{"web-team", "pgs", "", ""}},
			principals: []string{"web-team"}, fromCarol: true, reason: ReasonDoesNotGrant},

		// --from
		{name: "--from matches", mappings: []mapping{{"web-team", "pgs", "192.0.2.0/24", ""}},
			principals: []string{"web-team"}, want: []Service{PGS}},
		{name: "--from does not match", mappings: []mapping{{"web-team", "pgs", "10.0.0.0/8", ""}},
			principals: []string{"web-team"}, reason: ReasonSourceAddress,
			messages: []string{`maps its principal "web-team" to pgs only from 10.0.0.0/8`, "192.0.2.10"}},
		{name: "--from negated", mappings: []mapping{{"web-team", "pgs", "192.0.2.0/24,!192.0.2.10", ""}},
			principals: []string{"web-team"}, reason: ReasonSourceAddress},
		{name: "--from wildcard", mappings: []mapping{{"web-team", "pgs", "192.0.2.*", ""}},
			principals: []string{"web-team"}, want: []Service{PGS}},
		{name: "--from IPv6", mappings: []mapping{{"web-team", "pgs", "2001:db8::/32", ""}}, remote: "[2001:db8::5]:22",
			principals: []string{"web-team"}, want: []Service{PGS}},
		{name: "--from IPv4-mapped client", mappings: []mapping{{"web-team", "pgs", "192.0.2.0/24", ""}}, remote: "[::ffff:192.0.2.10]:22",
			principals: []string{"web-team"}, want: []Service{PGS}},
		{name: "--from refuses one mapping, another grants", service: Tuns,
			mappings:   []mapping{{"web-team", "pgs,tuns", "10.0.0.0/8", ""}, {"ops", "tuns", "", ""}},
			principals: []string{"web-team", "ops"}, want: []Service{Tuns}},
		{name: "--from refuses, service principals still count", mappings: []mapping{{"web-team", "tuns", "10.0.0.0/8", ""}},
			principals: []string{"pgs", "web-team"}, want: []Service{PGS}},
		{name: "--from refuses the service asked for", service: Tuns, mappings: []mapping{{"web-team", "tuns", "10.0.0.0/8", ""}},
			principals: []string{"pgs", "web-team"}, reason: ReasonSourceAddress, messages: []string{"may not use tuns from source address"}},

		// The CA's principals=
		{name: "CA principals= lets a mapped principal count", mappings: []mapping{{"web-team", "pgs,tuns", "", ""}},
			caOptions: `cert-authority,principals="pgs,web-team"`, principals: []string{"admin", "web-team"}, service: Tuns,
			want: []Service{PGS, Tuns}},
		{name: "CA principals= counts only what it lists (SPEC example)", mappings: []mapping{{"web-team", "tuns", "", ""}},
			caOptions: `cert-authority,principals="pgs,web-team"`, principals: []string{"admin", "web-team"}, service: Admin,
			reason: ReasonDoesNotGrant, messages: []string{"does not grant admin (it grants tuns)"}},
		{name: "CA principals= leaves a mapped principal out", mappings: []mapping{{"peter", "admin", "", ""}},
			caOptions: `cert-authority,principals="pgs"`, principals: []string{"peter"}, service: Admin,
			reason: ReasonDoesNotGrant, messages: []string{`certificate authority "team-ca" may vouch for`, "limited to pgs"}},
		{name: "CA principals= leaves one mapped principal out, keeps another", mappings: []mapping{{"peter", "admin", "", ""}, {"web-team", "pgs", "", ""}},
			caOptions: `cert-authority,principals="web-team"`, principals: []string{"peter", "web-team"},
			want: []Service{PGS}},
		{name: "CA from= still applies", mappings: []mapping{{"web-team", "pgs", "", ""}},
			caOptions: `cert-authority,from="10.0.0.0/8"`, principals: []string{"web-team"}, reason: ReasonSourceAddress,
			messages: []string{`certificate authority "team-ca" may not vouch`}},

		// Odd principals in the certificate: never looked up as they are, never shown raw.
		{name: "odd principals", mappings: []mapping{{"web-team", "pgs", "", ""}},
			principals: []string{"\x1b[31mred", "a\x00b", "\xff", strings.Repeat("x", 5000), "web-team"}, want: []Service{PGS}},
		{name: "odd principals only", principals: []string{"\x1b[2Jclear"}, reason: ReasonDoesNotGrant, messages: []string{"?[2Jclear"}},
		{name: "thousands of principals are not all named", principals: manyPrincipals(3000), reason: ReasonDoesNotGrant,
			messages: []string{"p0, p1,", "p15 and 2984 more"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			cas := map[string]string{"team": e.caKey.Fingerprint, "rsa": e.rsaCAKey.Fingerprint, "carol": e.carolKey.Fingerprint}
			for _, m := range c.mappings {
				nm := db.NewPrincipalMapping{Principal: m.principal, CAFingerprint: cas[m.ca]}
				for _, s := range strings.Split(m.services, ",") {
					nm.Services = append(nm.Services, s)
				}
				if m.from != "" {
					nm.From = strings.Split(m.from, ",")
				}
				e.store.mapPrincipal(e.alice.ID, nm)
			}
			if c.caOptions != "" {
				e.setOptions(e.caKey, c.caOptions)
			}
			principals := c.principals
			signer := e.ca
			if c.fromCarol {
				signer = e.carolCA
			}
			cert := userCert(t, e.user.PublicKey(), signer, func(cert *gossh.Certificate) { cert.ValidPrincipals = principals })
			remote := c.remote
			if remote == "" {
				remote = "192.0.2.10:5000"
			}
			service := c.service
			if service == "" {
				service = PGS
			}
			a := New(e.store, Options{Now: func() time.Time { return testNow }})
			g, err := a.Authenticate(context.Background(), Attempt{Key: cert, Service: service, RemoteAddr: tcp(remote)})
			if c.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !slices.Equal(g.Services, c.want) {
					t.Errorf("grant = %v, want %v", g.Services, c.want)
				}
				return
			}
			r := wantReason(t, err, c.reason)
			for _, m := range append(c.messages, string(c.reason)) {
				if !strings.Contains(r.Message, m) {
					t.Errorf("message %q does not contain %q", r.Message, m)
				}
			}
			if strings.ContainsAny(r.Message, "\x1b\x00") {
				t.Errorf("message %q carries control characters", r.Message)
			}
		})
	}
}

// TestPrincipalMapLookups: a certificate of service principals only never reads the map.
func TestPrincipalMapLookups(t *testing.T) {
	e := newEnv(t)
	a := New(e.store, Options{Now: func() time.Time { return testNow }})
	if _, err := a.Authenticate(context.Background(), Attempt{Key: e.cert(t, nil), Service: PGS, RemoteAddr: tcp("192.0.2.10:5000")}); err != nil {
		t.Fatal(err)
	}
	if e.store.mapLookups != 0 {
		t.Errorf("a certificate for pgs and tuns read the principal map %d times", e.store.mapLookups)
	}
}

// TestPrincipalMapWithoutAddress: a mapping with --from never applies to a connection without an
// IP address.
func TestPrincipalMapWithoutAddress(t *testing.T) {
	e := newEnv(t)
	e.store.mapPrincipal(e.alice.ID, db.NewPrincipalMapping{Principal: "web-team", Services: []string{"pgs"}, From: []string{"*"}})
	cert := e.cert(t, func(c *gossh.Certificate) { c.ValidPrincipals = []string{"web-team"} })
	a := New(e.store, Options{Now: func() time.Time { return testNow }})
	_, err := a.Authenticate(context.Background(), Attempt{Key: cert, Service: PGS, RemoteAddr: pipeAddr{}})
	wantReason(t, err, ReasonSourceAddress)
}

func TestCheckPrincipalName(t *testing.T) {
	good := []string{"web-team", "peter", "peter@example.com", "buildserver", "ops:deploy", "ünïcode", "a", strings.Repeat("x", 128), "Admins"}
	for _, name := range good {
		if err := CheckPrincipalName(name); err != nil {
			t.Errorf("CheckPrincipalName(%q): %v", name, err)
		}
	}
	bad := []struct{ name, want string }{
		{"", "empty"},
		{"admin", "service name"},
		{"PGS", "service name"},
		{"Tuns", "service name"},
		{"prose", "service to come"},
		{"web team", "space"},
		{"web,team", "comma"},
		{`web"team`, "quote"},
		{"web\\team", "backslash"},
		{"-rf", `cannot start with "-"`},
		{"!web", `cannot start with "!"`},
		{"a\tb", "space"},
		{"a\x00b", "unprintable"},
		{"a\x1b[31m", "unprintable"},
		{"a\u202eb", "unprintable"},
		{"\xff", "UTF-8"},
		{strings.Repeat("x", 129), "longer than 128"},
	}
	for _, c := range bad {
		err := CheckPrincipalName(c.name)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("CheckPrincipalName(%q) = %v, want an error saying %q", c.name, err, c.want)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\x00\x1b\u202e") {
			t.Errorf("CheckPrincipalName(%q) error %q carries control characters", c.name, err)
		}
	}
}

func TestParseServices(t *testing.T) {
	good := []struct {
		in   string
		want []Service
	}{
		{"pgs", []Service{PGS}},
		{"tuns,pgs,tuns", []Service{PGS, Tuns}},
		{" pipe , pgs ", []Service{PGS, Pipe}},
		{"pgs,admin", []Service{Admin}},
	}
	for _, c := range good {
		got, err := ParseServices(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ParseServices(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "pgs,", "git", "PGS", "pgs tuns"} {
		if got, err := ParseServices(in); err == nil {
			t.Errorf("ParseServices(%q) = %v, want an error", in, got)
		}
	}
}

func TestParseFromList(t *testing.T) {
	got, err := ParseFromList("10.0.0.0/8, !10.0.0.1,192.0.2.*,2001:db8::/32")
	if err != nil || !slices.Equal(got, []string{"10.0.0.0/8", "!10.0.0.1", "192.0.2.*", "2001:db8::/32"}) {
		t.Errorf("ParseFromList = %q, %v", got, err)
	}
	for _, in := range []string{"", "10.0.0.0/8,", "example.com", "*.example.com", "10.0.0.1/8", strings.Repeat("10.0.0.1,", 32) + "10.0.0.2"} {
		if got, err := ParseFromList(in); err == nil {
			t.Errorf("ParseFromList(%q) = %q, want an error", in, got)
		}
	}
}

func manyPrincipals(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "p" + strconv.Itoa(i)
	}
	return out
}
