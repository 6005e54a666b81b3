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
	if err != nil {
		return Revocation{}, o.failed(ctx, "add the revocation", err)
	}
	return revocationView(r), nil
}

// ListRevocations returns the account's revocations.
func (o *Ops) ListRevocations(ctx context.Context, g auth.Grant) ([]Revocation, error) {
	if err := o.requireAdmin(g); err != nil {
		return nil, err
	}
	rs, err := o.store.ListRevocations(ctx, g.AccountID)
	if err != nil {
		return nil, o.failed(ctx, "list revocations", err)
	}
	out := make([]Revocation, 0, len(rs))
	for _, r := range rs {
		out = append(out, revocationView(r))
	}
	return out, nil
}

// RemoveRevocation lifts the account's revocation id.
func (o *Ops) RemoveRevocation(ctx context.Context, g auth.Grant, id int64) error {
	if err := o.requireAdmin(g); err != nil {
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
