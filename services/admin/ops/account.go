package ops

import (
	"context"
	"errors"
	"fmt"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
)

// Register creates account name for the unregistered key of a signup grant, with key as its
// first login key, and returns the grant auth now gives that key, so that the same connection
// can go on to manage the new account.
func (o *Ops) Register(ctx context.Context, g auth.Grant, key gossh.PublicKey, name string) (auth.Grant, error) {
	switch {
	case !g.IsSignup() && g.Account != "":
		return auth.Grant{}, errorf(Refused, fmt.Sprintf("this key is already registered to account %s", g.Account))
	case !g.IsSignup():
		return auth.Grant{}, errorf(Refused, "only an unregistered key can register an account")
	case !o.cfg.SignupsOpen:
		return auth.Grant{}, errorf(Refused, "signups are closed on this server; ask its operator to create your account")
	case key == nil:
		return auth.Grant{}, errorf(Refused, "this connection did not authenticate with a public key")
	}
	if _, ok := key.(*gossh.Certificate); ok {
		return auth.Grant{}, errorf(Refused, "a certificate cannot register an account; connect with a plain key")
	}
	fp := auth.Fingerprint(key)
	if fp != g.KeyFingerprint {
		return auth.Grant{}, errorf(Refused, "the key does not match the one this connection authenticated with")
	}
	if err := auth.ValidAccountName(name); err != nil {
		return auth.Grant{}, &Error{Kind: Invalid, Message: err.Error(), Err: err}
	}
	// The key must be one keys add would take: SSH accepts key types and sizes (a 1024-bit
	// RSA key, say) that portico does not register.
	kl, err := auth.ParseKeyLine(string(gossh.MarshalAuthorizedKey(key)))
	if err != nil {
		return auth.Grant{}, &Error{Kind: Invalid, Message: "this key cannot be registered: " + err.Error(), Err: err}
	}
	if _, _, err := o.createAccount(ctx, name, kl.NewKey(defaultKeyName(key))); err != nil {
		return auth.Grant{}, err
	}
	// What the key may do now is auth's to say, as on its next connection.
	ng, err := auth.New(o.store, auth.Options{SignupsOpen: o.cfg.SignupsOpen}).
		Authenticate(ctx, auth.Attempt{Key: key, Service: g.Service})
	if err != nil {
		return auth.Grant{}, &Error{Kind: Failed, Message: fmt.Sprintf("account %s was created, but this connection cannot use it yet (%v); reconnect", name, err), Err: err}
	}
	return ng, nil
}

// CreateAccount creates account name offline (`portico account create`) with the login key of
// keyLine, one authorized_keys line, as its first key. It checks no grant: the operator runs it.
func (o *Ops) CreateAccount(ctx context.Context, name string, keyLine string) (db.Account, error) {
	if err := auth.ValidAccountName(name); err != nil {
		return db.Account{}, &Error{Kind: Invalid, Message: err.Error(), Err: err}
	}
	nk, err := parseNewKey(keyLine, "", false)
	if err != nil {
		return db.Account{}, err
	}
	if nk.Kind == db.KindCA {
		return db.Account{}, errorf(Invalid, "an account's first key must be a login key, not a certificate authority")
	}
	acct, _, err := o.createAccount(ctx, name, nk)
	return acct, err
}

func (o *Ops) createAccount(ctx context.Context, name string, first db.NewKey) (db.Account, db.Key, error) {
	acct, k, err := o.store.CreateAccount(ctx, name, first)
	switch {
	case errors.Is(err, db.ErrAccountTaken):
		return acct, k, &Error{Kind: Conflict, Message: fmt.Sprintf("account name %q is taken; choose another", name), Err: err}
	case errors.Is(err, db.ErrKeyTaken):
		return acct, k, &Error{Kind: Conflict, Message: "this key is already registered", Err: err}
	case err != nil:
		return acct, k, o.failed(ctx, "create the account", err)
	}
	return acct, k, nil
}

// Whoami says who the connection of g is and what it may do.
func (o *Ops) Whoami(g auth.Grant) (Whoami, error) {
	if err := o.requireAccount(g); err != nil {
		return Whoami{}, err
	}
	w := Whoami{
		Account:        g.Account,
		Method:         string(g.Method),
		Identity:       g.Identity,
		Services:       make([]string, 0, len(g.Services)),
		KeyFingerprint: g.KeyFingerprint,
	}
	for _, s := range g.Services {
		w.Services = append(w.Services, string(s))
	}
	if c := g.Cert; c != nil {
		w.Cert = &Cert{
			KeyID:         c.KeyID,
			Serial:        c.Serial,
			CAName:        c.CAName,
			CAFingerprint: c.CAFingerprint,
			Principals:    append([]string{}, c.Principals...),
			ValidBefore:   timePtr(c.ValidBefore),
		}
	}
	return w, nil
}
