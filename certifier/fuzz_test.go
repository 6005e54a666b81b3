package certifier

import (
	"bytes"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	gossh "golang.org/x/crypto/ssh"
)

// The body of POST /sign comes from anyone: reading it never panics, stays within its bound,
// and what it accepts is a single public key of a certified type.
func FuzzSignRequest(f *testing.F) {
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me"
	for _, s := range []string{
		`{"public_key": "` + key + `", "ttl": "30m", "reason": "deploy"}`,
		`{"public_key": "` + key + `"}{}`,
		`{"public_key": "ssh-rsa AAAA"}`,
		`{"public_key": "command=\"x\" ` + key + `"}`,
		`{"ttl": 5}`, `[]`, `null`, ``, `{"public_key": "` + key + `\n` + key + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := readSignRequest(bytes.NewReader(body), 4096)
		if err != nil {
			if _, ok := AsRefusal(err); !ok {
				t.Fatalf("not a refusal: %v", err)
			}
			if len(body) > 4096 && !strings.Contains(err.Error(), "too large") {
				t.Fatalf("a %d-byte body was not refused as too large: %v", len(body), err)
			}
			return
		}
		if len(body) > 4096 {
			t.Fatalf("a %d-byte body was read", len(body))
		}
		if utf8.RuneCountInString(req.Reason) > maxRequestReason || strings.IndexFunc(req.Reason, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			t.Fatalf("reason %q kept", req.Reason)
		}
		pub, err := ParsePublicKey(req.PublicKey)
		if err != nil {
			if _, ok := AsRefusal(err); !ok {
				t.Fatalf("not a refusal: %v", err)
			}
			return
		}
		if _, isCert := pub.(*gossh.Certificate); isCert || pub.Type() == gossh.KeyAlgoDSA {
			t.Fatalf("accepted a %s", pub.Type())
		}
	})
}

// The claim code becomes a principal: only codes of letters, digits, - and _ are signed.
func FuzzClaimCode(f *testing.F) {
	ca := newSigner(f)
	for _, s := range []string{"K7QX2M9P", "", "a,b", "x y", "é", strings.Repeat("A", 65)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, code string) {
		line, err := ClaimCertificate(ca, code, fixedNow)
		if err != nil {
			return
		}
		pub, _, _, _, err := gossh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		cert := pub.(*gossh.Certificate)
		if len(cert.ValidPrincipals) != 1 || cert.ValidPrincipals[0] != code || strings.ContainsAny(code, ", \t\n") || code == "" {
			t.Fatalf("code %q became principals %q", code, cert.ValidPrincipals)
		}
	})
}
