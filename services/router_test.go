package services_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/charmbracelet/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/services"
)

type namedService auth.Service

func (n namedService) Name() auth.Service          { return auth.Service(n) }
func (n namedService) Serve(*services.Session) int { return 0 }

func TestPick(t *testing.T) {
	tests := []struct {
		name  string
		bound auth.Service
		user  string
		want  auth.Service
	}{
		{"admin user", "", "admin", auth.Admin},
		{"pgs user", "", "pgs", auth.PGS},
		{"tuns user", "", "tuns", auth.Tuns},
		{"pipe user", "", "pipe", auth.Pipe},
		{"local login name goes to admin", "", "alice", auth.Admin},
		{"empty user goes to admin", "", "", auth.Admin},
		{"user names are case sensitive", "", "PGS", auth.Admin},
		{"future service name goes to admin", "", "pastes", auth.Admin},
		{"bound listener forces its service", auth.PGS, "alice", auth.PGS},
		{"bound listener beats a service user", auth.PGS, "pipe", auth.PGS},
		{"bound admin listener", auth.Admin, "tuns", auth.Admin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := services.Pick(tt.bound, tt.user); got != tt.want {
				t.Errorf("Pick(%q, %q) = %q, want %q", tt.bound, tt.user, got, tt.want)
			}
		})
	}
}

func TestRouterRoute(t *testing.T) {
	r, err := services.NewRouter(namedService(auth.Admin), namedService(auth.Pipe))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		bound auth.Service
		user  string
		want  auth.Service
	}{
		{"", "bob", auth.Admin},
		{"", "pipe", auth.Pipe},
		{"", "pgs", auth.PGS}, // not registered: answered by Unavailable
		{auth.Tuns, "admin", auth.Tuns},
	}
	for _, tt := range tests {
		got := r.Route(tt.bound, tt.user)
		if got.Name() != tt.want {
			t.Errorf("Route(%q, %q).Name() = %q, want %q", tt.bound, tt.user, got.Name(), tt.want)
		}
	}
	if _, ok := r.Route("", "pipe").(namedService); !ok {
		t.Errorf("Route to a registered service returned %T, want the registered value", r.Route("", "pipe"))
	}
	if got := len(r.Services()); got != 2 {
		t.Errorf("Services() has %d entries, want 2", got)
	}
}

func TestNewRouterRejects(t *testing.T) {
	tests := []struct {
		name string
		svcs []services.Service
	}{
		{"duplicate", []services.Service{namedService(auth.Admin), namedService(auth.Admin)}},
		{"unknown name", []services.Service{namedService("pastes")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := services.NewRouter(tt.svcs...); err == nil {
				t.Error("NewRouter accepted it")
			}
		})
	}
}

// stderrSession is an ssh.Session whose only working part is Stderr.
type stderrSession struct {
	ssh.Session
	stderr bytes.Buffer
}

func (s *stderrSession) Stderr() io.ReadWriter { return &s.stderr }

func TestUnavailable(t *testing.T) {
	for _, name := range []auth.Service{auth.PGS, auth.Tuns, auth.Pipe} {
		t.Run(string(name), func(t *testing.T) {
			sess := &stderrSession{}
			svc := services.Unavailable(name)
			if svc.Name() != name {
				t.Errorf("Name() = %q, want %q", svc.Name(), name)
			}
			if code := svc.Serve(&services.Session{Session: sess}); code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			want := "portico: the " + string(name) + " service is not available yet\n"
			if got := sess.stderr.String(); got != want {
				t.Errorf("stderr %q, want %q", got, want)
			}
		})
	}
}
