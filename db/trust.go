package db

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds on what the principal map and KRL imports can make the store hold, per account.
const (
	// MaxPrincipalMappings is how many principals one account may map.
	MaxPrincipalMappings = 100
	// MaxRevocations is how many revocations one account may hold, however they were made
	// (revoke, KRL imports, KRL sources).
	MaxRevocations = 50_000
	// MaxKRLSources is how many URLs one account may import KRLs from.
	MaxKRLSources = 10
	// MaxMappedLookups is how many of a certificate's principals PrincipalMappings looks up.
	MaxMappedLookups = 256
)

// TrustRules is what issue 9's trust rules keep: the principal map and KRL imports.
type TrustRules interface {
	PrincipalMap
	KRLImports
}

// Errors of the principal map and of KRL imports.
var (
	ErrTooManyMappings    = errors.New("the account maps too many principals")
	ErrTooManyRevocations = errors.New("the account has too many revocations")
	ErrTooManySources     = errors.New("the account has too many KRL sources")
	ErrLeaseLost          = errors.New("the KRL source was changed, removed or taken by another fetch")
)

// More revocation kinds: those a KRL holds besides serials, key IDs and keys.
const (
	RevokeSerialRange RevocationKind = "serial_range" // Value is "FROM-TO", decimal serials; CAFingerprint as for serials
	RevokeKeyHash     RevocationKind = "key_hash"     // Value is a key's fingerprint: SHA256:... or SHA1:...
)

// RevocationOrigin says how a revocation was made.
type RevocationOrigin string

// Revocation origins.
const (
	OriginRevoke RevocationOrigin = "revoke" // the revoke command (the default)
	OriginKRL    RevocationOrigin = "krl"    // an imported KRL
)

// SerialRange returns the value of a serial_range revocation: "FROM-TO".
func SerialRange(from, to uint64) string {
	return strconv.FormatUint(from, 10) + "-" + strconv.FormatUint(to, 10)
}

// ParseSerialRange reads a serial_range revocation's value.
func ParseSerialRange(v string) (from, to uint64, err error) {
	a, b, ok := strings.Cut(v, "-")
	if ok {
		from, err = strconv.ParseUint(a, 10, 64)
		if err == nil {
			to, err = strconv.ParseUint(b, 10, 64)
		}
	}
	if !ok || err != nil {
		return 0, 0, fmt.Errorf("serial range %q is not FROM-TO, two decimal serials", v)
	}
	if from > to {
		return 0, 0, fmt.Errorf("serial range %q ends before it starts", v)
	}
	return from, to, nil
}

// rangeKey is the bucket of a serial range [from, to]: "L:B" with L the bit length of to-from
// and B = from>>L in hex. A serial x in the range has x-from < 2^L, so x>>L is B or B+1.
func rangeKey(from, to uint64) string {
	level := bits.Len64(to - from)
	return rangeKeyOf(level, shift(from, level))
}

// rangeKeyCount is how many buckets rangeKeysOf returns: two per level 0..64, padded with
// repeats where x>>L is 0, so that the lookup's query text is always the same.
const rangeKeyCount = 130

// rangeKeysOf returns every bucket a range holding serial x can be in: for each L = 0..64,
// x>>L and (x>>L)-1.
func rangeKeysOf(x uint64) []string {
	keys := make([]string, 0, rangeKeyCount)
	for level := 0; level <= 64; level++ {
		b := shift(x, level)
		prev := b
		if b > 0 {
			prev = b - 1
		}
		keys = append(keys, rangeKeyOf(level, b), rangeKeyOf(level, prev))
	}
	return keys
}

func shift(x uint64, n int) uint64 {
	if n >= 64 {
		return 0
	}
	return x >> n
}

func rangeKeyOf(level int, bucket uint64) string {
	return strconv.Itoa(level) + ":" + strconv.FormatUint(bucket, 16)
}

// ordered maps a serial to an int64 that orders like it (the top bit flipped), for the
// range_lo and range_hi columns: both databases compare signed 64-bit integers.
func ordered(serial uint64) int64 { return int64(serial ^ 1<<63) }

// PrincipalMapping maps a certificate principal that is not a service name to services.
type NewPrincipalMapping struct {
	Principal     string   // as certificates list it; unique per account
	Services      []string // the services it grants (names, as auth knows them)
	From          []string // authorized_keys from= patterns the client address must match; nil: any
	CAFingerprint string   // only certificates of this CA of the account; empty: any of them
}

// PrincipalMapping is a stored mapping.
type PrincipalMapping struct {
	ID        int64
	AccountID int64
	NewPrincipalMapping
	CreatedAt time.Time
	UpdatedAt time.Time
}

// PrincipalMap stores the account-side principal map (the AuthorizedPrincipalsFile of sshd).
type PrincipalMap interface {
	// SetPrincipalMapping maps m.Principal in the account, replacing what it mapped to; created
	// says whether the principal was new. It refuses more than MaxPrincipalMappings
	// (ErrTooManyMappings) and a gone account (ErrNotFound).
	SetPrincipalMapping(ctx context.Context, accountID int64, m NewPrincipalMapping) (p PrincipalMapping, created bool, err error)
	// ListPrincipalMappings returns the account's mappings ordered by principal.
	ListPrincipalMappings(ctx context.Context, accountID int64) ([]PrincipalMapping, error)
	// RemovePrincipalMapping unmaps principal; ErrNotFound when it is not mapped.
	RemovePrincipalMapping(ctx context.Context, accountID int64, principal string) error
	// PrincipalMappings returns the account's mappings of the given principals (at most the
	// first MaxMappedLookups distinct ones are looked up), in one query.
	PrincipalMappings(ctx context.Context, accountID int64, principals []string) ([]PrincipalMapping, error)
}

// NewKRLSource is where a KRL is fetched from, and how often.
type NewKRLSource struct {
	URL           string
	CAFingerprint string        // the CA that sections for any CA are for (--ca); empty: none
	Every         time.Duration // how often to fetch it again; 0: never (imported once)
}

// KRLSource is a stored KRL source.
type KRLSource struct {
	ID        int64
	AccountID int64
	NewKRLSource
	NextFetchAt *time.Time // nil when not scheduled
	FetchedAt   time.Time  // when its current entries were imported
	ContentHash string     // SHA-256 of the KRL last imported, hex
	Entries     int        // how many revocations it holds
	LastError   string     // why the last scheduled fetch failed; empty after a success
	LastErrorAt *time.Time
	Failures    int        // scheduled fetches that failed in a row
	LeaseUntil  *time.Time // a fetch in progress holds it until then
	CreatedAt   time.Time
}

// KRLFetch is the outcome of a scheduled fetch of a source.
type KRLFetch struct {
	At          time.Time
	ContentHash string          // of the KRL fetched; empty when the fetch failed
	Entries     []NewRevocation // the source's entries now; nil: unchanged (or the fetch failed)
	Err         string          // why the fetch or import failed; empty on success
}

// KRLImports stores what KRL imports bring: revocations added whole or not at all, and the
// sources whose entries each fetch replaces.
type KRLImports interface {
	// ImportRevocations adds rs to the account in one transaction, leaving out those equal to a
	// revocation the account has that no KRL source owns (same kind, value and CA), and returns
	// how many it added. It
	// refuses, adding none, past MaxRevocations (ErrTooManyRevocations).
	ImportRevocations(ctx context.Context, accountID int64, rs []NewRevocation) (int, error)
	// SetKRLSource creates or updates (by URL) the account's source src, fetched at now with
	// content hash, and replaces its revocations with rs, in one transaction; a scheduled source
	// is due again at now + src.Every. It refuses more than MaxKRLSources sources
	// (ErrTooManySources) and revocations past MaxRevocations, changing nothing.
	SetKRLSource(ctx context.Context, accountID int64, src NewKRLSource, hash string, rs []NewRevocation, now time.Time) (KRLSource, error)
	// ListKRLSources returns the account's sources, oldest first.
	ListKRLSources(ctx context.Context, accountID int64) ([]KRLSource, error)
	// RemoveKRLSource removes the account's source id and its revocations.
	RemoveKRLSource(ctx context.Context, accountID, id int64) error
	// ClaimDueKRLSource takes the scheduled source of any account that is due first at now and
	// that no fetch holds, and holds it until leaseUntil; ErrNotFound when none is due. It
	// passes over the sources of an account that has a source held (a lease not yet run out):
	// one fetch per account at a time, so that one account's many slow sources cannot keep
	// others' waiting. (Gateways claiming at the same instant on Postgres may each take one
	// of an account's: at most one per gateway.)
	ClaimDueKRLSource(ctx context.Context, now, leaseUntil time.Time) (KRLSource, error)
	// FinishKRLFetch records the fetch of the source claimed with lease (its LeaseUntil): it
	// replaces the source's revocations when f.Entries is not nil, releases it and makes it
	// due again Every after f.At; after a failure (f.Err), later for each failure in a row
	// (twice as long each time, at most a day). ErrLeaseLost: the source was removed, changed or claimed
	// again meanwhile; nothing changed.
	FinishKRLFetch(ctx context.Context, id int64, lease time.Time, f KRLFetch) error
	// ListRevocationsPage returns up to limit of the account's revocations with ids above
	// afterID, oldest first, and how many the account has in all.
	ListRevocationsPage(ctx context.Context, accountID, afterID int64, limit int) ([]Revocation, int, error)
}

// checkMapping validates m and returns it in stored form.
func checkMapping(m NewPrincipalMapping) error {
	switch {
	case m.Principal == "":
		return errors.New("principal is empty")
	case !utf8.ValidString(m.Principal) || strings.ContainsRune(m.Principal, 0):
		return errors.New("principal is not text")
	case len(m.Services) == 0:
		return fmt.Errorf("principal %q maps to no service", m.Principal)
	}
	for _, s := range m.Services {
		if s == "" || strings.Contains(s, ",") {
			return fmt.Errorf("principal %q: service %q is not a name", m.Principal, s)
		}
	}
	for _, f := range m.From {
		if f == "" || strings.Contains(f, ",") {
			return fmt.Errorf("principal %q: from pattern %q is empty or has a comma", m.Principal, f)
		}
	}
	return nil
}

func joinList(l []string) string { return strings.Join(l, ",") }

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// lookupPrincipals returns the distinct principals to look up, at most MaxMappedLookups, and
// only text (Postgres refuses a query argument that is not).
func lookupPrincipals(principals []string) []any {
	seen := map[string]bool{}
	var out []any
	for _, p := range principals {
		if len(out) == MaxMappedLookups {
			break
		}
		if p == "" || seen[p] || !utf8.ValidString(p) || strings.ContainsRune(p, 0) {
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	return out
}

// storedRevocation is a revocation's row: the checked revocation and its range columns.
type storedRevocation struct {
	NewRevocation
	rangeKey         *string
	rangeLo, rangeHi *int64
}

// checkRevocations checks every revocation of an import.
func checkRevocations(rs []NewRevocation) ([]storedRevocation, error) {
	out := make([]storedRevocation, 0, len(rs))
	for _, r := range rs {
		sr, err := checkStoredRevocation(r)
		if err != nil {
			return nil, fmt.Errorf("revocation of %s %q: %w", r.Kind, r.Value, err)
		}
		out = append(out, sr)
	}
	return out, nil
}

func checkStoredRevocation(r NewRevocation) (storedRevocation, error) {
	r, err := checkRevocation(r)
	if err != nil {
		return storedRevocation{}, err
	}
	sr := storedRevocation{NewRevocation: r}
	if r.Kind == RevokeSerialRange {
		from, to, _ := ParseSerialRange(r.Value) // checkRevocation checked it
		key, lo, hi := rangeKey(from, to), ordered(from), ordered(to)
		sr.rangeKey, sr.rangeLo, sr.rangeHi = &key, &lo, &hi
	}
	return sr, nil
}

// revocationIdentity is what makes two revocations the same, for imports that skip repeats.
func revocationIdentity(r NewRevocation) string {
	return string(r.Kind) + "\x00" + r.Value + "\x00" + r.CAFingerprint
}

// insertBatch is how many revocations one INSERT statement adds.
const insertBatch = 200

func checkSource(src NewKRLSource) error {
	switch {
	case src.URL == "":
		return errors.New("KRL source URL is empty")
	case !utf8.ValidString(src.URL) || strings.ContainsRune(src.URL, 0):
		return errors.New("KRL source URL is not text")
	case src.Every < 0:
		return fmt.Errorf("KRL source %q: negative interval %v", src.URL, src.Every)
	}
	return nil
}

// maxFetchBackoff is the longest wait between two fetches of a source that keeps failing.
const maxFetchBackoff = 24 * time.Hour

// retryAfter is how long a source fetched every every waits after its failures-th failure in a
// row: every, doubled for each failure after the first, at most maxFetchBackoff (or every, when
// that is longer).
func retryAfter(every time.Duration, failures int) time.Duration {
	d := every
	for range min(max(failures-1, 0), 16) {
		if d >= maxFetchBackoff {
			break
		}
		d *= 2
	}
	return max(min(d, maxFetchBackoff), every)
}

func (s *sqliteStore) revocationBound() int   { return bound(s.maxRevocations) }
func (s *postgresStore) revocationBound() int { return bound(s.maxRevocations) }

func bound(n int) int {
	if n > 0 {
		return n
	}
	return MaxRevocations
}
