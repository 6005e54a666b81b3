package gateway

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"
)

func TestParseStartups(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Startups
		err  string
	}{
		{"100:30:1000", Startups{100, 30, 1000}, ""},
		{"10", Startups{10, 100, 10}, ""},
		{"off", Startups{}, ""},
		{"1:100:1", Startups{1, 100, 1}, ""},
		{"0:100:1", Startups{}, "0 < start"},
		{"10:0:20", Startups{}, "rate from 1"},
		{"10:30", Startups{}, "start:rate:full"},
		{"20:30:10", Startups{}, "0 < start <= full"},
		{"10:101:20", Startups{}, "rate from 1"},
		{"a:b:c", Startups{}, "start:rate:full"},
		{"-1:30:10", Startups{}, "start:rate:full"},
		{"0", Startups{}, "0 < start"},
		{"", Startups{}, "start:rate:full"},
	} {
		got, err := ParseStartups(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseStartups(%q) = %v, %v; want an error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseStartups(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseLimitPenaltyExempt(t *testing.T) {
	if n, err := ParseLimit("x", "200"); n != 200 || err != nil {
		t.Errorf("ParseLimit(200) = %d, %v", n, err)
	}
	if n, err := ParseLimit("x", "off"); n != 0 || err != nil {
		t.Errorf("ParseLimit(off) = %d, %v", n, err)
	}
	for _, bad := range []string{"0", "-3", "many", ""} {
		if _, err := ParseLimit("x", bad); err == nil {
			t.Errorf("ParseLimit(%q) accepted", bad)
		}
	}
	if p, err := ParsePenalty("on"); err != nil || p != DefaultPenalty() {
		t.Errorf("ParsePenalty(on) = %v, %v", p, err)
	}
	if p, err := ParsePenalty("off"); err != nil || p.on() {
		t.Errorf("ParsePenalty(off) = %v, %v", p, err)
	}
	if _, err := ParsePenalty("yes"); err == nil {
		t.Error("ParsePenalty(yes) accepted")
	}
	got, err := ParseExempt("10.0.0.0/8, 192.0.2.7,2001:db8::/32")
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32")}
	if err != nil || len(got) != len(want) {
		t.Fatalf("ParseExempt = %v, %v", got, err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ParseExempt[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	if l, err := ParseExempt(""); l != nil || err != nil {
		t.Errorf("ParseExempt(\"\") = %v, %v", l, err)
	}
	for _, bad := range []string{"10.0.0.1/8", "example.com", "10.0.0.0/8,"} {
		if _, err := ParseExempt(bad); err == nil {
			t.Errorf("ParseExempt(%q) accepted", bad)
		}
	}
}

// TestPenaltyArithmetic follows sshd: penalties add up, are capped at Max, and refuse the
// address once what is left reaches Min, until they run out.
func TestPenaltyArithmetic(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	a := newAdmission(Limits{Penalty: DefaultPenalty()}, func() time.Time { return now })
	src := netip.MustParsePrefix("192.0.2.1/32")
	refused := func() bool {
		c, err := a.connect(src, false)
		if err != nil {
			return true
		}
		c.decided(true, false, false) // as if it logged in: closing it adds no penalty
		c.close()
		return false
	}
	a.penalise(src, 5*time.Second, "x")
	a.penalise(src, 5*time.Second, "x")
	if refused() {
		t.Fatal("refused at 10 s of penalty")
	}
	now = now.Add(time.Second) // 9 s left
	a.penalise(src, 5*time.Second, "x")
	if refused() {
		t.Fatal("refused at 14 s of penalty")
	}
	a.penalise(src, time.Second, "x")
	if !refused() {
		t.Fatal("not refused at 15 s of penalty")
	}
	for range 1000 {
		a.penalise(src, 20*time.Second, "x")
	}
	now = now.Add(10*time.Minute - time.Second)
	if !refused() {
		t.Fatal("not refused a second before the 10-minute cap runs out")
	}
	now = now.Add(time.Second)
	if refused() {
		t.Fatal("still refused after 10 minutes")
	}
	if c := a.counts(); c.penalised != 0 {
		t.Errorf("%d penalties kept after they ran out", c.penalised)
	}
	// An exempt client is never refused, and other sources are not affected.
	a.penalise(src, 20*time.Second, "x")
	if _, err := a.connect(src, true); err != nil {
		t.Errorf("exempt: %v", err)
	}
	if _, err := a.connect(netip.MustParsePrefix("192.0.2.2/32"), false); err != nil {
		t.Errorf("another source: %v", err)
	}
}

// ctxWithClient is the context of a connection admitted as c.
type ctxWithClient struct {
	ssh.Context
	c *client
}

func (x ctxWithClient) Value(k any) any {
	if k == (connKey{}) {
		return &connInfo{client: x.c}
	}
	return nil
}

// TestFailedMethodsArePenalised: password guesses (a method portico never offers, which bots
// try anyway) and keys the SSH library refuses count as failed logins, as in sshd; "none",
// refusals by a limit and an unreachable store do not.
func TestFailedMethodsArePenalised(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	g := &Gateway{limits: Limits{Penalty: DefaultPenalty()}}
	g.admission = newAdmission(g.limits, func() time.Time { return now })
	src := netip.MustParsePrefix("192.0.2.1/32")
	for _, tt := range []struct {
		method string
		err    error
		want   time.Duration
	}{
		{"password", errors.New("ssh: password auth not configured"), 5 * time.Second},
		{"keyboard-interactive", errors.New("not configured"), 5 * time.Second},
		{"publickey", errors.New(`ssh: algorithm "ssh-rsa" not accepted`), 5 * time.Second},
		{"none", errNoneAuth, time.Second},
		{"publickey", &gossh.BannerError{Err: &errLimit{limitPerSourceConnections, "too many"}}, time.Second},
		{"publickey", &gossh.BannerError{Err: errors.New("unavailable")}, time.Second},
	} {
		g.admission.penalties = map[netip.Prefix]*penalty{}
		c, err := g.admission.connect(src, false)
		if err != nil {
			t.Fatal(err)
		}
		g.serverConfig(ctxWithClient{c: c}, "").AuthLogCallback(nil, tt.method, tt.err)
		c.close()
		if got := g.admission.penalties[src].expiry.Sub(now); got != tt.want {
			t.Errorf("%s failing with %v: penalty %s, want %s", tt.method, tt.err, got, tt.want)
		}
	}
}
