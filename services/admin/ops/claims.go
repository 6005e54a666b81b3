package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
)

// ClaimTTL is how long a key added to an account waits to be claimed by its holder.
const ClaimTTL = 15 * time.Minute

// pendingView shows a pending entry as a key of the account, with how to claim it.
func (o *Ops) pendingView(p db.PendingKey) Key {
	return Key{
		ID:          p.ID,
		Name:        p.Name,
		Type:        string(p.Kind),
		Algorithm:   p.Algorithm,
		Fingerprint: p.Fingerprint,
		Options:     p.Options,
		CreatedAt:   Time{p.CreatedAt},
		State:       StatePending,
		Claim:       &Claim{Code: p.Code, Command: o.claimCommand(p), ExpiresAt: Time{p.ExpiresAt}},
	}
}

// claimCommand is the command that proves possession of p: for a login key, ssh with that very
// key running keys claim CODE (IdentitiesOnly, since OpenSSH offers agent keys before -i); for a
// CA, ssh-keygen signing a claim certificate for CODE, to feed to keys add --ca.
func (o *Ops) claimCommand(p db.PendingKey) string {
	if p.Kind == db.KindCA {
		return fmt.Sprintf("ssh-keygen -s CA_KEY -I %s -n %s -V +%dm SOME_KEY.pub", auth.ClaimKeyID, p.Code, int(ClaimTTL.Minutes()))
	}
	return o.sshCommand([]string{"-o", "IdentitiesOnly=yes", "-i", defaultKeyFile(p.Algorithm)}, string(auth.Admin), "keys", "claim", p.Code)
}

// defaultKeyFile is where ssh-keygen puts a private key of this type by default: the likeliest
// -i for the claim command.
func defaultKeyFile(algorithm string) string {
	switch algorithm {
	case gossh.KeyAlgoED25519:
		return "~/.ssh/id_ed25519"
	case gossh.KeyAlgoSKED25519:
		return "~/.ssh/id_ed25519_sk"
	case gossh.KeyAlgoSKECDSA256:
		return "~/.ssh/id_ecdsa_sk"
	case gossh.KeyAlgoRSA:
		return "~/.ssh/id_rsa"
	}
	if strings.HasPrefix(algorithm, "ecdsa-") {
		return "~/.ssh/id_ecdsa"
	}
	return "KEYFILE"
}

// ClaimKey makes the pending login key that key is, waiting with code in some account, a login
// key of that account. The connection of g must have authenticated with key itself, a plain key:
// that is the proof of possession. It returns the grant auth now gives the key on this
// connection, and the key.
//
// A wrong code counts against every entry waiting for this key (db.MaxClaimAttempts), so a code
// cannot be guessed; a code of another key's entry is just a wrong code, and the message does
// not say whether it exists.
func (o *Ops) ClaimKey(ctx context.Context, g auth.Grant, key gossh.PublicKey, codeText string) (auth.Grant, Key, error) {
	code, err := auth.ParseClaimCode(codeText)
	if err != nil {
		return auth.Grant{}, Key{}, &Error{Kind: Invalid, Message: err.Error(), Err: err}
	}
	switch key.(type) {
	case nil:
		return auth.Grant{}, Key{}, errorf(Refused, "this connection did not authenticate with a public key")
	case *gossh.Certificate:
		return auth.Grant{}, Key{}, errorf(Refused, "a certificate cannot claim a key: connect with the key itself ("+o.claimHint()+")")
	}
	fp := auth.Fingerprint(key)
	if fp != g.KeyFingerprint {
		return auth.Grant{}, Key{}, errorf(Refused, "the key does not match the one this connection authenticated with")
	}
	if g.Method == auth.MethodKey && g.Account != "" {
		return auth.Grant{}, Key{}, errorf(Conflict, fmt.Sprintf("this key is already a login key of account %s; a key belongs to one account: remove it there first (keys rm %s), then claim it again", g.Account, g.Identity))
	}
	// The connection that added the key must still manage its account: a key added with a
	// certificate revoked since (or by a key or CA removed since, or a certificate expired) is
	// not claimed, and is dropped. Judged before the claim, for the message, and again after
	// it: a revocation that any gateway committed before the claim did is then seen, and the
	// claim undone.
	now := o.now()
	p, perr := o.store.PendingLoginKey(ctx, fp, code, now)
	switch {
	case perr == nil:
		if err := o.checkAdder(ctx, p); err != nil {
			return auth.Grant{}, Key{}, err
		}
	case !errors.Is(perr, db.ErrNotFound):
		return auth.Grant{}, Key{}, o.failed(ctx, "claim the key", perr)
	}
	// A code that matches nothing goes on to ClaimLoginKey, which counts it as a wrong attempt.
	k, err := o.store.ClaimLoginKey(ctx, fp, code, now)
	if err == nil {
		err = o.confirmClaim(ctx, k, p, perr)
		if err != nil {
			return auth.Grant{}, Key{}, err
		}
	}
	switch {
	case errors.Is(err, db.ErrNotFound):
		return auth.Grant{}, Key{}, &Error{Kind: NotFound, Message: fmt.Sprintf(
			"no key waiting to be claimed matches this key and code %s. A code works once, within %d minutes of keys add, and only from the key that was added (%s); after %d wrong codes the key must be added again",
			code, int(ClaimTTL.Minutes()), o.claimHint(), db.MaxClaimAttempts), Err: err}
	case errors.Is(err, db.ErrKeyTaken):
		return auth.Grant{}, Key{}, &Error{Kind: Conflict, Message: "this key is already registered to another account; a key belongs to one account: remove it there first, then claim it again", Err: err}
	case err != nil:
		return auth.Grant{}, Key{}, o.failed(ctx, "claim the key", err)
	}
	acct, err := o.store.AccountByID(ctx, k.AccountID)
	if err != nil {
		return auth.Grant{}, Key{}, o.failed(ctx, "claim the key", err)
	}
	o.log.InfoContext(ctx, "key claimed", "account", acct.Name, "key", fp, "name", k.Name, "remote", addrText(g))
	// What the key may do now is auth's to say, as on its next connection.
	ng, err := o.authenticator().Authenticate(ctx, auth.Attempt{Key: key, Service: g.Service, RemoteAddr: g.RemoteAddr})
	if err != nil {
		return auth.Grant{}, Key{}, &Error{Kind: Failed, Message: fmt.Sprintf("key %q is now a login key of account %s, but this connection cannot use it (%v); reconnect", k.Name, acct.Name, err), Err: err}
	}
	return ng, keyView(k), nil
}

// checkAdder refuses the claim of pending key p when the connection that added it no longer
// manages its account (auth decides), and drops p then: it can never be claimed.
func (o *Ops) checkAdder(ctx context.Context, p db.PendingKey) error {
	err := o.authenticator().RecheckAdder(ctx, p.AccountID, p.AddedBy, p.AddedFrom)
	if err == nil {
		return nil
	}
	if _, ok := auth.AsRefusal(err); !ok {
		return o.failed(ctx, "check who added the key", err)
	}
	if rerr := o.store.RemovePendingKey(ctx, p.AccountID, p.ID); rerr != nil && !errors.Is(rerr, db.ErrNotFound) {
		o.log.ErrorContext(ctx, "dropping a pending key whose adder lost access", "account_id", p.AccountID, "pending", p.ID, "err", rerr)
	}
	o.log.InfoContext(ctx, "claim refused: the adder lost access", "account_id", p.AccountID, "key", p.Fingerprint, "err", err)
	return &Error{Kind: Refused, Err: err, Message: "the key or certificate that added this key has lost access to its account since " +
		"(revoked, removed or expired), so the key cannot be claimed; nothing was claimed. Ask for it to be added again."}
}

// confirmClaim judges the adder of the claimed key k again, now that the claim is committed
// (p and perr: what was found before it), and undoes the claim when the adder's grounds ended
// meanwhile, or when the entry claimed is not the one judged.
func (o *Ops) confirmClaim(ctx context.Context, k db.Key, p db.PendingKey, perr error) error {
	var err error
	if perr != nil || p.AccountID != k.AccountID || p.Fingerprint != k.Fingerprint {
		err = errorf(Refused, "the key's entry changed while it was claimed; nothing was claimed, try again")
	} else {
		err = o.checkAdder(ctx, p)
	}
	if err == nil {
		return nil
	}
	// UndoClaim, not RemoveKey: the account's other login keys may be gone by now (removed
	// with this very key on another gateway), and the key of an adder that lost access must
	// not stay as the last one.
	if rerr := o.store.UndoClaim(ctx, k.AccountID, k.ID); rerr != nil && !errors.Is(rerr, db.ErrNotFound) {
		return o.failed(ctx, "undo the claim of a key whose adder lost access", rerr)
	}
	return err
}

// claimHint says how to run a claim with the right key.
func (o *Ops) claimHint() string {
	return o.sshCommand([]string{"-o", "IdentitiesOnly=yes", "-i", "KEYFILE"}, string(auth.Admin), "keys", "claim", "CODE")
}

// activateCA activates the account's pending CA that signed the claim certificate line.
func (o *Ops) activateCA(ctx context.Context, g auth.Grant, line string) (Key, error) {
	cert, err := auth.ParseCertificateLine(line)
	if err != nil {
		return Key{}, &Error{Kind: Invalid, Message: err.Error(), Err: err}
	}
	if cert.SignatureKey == nil {
		return Key{}, errorf(Invalid, "the certificate has no signature key")
	}
	now := o.now()
	signer := auth.Fingerprint(cert.SignatureKey)
	p, err := o.store.PendingKeyByFingerprint(ctx, g.AccountID, signer, now)
	switch {
	case errors.Is(err, db.ErrNotFound):
		if k, err := o.store.KeyByFingerprint(ctx, signer); err == nil && k.AccountID == g.AccountID {
			return Key{}, errorf(Conflict, fmt.Sprintf("certificate authority %q (%s) is already active in this account", k.Name, signer))
		}
		return Key{}, errorf(NotFound, fmt.Sprintf("no certificate authority of this account waits to be claimed with this certificate: it is signed by %s. Add the CA's public key first (keys add --ca < CA_KEY.pub); its code works for %d minutes", signer, int(ClaimTTL.Minutes())))
	case err != nil:
		return Key{}, o.failed(ctx, "claim the certificate authority", err)
	case p.Kind != db.KindCA:
		return Key{}, errorf(Invalid, fmt.Sprintf("%q waits to be claimed as a login key, not as a certificate authority: its holder runs keys claim CODE with it", p.Name))
	}
	ca, _, _, _, err := gossh.ParseAuthorizedKey([]byte(p.PublicKey))
	if err != nil {
		return Key{}, o.failed(ctx, "claim the certificate authority", fmt.Errorf("stored key of pending CA %d: %w", p.ID, err))
	}
	if err := auth.CheckCAClaim(cert, ca, p.Code, now); err != nil {
		return Key{}, &Error{Kind: Refused, Message: fmt.Sprintf("this certificate does not claim certificate authority %q: %v", p.Name, err), Err: err}
	}
	k, err := o.store.ActivatePendingKey(ctx, g.AccountID, p.ID, now)
	switch {
	case errors.Is(err, db.ErrNotFound):
		return Key{}, &Error{Kind: NotFound, Message: fmt.Sprintf("certificate authority %q no longer waits to be claimed (it expired, was removed or claimed): add it again", p.Name), Err: err}
	case errors.Is(err, db.ErrKeyTaken):
		return Key{}, &Error{Kind: Conflict, Message: "this certificate authority is already registered to another account; a key belongs to one account: remove it there first, then add it again", Err: err}
	case err != nil:
		return Key{}, o.failed(ctx, "claim the certificate authority", err)
	}
	o.log.InfoContext(ctx, "certificate authority claimed", "account", g.Account, "key", signer, "name", k.Name)
	return keyView(k), nil
}

func addrText(g auth.Grant) string {
	if g.RemoteAddr == nil {
		return ""
	}
	return g.RemoteAddr.String()
}
