package ops

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
)

// NameHold is how long the name of a deleted account cannot be registered again: its host
// names ({account}-{project}.DOMAIN) would otherwise pass to a stranger while links to them live.
const NameHold = 90 * 24 * time.Hour

// DefaultSignupRate is PORTICO_SIGNUP_RATE's default.
const DefaultSignupRate = "5/h"

// SignupRate bounds the accounts created from one source address (an IPv4 address or an IPv6
// /64): at most Max within any Per. The zero value is no limit.
type SignupRate struct {
	Max int
	Per time.Duration
}

func (r SignupRate) String() string {
	if r.Max == 0 {
		return "off"
	}
	return fmt.Sprintf("%d per %s", r.Max, rateUnit(r.Per))
}

func rateUnit(d time.Duration) string {
	switch d {
	case time.Second:
		return "second"
	case time.Minute:
		return "minute"
	case time.Hour:
		return "hour"
	case 24 * time.Hour:
		return "day"
	}
	return d.String()
}

// ParseSignupRate reads a sign-up rate: "off", or N/UNIT with UNIT s, m, h or d, or a duration
// such as 30m ("5/h", "100/d", "3/30m").
func ParseSignupRate(s string) (SignupRate, error) {
	if s == "off" {
		return SignupRate{}, nil
	}
	bad := fmt.Errorf("sign-up rate %q: want N/UNIT (such as 5/h; UNIT s, m, h, d or a duration such as 30m) or off", s)
	n, unit, ok := strings.Cut(s, "/")
	if !ok {
		return SignupRate{}, bad
	}
	max, err := strconv.Atoi(n)
	if err != nil || max < 1 {
		return SignupRate{}, bad
	}
	per, ok := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[unit]
	if !ok {
		if per, err = time.ParseDuration(unit); err != nil || per < time.Second {
			return SignupRate{}, bad
		}
	}
	return SignupRate{Max: max, Per: per}, nil
}

// AccountHook removes what a service keeps for an account outside the database tables that
// cascade with it (a site's files, a topic's or tunnel's live state). DeleteAccount runs every
// hook once the account is gone from the database; a hook's failure is logged and leaves the
// deletion done.
type AccountHook interface {
	DeleteAccountData(ctx context.Context, account db.Account) error
}

// DeleteAccount deletes the account of g, which must be allowed to manage it (a login key, or a
// certificate with the admin principal): its keys, CAs, pending keys, revocations and the data
// of every service; the access log keeps its entries. Its keys are unregistered at once, and its
// name is held for NameHold. It returns the end of the hold.
func (o *Ops) DeleteAccount(ctx context.Context, g auth.Grant) (time.Time, error) {
	if err := o.requireAdmin(g); err != nil {
		return time.Time{}, err
	}
	acct, err := o.store.AccountByID(ctx, g.AccountID)
	switch {
	case errors.Is(err, db.ErrNotFound):
		return time.Time{}, &Error{Kind: NotFound, Message: "this account no longer exists", Err: err}
	case err != nil:
		return time.Time{}, o.failed(ctx, "delete the account", err)
	}
	until, err := o.deleteAccount(ctx, acct)
	if err == nil {
		o.log.InfoContext(ctx, "account deleted", "account", acct.Name, "by", g.Identity, "method", g.Method, "remote", addrText(g))
	}
	return until, err
}

// DeleteAccountByName deletes account name as DeleteAccount does, for the operator
// (`portico account rm`): it checks no grant.
func (o *Ops) DeleteAccountByName(ctx context.Context, name string) (time.Time, error) {
	acct, err := o.store.AccountByName(ctx, name)
	switch {
	case errors.Is(err, db.ErrNotFound):
		return time.Time{}, &Error{Kind: NotFound, Message: fmt.Sprintf("no account named %q", name), Err: err}
	case err != nil:
		return time.Time{}, o.failed(ctx, "delete the account", err)
	}
	until, err := o.deleteAccount(ctx, acct)
	if err == nil {
		o.log.InfoContext(ctx, "account deleted", "account", acct.Name, "by", "operator")
	}
	return until, err
}

func (o *Ops) deleteAccount(ctx context.Context, acct db.Account) (time.Time, error) {
	until := o.now().Add(NameHold)
	err := o.store.DeleteAccount(ctx, acct.ID, until)
	switch {
	case errors.Is(err, db.ErrNotFound):
		return time.Time{}, &Error{Kind: NotFound, Message: fmt.Sprintf("account %s no longer exists", acct.Name), Err: err}
	case err != nil:
		return time.Time{}, o.failed(ctx, "delete the account", err)
	}
	for _, h := range o.cfg.AccountHooks {
		if err := h.DeleteAccountData(ctx, acct); err != nil {
			o.log.ErrorContext(ctx, "removing a deleted account's data failed", "account", acct.Name, "err", err)
		}
	}
	return until, nil
}

// signupLimit is the store's limit for a sign-up from the connection of g.
func (o *Ops) signupLimit(g auth.Grant) db.SignupLimit {
	return db.SignupLimit{Source: auth.SourceOf(g.RemoteAddr), Max: o.cfg.SignupRate.Max, Window: o.cfg.SignupRate.Per}
}
