package auth

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/stripe/krl"
	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/db"
)

// Bounds on what one KRL may cost to read. A KRL of MaxKRLBytes can describe billions of serials
// (a bitmap, a range), so the bound that matters is on entries: serials, ranges (a run of set
// bits in a bitmap is one), key IDs, keys and hashes.
const (
	// MaxKRLBytes is the largest KRL portico reads.
	MaxKRLBytes = 2 << 20
	// MaxKRLEntries is the most entries one KRL may hold: as many as an account may hold.
	MaxKRLEntries = db.MaxRevocations
	// maxKRLSignatures bounds the signature sections of a KRL.
	maxKRLSignatures = 4
	// maxKRLKeyID is the longest key ID a KRL may name, in bytes.
	maxKRLKeyID = 1024
)

// KRL section types (OpenSSH's PROTOCOL.krl).
const (
	krlMagic            = 0x5353484b524c0a00 // "SSHKRL\n\0"
	krlFormatVersion    = 1
	krlCertificates     = 1
	krlExplicitKey      = 2
	krlFingerprintSHA1  = 3
	krlSignature        = 4
	krlFingerprintSHA2  = 5
	krlExtension        = 255
	krlCertSerialList   = 0x20
	krlCertSerialRange  = 0x21
	krlCertSerialBitmap = 0x22
	krlCertKeyID        = 0x23
	krlCertExtension    = 0x39
)

// KRLEntry is one thing a KRL revokes, as a revocation of the account would name it.
type KRLEntry struct {
	Kind  db.RevocationKind // serial, serial_range, key_id (certificate sections); key, key_hash
	Value string            // as db.NewRevocation's Value
	// Certificate says the entry came from a certificate section: it revokes certificates of
	// CA, or of any CA when CA is nil.
	Certificate bool
	CA          gossh.PublicKey
}

// KRL is what an OpenSSH KRL revokes.
type KRL struct {
	Entries []KRLEntry
	// Signers are the keys whose signatures over the KRL verified (OpenSSH's ssh-keygen writes
	// none; OpenSSH 9.4 and later refuse signed KRLs, but older tools signed them).
	Signers []gossh.PublicKey
}

// KRLError is why a KRL was refused. Its message never quotes the KRL's bytes: a KRL may come
// from a URL a user chose, and its content is not theirs to read through portico.
type KRLError struct{ msg string }

func (e *KRLError) Error() string { return e.msg }

func krlErrorf(format string, args ...any) error { return &KRLError{msg: fmt.Sprintf(format, args...)} }

// krlReader reads the SSH wire encoding KRLs use, refusing to read past its data.
type krlReader struct {
	b    []byte
	what string // what is being read, for errors
}

var errShort = errors.New("cut short")

func (r *krlReader) u8() (byte, error) {
	if len(r.b) < 1 {
		return 0, errShort
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v, nil
}

func (r *krlReader) u32() (uint32, error) {
	if len(r.b) < 4 {
		return 0, errShort
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v, nil
}

func (r *krlReader) u64() (uint64, error) {
	if len(r.b) < 8 {
		return 0, errShort
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v, nil
}

func (r *krlReader) str() ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	if uint64(n) > uint64(len(r.b)) {
		return nil, errShort
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v, nil
}

func (r *krlReader) boolean() (bool, error) {
	v, err := r.u8()
	return v != 0, err
}

// krlParser gathers a KRL's entries, counting them against MaxKRLEntries.
type krlParser struct {
	krl     KRL
	entries int
}

func (p *krlParser) add(e KRLEntry) error {
	if p.entries == MaxKRLEntries {
		return krlErrorf("the KRL revokes more than %d entries (serials, serial ranges, key IDs, keys and key hashes; a run of serials in a bitmap counts once)", MaxKRLEntries)
	}
	p.entries++
	p.krl.Entries = append(p.krl.Entries, e)
	return nil
}

// ParseKRL reads an OpenSSH KRL (what ssh-keygen -k writes), of at most MaxKRLBytes, as OpenSSH
// reads it: every section must be well formed and understood (critical extensions too), serial 0
// cannot be revoked, a bitmap may not run past the largest serial, key IDs must be text, and every
// signature must verify. The work it does is bounded by the KRL's size and MaxKRLEntries.
func ParseKRL(data []byte) (*KRL, error) {
	if len(data) > MaxKRLBytes {
		return nil, krlErrorf("the KRL is larger than %d bytes", MaxKRLBytes)
	}
	r := &krlReader{b: data}
	magic, err := r.u64()
	if err != nil || magic != krlMagic {
		return nil, krlErrorf("not an OpenSSH KRL (it does not start with SSHKRL; make one with ssh-keygen -k)")
	}
	version, err := r.u32()
	if err != nil {
		return nil, krlErrorf("malformed KRL: the header is cut short")
	}
	if version != krlFormatVersion {
		return nil, krlErrorf("KRL format version %d is not supported (only %d)", version, krlFormatVersion)
	}
	for _, field := range []string{"version", "date", "flags"} {
		if _, err := r.u64(); err != nil {
			return nil, krlErrorf("malformed KRL: the header is cut short at its %s", field)
		}
	}
	if _, err := r.str(); err != nil { // reserved
		return nil, krlErrorf("malformed KRL: the header is cut short")
	}
	if _, err := r.str(); err != nil { // comment, never shown
		return nil, krlErrorf("malformed KRL: the header is cut short at its comment")
	}
	p := &krlParser{}
	for n := 1; len(r.b) > 0; n++ {
		typ, _ := r.u8()
		body, err := r.str()
		if err != nil {
			return nil, krlErrorf("malformed KRL: section %d is cut short", n)
		}
		if typ == krlSignature {
			if err := p.signatures(data, body, r); err != nil {
				return nil, err
			}
			break
		}
		if err := p.section(n, typ, body); err != nil {
			return nil, err
		}
	}
	return &p.krl, nil
}

// section reads top-level section n, of type typ.
func (p *krlParser) section(n int, typ byte, body []byte) error {
	s := &krlReader{b: body}
	switch typ {
	case krlCertificates:
		return p.certificates(n, s)
	case krlExplicitKey:
		for len(s.b) > 0 {
			blob, err := s.str()
			if err != nil {
				return krlErrorf("malformed KRL: section %d (keys) is cut short", n)
			}
			key, err := gossh.ParsePublicKey(blob)
			if err != nil {
				return krlErrorf("malformed KRL: section %d lists a key that does not parse", n)
			}
			if _, isCert := key.(*gossh.Certificate); isCert {
				return krlErrorf("malformed KRL: section %d lists a certificate where plain keys belong", n)
			}
			if err := p.add(KRLEntry{Kind: db.RevokeKey, Value: Fingerprint(key)}); err != nil {
				return err
			}
		}
	case krlFingerprintSHA1, krlFingerprintSHA2:
		size, prefix := sha1.Size, "SHA1:"
		if typ == krlFingerprintSHA2 {
			size, prefix = sha256.Size, "SHA256:"
		}
		for len(s.b) > 0 {
			hash, err := s.str()
			if err != nil || len(hash) != size {
				return krlErrorf("malformed KRL: section %d (%s key hashes) has a hash that is not %d bytes long", n, strings.TrimSuffix(prefix, ":"), size)
			}
			if err := p.add(KRLEntry{Kind: db.RevokeKeyHash, Value: prefix + base64.RawStdEncoding.EncodeToString(hash)}); err != nil {
				return err
			}
		}
	case krlExtension:
		return extension(fmt.Sprintf("section %d", n), s)
	default:
		return krlErrorf("malformed KRL: section %d has type %d, which OpenSSH does not define", n, typ)
	}
	return nil
}

// extension reads an extension section or subsection: a critical one portico does not
// understand (it understands none) refuses the KRL, as in OpenSSH.
func extension(where string, s *krlReader) error {
	name, err := s.str()
	if err != nil {
		return krlErrorf("malformed KRL: the extension of %s is cut short", where)
	}
	critical, err := s.boolean()
	if err == nil {
		_, err = s.str()
	}
	if err != nil || len(s.b) > 0 {
		return krlErrorf("malformed KRL: the extension of %s is malformed", where)
	}
	if critical {
		// Its name is not shown: it is the KRL's content (which may come from a URL).
		return krlErrorf("the KRL has a critical extension (%s, a name of %d bytes) that portico does not understand", where, len(name))
	}
	return nil
}

// certificates reads certificate section n: a CA (or none: any CA) and its subsections.
func (p *krlParser) certificates(n int, s *krlReader) error {
	caBlob, err := s.str()
	if err == nil {
		_, err = s.str() // reserved
	}
	if err != nil {
		return krlErrorf("malformed KRL: section %d (certificates) is cut short", n)
	}
	var ca gossh.PublicKey
	if len(caBlob) > 0 {
		if ca, err = gossh.ParsePublicKey(caBlob); err != nil {
			return krlErrorf("malformed KRL: the certificate authority of section %d does not parse", n)
		}
	}
	entry := func(kind db.RevocationKind, value string) error {
		return p.add(KRLEntry{Kind: kind, Value: value, Certificate: true, CA: ca})
	}
	for len(s.b) > 0 {
		typ, _ := s.u8()
		body, err := s.str()
		if err != nil {
			return krlErrorf("malformed KRL: a subsection of section %d is cut short", n)
		}
		sub := &krlReader{b: body}
		switch typ {
		case krlCertSerialList:
			for len(sub.b) > 0 {
				serial, err := sub.u64()
				if err != nil {
					return krlErrorf("malformed KRL: a serial list of section %d is cut short", n)
				}
				if serial == 0 {
					return krlErrorf("the KRL revokes serial 0 (section %d), which OpenSSH refuses: 0 is the serial of certificates signed without one", n)
				}
				if err := entry(db.RevokeSerial, fmt.Sprint(serial)); err != nil {
					return err
				}
			}
		case krlCertSerialRange:
			from, err := sub.u64()
			var to uint64
			if err == nil {
				to, err = sub.u64()
			}
			if err != nil || len(sub.b) > 0 {
				return krlErrorf("malformed KRL: a serial range of section %d is not two serials", n)
			}
			if from == 0 || from > to {
				return krlErrorf("the KRL has a serial range from %d to %d (section %d), which OpenSSH refuses", from, to, n)
			}
			if err := entry(db.RevokeSerialRange, db.SerialRange(from, to)); err != nil {
				return err
			}
		case krlCertSerialBitmap:
			if err := p.bitmap(n, sub, entry); err != nil {
				return err
			}
		case krlCertKeyID:
			for len(sub.b) > 0 {
				id, err := sub.str()
				switch {
				case err != nil:
					return krlErrorf("malformed KRL: a key ID list of section %d is cut short", n)
				case len(id) == 0:
					return krlErrorf("the KRL revokes an empty key ID (section %d): revoke such certificates by serial instead", n)
				case len(id) > maxKRLKeyID:
					return krlErrorf("the KRL revokes a key ID longer than %d bytes (section %d)", maxKRLKeyID, n)
				case !utf8.Valid(id) || bytes.IndexByte(id, 0) >= 0:
					return krlErrorf("the KRL revokes a key ID that is not UTF-8 text (section %d): revoke such certificates by serial instead", n)
				}
				if err := entry(db.RevokeKeyID, string(id)); err != nil {
					return err
				}
			}
		case krlCertExtension:
			if err := extension(fmt.Sprintf("section %d", n), sub); err != nil {
				return err
			}
		default:
			return krlErrorf("malformed KRL: section %d has a subsection of type %#x, which OpenSSH does not define", n, typ)
		}
		if len(sub.b) > 0 {
			return krlErrorf("malformed KRL: a subsection of section %d has bytes left over", n)
		}
	}
	return nil
}

// bitmap reads a serial bitmap: bit i set revokes serial offset+i. A run of set bits is one
// serial range; a lone bit, one serial. It takes time in the bitmap's bytes.
func (p *krlParser) bitmap(n int, s *krlReader, entry func(db.RevocationKind, string) error) error {
	offset, err := s.u64()
	var bits []byte
	if err == nil {
		bits, err = s.str() // an mpint: big-endian, two's complement
	}
	if err != nil {
		return krlErrorf("malformed KRL: a serial bitmap of section %d is cut short", n)
	}
	if len(bits) > 0 && bits[0]&0x80 != 0 {
		return krlErrorf("malformed KRL: a serial bitmap of section %d is negative", n)
	}
	emit := func(from, to uint64) error {
		if from == to {
			return entry(db.RevokeSerial, fmt.Sprint(from))
		}
		return entry(db.RevokeSerialRange, db.SerialRange(from, to))
	}
	inRun := false
	var runFrom, last uint64
	for j := len(bits) - 1; j >= 0; j-- {
		b := bits[j]
		if b == 0 && !inRun {
			continue
		}
		for k := range 8 {
			i := uint64(len(bits)-1-j)*8 + uint64(k)
			if b&(1<<k) == 0 {
				if inRun {
					if err := emit(runFrom, last); err != nil {
						return err
					}
					inRun = false
				}
				continue
			}
			if i > math.MaxUint64-offset {
				return krlErrorf("malformed KRL: a serial bitmap of section %d runs past the largest serial", n)
			}
			serial := offset + i
			if serial == 0 {
				return krlErrorf("the KRL revokes serial 0 (section %d), which OpenSSH refuses: 0 is the serial of certificates signed without one", n)
			}
			if !inRun {
				inRun, runFrom = true, serial
			}
			last = serial
		}
	}
	if inRun {
		return emit(runFrom, last)
	}
	return nil
}

// signatures reads the signature sections that end a KRL, the first of which has keyBlob (the
// signing key) and is followed, in rest, by its signature. Each signs the KRL up
// to its key, and each must verify; no other section may follow.
func (p *krlParser) signatures(data []byte, keyBlob []byte, rest *krlReader) error {
	for n := 1; ; n++ {
		if n > maxKRLSignatures {
			return krlErrorf("the KRL has more than %d signatures", maxKRLSignatures)
		}
		signed := data[:len(data)-len(rest.b)]
		sigBlob, err := rest.str()
		if err != nil {
			return krlErrorf("malformed KRL: signature %d is cut short", n)
		}
		// x/crypto refuses RSA keys of more than 16384 bits, whose signatures would take
		// long to check.
		key, err := gossh.ParsePublicKey(keyBlob)
		if err != nil {
			return krlErrorf("malformed KRL: the key of signature %d does not parse", n)
		}
		var sig gossh.Signature
		if err := gossh.Unmarshal(sigBlob, &sig); err != nil {
			return krlErrorf("malformed KRL: signature %d does not parse", n)
		}
		if !slices.Contains(caSignatureFormats[key.Type()], sig.Format) {
			return krlErrorf("the KRL's signature %d by %s uses an algorithm portico does not accept for a %s key (RSA keys must sign with rsa-sha2-256 or rsa-sha2-512)", n, Fingerprint(key), key.Type())
		}
		if err := key.Verify(signed, &sig); err != nil {
			return krlErrorf("the KRL's signature %d, by %s, does not verify: the KRL was changed after it was signed, or forged", n, Fingerprint(key))
		}
		for _, k := range p.krl.Signers {
			if bytes.Equal(k.Marshal(), key.Marshal()) {
				return krlErrorf("malformed KRL: it is signed twice by %s", Fingerprint(key))
			}
		}
		p.krl.Signers = append(p.krl.Signers, key)
		if len(rest.b) == 0 {
			return nil
		}
		typ, _ := rest.u8()
		if typ != krlSignature {
			return krlErrorf("malformed KRL: a section follows its signatures")
		}
		if keyBlob, err = rest.str(); err != nil {
			return krlErrorf("malformed KRL: signature %d is cut short", n+1)
		}
	}
}

// ExportedRevocation is a revocation as MarshalKRL writes it: certificates of CA (nil: of every
// CA of the account, a section for any CA) for serials, ranges and key IDs.
type ExportedRevocation struct {
	db.Revocation
	CA gossh.PublicKey
}

// MarshalKRL writes revocations as an unsigned OpenSSH KRL (ssh-keygen -Q and sshd's RevokedKeys
// read it) with the given version and comment. Keys revoked by fingerprint are written as
// SHA256 or SHA1 key hashes (OpenSSH 7.9 and later read them). Serial 0, which OpenSSH refuses in
// a KRL, is left out; skipped counts what was left out.
func MarshalKRL(w io.Writer, revs []ExportedRevocation, version, date uint64, comment string) (skipped int, err error) {
	type certs struct {
		ca      gossh.PublicKey
		serials krl.KRLCertificateSerialList
		ranges  []krl.KRLCertificateSubsection
		ids     krl.KRLCertificateKeyID
	}
	var (
		sections []*certs
		sha256s  krl.KRLFingerprintSHA256Section
		sha1s    krl.KRLFingerprintSection
	)
	sectionOf := func(ca gossh.PublicKey) *certs {
		for _, s := range sections {
			if s.ca == nil && ca == nil || s.ca != nil && ca != nil && bytes.Equal(s.ca.Marshal(), ca.Marshal()) {
				return s
			}
		}
		s := &certs{ca: ca}
		sections = append(sections, s)
		return s
	}
	for _, r := range revs {
		switch r.Kind {
		case db.RevokeSerial:
			serial, err := strconv.ParseUint(r.Value, 10, 64)
			if err != nil || serial == 0 {
				skipped++
				continue
			}
			s := sectionOf(r.CA)
			s.serials = append(s.serials, serial)
		case db.RevokeSerialRange:
			from, to, err := db.ParseSerialRange(r.Value)
			if err != nil || from == 0 {
				skipped++
				continue
			}
			s := sectionOf(r.CA)
			s.ranges = append(s.ranges, &krl.KRLCertificateSerialRange{Min: from, Max: to})
		case db.RevokeKeyID:
			s := sectionOf(r.CA)
			s.ids = append(s.ids, r.Value)
		case db.RevokeKey, db.RevokeKeyHash:
			kind, b64, _ := strings.Cut(r.Value, ":")
			hash, err := base64.RawStdEncoding.DecodeString(b64)
			switch {
			case err == nil && kind == "SHA256" && len(hash) == sha256.Size:
				sha256s = append(sha256s, [sha256.Size]byte(hash))
			case err == nil && kind == "SHA1" && len(hash) == sha1.Size:
				sha1s = append(sha1s, [sha1.Size]byte(hash))
			default:
				skipped++
			}
		default:
			skipped++
		}
	}
	k := &krl.KRL{Version: version, GeneratedDate: date, Comment: comment}
	for _, s := range sections {
		slices.Sort(s.serials)
		s.serials = slices.Compact(s.serials)
		slices.Sort(s.ids)
		s.ids = slices.Compact(s.ids)
		var subs []krl.KRLCertificateSubsection
		if len(s.serials) > 0 {
			subs = append(subs, &s.serials)
		}
		subs = append(subs, s.ranges...)
		if len(s.ids) > 0 {
			subs = append(subs, &s.ids)
		}
		k.Sections = append(k.Sections, &krl.KRLCertificateSection{CA: s.ca, Sections: subs})
	}
	if len(sha1s) > 0 {
		k.Sections = append(k.Sections, &sha1s)
	}
	if len(sha256s) > 0 {
		k.Sections = append(k.Sections, &sha256s)
	}
	out, err := k.Marshal(nil)
	if err != nil {
		return skipped, fmt.Errorf("writing the KRL: %w", err)
	}
	_, err = w.Write(out)
	return skipped, err
}
