package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"github.com/portico-sh/portico/internal/sshtest"
	"slices"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

func TestParseKeyLine(t *testing.T) {
	ed := sshtest.NewSigner(t).PublicKey()
	edLine := sshtest.AuthorizedKey(ed)
	ecPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := gossh.NewPublicKey(&ecPriv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	small, err := gossh.NewPublicKey(&smallRSA.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	cert := userCert(t, ed, sshtest.NewSigner(t), nil)
	expiry := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

	good := []struct {
		name, line string
		key        gossh.PublicKey
		opts       KeyOptions
		comment    string
	}{
		{"plain", edLine, ed, KeyOptions{}, ""},
		{"comment", edLine + " alice@laptop", ed, KeyOptions{}, "alice@laptop"},
		{"comment with spaces and trailing newline", edLine + "  my work laptop \n", ed, KeyOptions{}, "my work laptop"},
		{"tabs and leading space", "  " + strings.Replace(edLine, " ", "\t", 1) + "\tx", ed, KeyOptions{}, "x"},
		{"ecdsa", sshtest.AuthorizedKey(ec) + " ec", ec, KeyOptions{}, "ec"},
		{"CA", "cert-authority " + edLine + " team", ed, KeyOptions{CertAuthority: true}, "team"},
		{
			"CA with every option",
			`cert-authority,principals="pgs,tuns",from="10.0.0.0/8,!10.0.0.1",expiry-time="20261101" ` + edLine + " ca",
			ed, KeyOptions{CertAuthority: true, Principals: []string{"pgs", "tuns"}, From: []string{"10.0.0.0/8", "!10.0.0.1"}, ExpiryTime: &expiry}, "ca",
		},
		{"login key with from", `from="192.0.2.*" ` + edLine, ed, KeyOptions{From: []string{"192.0.2.*"}}, ""},
		{"upper-case option name", `Cert-Authority ` + edLine, ed, KeyOptions{CertAuthority: true}, ""},
	}
	for _, c := range good {
		t.Run(c.name, func(t *testing.T) {
			kl, err := ParseKeyLine(c.line)
			if err != nil {
				t.Fatal(err)
			}
			if Fingerprint(kl.Key) != Fingerprint(c.key) {
				t.Error("wrong key")
			}
			if kl.Options.String() != c.opts.String() {
				t.Errorf("options %q, want %q", kl.Options, c.opts)
			}
			if kl.Comment != c.comment {
				t.Errorf("comment %q, want %q", kl.Comment, c.comment)
			}
		})
	}

	bad := []struct{ name, line, want string }{
		{"empty", "  \n", "empty"},
		{"comment line", "# " + edLine, "comment"},
		{"two lines", edLine + "\n" + edLine, "one authorized_keys line"},
		{"garbage", "hello world", "malformed key line"},
		{"no key data", "ssh-ed25519", "malformed key line"},
		{"bad base64", "ssh-ed25519 !!!!", "base64"},
		{"truncated key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==", "malformed ssh-ed25519 key"},
		{"type mismatch", "ssh-rsa " + strings.Fields(edLine)[1], "the line says ssh-rsa but the key is ssh-ed25519"},
		{"certificate", sshtest.AuthorizedKey(cert), "certificate, not a key"},
		{"certificate with options", "cert-authority " + sshtest.AuthorizedKey(cert), "certificate, not a key"},
		{"DSA", "ssh-dss AAAAB3NzaC1kc3M=", "DSA"},
		{"unknown type", "ssh-foo AAAA", "unsupported key type \"ssh-foo\""},
		{"small RSA", sshtest.AuthorizedKey(small), "1024 bits is too small"},
		{"principals without cert-authority", `principals="pgs" ` + edLine, "only allowed with cert-authority"},
		{"unknown option", `no-pty ` + edLine, `unknown option "no-pty"`},
		{"unknown option after a known one", `cert-authority,command="ls" ` + edLine, `unknown option "command"`},
		{"unterminated quote", `from="10.0.0.1 ` + edLine, "missing closing quote"},
		{"value with a space", `from="10.0.0.1, 10.0.0.2" ` + edLine, `" 10.0.0.2"`},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseKeyLine(c.line)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
		})
	}
}

func TestParseKeyOptions(t *testing.T) {
	at := func(s string) *time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return &tm
	}
	good := []struct {
		in        string
		want      KeyOptions
		canonical string
	}{
		{"", KeyOptions{}, ""},
		{"cert-authority", KeyOptions{CertAuthority: true}, "cert-authority"},
		{`principals="admin",cert-authority`, KeyOptions{CertAuthority: true, Principals: []string{"admin"}}, `cert-authority,principals="admin"`},
		{`cert-authority,principals="pgs,web-team,peter@example.com"`, KeyOptions{CertAuthority: true, Principals: []string{"pgs", "web-team", "peter@example.com"}}, ""},
		{`from="::1/128,2001:db8::/32,10.?.*,!10.0.0.1,*"`, KeyOptions{From: []string{"::1/128", "2001:db8::/32", "10.?.*", "!10.0.0.1", "*"}}, ""},
		{`expiry-time="20261101"`, KeyOptions{ExpiryTime: at("2026-11-01T00:00:00Z")}, ""},
		{`expiry-time="202611011230"`, KeyOptions{ExpiryTime: at("2026-11-01T12:30:00Z")}, ""},
		{`expiry-time="20261101123045"`, KeyOptions{ExpiryTime: at("2026-11-01T12:30:45Z")}, ""},
		{`expiry-time="20261101123045Z"`, KeyOptions{ExpiryTime: at("2026-11-01T12:30:45Z")}, `expiry-time="20261101123045"`},
		{`EXPIRY-TIME="20261101"`, KeyOptions{ExpiryTime: at("2026-11-01T00:00:00Z")}, `expiry-time="20261101"`},
		{`from="10.0.0.\"1"`, KeyOptions{}, "error"},
	}
	for _, c := range good {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseKeyOptions(c.in)
			if c.canonical == "error" {
				if err == nil {
					t.Fatalf("accepted: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.CertAuthority != c.want.CertAuthority || !slices.Equal(got.Principals, c.want.Principals) ||
				!slices.Equal(got.From, c.want.From) || (got.ExpiryTime == nil) != (c.want.ExpiryTime == nil) ||
				got.ExpiryTime != nil && !got.ExpiryTime.Equal(*c.want.ExpiryTime) {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
			canonical := c.canonical
			if canonical == "" {
				canonical = c.in
			}
			s := got.String()
			if s != canonical {
				t.Errorf("String() = %q, want %q", s, canonical)
			}
			again, err := ParseKeyOptions(s)
			if err != nil || again.String() != s {
				t.Errorf("String() does not round-trip: %q → %q, %v", s, again.String(), err)
			}
		})
	}

	bad := []struct{ in, want string }{
		{"no-pty", `unknown option "no-pty"`},
		{"restrict", `unknown option "restrict"`},
		{`command="ls"`, `unknown option "command"`},
		{`environment="A=B"`, `unknown option "environment"`},
		{`permitopen="localhost:80"`, `unknown option "permitopen"`},
		{"cert-authority,tunnel=\"0\"", `unknown option "tunnel"`},
		{`cert-authority="yes"`, "takes no value"},
		{"principals", "needs a quoted value"},
		{"principals=pgs", "needs a quoted value"},
		{`principals="pgs`, "missing closing quote"},
		{`principals="pgs"x`, "expected a comma"},
		{`principals=""`, `an empty principal`},
		{`principals="pgs,,tuns"`, `an empty principal`},
		{`principals="web team"`, `"web team" is neither a service`},
		{`principals="PGS"`, `"PGS" is a service name`},
		{`principals="pipe,-x"`, `cannot start with "-"`},
		{"principals=\"a\u202eb\"", `unprintable`},
		{`from="example.com"`, "not an IP address"},
		{`from="*.example.com"`, "not host names"},
		{`from="10.0.0.0/33"`, "10.0.0.0/33"},
		{`from="192.0.2.7/24"`, "host bits set: the network is 192.0.2.0/24"},
		{`from="!"`, "empty pattern"},
		{`from=""`, "empty pattern"},
		{`from="fe80::1%eth0"`, "not an IP address"},
		{`expiry-time="2026-11-01"`, "YYYYMMDD"},
		{`expiry-time="20261301"`, "YYYYMMDD"},
		{`expiry-time="2026110112"`, "YYYYMMDD"},
		{`expiry-time="tomorrow"`, "YYYYMMDD"},
		{"cert-authority,cert-authority", "given twice"},
		{"cert-authority,", "trailing comma"},
		{",cert-authority", "empty option"},
		{`"cert-authority"`, "empty option"},
		{"cert authority", "malformed option name"},
	}
	for _, c := range bad {
		t.Run(c.in, func(t *testing.T) {
			_, err := ParseKeyOptions(c.in)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
		})
	}
}

func TestKeyOptionsStringZero(t *testing.T) {
	if s := (KeyOptions{}).String(); s != "" {
		t.Errorf("zero options = %q, want empty", s)
	}
}

func TestSanitizeKeyID(t *testing.T) {
	long := strings.Repeat("é", 200)
	cases := []struct{ in, want string }{
		{"bob@laptop", "bob@laptop"},
		{"", ""},
		{"with space", "with space"},
		{"bob\n@laptop", "bob?@laptop"},
		{"\x1b[31mred\x1b[0m", "?[31mred?[0m"},
		{"tab\there", "tab?here"},
		{"nul\x00", "nul?"},
		{"bad\xffutf8", "bad?utf8"},
		{"rtl\u202eevil", "rtl?evil"},
		{"日本語", "日本語"},
		{long, strings.Repeat("é", 128)},
	}
	for _, c := range cases {
		if got := SanitizeKeyID(c.in); got != c.want {
			t.Errorf("SanitizeKeyID(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestValidAccountName(t *testing.T) {
	cases := []struct{ name, want string }{
		{"alice", ""},
		{"a1", ""},
		{"bob2026", ""},
		{strings.Repeat("a", 30), ""},
		{"", "empty"},
		{"a", "2 to 30"},
		{strings.Repeat("a", 31), "2 to 30"},
		{"1alice", "start with a lowercase letter"},
		{"Alice", "start with a lowercase letter"},
		{"aLice", "only lowercase letters and digits"},
		{"al_ice", "only lowercase letters and digits"},
		{"alicé", "only lowercase letters and digits"},
		{"al-ice", "hyphen"},
	}
	for _, r := range reservedNames {
		cases = append(cases, struct{ name, want string }{r, "reserved"})
	}
	for _, c := range cases {
		err := ValidAccountName(c.name)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("ValidAccountName(%q) = %v, want nil", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("ValidAccountName(%q) = %v, want an error saying %q", c.name, err, c.want)
		}
	}
	for _, r := range []string{"admin", "root", "portico", "pgs", "tuns", "pipe", "pastes", "prose", "feeds", "public", "www", "api", "help", "new", "register", "mail"} {
		if !slices.Contains(reservedNames, r) {
			t.Errorf("%q is reserved by SPEC §1 but not refused", r)
		}
	}
}

func TestFingerprint(t *testing.T) {
	k := sshtest.NewSigner(t).PublicKey()
	fp := Fingerprint(k)
	if !strings.HasPrefix(fp, "SHA256:") || len(fp) != len("SHA256:")+43 {
		t.Errorf("Fingerprint = %q, want OpenSSH's SHA256:<43 base64 characters>", fp)
	}
}
