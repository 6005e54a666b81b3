package auth

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"sync"

	"github.com/portico-sh/portico/db"
)

// Bounds of the trust cache of one Authenticator: how many login keys and certificates it holds,
// and about how many bytes their records take. Past either, the least recently used go.
const (
	DefaultTrustCacheEntries = 10_000
	DefaultTrustCacheBytes   = 16 << 20
	// maxTrustEntryBytes is the largest single record cached (a certificate whose principals
	// the account maps at length); bigger ones are read from the store on every login.
	maxTrustEntryBytes = 64 << 10
)

// VersionStore is what the trust cache needs besides Store: one account's access version, which
// the database raises in the same transaction as every change of what grounds the account's
// access (db.AccessVersions). db.Store satisfies it; a Store that does not gets no cache.
type VersionStore interface {
	AccessVersion(ctx context.Context, accountID int64) (int64, error)
}

// The trust cache keeps what the store answered for a login key or certificate that was
// accepted, tagged with the access version its account had before those answers were read:
//
//   - a login key: its key record and its account, by fingerprint;
//   - a certificate: its CA's key record, the account, the account's mappings of the
//     certificate's principals, and that no revocation matched, by the SHA-256 of the whole
//     certificate (signature included), which also stands for its CA's signature having
//     verified: a signature's validity is a function of those bytes alone.
//
// It is only ever used after reading the account's version again (one indexed point query) and
// finding it unchanged: every change of the account's keys, CAs, revocations or principal map
// raises it in the change's own transaction, so an unchanged version means the store would
// answer the same. Nothing negative is kept (unknown keys and CAs, found revocations, refusals):
// those are read from the store each time, so a key or CA added, or a revocation lifted, counts
// at once. Every rule that depends on the clock, the client address or the service asked for is
// judged again on each login, from the cached records exactly as from the store's.
type trustCache struct {
	maxEntries, maxBytes int

	mu    sync.Mutex
	byKey map[trustKey]*list.Element // of *trustEntry
	lru   list.List                  // most recently used first
	bytes int
}

// trustKey names a cached record: a login key's fingerprint, or a certificate's hash.
type trustKey struct {
	cert bool
	hash [sha256.Size]byte
}

// trustEntry is one cached record.
type trustEntry struct {
	key     trustKey
	version int64 // the account's access version read before any of the records below
	key1    db.Key
	acct    db.Account
	// Certificates only: the account's mappings of the certificate's principals that are no
	// service, as PrincipalMappings returned them (the CA filter is applied on each login).
	mappings []db.PrincipalMapping
	size     int
}

func newTrustCache(maxEntries, maxBytes int) *trustCache {
	if maxEntries <= 0 || maxBytes <= 0 {
		return nil
	}
	return &trustCache{maxEntries: maxEntries, maxBytes: maxBytes, byKey: map[trustKey]*list.Element{}}
}

func loginKeyCacheKey(fingerprint string) trustKey {
	return trustKey{hash: sha256.Sum256([]byte(fingerprint))}
}

func certCacheKey(certBytes []byte) trustKey {
	return trustKey{cert: true, hash: sha256.Sum256(certBytes)}
}

// get returns the entry under k whose account's access version is still the one it was cached
// under, or nil. An entry found stale (or whose account is gone) is dropped. A store error is
// returned as is: nothing was decided.
func (c *trustCache) get(ctx context.Context, vs VersionStore, k trustKey) (*trustEntry, error) {
	if c == nil {
		return nil, nil
	}
	c.mu.Lock()
	el, ok := c.byKey[k]
	var e *trustEntry
	if ok {
		e = el.Value.(*trustEntry)
	}
	c.mu.Unlock()
	if e == nil {
		return nil, nil
	}
	v, err := vs.AccessVersion(ctx, e.acct.ID)
	if errors.Is(err, db.ErrNotFound) {
		c.drop(e)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if v != e.version {
		c.drop(e)
		return nil, nil
	}
	c.mu.Lock()
	if el, ok := c.byKey[k]; ok && el.Value == e {
		c.lru.MoveToFront(el)
	}
	c.mu.Unlock()
	return e, nil
}

// drop removes e if it is still the entry under its key.
func (c *trustCache) drop(e *trustEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[e.key]; ok && el.Value == e {
		c.remove(el)
	}
}

func (c *trustCache) remove(el *list.Element) {
	e := el.Value.(*trustEntry)
	c.lru.Remove(el)
	delete(c.byKey, e.key)
	c.bytes -= e.size
}

// put caches e, replacing what its key held, and evicts the least recently used entries past
// the bounds. An entry bigger than maxTrustEntryBytes (or than the whole cache) is not kept.
func (c *trustCache) put(e *trustEntry) {
	if c == nil {
		return
	}
	e.size = e.estimateSize()
	if e.size > maxTrustEntryBytes || e.size > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[e.key]; ok {
		c.remove(el)
	}
	c.byKey[e.key] = c.lru.PushFront(e)
	c.bytes += e.size
	for c.lru.Len() > c.maxEntries || c.bytes > c.maxBytes {
		c.remove(c.lru.Back())
	}
}

// len and size report the entries and bytes held, for tests.
func (c *trustCache) len() (entries, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len(), c.bytes
}

// estimateSize is about what e holds in memory: its strings and slices and a fixed overhead for
// the structs, the list element and the map slot.
func (e *trustEntry) estimateSize() int {
	n := 512 + len(e.key1.Name) + len(e.key1.Algorithm) + len(e.key1.Fingerprint) + len(e.key1.PublicKey) +
		len(e.key1.Options) + len(e.acct.Name)
	for _, m := range e.mappings {
		n += 160 + len(m.Principal) + len(m.CAFingerprint)
		for _, s := range m.Services {
			n += 16 + len(s)
		}
		for _, s := range m.From {
			n += 16 + len(s)
		}
	}
	return n
}

// trustReads are the store reads of one decision: through the cache's entry when one was found
// valid, else from the store, noting what an entry to cache afterwards needs.
type trustReads struct {
	a    *Authenticator
	hit  *trustEntry
	miss trustEntry
	// cacheable stays true while everything read can be cached: the version was read before
	// the records, and nothing read was negative.
	cacheable bool
}

// begin looks k up in the cache. A store error (reading the version) is returned: nothing was
// decided.
func (a *Authenticator) beginReads(ctx context.Context, k trustKey) (*trustReads, error) {
	r := &trustReads{a: a}
	if a.cache == nil {
		return r, nil
	}
	e, err := a.cache.get(ctx, a.versions, k)
	if err != nil {
		return nil, err
	}
	r.hit = e
	r.miss.key = k
	return r, nil
}

// keyByFingerprint reads a login key or CA and its account. On a miss with the cache on, it
// reads the account's access version and then the key again, so that what is cached is at
// least as new as the version it is tagged with; a key that moved between the two reads is
// used as read the second time and not cached.
func (r *trustReads) keyByFingerprint(ctx context.Context, fp string) (db.Key, error) {
	if r.hit != nil && r.hit.key1.Fingerprint == fp {
		return r.hit.key1, nil
	}
	r.hit = nil
	k, err := r.a.store.KeyByFingerprint(ctx, fp)
	if err != nil || r.a.cache == nil {
		return k, err
	}
	v, err := r.a.versions.AccessVersion(ctx, k.AccountID)
	if errors.Is(err, db.ErrNotFound) {
		// The account went since: read again, and keep nothing.
		return r.a.store.KeyByFingerprint(ctx, fp)
	}
	if err != nil {
		return db.Key{}, err
	}
	k2, err := r.a.store.KeyByFingerprint(ctx, fp)
	if err != nil {
		return k2, err
	}
	if k2.ID == k.ID && k2.AccountID == k.AccountID {
		r.cacheable = true
		r.miss.version = v
		r.miss.key1 = k2
	}
	return k2, nil
}

// accountByID reads the account of the key keyByFingerprint returned.
func (r *trustReads) accountByID(ctx context.Context, id int64) (db.Account, error) {
	if r.hit != nil && r.hit.acct.ID == id {
		return r.hit.acct, nil
	}
	acct, err := r.a.store.AccountByID(ctx, id)
	if err == nil && r.cacheable && id == r.miss.key1.AccountID {
		r.miss.acct = acct
	} else {
		r.cacheable = false
	}
	return acct, err
}

// principalMappings reads the account's mappings of a certificate's principals.
func (r *trustReads) principalMappings(ctx context.Context, accountID int64, principals []string) ([]db.PrincipalMapping, error) {
	if r.hit != nil && r.hit.acct.ID == accountID {
		return r.hit.mappings, nil
	}
	ms, err := r.a.store.PrincipalMappings(ctx, accountID, principals)
	if err == nil && r.cacheable && accountID == r.miss.key1.AccountID {
		r.miss.mappings = ms
	} else {
		r.cacheable = false
	}
	return ms, err
}

// findRevocation looks for a revocation of the certificate. Only "none" is ever cached: a
// found one is read each time, so that lifting it counts at once.
func (r *trustReads) findRevocation(ctx context.Context, accountID int64, ref db.CertRef) (db.Revocation, error) {
	if r.hit != nil && r.hit.acct.ID == accountID {
		return db.Revocation{}, db.ErrNotFound
	}
	rev, err := r.a.store.FindRevocation(ctx, accountID, ref)
	if !errors.Is(err, db.ErrNotFound) || accountID != r.miss.key1.AccountID {
		r.cacheable = false
	}
	return rev, err
}

// done caches what was read for an accepted login key or certificate.
func (r *trustReads) done() {
	if r.hit != nil || !r.cacheable || r.miss.acct.ID == 0 {
		return
	}
	e := r.miss
	r.a.cache.put(&e)
}
