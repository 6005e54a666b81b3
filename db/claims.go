package db

import (
	"context"
	"errors"
	"time"
)

// Bounds on what adding keys can make the store hold.
const (
	// MaxPendingKeys is how many keys may wait to be claimed in one account at once.
	MaxPendingKeys = 10
	// MaxClaimAttempts is how many wrong codes a key may try: each wrong code counts against
	// every login key entry waiting for that key, and an entry that reaches it is dropped.
	MaxClaimAttempts = 5
)

// Errors of pending keys and of the account lifecycle.
var (
	ErrTooManyPending = errors.New("too many keys are waiting to be claimed in this account")
	ErrPendingTaken   = errors.New("the key is already waiting to be claimed in this account")
	ErrCodeTaken      = errors.New("the claim code is in use")
	ErrNameHeld       = errors.New("the account name is held after the account's deletion")
	ErrSignupRate     = errors.New("too many sign-ups from this source address")
)

// NewPendingKey is a key to add that waits for its holder to prove possession.
type NewPendingKey struct {
	NewKey
	Code      string    // the one-time claim code; unique among pending keys
	ExpiresAt time.Time // it can be claimed until then
	// AddedBy is the authorized_keys line of the key or certificate whose connection added it,
	// and AddedFrom that connection's IP address (empty: none): a claim is judged on them
	// again. Empty AddedBy: added before they were recorded.
	AddedBy   string
	AddedFrom string
}

// PendingKey is a key waiting to be claimed. It grants nothing and blocks nobody: the same
// fingerprint may wait in several accounts and be active in one.
type PendingKey struct {
	ID        int64
	AccountID int64
	NewPendingKey
	Attempts  int // wrong codes tried by this key so far
	CreatedAt time.Time
}

// PendingKeys stores keys added to an account until their holders prove they hold them. Every
// read takes the time now and ignores what has expired by then.
type PendingKeys interface {
	// AddPendingKey adds k to the account. It first deletes the expired pending keys of every
	// account. It refuses a name the account uses for a key or a pending key (ErrNameTaken), a
	// key active in this account (ErrKeyTaken) or pending in it (ErrPendingTaken), more than
	// MaxPendingKeys (ErrTooManyPending), and a code in use (ErrCodeTaken). A key active or
	// pending in another account does not stop it.
	AddPendingKey(ctx context.Context, accountID int64, k NewPendingKey, now time.Time) (PendingKey, error)
	// ListPendingKeys returns the account's pending keys, oldest first.
	ListPendingKeys(ctx context.Context, accountID int64, now time.Time) ([]PendingKey, error)
	// PendingKeyByFingerprint finds the account's pending key with fingerprint.
	PendingKeyByFingerprint(ctx context.Context, accountID int64, fingerprint string, now time.Time) (PendingKey, error)
	RemovePendingKey(ctx context.Context, accountID, id int64) error
	// HasPendingLoginKey reports whether fingerprint waits to be claimed as a login key in any
	// account.
	HasPendingLoginKey(ctx context.Context, fingerprint string, now time.Time) (bool, error)
	// PendingLoginKey finds the pending login key with fingerprint and code, in any account,
	// without counting a miss as a wrong attempt: ErrNotFound when there is none.
	PendingLoginKey(ctx context.Context, fingerprint, code string, now time.Time) (PendingKey, error)
	// ClaimLoginKey makes the pending login key with fingerprint and code a login key of its
	// account, drops every other pending entry of that fingerprint, and returns the new key. A
	// code that matches no pending login key of fingerprint is ErrNotFound and counts as a wrong
	// attempt against all of them (see MaxClaimAttempts). ErrKeyTaken: the fingerprint is
	// already active in some account; the entry stays.
	ClaimLoginKey(ctx context.Context, fingerprint, code string, now time.Time) (Key, error)
	// ActivatePendingKey makes the account's pending key id active, as ClaimLoginKey does, for
	// a holder who proved possession another way (a CA's signature). Ids are never reused, so
	// id names the very entry whose code was checked.
	ActivatePendingKey(ctx context.Context, accountID, id int64, now time.Time) (Key, error)
	// UndoClaim removes the account's login key id that a claim just made, even when it is
	// now the account's last login key (the account's other login keys may have been removed
	// meanwhile, by that very key): the claim is undone, unlike RemoveKey's "keys rm", which
	// keeps one login key. ErrNotFound: the account has no login key id.
	UndoClaim(ctx context.Context, accountID, id int64) error
}

// SignupLimit bounds the sign-ups from one source address.
type SignupLimit struct {
	Source string        // an IPv4 address or an IPv6 /64, as text
	Max    int           // sign-ups allowed from Source within Window; 0: no limit
	Window time.Duration //
}

// AccountLifecycle creates accounts for strangers and deletes accounts.
type AccountLifecycle interface {
	// SignUp creates an account as CreateAccount does, unless limit.Source already signed up
	// limit.Max times within the last limit.Window (ErrSignupRate), and records the sign-up.
	SignUp(ctx context.Context, name string, first NewKey, limit SignupLimit) (Account, Key, error)
	// DeleteAccount deletes the account with its keys, pending keys, revocations and every row
	// of other services that references it (their tables cascade); access-log rows stay, with
	// the account's name. Nobody can register the name until holdUntil (ErrNameHeld).
	DeleteAccount(ctx context.Context, id int64, holdUntil time.Time) error
}

func checkPendingKey(k NewPendingKey) error {
	if err := checkKey(k.NewKey); err != nil {
		return err
	}
	switch {
	case k.Code == "":
		return errors.New("claim code is empty")
	case k.ExpiresAt.IsZero():
		return errors.New("pending key has no expiry time")
	}
	return nil
}
