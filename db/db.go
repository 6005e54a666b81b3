package db

import (
	"context"
	"errors"
	"time"
)

// Errors returned by every store implementation. Callers test them with errors.Is.
var (
	ErrNotFound     = errors.New("not found")
	ErrAccountTaken = errors.New("account name is taken")
	ErrKeyTaken     = errors.New("key is already registered") // same fingerprint anywhere, as login key or CA
	ErrNameTaken    = errors.New("key name is already used in this account")
	ErrLastLoginKey = errors.New("the last login key of an account cannot be removed")
)

// Account is a registered account.
type Account struct {
	ID        int64
	Name      string
	CreatedAt time.Time
}

// KeyKind says whether a key logs in or vouches for certificates.
type KeyKind string

// Key kinds.
const (
	KindLogin KeyKind = "login"
	KindCA    KeyKind = "ca"
)

// NewKey is a key to register.
type NewKey struct {
	Name        string  // unique per account
	Kind        KeyKind // login or ca
	Algorithm   string  // e.g. ssh-ed25519
	Fingerprint string  // SHA256:... ; unique across all accounts
	PublicKey   string  // authorized_keys form without options or comment: "ssh-ed25519 AAAA..."
	Options     string  // authorized_keys options as given (e.g. `cert-authority,principals="pgs"`), may be empty
}

// Key is a registered login key or CA.
type Key struct {
	ID        int64
	AccountID int64
	NewKey
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

// RevocationKind says what a revocation matches.
type RevocationKind string

// Revocation kinds.
const (
	RevokeSerial RevocationKind = "serial" // Value is a decimal serial; CAFingerprint limits it to one CA when set
	RevokeKeyID  RevocationKind = "key_id" // Value is a certificate key ID (any of the account's CAs)
	RevokeKey    RevocationKind = "key"    // Value is a certificate key's SHA256 fingerprint
)

// NewRevocation is a revocation to add.
type NewRevocation struct {
	Kind          RevocationKind
	Value         string
	CAFingerprint string           // serials, ranges and key IDs: this CA only; empty means every CA of the account
	Origin        RevocationOrigin // empty: OriginRevoke
}

// Revocation is a stored revocation.
type Revocation struct {
	ID        int64
	AccountID int64
	NewRevocation
	SourceID  int64 // the KRL source it was fetched from; 0: none
	CreatedAt time.Time
}

// CertRef names a presented certificate for a revocation check.
type CertRef struct {
	Serial         uint64
	KeyID          string
	KeyFingerprint string // SHA256 fingerprint of the certificate's key
	KeySHA1        string // its SHA1 fingerprint (SHA1:...), for key hashes from KRLs
	CAFingerprint  string
	CASHA1         string // the CA's SHA1 fingerprint: a KRL that lists a CA's key revokes its certificates
}

// AccessEntry is one authentication decision on a proven key.
type AccessEntry struct {
	ID             int64
	Time           time.Time
	AccountID      int64 // 0 when the key belongs to no account
	Account        string
	Service        string
	Method         string // key, cert or signup
	Identity       string
	Serial         *uint64 // certificates only
	KeyFingerprint string
	CAFingerprint  string
	RemoteAddr     string
	Outcome        string // allowed, denied, or suppressed (see SuppressedAccess)
	Reason         string
	Count          int64 // the attempts the entry stands for: 1, or more for a suppressed row
}

// Accounts stores accounts.
type Accounts interface {
	// CreateAccount creates an account with its first login key in one transaction.
	CreateAccount(ctx context.Context, name string, first NewKey) (Account, Key, error)
	AccountByName(ctx context.Context, name string) (Account, error)
	AccountByID(ctx context.Context, id int64) (Account, error)
	// AccountNames returns the names of the accounts among ids that exist (deleted ones are
	// left out), by id.
	AccountNames(ctx context.Context, ids []int64) (map[int64]string, error)
	ListAccounts(ctx context.Context) ([]Account, error)
}

// Keys stores login keys and CAs.
type Keys interface {
	AddKey(ctx context.Context, accountID int64, k NewKey) (Key, error)
	ListKeys(ctx context.Context, accountID int64) ([]Key, error)
	// KeyByFingerprint finds a login key or CA of any account.
	KeyByFingerprint(ctx context.Context, fingerprint string) (Key, error)
	// RemoveKey removes one key of the account; it refuses (ErrLastLoginKey) to remove the
	// account's last login key, atomically.
	RemoveKey(ctx context.Context, accountID, keyID int64) error
	TouchKey(ctx context.Context, keyID int64, at time.Time) error
}

// Revocations stores certificate revocations.
type Revocations interface {
	AddRevocation(ctx context.Context, accountID int64, r NewRevocation) (Revocation, error)
	ListRevocations(ctx context.Context, accountID int64) ([]Revocation, error)
	RemoveRevocation(ctx context.Context, accountID, id int64) error
	// FindRevocation returns a revocation of the account that matches c, or ErrNotFound:
	// a serial or serial range of its CA (or of every CA), its key ID, or a key or key hash
	// naming its key or its CA's key. One made by revoke comes before one from a KRL. It takes
	// one query, whose cost does not grow with the number of revocations.
	FindRevocation(ctx context.Context, accountID int64, c CertRef) (Revocation, error)
}

// AccessLog stores authentication decisions.
type AccessLog interface {
	AppendAccess(ctx context.Context, e AccessEntry) error
	// ListAccess returns the account's entries newest first; service "" means all.
	ListAccess(ctx context.Context, accountID int64, service string, limit int) ([]AccessEntry, error)
	// PruneAccess deletes entries older than before and reports how many went.
	PruneAccess(ctx context.Context, before time.Time) (int64, error)
}

// Store is everything portico keeps in its database.
type Store interface {
	Accounts
	Keys
	Revocations
	AccessLog
	PGS
	PendingKeys
	AccountLifecycle
	TrustRules
	AccessVersions
	AccessBatches
	SuppressedAccess
	Ping(ctx context.Context) error
	Close() error
}
