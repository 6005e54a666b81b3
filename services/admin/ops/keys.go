package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
)

// maxKeyNameLen is the longest key name, in characters.
const maxKeyNameLen = 64

// ListKeys returns the account's login keys and CAs, active ones first, then those waiting to
// be claimed.
func (o *Ops) ListKeys(ctx context.Context, g auth.Grant) ([]Key, error) {
	if err := o.requireAdmin(g); err != nil {
		return nil, err
	}
	return o.listKeys(ctx, g)
}

func (o *Ops) listKeys(ctx context.Context, g auth.Grant) ([]Key, error) {
	keys, err := o.store.ListKeys(ctx, g.AccountID)
	if err != nil {
		return nil, o.failed(ctx, "list keys", err)
	}
	pending, err := o.store.ListPendingKeys(ctx, g.AccountID, o.now())
	if err != nil {
		return nil, o.failed(ctx, "list keys", err)
	}
	out := make([]Key, 0, len(keys)+len(pending))
	for _, k := range keys {
		out = append(out, keyView(k))
	}
	for _, p := range pending {
		out = append(out, o.pendingView(p))
	}
	return out, nil
}

// AddKey adds one authorized_keys line to the account: a CA if ca is set or the line has the
// cert-authority option, else a login key. The key is called name, else the line's comment,
// else a name made from its type and fingerprint (such as "ed25519-AbCdEf12").
//
// The key is pending: it grants nothing until its holder proves they hold it (see Key.Claim),
// within ClaimTTL. A key active or pending in another account is taken all the same, and
// nothing tells the two cases apart: only its holder's claim fails, with the reason.
//
// A certificate line (what ssh-keygen -s writes) instead activates the pending CA that signed
// it, if it is a claim certificate for that CA's code (auth.CheckCAClaim).
func (o *Ops) AddKey(ctx context.Context, g auth.Grant, text, name string, ca bool) (Key, error) {
	if err := o.requireStanding(ctx, g); err != nil {
		return Key{}, err
	}
	line, err := oneLine(text)
	if err != nil {
		return Key{}, err
	}
	if auth.IsCertificateLine(line) {
		if name != "" {
			return Key{}, errorf(Invalid, "a claim certificate takes no name: the certificate authority keeps the name it was added with")
		}
		return o.activateCA(ctx, g, line)
	}
	nk, err := parseNewKey(line, name, ca)
	if err != nil {
		return Key{}, err
	}
	now := o.now()
	var p db.PendingKey
	for range 3 { // a new code if the random one is in use
		p, err = o.store.AddPendingKey(ctx, g.AccountID, db.NewPendingKey{NewKey: nk, Code: auth.NewClaimCode(), ExpiresAt: now.Add(ClaimTTL),
			AddedBy: auth.AdderLine(g.PublicKey), AddedFrom: auth.AdderAddr(g.RemoteAddr)}, now)
		if !errors.Is(err, db.ErrCodeTaken) {
			break
		}
	}
	switch {
	case errors.Is(err, db.ErrKeyTaken):
		return Key{}, &Error{Kind: Conflict, Message: fmt.Sprintf("key %s is already a key of this account", nk.Fingerprint), Err: err}
	case errors.Is(err, db.ErrPendingTaken):
		return Key{}, &Error{Kind: Conflict, Message: fmt.Sprintf("key %s is already waiting to be claimed in this account; to get a new code, remove it (keys rm %s) and add it again", nk.Fingerprint, nk.Fingerprint), Err: err}
	case errors.Is(err, db.ErrNameTaken):
		return Key{}, &Error{Kind: Conflict, Message: fmt.Sprintf("this account already has a key named %q; choose another name", nk.Name), Err: err}
	case errors.Is(err, db.ErrTooManyPending):
		return Key{}, &Error{Kind: Refused, Message: fmt.Sprintf("%d keys are already waiting to be claimed in this account; claim or remove some first (keys ls, keys rm)", db.MaxPendingKeys), Err: err}
	case errors.Is(err, db.ErrNotFound):
		return Key{}, &Error{Kind: NotFound, Message: "this account no longer exists", Err: err}
	case err != nil:
		return Key{}, o.failed(ctx, "add the key", err)
	}
	o.log.InfoContext(ctx, "key added, pending", "account", g.Account, "kind", nk.Kind, "key", nk.Fingerprint, "expires", p.ExpiresAt)
	return o.pendingView(p), nil
}

// RemoveKey removes the account's key whose name or fingerprint is ref, active or pending. The
// last login key cannot be removed.
func (o *Ops) RemoveKey(ctx context.Context, g auth.Grant, ref string) (Key, error) {
	if err := o.requireAdmin(g); err != nil {
		return Key{}, err
	}
	k, err := o.findKey(ctx, g, ref)
	if err != nil {
		return Key{}, err
	}
	if k.IsPending() {
		err = o.store.RemovePendingKey(ctx, g.AccountID, k.ID)
	} else {
		err = o.store.RemoveKey(ctx, g.AccountID, k.ID)
	}
	switch {
	case errors.Is(err, db.ErrLastLoginKey):
		return Key{}, &Error{Kind: Refused, Message: fmt.Sprintf("%q is the account's last login key and cannot be removed; add another login key first", k.Name), Err: err}
	case errors.Is(err, db.ErrNotFound):
		return Key{}, &Error{Kind: NotFound, Message: fmt.Sprintf("no key named %q in this account", k.Name), Err: err}
	case err != nil:
		return Key{}, o.failed(ctx, "remove the key", err)
	}
	return k, nil
}

// findKey finds the account's key by name, else by fingerprint.
func (o *Ops) findKey(ctx context.Context, g auth.Grant, ref string) (Key, error) {
	if ref == "" {
		return Key{}, errorf(Invalid, "name a key by its name or its SHA256: fingerprint")
	}
	keys, err := o.listKeys(ctx, g)
	if err != nil {
		return Key{}, err
	}
	for _, k := range keys {
		if k.Name == ref {
			return k, nil
		}
	}
	for _, k := range keys {
		if k.Fingerprint == ref {
			return k, nil
		}
	}
	return Key{}, errorf(NotFound, fmt.Sprintf("no key named or with fingerprint %q in this account", ref))
}

// parseNewKey turns one authorized_keys line into a key to store, checking every option.
func parseNewKey(text, name string, ca bool) (db.NewKey, error) {
	line, err := oneLine(text)
	if err != nil {
		return db.NewKey{}, err
	}
	kl, err := auth.ParseKeyLine(line)
	if err != nil && ca {
		// --ca stands for the cert-authority option, which principals= needs on the line.
		if withCA, err2 := auth.ParseKeyLine("cert-authority," + line); err2 == nil {
			kl, err = withCA, nil
		}
	}
	if err != nil {
		return db.NewKey{}, &Error{Kind: Invalid, Message: err.Error(), Err: err}
	}
	opts := kl.Options
	opts.CertAuthority = opts.CertAuthority || ca
	if opts.ExpiryTime != nil && !opts.ExpiryTime.After(time.Now()) {
		return db.NewKey{}, errorf(Invalid, fmt.Sprintf("expiry-time %s has already passed", opts.ExpiryTime.UTC().Format(time.RFC3339)))
	}
	switch {
	case name != "":
		if err := checkKeyName(name); err != nil {
			return db.NewKey{}, err
		}
	case commentName(kl.Comment) != "":
		name = commentName(kl.Comment)
	default:
		name = defaultKeyName(kl.Key)
	}
	kl.Options = opts
	return kl.NewKey(name), nil
}

// oneLine returns the only key line of text, skipping blank lines and # comments.
func oneLine(text string) (string, error) {
	var lines []string
	for l := range strings.Lines(text) {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	switch len(lines) {
	case 0:
		return "", errorf(Invalid, "no key given: expected one authorized_keys line, such as \"ssh-ed25519 AAAA... alice@laptop\"")
	case 1:
		return lines[0], nil
	}
	return "", errorf(Invalid, fmt.Sprintf("expected one authorized_keys line, got %d; add keys one at a time", len(lines)))
}

// checkKeyName checks a key name given by the user.
func checkKeyName(name string) error {
	switch {
	case name == "":
		return errorf(Invalid, "a key name cannot be empty")
	case utf8.RuneCountInString(name) > maxKeyNameLen:
		return errorf(Invalid, fmt.Sprintf("key name %q is longer than %d characters", name, maxKeyNameLen))
	case strings.HasPrefix(name, "SHA256:"):
		return errorf(Invalid, fmt.Sprintf("key name %q cannot start with SHA256: (fingerprints look like that)", name))
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		return errorf(Invalid, fmt.Sprintf("key name %q has a space or an unprintable character", name))
	}
	return nil
}

// commentName makes a key name of an authorized_keys comment: runs of spaces become one "-",
// unprintable characters go, and it is cut to maxKeyNameLen. It is "" if nothing usable is left.
func commentName(comment string) string {
	name := strings.Join(strings.Fields(comment), "-")
	name = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, name)
	if utf8.RuneCountInString(name) > maxKeyNameLen {
		name = string([]rune(name)[:maxKeyNameLen])
	}
	if checkKeyName(name) != nil {
		return ""
	}
	return name
}

// defaultKeyName names a key without a comment: its short type and the first eight letters and
// digits of its fingerprint, such as "ed25519-AbCdEf12".
func defaultKeyName(key gossh.PublicKey) string {
	t := strings.TrimSuffix(key.Type(), "@openssh.com")
	t = strings.Replace(t, "ssh-", "", 1)
	if i := strings.Index(t, "ecdsa-sha2-"); i >= 0 {
		t = t[:i] + "ecdsa"
	}
	var fp []rune
	for _, r := range strings.TrimPrefix(auth.Fingerprint(key), "SHA256:") {
		if len(fp) == 8 {
			break
		}
		if r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			fp = append(fp, r)
		}
	}
	return t + "-" + string(fp)
}
