package gateway_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/gateway"
)

// stallingAuth holds its first decision until released.
type stallingAuth struct {
	gateway.Authenticator
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (a *stallingAuth) Authenticate(ctx context.Context, at auth.Attempt) (auth.Grant, error) {
	first := false
	a.once.Do(func() { first = true })
	if first {
		close(a.entered)
		<-a.release
	}
	return a.Authenticator.Authenticate(ctx, at)
}

// TestShutdownRecordsDecisionsInProgress: a connection whose authentication is being decided
// when the server is told to stop has its decision recorded before the access log's writer
// stops. The SSH library does not count connections still in their handshake, so shutdown
// found nothing to drain and stopped the writer, and the decision made a moment later was
// queued and lost (and the connection it allowed was served as the process exited).
func TestShutdownRecordsDecisionsInProgress(t *testing.T) {
	stall := &stallingAuth{entered: make(chan struct{}), release: make(chan struct{})}
	f := start(t, func(f *fixture, o *gateway.Options) {
		stall.Authenticator = o.Auth
		o.Auth = stall
	})
	dialed := make(chan error, 1)
	go func() {
		d := f.dial(f.ssh, "admin", gossh.PublicKeys(f.alice.login))
		dialed <- d.err
	}()
	select {
	case <-stall.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection's authentication did not start")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- f.stop() }()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(f.logs.String(), "shutting down"); {
		if time.Now().After(deadline) {
			t.Fatal("the gateway did not start shutting down")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // let the shutdown run as far as it goes without the decision
	close(stall.release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	<-dialed
	for _, e := range f.store.entries() {
		if e.Account == "alice" && e.Identity == "laptop" {
			return
		}
	}
	t.Errorf("the decision made during shutdown is not in the access log: %+v", f.store.entries())
}
