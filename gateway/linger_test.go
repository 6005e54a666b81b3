package gateway_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/gateway"
	"github.com/portico-sh/portico/internal/sshtest"
)

// lingeringClient is a client's TCP connection that, once the server has closed its writing
// side, sends one byte and then nothing, and stays open when the SSH client closes it.
type lingeringClient struct {
	net.Conn
	once sync.Once
}

func (c *lingeringClient) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if errors.Is(err, io.EOF) {
		c.once.Do(func() { c.Conn.Write([]byte{0}) })
	}
	return n, err
}

func (c *lingeringClient) Close() error { return nil }

// TestEndedConnectionClosesWhateverTheClientSends: a connection whose access ended is closed
// after a short linger even when its client sends a byte during the linger and then waits,
// with the ciphers chosen per client and with a fixed list (PORTICO_SSH_CIPHERS).
func TestEndedConnectionClosesWhateverTheClientSends(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ciphers []string
	}{
		{"ciphers chosen per client", nil},
		{"fixed ciphers", []string{gossh.CipherAES128GCM}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := start(t, func(_ *fixture, o *gateway.Options) { o.Ciphers = tc.ciphers })
			bob := sshtest.NewSigner(t)
			cert := certFor(t, f.alice.ca, bob, nil)
			raw, err := net.Dial("tcp", f.ssh)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			cfg := &gossh.ClientConfig{User: "pgs", Auth: []gossh.AuthMethod{gossh.PublicKeys(cert)}, HostKeyCallback: gossh.FixedHostKey(f.hostKey)}
			sc, chans, reqs, err := gossh.NewClientConn(&lingeringClient{Conn: raw}, f.ssh, cfg)
			if err != nil {
				t.Fatal(err)
			}
			c := gossh.NewClient(sc, chans, reqs)
			defer c.Close()
			if n := f.metric("portico_ssh_connections"); n != 1 {
				t.Fatalf("%d connections open, want 1", n)
			}
			if _, err := f.store.AddRevocation(context.Background(), f.alice.ID, db.NewRevocation{Kind: db.RevokeKeyID, Value: "bob@laptop"}); err != nil {
				t.Fatal(err)
			}
			c.Wait() // the server closed its writing side
			// The gateway lets go of the connection: bounded so that the test ends, not timed.
			for deadline := time.Now().Add(10 * time.Second); f.metric("portico_ssh_connections") != 0; {
				if time.Now().After(deadline) {
					t.Fatal("the ended connection is still open 10 s after the revocation")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !strings.Contains(f.logs.String(), "ending a connection whose access ended") {
				t.Error("the connection was not ended by live access")
			}
		})
	}
}
