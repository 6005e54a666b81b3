package tuns

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Registry records which tunnel holds each of an account's names. It is the seam where a
// registry shared by several gateways will fit; MemoryRegistry is the one of a single gateway.
type Registry interface {
	// Claim gives t its key within its account. When another tunnel of the same account holds
	// that key it is taken over: returned, so that its owner is told and it is ended. Claim
	// fails when the account already holds max tunnels (0: no limit).
	Claim(t *Tunnel, max int) (taken *Tunnel, err error)
	// Release frees t's key if t still holds it.
	Release(t *Tunnel)
	// Lookup returns the tunnel holding the account's name.
	Lookup(account, name string) (*Tunnel, bool)
	// Tunnels lists the account's tunnels, oldest first.
	Tunnels(account string) []*Tunnel
	// TunnelLive reports whether a tunnel holds the account's name; pgs asks it before it
	// creates a project of that name.
	TunnelLive(account, name string) bool
}

// errLimit is Claim's refusal when the account holds its limit of tunnels.
var errLimit = errors.New("tunnel limit")

// MemoryRegistry is the in-process Registry.
type MemoryRegistry struct {
	mu       sync.Mutex
	accounts map[string]map[string]*Tunnel // account → key → tunnel
}

// NewMemoryRegistry returns an empty registry.
func NewMemoryRegistry() *MemoryRegistry {
	return &MemoryRegistry{accounts: map[string]map[string]*Tunnel{}}
}

func (r *MemoryRegistry) Claim(t *Tunnel, max int) (*Tunnel, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.accounts[t.Account]
	if m == nil {
		m = map[string]*Tunnel{}
		r.accounts[t.Account] = m
	}
	taken := m[t.key()]
	if taken == nil && max > 0 && len(m) >= max {
		return nil, fmt.Errorf("%w: %d tunnels", errLimit, max)
	}
	m[t.key()] = t
	return taken, nil
}

func (r *MemoryRegistry) Release(t *Tunnel) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.accounts[t.Account]
	if m[t.key()] == t {
		delete(m, t.key())
		if len(m) == 0 {
			delete(r.accounts, t.Account)
		}
	}
}

func (r *MemoryRegistry) Lookup(account, name string) (*Tunnel, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.accounts[account][name]
	return t, ok
}

func (r *MemoryRegistry) Tunnels(account string) []*Tunnel {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*Tunnel
	for _, t := range r.accounts[account] {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *Tunnel) int {
		if c := a.ConnectedAt.Compare(b.ConnectedAt); c != 0 {
			return c
		}
		return strings.Compare(a.key(), b.key())
	})
	return out
}

func (r *MemoryRegistry) TunnelLive(account, name string) bool {
	_, ok := r.Lookup(account, name)
	return ok
}
