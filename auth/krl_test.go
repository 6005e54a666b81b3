package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stripe/krl"
	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/internal/sshtest"
)

// The wire encoding, for building KRLs by hand.

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
func wire(b []byte) []byte { return append(be32(uint32(len(b))), b...) }
func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// krlHeader is a KRL header with comment.
func krlHeader(comment string) []byte {
	return cat(be64(krlMagic), be32(1), be64(1), be64(1700000000), be64(0), wire(nil), wire([]byte(comment)))
}

func krlSection(typ byte, body ...[]byte) []byte { return cat([]byte{typ}, wire(cat(body...))) }

// certSection is a certificate section for the CA key blob ca (nil: any CA).
func certSection(ca []byte, subs ...[]byte) []byte {
	return krlSection(krlCertificates, append([][]byte{wire(ca), wire(nil)}, subs...)...)
}

func sub(typ byte, body ...[]byte) []byte { return cat([]byte{typ}, wire(cat(body...))) }

func keyIDs(ids ...string) []byte {
	var out []byte
	for _, id := range ids {
		out = append(out, wire([]byte(id))...)
	}
	return sub(krlCertKeyID, out)
}

func serials(ss ...uint64) []byte {
	var out []byte
	for _, s := range ss {
		out = append(out, be64(s)...)
	}
	return sub(krlCertSerialList, out)
}

// entrySet describes entries one per line, sorted, for comparisons.
func entrySet(es []KRLEntry) []string {
	var out []string
	for _, e := range es {
		ca := "-"
		if e.Certificate {
			ca = "any"
			if e.CA != nil {
				ca = Fingerprint(e.CA)
			}
		}
		out = append(out, fmt.Sprintf("%s %s %s", e.Kind, e.Value, ca))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func readKey(t testing.TB, file string) gossh.PublicKey {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	k, _, _, _, err := gossh.ParseAuthorizedKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestParseKRLFromSSHKeygen reads a KRL that ssh-keygen -k wrote (testdata/krl/spec.txt):
// serials it packed into a bitmap, ranges, the largest serial, key IDs, a key, and SHA256 and
// SHA1 key hashes.
func TestParseKRLFromSSHKeygen(t *testing.T) {
	data, err := os.ReadFile("testdata/krl/full.krl")
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKRL(data)
	if err != nil {
		t.Fatal(err)
	}
	ca := Fingerprint(readKey(t, "testdata/krl/ca.pub"))
	want := []string{
		"key " + Fingerprint(readKey(t, "testdata/krl/bob.pub")) + " -",
		"key_hash " + Fingerprint(readKey(t, "testdata/krl/u2.pub")) + " -",
		"key_hash " + FingerprintSHA1(readKey(t, "testdata/krl/u3.pub")) + " -",
		"key_id carol@example.com " + ca,
		"key_id dave " + ca,
		"serial 18446744073709551615 " + ca,
		"serial 5 " + ca,
		"serial 7 " + ca,
		"serial_range 1000-1999 " + ca,
		"serial_range 10-20 " + ca,
	}
	slices.Sort(want)
	if got := entrySet(k.Entries); !slices.Equal(got, want) {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(k.Signers) != 0 {
		t.Errorf("signers of an unsigned KRL: %v", k.Signers)
	}
}

// TestMarshalKRLRoundTrip: what MarshalKRL writes, ParseKRL reads back the same (keys come back
// as key hashes: MarshalKRL writes fingerprints).
func TestMarshalKRLRoundTrip(t *testing.T) {
	ca := readKey(t, "testdata/krl/ca.pub")
	other := sshtest.NewSigner(t).PublicKey()
	rev := func(kind db.RevocationKind, value string, ca gossh.PublicKey) ExportedRevocation {
		return ExportedRevocation{Revocation: db.Revocation{NewRevocation: db.NewRevocation{Kind: kind, Value: value}}, CA: ca}
	}
	bob := Fingerprint(readKey(t, "testdata/krl/bob.pub"))
	revs := []ExportedRevocation{
		rev(db.RevokeSerial, "42", ca),
		rev(db.RevokeSerial, "42", ca),
		rev(db.RevokeSerial, "7", nil),
		rev(db.RevokeSerial, "0", ca), // OpenSSH refuses serial 0 in a KRL: left out
		rev(db.RevokeSerialRange, "100-199", ca),
		rev(db.RevokeSerialRange, "1-18446744073709551615", other),
		rev(db.RevokeKeyID, "carol@example.com", ca),
		rev(db.RevokeKeyID, "bob@laptop", nil),
		rev(db.RevokeKey, bob, nil),
		rev(db.RevokeKeyHash, "SHA1:iITSj7ztqbi63NAYhpgagsK0Qqo", nil),
	}
	var buf bytes.Buffer
	skipped, err := MarshalKRL(&buf, revs, 7, 1700000000, "portico account alice")
	if err != nil || skipped != 1 {
		t.Fatalf("MarshalKRL: skipped %d, %v; want 1 skipped", skipped, err)
	}
	k, err := ParseKRL(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	caFP, otherFP := Fingerprint(ca), Fingerprint(other)
	want := []string{
		"key_hash " + bob + " -",
		"key_hash SHA1:iITSj7ztqbi63NAYhpgagsK0Qqo -",
		"key_id bob@laptop any",
		"key_id carol@example.com " + caFP,
		"serial 42 " + caFP,
		"serial 7 any",
		"serial_range 1-18446744073709551615 " + otherFP,
		"serial_range 100-199 " + caFP,
	}
	slices.Sort(want)
	if got := entrySet(k.Entries); !slices.Equal(got, want) {
		t.Errorf("read back:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// (stripe/krl's own parser cannot read it: it fails on sections for any CA, which OpenSSH
	// reads; the e2e tests check it with ssh-keygen -Q.)
}

// TestParseKRLBitmapRuns: a run of set bits is one range, a lone bit one serial.
func TestParseKRLBitmapRuns(t *testing.T) {
	ca := sshtest.NewSigner(t).PublicKey()
	// Bits 0-2, 4-5 and 7 of 0b10110111, then bits 8-15 of 0xff: 107 runs on into 108-115.
	bitmap := sub(krlCertSerialBitmap, be64(100), wire([]byte{0x00, 0xff, 0xb7}))
	k, err := ParseKRL(cat(krlHeader(""), certSection(ca.Marshal(), bitmap)))
	if err != nil {
		t.Fatal(err)
	}
	fp := Fingerprint(ca)
	want := []string{"serial_range 100-102 " + fp, "serial_range 104-105 " + fp, "serial_range 107-115 " + fp}
	if got := entrySet(k.Entries); !slices.Equal(got, want) {
		t.Errorf("entries %q, want %q", got, want)
	}
	k, err = ParseKRL(cat(krlHeader(""), certSection(ca.Marshal(), sub(krlCertSerialBitmap, be64(5), wire([]byte{0x05})))))
	if err != nil || !slices.Equal(entrySet(k.Entries), []string{"serial 5 " + fp, "serial 7 " + fp}) {
		t.Errorf("lone bits: %v, %v", entrySet(k.Entries), err)
	}
}

// TestParseKRLRefuses: every malformed or unsafe KRL is refused with a reason, and the reason
// never quotes the KRL's content.
func TestParseKRLRefuses(t *testing.T) {
	const secret = "SECRET-internal-content"
	ca := sshtest.NewSigner(t)
	caBlob := ca.PublicKey().Marshal()
	cert := &gossh.Certificate{Key: sshtest.NewSigner(t).PublicKey(), CertType: gossh.UserCert, KeyId: secret}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	good := cat(krlHeader(secret), certSection(caBlob, serials(5)))
	signed, err := (&krl.KRL{Sections: []krl.KRLSection{&krl.KRLCertificateSection{CA: ca.PublicKey(),
		Sections: []krl.KRLCertificateSubsection{&krl.KRLCertificateSerialList{5}}}}}).Marshal(rand.Reader, ca)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(signed)
	tampered[bytes.Index(tampered, be64(5))+7] = 6 // serial 5 becomes 6 after signing
	// A huge RSA modulus: checking a signature by it would cost minutes.
	hugeRSA := gossh.Marshal(struct {
		Name string
		E, N *big.Int
	}{gossh.KeyAlgoRSA, big.NewInt(65537), new(big.Int).Lsh(big.NewInt(1), 20000)})
	manyBits := bytes.Repeat([]byte{0x55}, MaxKRLEntries/4+1) // 4 lone bits a byte: one entry too many

	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not an OpenSSH KRL"},
		{"text", []byte("serial: 5\n" + secret), "not an OpenSSH KRL"},
		{"format version", cat(be64(krlMagic), be32(2)), "format version 2"},
		{"header cut short", cat(be64(krlMagic), be32(1), be64(1)), "header is cut short"},
		{"comment cut short", cat(be64(krlMagic), be32(1), be64(1), be64(1), be64(0), wire(nil), be32(100), []byte(secret)), "cut short at its comment"},
		{"section cut short", cat(krlHeader(""), []byte{krlCertificates}, be32(1000), []byte(secret)), "section 1 is cut short"},
		{"unknown section", cat(krlHeader(""), krlSection(9, []byte(secret))), "section 1 has type 9"},
		{"unknown subsection last", cat(krlHeader(""), certSection(caBlob, sub(0x99))), "type 0x99"},
		{"unknown subsection", cat(krlHeader(""), certSection(caBlob, sub(0x24, []byte(secret)), serials(5))), "type 0x24"},
		{"CA does not parse", cat(krlHeader(""), certSection([]byte(secret))), "certificate authority of section 1 does not parse"},
		{"serial 0", cat(krlHeader(""), certSection(caBlob, serials(5, 0))), "serial 0"},
		{"serial list cut short", cat(krlHeader(""), certSection(caBlob, sub(krlCertSerialList, []byte{1, 2, 3}))), "cut short"},
		{"range from 0", cat(krlHeader(""), certSection(caBlob, sub(krlCertSerialRange, be64(0), be64(9)))), "from 0 to 9"},
		{"range backwards", cat(krlHeader(""), certSection(caBlob, sub(krlCertSerialRange, be64(9), be64(3)))), "from 9 to 3"},
		{"range with more", cat(krlHeader(""), certSection(caBlob, sub(krlCertSerialRange, be64(1), be64(3), be64(5)))), "not two serials"},
		{"negative bitmap", cat(krlHeader(""), certSection(caBlob, sub(krlCertSerialBitmap, be64(1), wire([]byte{0x80})))), "negative"},
		{"bitmap at serial 0", cat(krlHeader(""), certSection(caBlob, sub(krlCertSerialBitmap, be64(0), wire([]byte{0x01})))), "serial 0"},
		{"bitmap past the largest serial", cat(krlHeader(""), certSection(caBlob, sub(krlCertSerialBitmap, be64(1<<64-1), wire([]byte{0x02})))), "past the largest serial"},
		{"bitmap cut short", cat(krlHeader(""), certSection(caBlob, sub(krlCertSerialBitmap, be64(1)))), "cut short"},
		{"too many entries", cat(krlHeader(""), certSection(caBlob, sub(krlCertSerialBitmap, be64(1), wire(manyBits)))), "more than 50000 entries"},
		{"empty key ID", cat(krlHeader(""), certSection(caBlob, keyIDs(""))), "empty key ID"},
		{"key ID with NUL", cat(krlHeader(""), certSection(caBlob, keyIDs(secret+"\x00"))), "not UTF-8 text"},
		{"key ID not UTF-8", cat(krlHeader(""), certSection(caBlob, keyIDs(secret+"\xff"))), "not UTF-8 text"},
		{"key ID too long", cat(krlHeader(""), certSection(caBlob, keyIDs(strings.Repeat(secret, 100)))), "longer than 1024 bytes"},
		{"key that does not parse", cat(krlHeader(""), krlSection(krlExplicitKey, wire([]byte(secret)))), "does not parse"},
		{"certificate as a key", cat(krlHeader(""), krlSection(krlExplicitKey, wire(cert.Marshal()))), "a certificate where plain keys belong"},
		{"SHA256 hash of 31 bytes", cat(krlHeader(""), krlSection(krlFingerprintSHA2, wire(make([]byte, 31)))), "not 32 bytes long"},
		{"SHA1 hash of 32 bytes", cat(krlHeader(""), krlSection(krlFingerprintSHA1, wire(make([]byte, 32)))), "not 20 bytes long"},
		{"critical extension", cat(krlHeader(""), krlSection(krlExtension, wire([]byte("x@example.com")), []byte{1}, wire([]byte(secret)))), `critical extension (section 1, a name of 13 bytes)`},
		{"critical certificate extension", cat(krlHeader(""), certSection(caBlob, sub(krlCertExtension, wire([]byte("bloom@x")), []byte{1}, wire(nil)))), "critical extension"},
		{"extension cut short", cat(krlHeader(""), krlSection(krlExtension, wire([]byte("x")))), "extension of section 1"},
		{"too large", make([]byte, MaxKRLBytes+1), "larger than"},
		{"signature does not verify", tampered, "does not verify"},
		{"section after the signature", cat(signed, certSection(caBlob, serials(9))), "a section follows its signatures"},
		{"signature cut short", signed[:len(signed)-3], "cut short"},
		{"signed twice by one key", cat(signed, krlSection(krlSignature, caBlob), wire(signedSignature(t, ca, cat(signed, []byte{krlSignature}, wire(caBlob))))), "signed twice"},
		{"signed by a huge RSA key", cat(good, krlSection(krlSignature, hugeRSA), wire([]byte(secret))), "key of signature 1 does not parse"},
		{"signature of the wrong algorithm", cat(good, krlSection(krlSignature, caBlob), wire(gossh.Marshal(gossh.Signature{Format: "SECRET-rsa", Blob: []byte(secret)}))), `uses an algorithm portico does not accept`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := ParseKRL(c.data)
			if err == nil {
				t.Fatalf("accepted: %v", entrySet(k.Entries))
			}
			if _, ok := err.(*KRLError); !ok {
				t.Errorf("error %T %v, want a *KRLError", err, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error %q quotes the KRL's content", err)
			}
		})
	}
	if _, err := ParseKRL(good); err != nil {
		t.Errorf("the good KRL the cases start from: %v", err)
	}
	if _, err := ParseKRL(cat(krlHeader(""), krlSection(krlExtension, wire([]byte("x@example.com")), []byte{0}, wire(nil)))); err != nil {
		t.Errorf("a KRL with a non-critical extension: %v", err)
	}
}

// signedSignature signs data with s and returns the signature's wire form.
func signedSignature(t *testing.T, s gossh.Signer, data []byte) []byte {
	t.Helper()
	sig, err := s.Sign(rand.Reader, data)
	if err != nil {
		t.Fatal(err)
	}
	return gossh.Marshal(sig)
}

// TestParseKRLSigned: signatures that verify name their signers, whatever they sign; ssh-rsa
// (SHA-1) signatures are refused as from CAs.
func TestParseKRLSigned(t *testing.T) {
	ed := sshtest.NewSigner(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaSigner, err := gossh.NewSignerFromKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	sha512 := sha512Signer{rsaSigner.(gossh.AlgorithmSigner)}
	k := &krl.KRL{Sections: []krl.KRLSection{&krl.KRLCertificateSection{CA: ed.PublicKey(),
		Sections: []krl.KRLCertificateSubsection{&krl.KRLCertificateKeyID{"bob"}}}}}
	data, err := k.Marshal(rand.Reader, ed, sha512)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseKRL(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Signers) != 2 || Fingerprint(got.Signers[0]) != Fingerprint(ed.PublicKey()) || Fingerprint(got.Signers[1]) != Fingerprint(rsaSigner.PublicKey()) {
		t.Errorf("signers = %v", got.Signers)
	}
	sha1Signed, err := k.Marshal(rand.Reader, rsaSigner) // x/crypto signs ssh-rsa keys with SHA-1 by default
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseKRL(sha1Signed); err == nil || !strings.Contains(err.Error(), `rsa-sha2-256 or rsa-sha2-512`) {
		t.Errorf("a KRL signed with ssh-rsa (SHA-1): %v", err)
	}
}

func TestFingerprintKinds(t *testing.T) {
	k := readKey(t, "testdata/krl/u3.pub")
	if !strings.HasPrefix(FingerprintSHA1(k), "SHA1:") || len(FingerprintSHA1(k)) != len("SHA1:")+27 {
		t.Errorf("FingerprintSHA1 = %q", FingerprintSHA1(k))
	}
}

// sha512Signer signs with rsa-sha2-512, as the certifier signs its KRL.
type sha512Signer struct{ gossh.AlgorithmSigner }

func (s sha512Signer) Sign(rand io.Reader, data []byte) (*gossh.Signature, error) {
	return s.SignWithAlgorithm(rand, data, gossh.KeyAlgoRSASHA512)
}
