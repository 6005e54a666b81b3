package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/db"
)

// Store is what auth reads; db.Store satisfies it.
type Store interface {
	KeyByFingerprint(ctx context.Context, fingerprint string) (db.Key, error)
	HasPendingLoginKey(ctx context.Context, fingerprint string, now time.Time) (bool, error)
	AccountByID(ctx context.Context, id int64) (db.Account, error)
	FindRevocation(ctx context.Context, accountID int64, c db.CertRef) (db.Revocation, error)
	PrincipalMappings(ctx context.Context, accountID int64, principals []string) ([]db.PrincipalMapping, error)
}

// Options configure an Authenticator.
type Options struct {
	SignupsOpen bool             // unregistered keys may sign up (admin service only)
	Now         func() time.Time // nil: time.Now
	// Admin is the command that reaches this server's admin service, for refusals that point
	// there ("ssh -p 2222 admin@example.com"); empty: "ssh admin@HOST".
	Admin string
	// TrustCacheEntries and TrustCacheBytes bound the trust cache (see trustcache.go): 0 is
	// DefaultTrustCacheEntries or DefaultTrustCacheBytes, a negative value turns it off. A store
	// that is no VersionStore gets no cache.
	TrustCacheEntries, TrustCacheBytes int
}

// Authenticator decides public-key authentications. Each decision depends only on its Attempt,
// the clock and the store: what it caches of the store's answers is used only while the
// account's access version says the store would answer the same.
type Authenticator struct {
	store       Store
	signupsOpen bool
	now         func() time.Time
	admin       string // the command that reaches the admin service, for refusals
	versions    VersionStore
	cache       *trustCache // nil: none
}

// New returns an Authenticator that reads keys, accounts and revocations from store.
func New(store Store, opts Options) *Authenticator {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	admin := opts.Admin
	if admin == "" {
		admin = "ssh admin@HOST"
	}
	a := &Authenticator{store: store, signupsOpen: opts.SignupsOpen, now: now, admin: admin}
	if vs, ok := store.(VersionStore); ok {
		entries, bytes := opts.TrustCacheEntries, opts.TrustCacheBytes
		if entries == 0 {
			entries = DefaultTrustCacheEntries
		}
		if bytes == 0 {
			bytes = DefaultTrustCacheBytes
		}
		a.versions, a.cache = vs, newTrustCache(entries, bytes)
	}
	return a
}

// Attempt is one public-key authentication to decide.
type Attempt struct {
	Key        gossh.PublicKey // plain key or *gossh.Certificate, as presented
	Service    Service         // the service the connection asks for (already resolved by the router)
	RemoteAddr net.Addr
	// LoginOnly judges a plain key as a login key only, with no sign-up or claim grant, and
	// refuses it quietly (no banner) when it is none: a certificate was refused on this
	// connection after its key signed, and the key behind it, which OpenSSH offers next, must
	// not turn that refusal into a sign-up prompt. Live access judges open connections so too.
	LoginOnly bool
}

// Authenticate returns the Grant, or an error: a *Refusal for every refusal (typed Reason and
// a message containing the reason's words), or a wrapped store error, on which nothing was
// decided. It writes nothing.
func (a *Authenticator) Authenticate(ctx context.Context, at Attempt) (Grant, error) {
	if at.Key == nil {
		return Grant{}, errors.New("auth: attempt without a key")
	}
	if cert, ok := at.Key.(*gossh.Certificate); ok {
		return a.certificate(ctx, at, cert)
	}
	return a.plainKey(ctx, at)
}

// Recheck judges again, now, the key grant g was given for, as live access judges an open
// connection (a plain key as a login key only), and refuses unless it still manages the same
// account: nil while g's grounds hold, else a *Refusal (or a store error, on which nothing was
// decided). Live access ends a connection whose grounds ended within seconds; an operation that
// could give access back or widen it (lifting a revocation, adding a key or CA, mapping a
// principal) asks first, so that such a connection cannot, in those seconds, undo what ended it.
func (a *Authenticator) Recheck(ctx context.Context, g Grant) error {
	if g.PublicKey == nil {
		return &Refusal{Reason: ReasonNotRegistered, Message: "this connection's key is not known, so its access cannot be checked again"}
	}
	ng, err := a.Authenticate(ctx, Attempt{Key: g.PublicKey, Service: g.Service, RemoteAddr: g.RemoteAddr, LoginOnly: true})
	if err != nil {
		return err
	}
	if ng.AccountID != g.AccountID || !ng.IsAdmin() {
		return &Refusal{Reason: ReasonDoesNotGrant, AccountID: g.AccountID, Account: g.Account, Identity: g.Identity,
			Message: fmt.Sprintf("this connection no longer grants %s on account %s", Admin, g.Account)}
	}
	return nil
}

// plainKey decides a login key, or an unregistered key that may sign up.
func (a *Authenticator) plainKey(ctx context.Context, at Attempt) (Grant, error) {
	fp := Fingerprint(at.Key)
	reads, err := a.beginReads(ctx, loginKeyCacheKey(fp))
	if err != nil {
		return Grant{}, fmt.Errorf("auth: looking up key %s: %w", fp, err)
	}
	k, err := reads.keyByFingerprint(ctx, fp)
	if errors.Is(err, db.ErrNotFound) {
		return a.unregistered(ctx, at, fp)
	}
	if err != nil {
		return Grant{}, fmt.Errorf("auth: looking up key %s: %w", fp, err)
	}
	acct, err := reads.accountByID(ctx, k.AccountID)
	if err != nil {
		return Grant{}, fmt.Errorf("auth: looking up the account of key %s: %w", fp, err)
	}
	refuse := func(reason Reason, format string, args ...any) (Grant, error) {
		return Grant{}, &Refusal{
			Reason:    reason,
			Message:   fmt.Sprintf(format, args...),
			AccountID: acct.ID,
			Account:   acct.Name,
			Identity:  k.Name,
		}
	}
	if k.Kind != db.KindLogin {
		return refuse(ReasonNotRegistered, "key %s is not registered as a login key: it is a certificate authority, which only signs certificates and never logs in by itself", fp)
	}
	opts, err := ParseKeyOptions(k.Options)
	if err != nil {
		return Grant{}, fmt.Errorf("auth: stored options of key %s: %w", fp, err)
	}
	if opts.ExpiryTime != nil && !a.now().Before(*opts.ExpiryTime) {
		return refuse(ReasonExpired, "key %q expired at %s (its expiry-time option)", k.Name, rfc3339(*opts.ExpiryTime))
	}
	if opts.From != nil {
		if ip, ok := clientIP(at.RemoteAddr); !ok || !matchFrom(opts.From, ip) {
			return refuse(ReasonSourceAddress, "key %q may not be used from source address %s (its from= option)", k.Name, addrText(at.RemoteAddr))
		}
	}
	g := Grant{
		AccountID:      acct.ID,
		Account:        acct.Name,
		Method:         MethodKey,
		Identity:       k.Name,
		Service:        at.Service,
		Services:       append([]Service(nil), Services...),
		KeyFingerprint: fp,
		Permits:        Permits{PTY: true, PortForwarding: true},
		KeyID:          k.ID,
		ExpiresAt:      opts.ExpiryTime,
		RemoteAddr:     at.RemoteAddr,
		PublicKey:      at.Key,
	}
	if !g.Allows(at.Service) {
		return refuse(ReasonDoesNotGrant, "key %q does not grant %s: there is no such service (services are %s)", k.Name, at.Service, serviceList(Services))
	}
	reads.done()
	return g, nil
}

// unregistered decides a plain key that is in no account. It may sign up when signups are
// open, and claim itself when it waits to be claimed as a login key (whatever the signups
// setting), on the admin service only. The message says nothing about any account.
func (a *Authenticator) unregistered(ctx context.Context, at Attempt, fp string) (Grant, error) {
	pending, err := a.store.HasPendingLoginKey(ctx, fp, a.now())
	if err != nil {
		return Grant{}, fmt.Errorf("auth: looking up pending key %s: %w", fp, err)
	}
	if at.LoginOnly {
		return Grant{}, &Refusal{Reason: ReasonNotRegistered, Quiet: true,
			Message: fmt.Sprintf("key %s is not registered as a login key", fp)}
	}
	if at.Service == Admin && (pending || a.signupsOpen) {
		method := MethodSignup
		if pending {
			method = MethodClaim
		}
		return Grant{
			Method:         method,
			Service:        Admin,
			Services:       []Service{Admin},
			KeyFingerprint: fp,
			Permits:        Permits{PTY: true},
			RemoteAddr:     at.RemoteAddr,
			PublicKey:      at.Key,
			MayRegister:    a.signupsOpen,
			MayClaim:       pending,
		}, nil
	}
	var msg string
	switch {
	case pending:
		msg = fmt.Sprintf("key %s is not registered yet: it waits to be claimed; run the claim command you were given (%s keys claim CODE)", fp, a.admin)
	case a.signupsOpen:
		msg = fmt.Sprintf("key %s is not registered: sign up first with the admin service (%s register NAME)", fp, a.admin)
	default:
		msg = fmt.Sprintf("key %s is not registered, and signups are closed", fp)
	}
	return Grant{}, &Refusal{Reason: ReasonNotRegistered, Message: msg}
}

// addrText is the client address as messages show it.
func addrText(a net.Addr) string {
	if ip, ok := clientIP(a); ok {
		return ip.String()
	}
	if a == nil {
		return "(unknown)"
	}
	return a.String()
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// prefixesContain reports whether any prefix contains ip.
func prefixesContain(ps []netip.Prefix, ip netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// earliest returns the earlier of two instants, either of which may be nil (never).
func earliest(a, b *time.Time) *time.Time {
	switch {
	case a == nil:
		return b
	case b == nil || a.Before(*b):
		return a
	}
	return b
}
