package services

import (
	"fmt"

	"github.com/portico-sh/portico/auth"
)

// Pick returns the service a connection asks for. A listener bound to a service (bound is
// not empty) forces that service; otherwise an SSH user that names a service picks it, and
// any other user (such as the local login name `ssh HOST` sends) goes to admin.
func Pick(bound auth.Service, user string) auth.Service {
	if bound != "" {
		return bound
	}
	if auth.KnownService(user) {
		return auth.Service(user)
	}
	return auth.Admin
}

// Router is the registry of services by name and picks the one serving a connection.
type Router struct {
	byName map[auth.Service]Service
	order  []Service
}

// NewRouter registers svcs under their names. Every name must be a known service and
// appear once.
func NewRouter(svcs ...Service) (*Router, error) {
	r := &Router{byName: make(map[auth.Service]Service, len(svcs))}
	for _, s := range svcs {
		name := s.Name()
		if !auth.KnownService(string(name)) {
			return nil, fmt.Errorf("router: %q is not a known service", name)
		}
		if _, dup := r.byName[name]; dup {
			return nil, fmt.Errorf("router: service %q registered twice", name)
		}
		r.byName[name] = s
		r.order = append(r.order, s)
	}
	return r, nil
}

// Route returns the service for a connection on a listener bound to bound (empty when the
// listener serves every service) whose SSH user is user. A service that is not registered is
// answered by Unavailable.
func (r *Router) Route(bound auth.Service, user string) Service {
	return r.Lookup(Pick(bound, user))
}

// Lookup returns the service registered as name, or Unavailable(name).
func (r *Router) Lookup(name auth.Service) Service {
	if s, ok := r.byName[name]; ok {
		return s
	}
	return Unavailable(name)
}

// Services returns the registered services in registration order.
func (r *Router) Services() []Service {
	return append([]Service(nil), r.order...)
}

// Unavailable returns a placeholder for a service that is not built yet: every session
// gets "portico: the NAME service is not available yet" on stderr and exit status 1.
func Unavailable(name auth.Service) Service { return unavailable(name) }

type unavailable auth.Service

func (u unavailable) Name() auth.Service { return auth.Service(u) }

func (u unavailable) Serve(s *Session) int {
	fmt.Fprintf(s.Stderr(), "portico: the %s service is not available yet\n", u)
	return 1
}
