package gatewaytest

import (
	"context"
	"fmt"
	"testing"

	"github.com/portico-sh/portico/gateway"
)

// Start makes the gateway of o, listens and serves in the background until t ends; then, if t
// failed, it logs log, the server's log.
func Start(t testing.TB, o gateway.Options, log fmt.Stringer) *gateway.Gateway {
	t.Helper()
	gw, err := gateway.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		gw.Serve(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("server log:\n%s", log.String())
		}
	})
	return gw
}
