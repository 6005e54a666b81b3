package gateway_test

import (
	"net/netip"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/gateway"
	"github.com/portico-sh/portico/internal/sshtest"
)

// TestAccessLogFloodIsCounted is issue 8 item 6: fresh keys proving possession on pgs@ from
// one address. A few denials per source and minute are logged one by one; the rest are
// counted into one suppressed row per source and minute, so that every attempt is accounted
// for and the log does not grow with the flood. Denials of an account's own keys and
// certificates are all logged.
func TestAccessLogFloodIsCounted(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 1, 12, 0, 10, 0, time.UTC)}
	f := start(t, withLimits(func(l *gateway.Limits) {
		l.Exempt = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} // no penalties here
	}), func(_ *fixture, o *gateway.Options) { o.Now = clock.now })
	flood := func(local string, conns int) {
		for range conns {
			var keys []gossh.Signer
			for range 5 {
				keys = append(keys, sshtest.NewSigner(t))
			}
			if d := f.dialFrom(local, f.ssh, "pgs", gossh.PublicKeys(keys...)); d.err == nil {
				t.Fatal("a fresh key logged in to pgs")
			}
		}
	}
	flood("127.0.0.1", 40) // 200 attempts
	flood("127.0.0.2", 4)  // 20 attempts
	clock.advance(time.Minute)
	flood("127.0.0.1", 4) // 20 attempts in the next minute
	expired := certFor(t, f.alice.ca, sshtest.NewSigner(t), func(c *gossh.Certificate) { c.ValidBefore = uint64(time.Now().Add(-time.Hour).Unix()) })
	for range 15 {
		f.refused(f.ssh, "pgs", expired)
	}
	if err := f.stop(); err != nil { // writes the counts held back
		t.Fatal(err)
	}

	rows, err := f.store.ListAccess(t.Context(), 0, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	type tally struct{ denied, suppressed, rows int64 }
	got := map[string]map[time.Time]*tally{}
	for _, e := range rows {
		src := e.RemoteAddr
		if ap, err := netip.ParseAddrPort(src); err == nil {
			src = ap.Addr().String()
		}
		if got[src] == nil {
			got[src] = map[time.Time]*tally{}
		}
		m := e.Time.Truncate(time.Minute)
		if got[src][m] == nil {
			got[src][m] = &tally{}
		}
		tl := got[src][m]
		tl.rows++
		switch e.Outcome {
		case "denied":
			tl.denied += e.Count
		case "suppressed":
			tl.suppressed += e.Count
		default:
			t.Errorf("account-less row with outcome %q: %+v", e.Outcome, e)
		}
	}
	first := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, w := range []struct {
		src                        string
		minute                     time.Time
		denied, suppressed, rowsAt int64
	}{
		{"127.0.0.1", first, 10, 190, 11},
		{"127.0.0.2", first, 10, 10, 11},
		{"127.0.0.1", first.Add(time.Minute), 10, 10, 11},
	} {
		g := got[w.src][w.minute]
		if g == nil || g.denied != w.denied || g.suppressed != w.suppressed || g.rows != w.rowsAt {
			t.Errorf("%s at %s: %+v, want %d denied and %d suppressed in %d rows", w.src, w.minute.Format("15:04"), g, w.denied, w.suppressed, w.rowsAt)
		}
	}
	t.Logf("240 denials of keys of no account from 2 addresses over 2 minutes: %d account-less rows", len(rows))

	alices, err := f.store.ListAccess(t.Context(), f.alice.ID, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(alices) != 15 {
		t.Errorf("%d rows for the account's own refused certificate, want all 15", len(alices))
	}
}

// TestSignupFloodIsCounted: fresh keys get a sign-up connection on admin@ when signups are
// open, and such a connection is no failure to penalise. Connecting with a fresh key in a loop
// once wrote an access-log row per connection, a thousand in 3 s from one address; those rows
// are rationed as the denials of keys of no account are, the rest counted.
func TestSignupFloodIsCounted(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 1, 12, 0, 10, 0, time.UTC)}
	f := start(t, withLimits(func(l *gateway.Limits) { l.Exempt = nil }), func(_ *fixture, o *gateway.Options) { o.Now = clock.now })
	const conns = 60
	for i := range conns {
		d := f.dialFrom("127.0.0.2", f.ssh, "admin", gossh.PublicKeys(sshtest.NewSigner(t)))
		if d.err != nil {
			t.Fatalf("sign-up connection %d: %v (banner %q)", i, d.err, d.banner)
		}
		d.client.Close()
	}
	if err := f.stop(); err != nil { // writes the counts held back
		t.Fatal(err)
	}
	rows, err := f.store.ListAccess(t.Context(), 0, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var allowed, suppressed int64
	for _, e := range rows {
		switch e.Outcome {
		case "allowed":
			allowed += e.Count
		case "suppressed":
			suppressed += e.Count
		}
	}
	t.Logf("%d sign-up connections from one address: %d rows", conns, len(rows))
	if len(rows) > 11 || allowed+suppressed != conns {
		t.Errorf("%d sign-up connections: %d rows, %d allowed one by one and %d counted; want at most 11 rows counting all of them",
			conns, len(rows), allowed, suppressed)
	}
}
