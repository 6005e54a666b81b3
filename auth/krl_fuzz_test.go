package auth

import (
	"bytes"
	"crypto/rand"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stripe/krl"
	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/internal/sshtest"
)

// A KRL comes from anyone who can run revocations import, or from any URL they name: reading it
// never panics, never yields more than MaxKRLEntries, yields only revocations the store takes,
// refuses with a *KRLError, and what it yields MarshalKRL writes back to the same entries.
func FuzzParseKRL(f *testing.F) {
	data, err := os.ReadFile("testdata/krl/full.krl")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	caKey, _, _, _, err := gossh.ParseAuthorizedKey([]byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINpkT49KY4QeAH8W6IBUiedpRIqR3IM7IcO3JTeUoiDg u2"))
	if err != nil {
		f.Fatal(err)
	}
	ca := caKey.Marshal()
	f.Add(cat(krlHeader("c"), certSection(ca, serials(1, 2, 3), sub(krlCertSerialRange, be64(9), be64(20)), keyIDs("bob", "carol"))))
	f.Add(cat(krlHeader(""), certSection(nil, keyIDs("any")), certSection(ca, sub(krlCertSerialBitmap, be64(7), wire([]byte{0x7f, 0x0f})))))
	f.Add(cat(krlHeader(""), krlSection(krlFingerprintSHA2, wire(make([]byte, 32))), krlSection(krlFingerprintSHA1, wire(make([]byte, 20)))))
	f.Add(cat(krlHeader(""), krlSection(krlExplicitKey, wire(ca)), krlSection(krlExtension, wire([]byte("x")), []byte{0}, wire(nil))))
	signer := sshtest.NewSigner(f)
	signed, err := (&krl.KRL{Sections: []krl.KRLSection{&krl.KRLCertificateSection{CA: caKey,
		Sections: []krl.KRLCertificateSubsection{&krl.KRLCertificateSerialList{5}}}}}).Marshal(rand.Reader, signer)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signed)
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseKRL(data)
		if err != nil {
			if _, ok := err.(*KRLError); !ok {
				t.Fatalf("error %T %v is not a *KRLError", err, err)
			}
			return
		}
		if len(k.Entries) > MaxKRLEntries {
			t.Fatalf("%d entries", len(k.Entries))
		}
		var revs []ExportedRevocation
		for _, e := range k.Entries {
			checkEntry(t, e)
			revs = append(revs, ExportedRevocation{Revocation: db.Revocation{NewRevocation: db.NewRevocation{Kind: e.Kind, Value: e.Value}}, CA: e.CA})
		}
		var buf bytes.Buffer
		if skipped, err := MarshalKRL(&buf, revs, 1, 1, ""); err != nil || skipped != 0 {
			t.Fatalf("MarshalKRL of what ParseKRL read: skipped %d, %v", skipped, err)
		}
		again, err := ParseKRL(buf.Bytes())
		if err != nil {
			t.Fatalf("ParseKRL of what MarshalKRL wrote: %v", err)
		}
		if got, want := entrySet(again.Entries), entrySet(asHashes(k.Entries)); !slices.Equal(got, want) {
			t.Fatalf("round trip:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// checkEntry checks that an entry is a revocation the store would take.
func checkEntry(t *testing.T, e KRLEntry) {
	t.Helper()
	if e.Value == "" || !utf8.ValidString(e.Value) || strings.ContainsRune(e.Value, 0) {
		t.Fatalf("entry %+v: value is not text", e)
	}
	switch e.Kind {
	case db.RevokeSerial:
		if n, err := strconv.ParseUint(e.Value, 10, 64); err != nil || n == 0 || !e.Certificate {
			t.Fatalf("serial entry %+v", e)
		}
	case db.RevokeSerialRange:
		if from, _, err := db.ParseSerialRange(e.Value); err != nil || from == 0 || !e.Certificate {
			t.Fatalf("range entry %+v: %v", e, err)
		}
	case db.RevokeKeyID:
		if !e.Certificate || len(e.Value) > maxKRLKeyID {
			t.Fatalf("key ID entry %+v", e)
		}
	case db.RevokeKey, db.RevokeKeyHash:
		if e.Certificate || !(strings.HasPrefix(e.Value, "SHA256:") || strings.HasPrefix(e.Value, "SHA1:")) {
			t.Fatalf("key entry %+v", e)
		}
	default:
		t.Fatalf("entry of kind %q", e.Kind)
	}
}

// asHashes is es with keys as the key hashes MarshalKRL writes them as.
func asHashes(es []KRLEntry) []KRLEntry {
	out := slices.Clone(es)
	for i := range out {
		if out[i].Kind == db.RevokeKey {
			out[i].Kind = db.RevokeKeyHash
		}
	}
	return out
}
