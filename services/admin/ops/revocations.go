package ops

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
)

// RevokeRequest names the certificates to revoke: exactly one of Serial, KeyID and Key.
type RevokeRequest struct {
	Serial *uint64 // a serial; of the CA named by CA, or of every CA of the account
	CA     string  // name or fingerprint of one of the account's CAs; only with Serial
	KeyID  string  // a certificate key ID, for every CA of the account
	Key    string  // a certificate key's SHA256 fingerprint: every certificate of that key
}

// Revoke adds a revocation to the account; it refuses new connections at once.
func (o *Ops) Revoke(ctx context.Context, g auth.Grant, req RevokeRequest) (Revocation, error) {
	if err := o.requireAdmin(g); err != nil {
		return Revocation{}, err
	}
	n := 0
	for _, set := range []bool{req.Serial != nil, req.KeyID != "", req.Key != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return Revocation{}, errorf(Invalid, "a revocation names exactly one of: a serial, a key ID, a key fingerprint")
	}
	if req.CA != "" && req.Serial == nil {
		return Revocation{}, errorf(Invalid, "a CA can only be named with a serial; key ID and key revocations hold for every CA")
	}
	var nr db.NewRevocation
	switch {
	case req.Serial != nil:
		nr = db.NewRevocation{Kind: db.RevokeSerial, Value: strconv.FormatUint(*req.Serial, 10)}
		if req.CA != "" {
			ca, err := o.findKey(ctx, g, req.CA)
			if KindOf(err) == NotFound {
				return Revocation{}, &Error{Kind: NotFound, Message: fmt.Sprintf("no certificate authority named %q in this account", req.CA), Err: err}
			}
			if err != nil {
				return Revocation{}, err
			}
			if !ca.IsCA() {
				return Revocation{}, errorf(Invalid, fmt.Sprintf("%q is a login key, not a certificate authority", ca.Name))
			}
			if ca.IsPending() {
				return Revocation{}, errorf(Invalid, fmt.Sprintf("certificate authority %q waits to be claimed and vouches for nothing yet", ca.Name))
			}
			nr.CAFingerprint = ca.Fingerprint
		}
	case req.KeyID != "":
		if auth.SanitizeKeyID(req.KeyID) != req.KeyID {
			return Revocation{}, errorf(Invalid, fmt.Sprintf("key ID %q cannot be revoked by key ID: that needs printable characters, at most 128; revoke the certificate by serial or by key instead", req.KeyID))
		}
		nr = db.NewRevocation{Kind: db.RevokeKeyID, Value: req.KeyID}
	default:
		if !validFingerprint(req.Key) {
			return Revocation{}, errorf(Invalid, fmt.Sprintf("%q is not a key fingerprint; expected SHA256:... as ssh-keygen -l prints it", req.Key))
		}
		nr = db.NewRevocation{Kind: db.RevokeKey, Value: req.Key}
	}
	r, err := o.store.AddRevocation(ctx, g.AccountID, nr)
	if errors.Is(err, db.ErrTooManyRevocations) {
		return Revocation{}, &Error{Kind: Refused, Message: fmt.Sprintf("the account holds %d revocations, the most it may; remove some first (revocations rm, revocations sources rm)", db.MaxRevocations), Err: err}
	}
	if err != nil {
		return Revocation{}, o.failed(ctx, "add the revocation", err)
	}
	caNames, sources, err := o.revocationNames(ctx, g)
	if err != nil {
		return Revocation{}, err
	}
	return revocationView(r, caNames, sources), nil
}

// ListRevocations returns the account's revocations, oldest first.
func (o *Ops) ListRevocations(ctx context.Context, g auth.Grant) ([]Revocation, error) {
	var out []Revocation
	for after := int64(0); ; {
		page, _, err := o.RevocationsPage(ctx, g, after, revocationsPage)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = make([]Revocation, 0, len(page))
		}
		out = append(out, page...)
		if len(page) < revocationsPage {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}

// revocationsPage is how many revocations one read of the store returns: a listing of tens of
// thousands goes out page by page.
const revocationsPage = 1000

// RevocationsPage returns up to limit of the account's revocations with ids above afterID,
// oldest first, and how many the account has.
func (o *Ops) RevocationsPage(ctx context.Context, g auth.Grant, afterID int64, limit int) ([]Revocation, int, error) {
	if err := o.requireAdmin(g); err != nil {
		return nil, 0, err
	}
	rs, total, err := o.store.ListRevocationsPage(ctx, g.AccountID, afterID, min(max(limit, 1), revocationsPage))
	if err != nil {
		return nil, 0, o.failed(ctx, "list revocations", err)
	}
	caNames, sources, err := o.revocationNames(ctx, g)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Revocation, 0, len(rs))
	for _, r := range rs {
		out = append(out, revocationView(r, caNames, sources))
	}
	return out, total, nil
}

// revocationNames returns the names of the account's CAs by fingerprint, and the URLs of its KRL
// sources by id.
func (o *Ops) revocationNames(ctx context.Context, g auth.Grant) (map[string]string, map[int64]string, error) {
	caNames, err := o.caNames(ctx, g)
	if err != nil {
		return nil, nil, err
	}
	srcs, err := o.store.ListKRLSources(ctx, g.AccountID)
	if err != nil {
		return nil, nil, o.failed(ctx, "list KRL sources", err)
	}
	sources := make(map[int64]string, len(srcs))
	for _, s := range srcs {
		sources[s.ID] = s.URL
	}
	return caNames, sources, nil
}

// RemoveRevocation lifts the account's revocation id.
func (o *Ops) RemoveRevocation(ctx context.Context, g auth.Grant, id int64) error {
	if err := o.requireStanding(ctx, g); err != nil {
		return err
	}
	err := o.store.RemoveRevocation(ctx, g.AccountID, id)
	switch {
	case errors.Is(err, db.ErrNotFound):
		return &Error{Kind: NotFound, Message: fmt.Sprintf("no revocation %d in this account", id), Err: err}
	case err != nil:
		return o.failed(ctx, "remove the revocation", err)
	}
	return nil
}

// validFingerprint reports whether s is an OpenSSH SHA256 fingerprint.
func validFingerprint(s string) bool {
	b64, ok := strings.CutPrefix(s, "SHA256:")
	if !ok {
		return false
	}
	sum, err := base64.RawStdEncoding.DecodeString(b64)
	return err == nil && len(sum) == 32
}
