package gateway_test

import (
	"context"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/internal/sshtest"
)

// TestEndingConnectionOpensNothing: once live access has decided to end a connection (its
// certificate was revoked), the connection opens no new session, forwarded channel or remote
// forwarding while its running sessions are given their time to stop. A client that kept a
// session running held the connection open for up to two seconds, and could start new
// commands in it with the grant that had just ended: on admin@, lift its own revocation.
func TestEndingConnectionOpensNothing(t *testing.T) {
	f := start(t)
	bob := sshtest.NewSigner(t)
	cert := certFor(t, f.alice.ca, bob, func(c *gossh.Certificate) {
		c.Extensions["permit-port-forwarding"] = ""
	})
	c := f.connect(f.ssh, "pgs", cert)
	held, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := held.StdinPipe() // never closed: "cat" runs until the gateway gives up on it
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if err := held.Start("cat"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.AddRevocation(context.Background(), f.alice.ID, db.NewRevocation{Kind: db.RevokeKeyID, Value: "bob@laptop"}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(f.logs.String(), "ending a connection whose access ended"); {
		if time.Now().After(deadline) {
			t.Fatal("live access did not end the connection within 5 s of the revocation")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s, err := c.NewSession(); err == nil {
		out, err := s.Output("exit 0")
		if err == nil || strings.Contains(string(out), "bob@laptop") {
			t.Errorf("a new session ran on the connection being ended: %q, %v", out, err)
		}
	}
	if conn, err := c.Dial("tcp", "blog:80"); err == nil {
		buf := make([]byte, 64)
		n, _ := conn.Read(buf)
		t.Errorf("a forwarded channel opened on the connection being ended: %q", buf[:n])
		conn.Close()
	}
	if ln, err := c.Listen("tcp", "0.0.0.0:80"); err == nil {
		t.Error("a remote forwarding was accepted on the connection being ended")
		ln.Close()
	}
}
