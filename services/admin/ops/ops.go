package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/internal/egress"
)

// Config is what the operations need to know about this server.
type Config struct {
	Domain      string     // public host name (PORTICO_DOMAIN)
	SSHHost     string     // host name users ssh to; Domain when empty
	SSHPort     int        // port users ssh to; 22 leaves -p out of the commands shown
	SignupsOpen bool       // whether an unregistered key may register an account
	SignupRate  SignupRate // sign-ups per source address (PORTICO_SIGNUP_RATE); zero: no limit
	// KRL is how revocations import --url fetches KRLs.
	KRL KRLConfig
	// SyncAccessLog, when set, waits until the access-log entries of decisions already made
	// are written (the gateway writes them in the background), before the log is read.
	SyncAccessLog func(ctx context.Context) error
	// KnownHostsLine is the known_hosts line that trusts this server's host certificate
	// (`@cert-authority ...`); empty when it presents none.
	KnownHostsLine string
	// AccountHooks remove what services keep for an account outside the database tables that
	// cascade with it, when it is deleted.
	AccountHooks []AccountHook
	// Log receives store failures, which users see only as "the database failed";
	// slog.Default() when nil.
	Log *slog.Logger
	Now func() time.Time // nil: time.Now
}

// Ops runs account operations against a store.
type Ops struct {
	store db.Store
	cfg   Config
	log   *slog.Logger
	now   func() time.Time

	fetcher  *egress.Fetcher // fetches KRLs from URLs users name
	krlSlots chan struct{}   // MaxKRLWork: KRL imports, fetches and exports at once
	krlMu    sync.Mutex
	krlBusy  map[int64]bool // accounts with a KRL import or export running here
	// krlClaimMu makes this gateway's claims of due KRL sources one at a time.
	krlClaimMu sync.Mutex
}

// New returns the operations on store for a server configured as cfg.
func New(store db.Store, cfg Config) *Ops {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Ops{
		store: store, cfg: cfg, log: log, now: now,
		fetcher: egress.New(egress.Options{
			AllowInternal: cfg.KRL.AllowInternal,
			Timeout:       cfg.KRL.FetchTimeout,
			MaxBytes:      auth.MaxKRLBytes,
		}),
		krlSlots: make(chan struct{}, MaxKRLWork),
		krlBusy:  map[int64]bool{},
	}
}

// authenticator decides as the gateway does, on the same store and clock.
func (o *Ops) authenticator() *auth.Authenticator {
	return auth.New(o.store, auth.Options{SignupsOpen: o.cfg.SignupsOpen, Now: o.now})
}

// Logger is where the operations, and the faces built on them, log failures.
func (o *Ops) Logger() *slog.Logger { return o.log }

// Host is the host name users ssh to.
func (o *Ops) Host() string {
	switch {
	case o.cfg.SSHHost != "":
		return o.cfg.SSHHost
	case o.cfg.Domain != "":
		return o.cfg.Domain
	}
	return "localhost"
}

// SSHCommand is the ssh command line that runs args on this server as user ("" for none),
// e.g. "ssh -p 2222 localhost register NAME".
func (o *Ops) SSHCommand(user string, args ...string) string {
	return o.sshCommand(nil, user, args...)
}

// sshCommand is SSHCommand with ssh options (such as -i FILE) before -p.
func (o *Ops) sshCommand(options []string, user string, args ...string) string {
	parts := append([]string{"ssh"}, options...)
	if o.cfg.SSHPort != 0 && o.cfg.SSHPort != 22 {
		parts = append(parts, "-p", strconv.Itoa(o.cfg.SSHPort))
	}
	host := o.Host()
	if user != "" {
		host = user + "@" + host
	}
	parts = append(parts, host)
	return strings.Join(append(parts, args...), " ")
}

// notRegistered is the refusal every operation but register and claim gives a grant without
// an account.
func (o *Ops) notRegistered(g auth.Grant) *Error {
	if g.MayClaim {
		return errorf(Refused, "this key is not registered yet: it waits to be claimed; run: "+o.SSHCommand("", "keys", "claim", "CODE")+" with the code you were given")
	}
	return errorf(Refused, "this key is not registered; run: "+o.SSHCommand("", "register", "NAME"))
}

// requireAccount refuses signup grants.
func (o *Ops) requireAccount(g auth.Grant) error {
	if g.IsSignup() || g.AccountID == 0 {
		return o.notRegistered(g)
	}
	return nil
}

// requireAdmin refuses grants that may not manage the account.
func (o *Ops) requireAdmin(g auth.Grant) error {
	if err := o.requireAccount(g); err != nil {
		return err
	}
	if !g.IsAdmin() {
		return errorf(Refused, fmt.Sprintf("this connection does not grant %s: managing the account needs a login key or a certificate with the principal %q", auth.Admin, auth.Admin))
	}
	return nil
}

// requireStanding is requireAdmin for an operation that could give access back or widen it
// (lifting a revocation, adding a key or CA, mapping a principal): auth also judges the
// connection's key again now. A connection whose grounds just ended (its certificate revoked,
// its key removed) is ended by live access within seconds; in those seconds it must not undo
// what ended it, nor leave itself a way back in.
func (o *Ops) requireStanding(ctx context.Context, g auth.Grant) error {
	if err := o.requireAdmin(g); err != nil {
		return err
	}
	err := o.authenticator().Recheck(ctx, g)
	if err == nil {
		return nil
	}
	if r, ok := auth.AsRefusal(err); ok {
		if _, aerr := o.store.AccountByID(ctx, g.AccountID); errors.Is(aerr, db.ErrNotFound) {
			return &Error{Kind: NotFound, Message: "this account no longer exists", Err: aerr}
		}
		return &Error{Kind: Refused, Message: "this connection's access has ended (" + r.Message + "); nothing was changed", Err: err}
	}
	return o.failed(ctx, "check this connection's access", err)
}

// serviceList names every service for messages: "admin, pgs, tuns, pipe".
func serviceList() string {
	names := make([]string, len(auth.Services))
	for i, s := range auth.Services {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// RequireAccount returns the refusal every operation but Register gives a grant without an
// account (a signup grant), or nil; a face uses it to refuse before it reads any input.
func (o *Ops) RequireAccount(g auth.Grant) error { return o.requireAccount(g) }

// RequireAdmin returns the refusal an operation that manages the account gives g, or nil; a face
// uses it to refuse before it reads input (a KRL on stdin).
func (o *Ops) RequireAdmin(g auth.Grant) error { return o.requireAdmin(g) }
