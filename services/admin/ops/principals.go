package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
)

// PrincipalMapping is one entry of the account's principal map (`principals ls --json`).
type PrincipalMapping struct {
	Principal     string   `json:"principal"`
	Services      []string `json:"services"`
	From          []string `json:"from"`           // null: any client address
	CAName        string   `json:"ca_name"`        // empty: any CA of the account (or, with a fingerprint, a CA since removed)
	CAFingerprint string   `json:"ca_fingerprint"` // empty: any CA of the account
	CreatedAt     Time     `json:"created_at"`
	UpdatedAt     Time     `json:"updated_at"`
}

// PrincipalRequest is what `principals set NAME SERVICES [--from CIDR,...] [--ca CA]` asks.
type PrincipalRequest struct {
	Principal string // the certificate principal to map
	Services  string // a comma list of services
	From      string // a comma list of address patterns; empty: any address
	CA        string // name or fingerprint of one of the account's CAs; empty: any of them
}

// ListPrincipals returns the account's principal map, by principal.
func (o *Ops) ListPrincipals(ctx context.Context, g auth.Grant) ([]PrincipalMapping, error) {
	if err := o.requireAdmin(g); err != nil {
		return nil, err
	}
	ms, err := o.store.ListPrincipalMappings(ctx, g.AccountID)
	if err != nil {
		return nil, o.failed(ctx, "list the principal map", err)
	}
	names, err := o.caNames(ctx, g)
	if err != nil {
		return nil, err
	}
	out := make([]PrincipalMapping, 0, len(ms))
	for _, m := range ms {
		out = append(out, mappingView(m, names))
	}
	return out, nil
}

// SetPrincipal maps a principal to services, replacing what it mapped to; created says whether
// the principal was new. A change that takes a service away ends the connections that hold it.
func (o *Ops) SetPrincipal(ctx context.Context, g auth.Grant, req PrincipalRequest) (PrincipalMapping, bool, error) {
	if err := o.requireStanding(ctx, g); err != nil {
		return PrincipalMapping{}, false, err
	}
	if err := auth.CheckPrincipalName(req.Principal); err != nil {
		return PrincipalMapping{}, false, &Error{Kind: Invalid, Message: err.Error(), Err: err}
	}
	services, err := auth.ParseServices(req.Services)
	if err != nil {
		return PrincipalMapping{}, false, &Error{Kind: Invalid, Message: "services: " + err.Error(), Err: err}
	}
	nm := db.NewPrincipalMapping{Principal: req.Principal}
	for _, s := range services {
		nm.Services = append(nm.Services, string(s))
	}
	if req.From != "" {
		if nm.From, err = auth.ParseFromList(req.From); err != nil {
			return PrincipalMapping{}, false, &Error{Kind: Invalid, Message: "--from: " + err.Error(), Err: err}
		}
	}
	if req.CA != "" {
		ca, err := o.activeCA(ctx, g, req.CA)
		if err != nil {
			return PrincipalMapping{}, false, err
		}
		nm.CAFingerprint = ca.Fingerprint
	}
	m, created, err := o.store.SetPrincipalMapping(ctx, g.AccountID, nm)
	switch {
	case errors.Is(err, db.ErrTooManyMappings):
		return PrincipalMapping{}, false, &Error{Kind: Refused, Message: fmt.Sprintf("the account already maps %d principals, the most it may; remove some first (principals rm)", db.MaxPrincipalMappings), Err: err}
	case errors.Is(err, db.ErrNotFound):
		return PrincipalMapping{}, false, &Error{Kind: NotFound, Message: "this account no longer exists", Err: err}
	case err != nil:
		return PrincipalMapping{}, false, o.failed(ctx, "map the principal", err)
	}
	names, err := o.caNames(ctx, g)
	if err != nil {
		return PrincipalMapping{}, false, err
	}
	o.log.InfoContext(ctx, "principal mapped", "account", g.Account, "principal", auth.SanitizeKeyID(req.Principal),
		"services", strings.Join(nm.Services, ","), "from", strings.Join(nm.From, ","), "ca", nm.CAFingerprint)
	return mappingView(m, names), created, nil
}

// RemovePrincipal unmaps a principal: certificates that list it get no services from it.
func (o *Ops) RemovePrincipal(ctx context.Context, g auth.Grant, principal string) error {
	if err := o.requireAdmin(g); err != nil {
		return err
	}
	err := db.ErrNotFound
	if utf8.ValidString(principal) && !strings.ContainsRune(principal, 0) {
		// Only text can be mapped (and Postgres refuses a query argument that is not).
		err = o.store.RemovePrincipalMapping(ctx, g.AccountID, principal)
	}
	switch {
	case errors.Is(err, db.ErrNotFound):
		return &Error{Kind: NotFound, Message: fmt.Sprintf("principal %q is not mapped in this account (see: principals ls)", auth.SanitizeKeyID(principal)), Err: err}
	case err != nil:
		return o.failed(ctx, "unmap the principal", err)
	}
	return nil
}

// activeCA finds the account's active CA by name or fingerprint.
func (o *Ops) activeCA(ctx context.Context, g auth.Grant, ref string) (Key, error) {
	ca, err := o.findKey(ctx, g, ref)
	if KindOf(err) == NotFound {
		return Key{}, &Error{Kind: NotFound, Message: fmt.Sprintf("no certificate authority named %q in this account", auth.SanitizeKeyID(ref)), Err: err}
	}
	if err != nil {
		return Key{}, err
	}
	if !ca.IsCA() {
		return Key{}, errorf(Invalid, fmt.Sprintf("%q is a login key, not a certificate authority", ca.Name))
	}
	if ca.IsPending() {
		return Key{}, errorf(Invalid, fmt.Sprintf("certificate authority %q waits to be claimed and vouches for nothing yet", ca.Name))
	}
	return ca, nil
}

// caNames returns the names of the account's active CAs, by fingerprint.
func (o *Ops) caNames(ctx context.Context, g auth.Grant) (map[string]string, error) {
	keys, err := o.store.ListKeys(ctx, g.AccountID)
	if err != nil {
		return nil, o.failed(ctx, "list keys", err)
	}
	names := map[string]string{}
	for _, k := range keys {
		if k.Kind == db.KindCA {
			names[k.Fingerprint] = k.Name
		}
	}
	return names, nil
}

func mappingView(m db.PrincipalMapping, caNames map[string]string) PrincipalMapping {
	return PrincipalMapping{
		Principal:     m.Principal,
		Services:      append([]string{}, m.Services...),
		From:          m.From,
		CAName:        caNames[m.CAFingerprint],
		CAFingerprint: m.CAFingerprint,
		CreatedAt:     Time{m.CreatedAt},
		UpdatedAt:     Time{m.UpdatedAt},
	}
}
