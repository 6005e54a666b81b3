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
	case !o.cfg.SignupsOpen || !g.MayRegister:
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
	_, _, err = o.store.SignUp(ctx, name, kl.NewKey(defaultKeyName(key)), o.signupLimit(g))
	if errors.Is(err, db.ErrSignupRate) {
		return auth.Grant{}, &Error{Kind: Refused, Message: fmt.Sprintf("too many accounts were created from your address (at most %s); try again later", o.cfg.SignupRate), Err: err}
	}
	if err := o.createError(ctx, name, err); err != nil {
		return auth.Grant{}, err
	}
	o.log.InfoContext(ctx, "account registered", "account", name, "key", fp, "remote", addrText(g))
	// What the key may do now is auth's to say, as on its next connection.
	ng, err := o.authenticator().Authenticate(ctx, auth.Attempt{Key: key, Service: g.Service, RemoteAddr: g.RemoteAddr})
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
	acct, _, err := o.store.CreateAccount(ctx, name, nk)
	if err := o.createError(ctx, name, err); err != nil {
		return db.Account{}, err
	}
	return acct, nil
}

// createError turns the store's refusal to create account name into what users see.
func (o *Ops) createError(ctx context.Context, name string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, db.ErrAccountTaken):
		return &Error{Kind: Conflict, Message: fmt.Sprintf("account name %q is taken; choose another", name), Err: err}
	case errors.Is(err, db.ErrNameHeld):
		return &Error{Kind: Conflict, Message: fmt.Sprintf("account name %q belonged to an account deleted less than %d days ago and cannot be registered yet; choose another", name, int(NameHold.Hours()/24)), Err: err}
	case errors.Is(err, db.ErrKeyTaken):
		return &Error{Kind: Conflict, Message: "this key is already registered", Err: err}
	}
	return o.failed(ctx, "create the account", err)
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
	if fc, ok := g.ForcedCommand(); ok {
		w.ForceCommand = &fc // "" for a blank one: present, runs nothing
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
