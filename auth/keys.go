package auth

import (
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/db"
)

// KeyOptions are the authorized_keys options portico understands on a registered key.
type KeyOptions struct {
	CertAuthority bool
	Principals    []string   // nil when not set (CA only)
	From          []string   // nil when not set; OpenSSH patterns: wildcards * ?, CIDR, !negation
	ExpiryTime    *time.Time // nil when not set; YYYYMMDD[HHMM[SS]], read as UTC
}

// knownOptions lists the options ParseKeyOptions accepts, for error messages.
const knownOptions = "cert-authority, principals, from, expiry-time"

// Expiry-time layouts, longest first. OpenSSH reads them in the server's local time; portico
// always reads them as UTC (a trailing "Z", which OpenSSH also accepts, changes nothing).
var expiryLayouts = []string{"20060102150405", "200601021504", "20060102"}

// ParseKeyOptions parses the options field of an authorized_keys line, such as
// `cert-authority,principals="pgs,tuns",from="10.0.0.0/8"`. An empty string is no options.
// Option names are case-insensitive, values must be double-quoted (`\"` escapes a quote), and
// any option portico does not understand is refused by name.
func ParseKeyOptions(s string) (KeyOptions, error) {
	var o KeyOptions
	seen := map[string]bool{}
	for rest := s; rest != ""; {
		name, value, hasValue, next, err := nextOption(rest)
		if err != nil {
			return KeyOptions{}, err
		}
		rest = next
		if seen[name] {
			return KeyOptions{}, fmt.Errorf("option %q is given twice", name)
		}
		seen[name] = true
		switch name {
		case "cert-authority":
			if hasValue {
				return KeyOptions{}, errors.New(`option "cert-authority" takes no value`)
			}
			o.CertAuthority = true
		case "principals", "from", "expiry-time":
			if !hasValue {
				return KeyOptions{}, fmt.Errorf("option %q needs a quoted value: %s=\"...\"", name, name)
			}
			if err := o.set(name, value); err != nil {
				return KeyOptions{}, err
			}
		default:
			return KeyOptions{}, fmt.Errorf("unknown option %q (portico understands %s)", name, knownOptions)
		}
	}
	return o, nil
}

// nextOption splits the first option off s. It returns the lower-cased name, the unquoted
// value, whether there was a value, and what follows the separating comma.
func nextOption(s string) (name, value string, hasValue bool, rest string, err error) {
	i := strings.IndexAny(s, "=,\"")
	if i < 0 {
		i = len(s)
	}
	name = strings.ToLower(s[:i])
	if name == "" {
		return "", "", false, "", fmt.Errorf("malformed options %q: empty option", s)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return "", "", false, "", fmt.Errorf("malformed option name %q", s[:i])
		}
	}
	s = s[i:]
	if strings.HasPrefix(s, "=") {
		if !strings.HasPrefix(s[1:], `"`) {
			return "", "", false, "", fmt.Errorf("option %q needs a quoted value: %s=\"...\"", name, name)
		}
		var b strings.Builder
		j := 2
		for ; j < len(s) && s[j] != '"'; j++ {
			if s[j] == '\\' && j+1 < len(s) && s[j+1] == '"' {
				j++
			}
			b.WriteByte(s[j])
		}
		if j == len(s) {
			return "", "", false, "", fmt.Errorf("option %q: missing closing quote", name)
		}
		value, hasValue, s = b.String(), true, s[j+1:]
	} else if strings.HasPrefix(s, `"`) {
		return "", "", false, "", fmt.Errorf("malformed option %q: unexpected quote", name)
	}
	switch {
	case s == "":
		return name, value, hasValue, "", nil
	case s == ",":
		return "", "", false, "", errors.New("malformed options: trailing comma")
	case s[0] == ',':
		return name, value, hasValue, s[1:], nil
	default:
		return "", "", false, "", fmt.Errorf("malformed option %q: expected a comma after it", name)
	}
}

func (o *KeyOptions) set(name, value string) error {
	switch name {
	case "principals":
		// Services, and principals the account's principal map may give services to: the
		// certificate principals this CA may vouch for.
		list := strings.Split(value, ",")
		for _, p := range list {
			if p == "" {
				return fmt.Errorf("principals=%q: an empty principal", value)
			}
			if KnownService(p) {
				continue
			}
			if err := CheckPrincipalName(p); err != nil {
				return fmt.Errorf("principals=%q: %q is neither a service (%s) nor a principal the principal map can take: %w",
					value, SanitizeKeyID(p), serviceList(Services), err)
			}
		}
		o.Principals = list
	case "from":
		list := strings.Split(value, ",")
		for _, p := range list {
			if err := checkFromPattern(p); err != nil {
				return fmt.Errorf("from=%q: %w", value, err)
			}
		}
		o.From = list
	case "expiry-time":
		t, err := parseExpiryTime(value)
		if err != nil {
			return err
		}
		o.ExpiryTime = &t
	}
	return nil
}

func parseExpiryTime(s string) (time.Time, error) {
	v := strings.TrimSuffix(s, "Z")
	for _, layout := range expiryLayouts {
		if len(v) != len(layout) {
			continue
		}
		t, err := time.ParseInLocation(layout, v, time.UTC)
		if err != nil {
			break
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("expiry-time=%q: want YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS (UTC)", s)
}

// formatExpiryTime writes t in the shortest expiry-time layout that keeps it exact.
func formatExpiryTime(t time.Time) string {
	t = t.UTC()
	switch {
	case t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0:
		return t.Format("20060102")
	case t.Second() == 0:
		return t.Format("200601021504")
	default:
		return t.Format("20060102150405")
	}
}

// String returns the options in canonical authorized_keys form (cert-authority, principals,
// from, expiry-time), or "" when none is set. ParseKeyOptions reads it back unchanged.
func (o KeyOptions) String() string {
	var parts []string
	if o.CertAuthority {
		parts = append(parts, "cert-authority")
	}
	if o.Principals != nil {
		parts = append(parts, `principals="`+strings.Join(o.Principals, ",")+`"`)
	}
	if o.From != nil {
		parts = append(parts, `from="`+strings.Join(o.From, ",")+`"`)
	}
	if o.ExpiryTime != nil {
		parts = append(parts, `expiry-time="`+formatExpiryTime(*o.ExpiryTime)+`"`)
	}
	return strings.Join(parts, ",")
}

// KeyLine is one parsed authorized_keys line.
type KeyLine struct {
	Key     gossh.PublicKey
	Options KeyOptions
	Comment string
}

// NewKey returns the store record for the line's key, named name: a CA when the line has
// cert-authority, a login key otherwise. Options are stored in canonical form.
func (l KeyLine) NewKey(name string) db.NewKey {
	kind := db.KindLogin
	if l.Options.CertAuthority {
		kind = db.KindCA
	}
	return db.NewKey{
		Name:        name,
		Kind:        kind,
		Algorithm:   l.Key.Type(),
		Fingerprint: Fingerprint(l.Key),
		PublicKey:   strings.TrimSuffix(string(gossh.MarshalAuthorizedKey(l.Key)), "\n"),
		Options:     l.Options.String(),
	}
}

// minRSABits is the smallest RSA key portico registers.
const minRSABits = 2048

// keyTypes are the key types portico registers: OpenSSH's current defaults, without DSA.
var keyTypes = []string{
	gossh.KeyAlgoED25519,
	gossh.KeyAlgoSKED25519,
	gossh.KeyAlgoECDSA256,
	gossh.KeyAlgoECDSA384,
	gossh.KeyAlgoECDSA521,
	gossh.KeyAlgoSKECDSA256,
	gossh.KeyAlgoRSA,
}

// SignatureAlgorithms are the algorithms a key may sign a login with, as OpenSSH's
// PubkeyAcceptedAlgorithms default since 8.8: RSA keys sign with SHA-2 (rsa-sha2-256 or
// rsa-sha2-512), never with ssh-rsa (SHA-1), and DSA (ssh-dss) not at all. A certificate signs
// with its key's algorithm. The gateway hands this list to the SSH library, which refuses any
// other signature before a decision is asked for and tells clients what it accepts.
var SignatureAlgorithms = []string{
	gossh.KeyAlgoED25519,
	gossh.KeyAlgoSKED25519,
	gossh.KeyAlgoECDSA256,
	gossh.KeyAlgoECDSA384,
	gossh.KeyAlgoECDSA521,
	gossh.KeyAlgoSKECDSA256,
	gossh.KeyAlgoRSASHA512,
	gossh.KeyAlgoRSASHA256,
}

// looksLikeKeyType reports whether field is a key or certificate type name rather than options,
// so a line that starts with a type has no options field.
func looksLikeKeyType(field string) bool {
	return slices.Contains(keyTypes, field) || strings.HasPrefix(field, "ssh-") ||
		strings.HasPrefix(field, "ecdsa-") || strings.HasPrefix(field, "sk-") ||
		strings.HasSuffix(field, "-cert-v01@openssh.com")
}

// ParseKeyLine parses one authorized_keys line: [options] type base64 [comment]. It refuses
// certificates (register the CA that signs them instead), unsupported or malformed keys,
// principals= without cert-authority, unknown options (by name) and more than one line.
func ParseKeyLine(line string) (KeyLine, error) {
	line = strings.TrimRight(line, "\r\n")
	if strings.ContainsAny(line, "\r\n") {
		return KeyLine{}, errors.New("expected one authorized_keys line, got several")
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return KeyLine{}, errors.New("empty key line")
	}
	if strings.HasPrefix(line, "#") {
		return KeyLine{}, errors.New("the line is a comment, not a key")
	}
	var optText string
	if !looksLikeKeyType(strings.Fields(line)[0]) {
		end := optionsEnd(line)
		optText, line = line[:end], strings.TrimSpace(line[end:])
	}
	typ, rest := cutField(line)
	data, rest := cutField(rest)
	comment := strings.TrimSpace(rest)
	if data == "" {
		if _, err := ParseKeyOptions(optText); err != nil && strings.Contains(optText, `"`) {
			return KeyLine{}, err // an unclosed quote swallowed the key
		}
		return KeyLine{}, errors.New("malformed key line: want [options] type base64-key [comment]")
	}
	if strings.HasSuffix(typ, "-cert-v01@openssh.com") {
		return KeyLine{}, errors.New("this is a certificate, not a key: register the plain public key, or the CA key that signs certificates (with cert-authority)")
	}
	if typ == gossh.InsecureKeyAlgoDSA {
		return KeyLine{}, errors.New("DSA (ssh-dss) keys are not supported: use ssh-ed25519")
	}
	if !slices.Contains(keyTypes, typ) {
		return KeyLine{}, fmt.Errorf("unsupported key type %q (supported: %s)", typ, strings.Join(keyTypes, ", "))
	}
	blob, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return KeyLine{}, fmt.Errorf("malformed %s key: its base64 data does not decode", typ)
	}
	key, err := gossh.ParsePublicKey(blob)
	if err != nil {
		return KeyLine{}, fmt.Errorf("malformed %s key: %w", typ, err)
	}
	if key.Type() != typ {
		return KeyLine{}, fmt.Errorf("malformed key: the line says %s but the key is %s", typ, key.Type())
	}
	if bits, ok := rsaBits(key); ok && bits < minRSABits {
		return KeyLine{}, fmt.Errorf("RSA key of %d bits is too small: use at least %d bits, or ssh-ed25519", bits, minRSABits)
	}
	opts, err := ParseKeyOptions(optText)
	if err != nil {
		return KeyLine{}, err
	}
	if opts.Principals != nil && !opts.CertAuthority {
		return KeyLine{}, errors.New(`option "principals" is only allowed with cert-authority (it limits what a CA may grant)`)
	}
	return KeyLine{Key: key, Options: opts, Comment: comment}, nil
}

// rsaBits returns the modulus size of an RSA key; ok is false for other keys.
func rsaBits(key gossh.PublicKey) (bits int, ok bool) {
	if ck, isCrypto := key.(gossh.CryptoPublicKey); isCrypto {
		if rk, isRSA := ck.CryptoPublicKey().(*rsa.PublicKey); isRSA {
			return rk.N.BitLen(), true
		}
	}
	return 0, false
}

// cutField splits the first space- or tab-separated field off s.
func cutField(s string) (field, rest string) {
	s = strings.TrimLeft(s, " \t")
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}

// optionsEnd returns the index of the first whitespace outside double quotes in line.
func optionsEnd(line string) int {
	quoted := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\\' && quoted && i+1 < len(line) && line[i+1] == '"':
			i++
		case c == '"':
			quoted = !quoted
		case (c == ' ' || c == '\t') && !quoted:
			return i
		}
	}
	return len(line)
}

// Fingerprint returns k's fingerprint in OpenSSH's SHA256:... form.
func Fingerprint(k gossh.PublicKey) string { return gossh.FingerprintSHA256(k) }

// maxKeyIDRunes is how much of a certificate key ID portico shows.
const maxKeyIDRunes = 128

// SanitizeKeyID makes a certificate key ID safe to show and log: every character that is not
// printable (control characters, invalid UTF-8, bidi overrides) becomes '?', and the result is
// cut to 128 characters.
func SanitizeKeyID(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxKeyIDRunes {
			break
		}
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// reservedNames are account names SPEC §1 refuses.
var reservedNames = []string{
	"admin", "root", "portico", "pgs", "tuns", "pipe", "pastes", "prose", "feeds",
	"public", "www", "api", "help", "new", "register", "mail",
}

// ValidAccountName reports why name cannot be an account name, or nil if it can: 2 to 30
// lowercase letters and digits, starting with a letter, and not reserved.
func ValidAccountName(name string) error {
	switch {
	case name == "":
		return errors.New("account name is empty")
	case len(name) < 2 || len(name) > 30:
		return fmt.Errorf("account name %q must be 2 to 30 characters long", name)
	case !(name[0] >= 'a' && name[0] <= 'z'):
		return fmt.Errorf("account name %q must start with a lowercase letter", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			if r == '-' {
				return fmt.Errorf("account name %q may not contain a hyphen (host names are {account}-{project})", name)
			}
			return fmt.Errorf("account name %q may contain only lowercase letters and digits", name)
		}
	}
	if slices.Contains(reservedNames, name) {
		return fmt.Errorf("account name %q is reserved", name)
	}
	return nil
}

// serviceList joins service names for messages: "pgs, tuns".
func serviceList(ss []Service) string {
	var b bytes.Buffer
	for i, s := range ss {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(s))
	}
	return b.String()
}
