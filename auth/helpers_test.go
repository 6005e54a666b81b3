package auth

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/db"
)

// fakeStore is an in-memory Store. It follows db.Store's contract for the three reads auth
// makes; that contract itself is tested against the real stores in package db.
type fakeStore struct {
	accounts map[int64]db.Account
	keys     map[string]db.Key // by fingerprint
	revs     []db.Revocation
	pending  map[string]time.Time // pending login keys: fingerprint → expiry
	mappings []db.PrincipalMapping
	// mapLookups counts the calls of PrincipalMappings.
	mapLookups int
	err        error // returned by every call when set
	nextID     int64
}

func newFakeStore() *fakeStore {
	return &fakeStore{accounts: map[int64]db.Account{}, keys: map[string]db.Key{}, pending: map[string]time.Time{}}
}

func (s *fakeStore) HasPendingLoginKey(_ context.Context, fp string, now time.Time) (bool, error) {
	if s.err != nil {
		return false, s.err
	}
	expires, ok := s.pending[fp]
	return ok && now.Before(expires), nil
}

func (s *fakeStore) addAccount(name string) db.Account {
	s.nextID++
	a := db.Account{ID: s.nextID, Name: name}
	s.accounts[a.ID] = a
	return a
}

func (s *fakeStore) addKey(accountID int64, name string, kind db.KeyKind, k gossh.PublicKey, options string) db.Key {
	s.nextID++
	key := db.Key{ID: s.nextID, AccountID: accountID, NewKey: db.NewKey{
		Name: name, Kind: kind, Algorithm: k.Type(), Fingerprint: Fingerprint(k), Options: options,
	}}
	s.keys[key.Fingerprint] = key
	return key
}

func (s *fakeStore) KeyByFingerprint(_ context.Context, fp string) (db.Key, error) {
	if s.err != nil {
		return db.Key{}, s.err
	}
	k, ok := s.keys[fp]
	if !ok {
		return db.Key{}, db.ErrNotFound
	}
	return k, nil
}

func (s *fakeStore) AccountByID(_ context.Context, id int64) (db.Account, error) {
	if s.err != nil {
		return db.Account{}, s.err
	}
	a, ok := s.accounts[id]
	if !ok {
		return db.Account{}, db.ErrNotFound
	}
	return a, nil
}

func (s *fakeStore) FindRevocation(_ context.Context, accountID int64, c db.CertRef) (db.Revocation, error) {
	if s.err != nil {
		return db.Revocation{}, s.err
	}
	var found []db.Revocation
	for _, r := range s.revs {
		if r.AccountID != accountID {
			continue
		}
		ofCA := r.CAFingerprint == "" || r.CAFingerprint == c.CAFingerprint
		switch r.Kind {
		case db.RevokeSerial:
			if r.Value == strconv.FormatUint(c.Serial, 10) && ofCA {
				found = append(found, r)
			}
		case db.RevokeSerialRange:
			if from, to, err := db.ParseSerialRange(r.Value); err == nil && from <= c.Serial && c.Serial <= to && ofCA {
				found = append(found, r)
			}
		case db.RevokeKeyID:
			if r.Value == c.KeyID && ofCA {
				found = append(found, r)
			}
		case db.RevokeKey, db.RevokeKeyHash:
			if slices.Contains([]string{c.KeyFingerprint, c.KeySHA1, c.CAFingerprint, c.CASHA1}, r.Value) {
				found = append(found, r)
			}
		}
	}
	// As the stores do: one made by revoke first.
	slices.SortStableFunc(found, func(a, b db.Revocation) int {
		return cmp.Compare(btoi(a.Origin == db.OriginKRL), btoi(b.Origin == db.OriginKRL))
	})
	if len(found) == 0 {
		return db.Revocation{}, db.ErrNotFound
	}
	return found[0], nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *fakeStore) PrincipalMappings(_ context.Context, accountID int64, principals []string) ([]db.PrincipalMapping, error) {
	if s.err != nil {
		return nil, s.err
	}
	s.mapLookups++
	var out []db.PrincipalMapping
	for _, m := range s.mappings {
		if m.AccountID == accountID && slices.Contains(principals, m.Principal) {
			out = append(out, m)
		}
	}
	return out, nil
}

// mapPrincipal adds a mapping to the account's principal map.
func (s *fakeStore) mapPrincipal(accountID int64, m db.NewPrincipalMapping) {
	s.nextID++
	s.mappings = append(s.mappings, db.PrincipalMapping{ID: s.nextID, AccountID: accountID, NewPrincipalMapping: m})
}

// testNow is the fixed clock of the decision tests.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// userCert returns a certificate for key, valid around testNow for pgs and tuns with
// permit-pty, changed by edit, and signed by signer.
func userCert(t *testing.T, key gossh.PublicKey, signer gossh.Signer, edit func(*gossh.Certificate)) *gossh.Certificate {
	t.Helper()
	c := &gossh.Certificate{
		Key:             key,
		Serial:          42,
		CertType:        gossh.UserCert,
		KeyId:           "bob@laptop",
		ValidPrincipals: []string{"pgs", "tuns"},
		ValidAfter:      uint64(testNow.Add(-time.Hour).Unix()),
		ValidBefore:     uint64(testNow.Add(time.Hour).Unix()),
		Permissions:     gossh.Permissions{Extensions: map[string]string{"permit-pty": ""}},
	}
	if edit != nil {
		edit(c)
	}
	if err := c.SignCert(rand.Reader, signer); err != nil {
		t.Fatal(err)
	}
	return reparse(t, c)
}

// reparse sends a certificate through its wire form, as a server receives it.
func reparse(t *testing.T, c *gossh.Certificate) *gossh.Certificate {
	t.Helper()
	k, err := gossh.ParsePublicKey(c.Marshal())
	if err != nil {
		t.Fatalf("parsing the certificate: %v", err)
	}
	return k.(*gossh.Certificate)
}

// tcp returns a TCP address such as "192.0.2.10:5000" or "[2001:db8::5]:22".
func tcp(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }

func wantReason(t *testing.T, err error, reason Reason) *Refusal {
	t.Helper()
	r, ok := AsRefusal(err)
	if !ok {
		t.Fatalf("got error %v, want a refusal %q", err, reason)
	}
	if r.Reason != reason {
		t.Fatalf("got refusal %q (%s), want %q", r.Reason, r.Message, reason)
	}
	return r
}

var errBoom = errors.New("database is down")
