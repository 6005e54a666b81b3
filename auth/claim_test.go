package auth

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/internal/sshtest"
)

func TestNewClaimCode(t *testing.T) {
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 2000 {
		c := NewClaimCode()
		if got, err := ParseClaimCode(c); err != nil || got != c {
			t.Fatalf("ParseClaimCode(%q) = %q, %v", c, got, err)
		}
		if seen[c] {
			t.Fatalf("code %q came twice in 2000", c)
		}
		seen[c] = true
		for _, r := range c {
			counts[r]++
		}
	}
	// Every letter of the alphabet turns up (16000 draws of 31 letters: about 516 each).
	for _, r := range ClaimCodeAlphabet {
		if counts[r] < 300 {
			t.Errorf("%q came %d times in 16000 draws", r, counts[r])
		}
	}
	for _, ambiguous := range "01ILO" {
		if strings.ContainsRune(ClaimCodeAlphabet, ambiguous) {
			t.Errorf("the alphabet has the ambiguous %q", ambiguous)
		}
	}
}

func TestParseClaimCode(t *testing.T) {
	for in, want := range map[string]string{
		"7KQ2M9XA":     "7KQ2M9XA",
		" 7kq2m9xa\n":  "7KQ2M9XA",
		"7KQ2M9X":      "",
		"7KQ2M9XAB":    "",
		"7KQ2M9X0":     "",
		"7KQ2M9XI":     "",
		"":             "",
		"7KQ2-M9XA":    "",
		"ÄKQ2M9XA":     "",
		"\x1b[2J12345": "",
	} {
		got, err := ParseClaimCode(in)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("ParseClaimCode(%q) = %q, %v; want %q", in, got, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "\x1b") {
			t.Errorf("error %q shows a control character", err)
		}
	}
}

func TestCheckCAClaim(t *testing.T) {
	ca, other, holder := sshtest.NewSigner(t), sshtest.NewSigner(t), sshtest.NewSigner(t)
	const code = "7KQ2M9XA"
	claim := func(signer gossh.Signer, edit func(*gossh.Certificate)) *gossh.Certificate {
		c := &gossh.Certificate{
			Key:             holder.PublicKey(),
			CertType:        gossh.UserCert,
			KeyId:           ClaimKeyID,
			ValidPrincipals: []string{code},
			ValidAfter:      uint64(testNow.Add(-time.Minute).Unix()),
			ValidBefore:     uint64(testNow.Add(15 * time.Minute).Unix()),
		}
		if edit != nil {
			edit(c)
		}
		if err := c.SignCert(rand.Reader, signer); err != nil {
			t.Fatal(err)
		}
		return reparse(t, c)
	}
	forged := claim(ca, nil)
	forged.Signature.Blob[0] ^= 0xff
	otherSigned := claim(other, nil)
	renamed := claim(other, nil)
	renamed.SignatureKey = ca.PublicKey() // names the CA, signed by another key

	tests := []struct {
		name string
		cert *gossh.Certificate
		want string // "" accepts
	}{
		{"as ssh-keygen makes it", claim(ca, nil), ""},
		{"the code among other principals", claim(ca, func(c *gossh.Certificate) { c.ValidPrincipals = []string{"pgs", code} }), ""},
		{"forever", claim(ca, func(c *gossh.Certificate) { c.ValidBefore = gossh.CertTimeInfinity }), ""},
		{"signed by another key", otherSigned, "not by the pending certificate authority"},
		{"naming the CA, signed by another key", renamed, "signature"},
		{"forged signature", forged, "signature"},
		{"host certificate", claim(ca, func(c *gossh.Certificate) { c.CertType = gossh.HostCert }), "host certificate"},
		{"expired", claim(ca, func(c *gossh.Certificate) { c.ValidBefore = uint64(testNow.Unix()) }), "expired"},
		{"not yet valid", claim(ca, func(c *gossh.Certificate) { c.ValidAfter = uint64(testNow.Add(time.Second).Unix()) }), "not yet valid"},
		{"another code", claim(ca, func(c *gossh.Certificate) { c.ValidPrincipals = []string{"7KQ2M9XB"} }), "claim code"},
		{"the code in lower case", claim(ca, func(c *gossh.Certificate) { c.ValidPrincipals = []string{strings.ToLower(code)} }), "claim code"},
		{"no principals", claim(ca, func(c *gossh.Certificate) { c.ValidPrincipals = nil }), "claim code"},
		{"another key ID", claim(ca, func(c *gossh.Certificate) { c.KeyId = code }), "key ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckCAClaim(tt.cert, ca.PublicKey(), code, testNow)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && err == nil:
				t.Errorf("accepted, want a refusal with %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestParseCertificateLine(t *testing.T) {
	ca, holder := sshtest.NewSigner(t), sshtest.NewSigner(t)
	c := &gossh.Certificate{Key: holder.PublicKey(), CertType: gossh.UserCert, KeyId: ClaimKeyID, ValidBefore: gossh.CertTimeInfinity}
	if err := c.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(c)))
	for _, ok := range []string{line, line + " holder@laptop", "  " + line + "\n"} {
		got, err := ParseCertificateLine(ok)
		if err != nil || !IsCertificateLine(ok) || Fingerprint(got.SignatureKey) != Fingerprint(ca.PublicKey()) {
			t.Errorf("ParseCertificateLine(%.40q...) = %v, %v", ok, got, err)
		}
	}
	for _, bad := range []string{
		"",
		sshtest.AuthorizedKey(holder.PublicKey()),
		`cert-authority ` + line,
		line + "\n" + line,
		strings.Replace(line, "AAAA", "!!!!", 1),
		"ssh-ed25519-cert-v01@openssh.com " + strings.Fields(sshtest.AuthorizedKey(holder.PublicKey()))[1],
	} {
		if _, err := ParseCertificateLine(bad); err == nil {
			t.Errorf("ParseCertificateLine(%.60q) accepted it", bad)
		}
	}
}

func FuzzParseCertificateLine(f *testing.F) {
	f.Add("ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29t comment")
	f.Add("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKk")
	f.Fuzz(func(t *testing.T, line string) {
		cert, err := ParseCertificateLine(line)
		if err == nil && cert == nil {
			t.Fatal("no certificate and no error")
		}
	})
}

func FuzzParseClaimCode(f *testing.F) {
	f.Add("7KQ2M9XA")
	f.Add(" 7kq2m9xa ")
	f.Fuzz(func(t *testing.T, s string) {
		code, err := ParseClaimCode(s)
		if err != nil {
			return
		}
		if len(code) != ClaimCodeLen || strings.Trim(code, ClaimCodeAlphabet) != "" {
			t.Fatalf("ParseClaimCode(%q) = %q", s, code)
		}
	})
}
