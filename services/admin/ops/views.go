package ops

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/portico-sh/portico/db"
)

// Time is an instant as users see it: RFC 3339 in UTC, to the second, in text and JSON.
type Time struct{ time.Time }

func (t Time) String() string { return t.UTC().Format(time.RFC3339) }

// MarshalJSON encodes t as an RFC 3339 UTC string.
func (t Time) MarshalJSON() ([]byte, error) { return []byte(`"` + t.String() + `"`), nil }

func timePtr(t *time.Time) *Time {
	if t == nil {
		return nil
	}
	return &Time{*t}
}

// Whoami says who a connection is and what it may do (`whoami --json`).
type Whoami struct {
	Account        string   `json:"account"`
	Method         string   `json:"method"`
	Identity       string   `json:"identity"`
	Services       []string `json:"services"`
	KeyFingerprint string   `json:"key_fingerprint"`
	Cert           *Cert    `json:"cert"`
	ForceCommand   *string  `json:"force_command"` // null: none; the certificate's force-command runs instead of every command
}

// Cert is the certificate a connection authenticated with.
type Cert struct {
	KeyID         string   `json:"key_id"`
	Serial        uint64   `json:"serial"`
	CAName        string   `json:"-"` // shown to humans only
	CAFingerprint string   `json:"ca_fingerprint"`
	Principals    []string `json:"principals"`
	ValidBefore   *Time    `json:"valid_before"` // nil: never expires
}

// Key states.
const (
	StateActive  = "active"  // it logs in or vouches for certificates
	StatePending = "pending" // it waits for its holder to claim it, and grants nothing
)

// Key is a login key or CA of the account (`keys ls --json`).
type Key struct {
	ID          int64  `json:"-"` // the store's id: of the key, or of the pending entry
	Name        string `json:"name"`
	Type        string `json:"type"` // login or ca
	Algorithm   string `json:"algorithm"`
	Fingerprint string `json:"fingerprint"`
	Options     string `json:"options"`
	CreatedAt   Time   `json:"created_at"`
	LastUsedAt  *Time  `json:"last_used_at"`
	State       string `json:"state"` // active or pending
	Claim       *Claim `json:"claim"` // how a pending key is claimed; nil when active
}

// Claim is how the holder of a pending key proves they hold it: a login key runs Command
// (ssh ... keys claim CODE) with the key; a CA signs a certificate for CODE with Command
// (ssh-keygen -s ...) and feeds it to keys add. The code works once, until ExpiresAt.
type Claim struct {
	Code      string `json:"code"`
	Command   string `json:"command"`
	ExpiresAt Time   `json:"expires_at"`
}

// AddedKey is what keys add did (`keys add --json`).
type AddedKey struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Fingerprint string `json:"fingerprint"`
	State       string `json:"state"`
	Claim       *Claim `json:"claim"`
}

// Added is k as keys add reports it.
func (k Key) Added() AddedKey {
	return AddedKey{Name: k.Name, Type: k.Type, Fingerprint: k.Fingerprint, State: k.State, Claim: k.Claim}
}

// IsCA reports whether the key is a certificate authority.
func (k Key) IsCA() bool { return k.Type == string(db.KindCA) }

// IsPending reports whether the key waits to be claimed.
func (k Key) IsPending() bool { return k.State == StatePending }

// KindName is what the key is, in words: "login key" or "certificate authority".
func (k Key) KindName() string {
	if k.IsCA() {
		return "certificate authority"
	}
	return "login key"
}

func keyView(k db.Key) Key {
	return Key{
		ID:          k.ID,
		Name:        k.Name,
		Type:        string(k.Kind),
		Algorithm:   k.Algorithm,
		Fingerprint: k.Fingerprint,
		Options:     k.Options,
		CreatedAt:   Time{k.CreatedAt},
		LastUsedAt:  timePtr(k.LastUsedAt),
		State:       StateActive,
	}
}

// LogEntry is one access-log entry (`logs --json`).
type LogEntry struct {
	Time           Time    `json:"time"`
	Account        string  `json:"account"`
	Service        string  `json:"service"`
	Method         string  `json:"method"`
	Identity       string  `json:"identity"`
	Serial         *uint64 `json:"serial"` // certificates only
	KeyFingerprint string  `json:"key_fingerprint"`
	CAFingerprint  string  `json:"ca_fingerprint"`
	RemoteAddr     string  `json:"remote_addr"`
	Outcome        string  `json:"outcome"` // allowed, denied or suppressed
	Reason         string  `json:"reason"`
	Count          int64   `json:"count"` // attempts the entry stands for: 1, more for suppressed
}

func logView(e db.AccessEntry) LogEntry {
	return LogEntry{
		Time:           Time{e.Time},
		Account:        e.Account,
		Service:        e.Service,
		Method:         e.Method,
		Identity:       e.Identity,
		Serial:         e.Serial,
		KeyFingerprint: e.KeyFingerprint,
		CAFingerprint:  e.CAFingerprint,
		RemoteAddr:     e.RemoteAddr,
		Outcome:        e.Outcome,
		Reason:         e.Reason,
		Count:          max(e.Count, 1),
	}
}

// Revocation is a revocation of the account (`revocations ls --json`).
type Revocation struct {
	ID            int64   `json:"id"`
	Kind          string  `json:"kind"`  // serial, serial_range, key_id, key or key_hash
	Value         string  `json:"value"` // a range is FROM-TO
	CAName        string  `json:"ca_name"`
	CAFingerprint string  `json:"ca_fingerprint"` // serials, ranges, key IDs of one CA; empty: every CA
	Origin        string  `json:"origin"`         // revoke, or krl (imported)
	Source        *string `json:"source"`         // the URL it was imported from; null: none
	CreatedAt     Time    `json:"created_at"`
}

// revocationView is r as users see it, with the names of the account's CAs and the URLs of its
// KRL sources.
func revocationView(r db.Revocation, caNames map[string]string, sources map[int64]string) Revocation {
	v := Revocation{
		ID:            r.ID,
		Kind:          string(r.Kind),
		Value:         r.Value,
		CAName:        caNames[r.CAFingerprint],
		CAFingerprint: r.CAFingerprint,
		Origin:        string(r.Origin),
		CreatedAt:     Time{r.CreatedAt},
	}
	if v.Origin == "" {
		v.Origin = string(db.OriginRevoke)
	}
	if url, ok := sources[r.SourceID]; ok && r.SourceID != 0 {
		v.Source = &url
	}
	return v
}

// Printable is s fit for a terminal: what a KRL, a certificate or a URL names is not the account's
// own words, so every character that is not printable becomes '?' (as in key IDs), and nothing
// is cut.
func Printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}
