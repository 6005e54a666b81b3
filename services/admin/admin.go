package admin

import (
	"fmt"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/services"
	"github.com/portico-sh/portico/services/admin/ops"
	"github.com/portico-sh/portico/tui"
)

type service struct {
	ops     *ops.Ops
	sites   tui.Sites   // nil: the TUI has no Sites page
	tunnels tui.Tunnels // nil: the TUI has no Tunnels page
}

// Option configures the admin service.
type Option func(*service)

// WithSites gives the TUI its Sites page, on the pgs operations s.
func WithSites(s tui.Sites) Option { return func(a *service) { a.sites = s } }

// WithTunnels gives the TUI its Tunnels page, on the tuns service t.
func WithTunnels(t tui.Tunnels) Option { return func(a *service) { a.tunnels = t } }

// New returns the admin service, which runs the account operations of o.
func New(o *ops.Ops, opts ...Option) services.Service {
	a := &service{ops: o}
	for _, opt := range opts {
		opt(a)
	}
	return a
}

func (*service) Name() auth.Service { return auth.Admin }

// Serve runs the TUI for a terminal session without a command, else the command line.
func (a *service) Serve(s *services.Session) int {
	if s.Subsystem != "" {
		fmt.Fprintf(s.Stderr(), "portico: the admin service has no subsystem %q\n", s.Subsystem)
		return 1
	}
	var key gossh.PublicKey
	if k := s.PublicKey(); k != nil {
		key = k
	}
	if _, _, ok := s.Pty(); ok && len(s.Command) == 0 {
		return a.serveTUI(s, key)
	}
	c := &cli{
		ctx:    s.Context(),
		ops:    a.ops,
		grant:  s.Grant,
		key:    key,
		stdin:  s,
		stdout: s,
		stderr: s.Stderr(),
	}
	return c.run(s.Command)
}
