package certifier

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/internal/oidctest"
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

// ID tokens come from anyone: whatever the bytes, verification refuses them with a Refusal
// unless the issuer's key signed them (go-oidc and go-jose parse; this checks the certifier's
// own handling around them: explaining refusals, claims, token types, replays).
func FuzzVerifyToken(f *testing.F) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	const issuer = "https://sso.example.com"
	now := time.Now()
	claims := map[string]any{"iss": issuer, "sub": "u1", "aud": "portico", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(),
		"email": "a@example.com", "email_verified": true, "groups": []string{"web-team"}}
	valid, err := oidctest.Sign(claims, jose.RS256, key, "k1")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(unsigned(claims))
	f.Add("a.b.c")
	f.Add(valid[:len(valid)-5])
	f.Add(strings.Replace(valid, ".", "..", 1))
	f.Fuzz(func(t *testing.T, raw string) {
		v := newTokenVerifier(issuer, "portico", "groups", nil, time.Now)
		v.verifier = oidc.NewVerifier(issuer, &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{&key.PublicKey}},
			&oidc.Config{ClientID: "portico", SupportedSigningAlgs: []string{oidc.RS256}})
		v.algs = []string{oidc.RS256}
		id, err := v.Verify(t.Context(), raw)
		if err != nil {
			if _, ok := AsRefusal(err); !ok {
				t.Fatalf("not a refusal: %v", err)
			}
			return
		}
		if signedContent(raw) != signedContent(valid) || id.Subject != "u1" || id.KeyID() != "a@example.com" {
			t.Fatalf("accepted %q as %+v", raw, id)
		}
	})
}
