package gateway_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/internal/sshtest"

	"github.com/portico-sh/portico/gateway"
)

// withLimits sets the gateway's limits to the defaults changed by edit, with no address
// exempt.
func withLimits(edit func(*gateway.Limits)) func(*fixture, *gateway.Options) {
	return func(_ *fixture, o *gateway.Options) {
		l := gateway.DefaultLimits()
		if edit != nil {
			edit(&l)
		}
		o.Limits = &l
	}
}

// metric reads one unlabelled metric from the gateway's metrics listener.
func (f *fixture) metric(name string) int {
	f.t.Helper()
	resp, err := http.Get(f.metricsURL + "/metrics")
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		f.t.Fatalf("no metric %s in:\n%s", name, body)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		f.t.Fatal(err)
	}
	return int(v)
}

// stall opens a TCP connection from local and sends an SSH version line, then nothing: a
// client that never finishes its handshake. It returns the connection and what the server
// said before closing it, if it closed it within wait.
func stall(t *testing.T, local, addr string, wait time.Duration) (net.Conn, string, bool) {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialing from %s: %v", local, err)
	}
	conn.Write([]byte("SSH-2.0-stalling\r\n"))
	conn.SetReadDeadline(time.Now().Add(wait))
	said, err := io.ReadAll(conn)
	conn.SetReadDeadline(time.Time{})
	var ne net.Error
	held := errors.As(err, &ne) && ne.Timeout()
	return conn, string(said), !held
}

// TestStalledConnectionsAreBounded is the attack of issue 8 item 5: thousands of connections
// from one address that never authenticate, some of them after a full key exchange. The
// gateway holds at most PORTICO_PER_SOURCE_MAX_STARTUPS of them, memory and goroutines stay
// near their baseline, and a user from another address logs in meanwhile.
func TestStalledConnectionsAreBounded(t *testing.T) {
	f := start(t, withLimits(nil))
	base := measure()

	// Clients that finish the key exchange, then stall in authentication.
	const kexStalls = 40
	release := make(chan struct{})
	outcome := make(chan bool, kexStalls) // true: stalled in authentication; false: refused
	var kexClients sync.WaitGroup
	for range kexStalls {
		kexClients.Go(func() {
			conn, err := net.DialTimeout("tcp", f.ssh, 10*time.Second)
			if err != nil {
				outcome <- false
				return
			}
			defer conn.Close()
			cfg := &gossh.ClientConfig{User: "admin", HostKeyCallback: gossh.FixedHostKey(f.hostKey),
				Auth: []gossh.AuthMethod{gossh.PublicKeysCallback(func() ([]gossh.Signer, error) {
					outcome <- true
					<-release
					return nil, errors.New("gave up")
				})}}
			if _, _, _, err := gossh.NewClientConn(conn, f.ssh, cfg); err != nil && !strings.Contains(err.Error(), "gave up") {
				outcome <- false
			}
		})
	}
	kexHeld := 0
	for range kexStalls {
		if <-outcome {
			kexHeld++
		}
	}

	// Raw connections that stall before the key exchange: 2000, 100 at a time.
	const stalls = 2000
	var conns []net.Conn
	var mu sync.Mutex
	refused, told := 0, 0
	var wg sync.WaitGroup
	sem := make(chan struct{}, 100)
	for range stalls {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			conn, said, closed := stall(t, "127.0.0.1", f.ssh, time.Second)
			mu.Lock()
			defer mu.Unlock()
			conns = append(conns, conn)
			why := strings.Contains(said, "portico: too many unauthenticated connections from your address")
			if closed || why {
				refused++
			}
			if why {
				told++
			}
		})
	}
	wg.Wait()
	time.Sleep(100 * time.Millisecond) // refused connections are drained for up to 20 ms
	during := measure()
	unauth := f.metric("portico_ssh_unauthenticated_connections")

	// A user from another address logs in and runs a command meanwhile.
	begin := time.Now()
	d := f.dialFrom("127.0.0.2", f.ssh, "pgs", gossh.PublicKeys(f.alice.login))
	if d.err != nil {
		t.Fatalf("a user from 127.0.0.2 could not log in during the attack: %v (banner %q)", d.err, d.banner)
	}
	if r, _, code := exec(t, d.client, "ls"); code != 0 || r.Account != "alice" {
		t.Fatalf("the user's command: exit %d, %+v", code, r)
	}
	login := time.Since(begin)
	t.Logf("%d stalled connections and %d after key exchange from 127.0.0.1: %d (%d of them told why) and %d refused, %d held unauthenticated; baseline %s, during the attack %s; a user from 127.0.0.2 logged in and ran a command in %s",
		stalls, kexStalls, refused, told, kexStalls-kexHeld, unauth, base, during, login.Round(time.Millisecond))

	if unauth > 20 {
		t.Errorf("%d unauthenticated connections held, want at most the per-source limit, 20", unauth)
	}
	if refused < stalls-20 || told < stalls/2 {
		t.Errorf("%d of %d stalled connections were refused, %d of them with the reason; want all but at most 20, most with the reason", refused, stalls, told)
	}
	// The 20 held connections and the test's own 20 clients after key exchange cost a few
	// hundred goroutines; 2000 held connections cost over 6000.
	if during.goroutines > base.goroutines+1000 || during.heap > base.heap+64<<20 {
		t.Errorf("during the attack the gateway holds %s (baseline %s)", during, base)
	}
	if login > 10*time.Second {
		t.Errorf("the user needed %s to log in and run a command", login)
	}

	close(release)
	kexClients.Wait()
	for _, c := range conns {
		c.Close()
	}
	after := settle(t, base, 20, 16<<20)
	t.Logf("after the attackers left: %s", after)
}

// TestMaxStartups: past the first number of PORTICO_MAX_STARTUPS, new unauthenticated
// connections are dropped with a growing chance, and all of them at the last; each is told why.
func TestMaxStartups(t *testing.T) {
	f := start(t, withLimits(func(l *gateway.Limits) {
		l.MaxStartups = gateway.Startups{Start: 5, Rate: 30, Full: 10}
		l.PerSourceMaxStartups = 0
		l.Penalty = gateway.Penalty{}
	}))
	refused := 0
	var held []net.Conn
	for range 30 {
		conn, said, closed := stall(t, "127.0.0.1", f.ssh, 250*time.Millisecond)
		defer conn.Close()
		if closed {
			if !strings.Contains(said, "portico: too many unauthenticated connections") {
				t.Fatalf("a dropped connection was told %q", said)
			}
			refused++
		} else {
			held = append(held, conn)
		}
	}
	// On a busy machine a refusal may come after the 250 ms a client waited: look again.
	deadline := time.Now().Add(2 * time.Second)
	for _, conn := range held {
		conn.SetReadDeadline(deadline)
		said, err := io.ReadAll(conn)
		var ne net.Error
		if !(errors.As(err, &ne) && ne.Timeout()) {
			if !strings.Contains(string(said), "portico: too many unauthenticated connections") {
				t.Fatalf("a dropped connection was told %q", said)
			}
			refused++
		}
	}
	if held := f.metric("portico_ssh_unauthenticated_connections"); held < 5 || held > 10 {
		t.Errorf("%d unauthenticated connections held, want 5 to 10", held)
	}
	if refused < 20 {
		t.Errorf("%d of 30 refused, want at least 20", refused)
	}
	if n := f.metric(`portico_limit_refusals_total{limit="max_startups"}`); n != refused {
		t.Errorf("metric counts %d refusals, want %d", n, refused)
	}
}

// TestPerSourceMaxConnections: one address holds at most PORTICO_PER_SOURCE_MAX_CONNECTIONS
// authenticated connections; the next is refused with the reason, other addresses are not,
// and closing one makes room. An exempt address is not counted.
func TestPerSourceMaxConnections(t *testing.T) {
	f := start(t, withLimits(func(l *gateway.Limits) {
		l.PerSourceMaxConnections = 3
		l.Exempt = []netip.Prefix{netip.MustParsePrefix("127.0.0.5/32")}
	}))
	var open []*gossh.Client
	for range 3 {
		d := f.dialFrom("127.0.0.3", f.ssh, "pgs", gossh.PublicKeys(f.alice.login))
		if d.err != nil {
			t.Fatal(d.err)
		}
		open = append(open, d.client)
	}
	d := f.dialFrom("127.0.0.3", f.ssh, "pgs", gossh.PublicKeys(f.alice.login))
	if d.err == nil || !strings.Contains(d.banner, "too many connections from your address (at most 3 at once)") {
		t.Fatalf("a fourth connection: %v, banner %q; want refused with the reason", d.err, d.banner)
	}
	if d := f.dialFrom("127.0.0.4", f.ssh, "pgs", gossh.PublicKeys(f.alice.login)); d.err != nil {
		t.Errorf("another address was refused: %v (%q)", d.err, d.banner)
	}
	for range 4 {
		if d := f.dialFrom("127.0.0.5", f.ssh, "pgs", gossh.PublicKeys(f.alice.login)); d.err != nil {
			t.Errorf("an exempt address was refused: %v (%q)", d.err, d.banner)
		}
	}
	open[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		d := f.dialFrom("127.0.0.3", f.ssh, "pgs", gossh.PublicKeys(f.alice.login))
		if d.err == nil {
			// A session, so that the server has taken the connection in before the test
			// ends: charmbracelet/ssh's Shutdown races with a connection it has not yet.
			exec(t, d.client, "ls")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after closing a connection: %v", d.err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPenalties: as sshd's PerSourcePenalties, an address whose connections keep failing to
// log in is refused at connect once its penalty reaches 15 s, until the penalty runs out;
// other and exempt addresses are not.
func TestPenalties(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	f := start(t, withLimits(func(l *gateway.Limits) {
		l.Exempt = []netip.Prefix{netip.MustParsePrefix("127.0.0.9/32")}
	}), func(_ *fixture, o *gateway.Options) { o.Now = clock.now; o.LoginGraceTime = time.Second })
	stranger := sshtest.NewSigner(t)
	// ended waits until the gateway has seen every unauthenticated connection end, and so
	// has recorded their penalties.
	ended := func() {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for f.metric("portico_ssh_unauthenticated_connections") > 0 {
			if time.Now().After(deadline) {
				t.Fatal("unauthenticated connections did not end")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	failLogin := func(local string) {
		t.Helper()
		if d := f.dialFrom(local, f.ssh, "pgs", gossh.PublicKeys(stranger)); d.err == nil {
			t.Fatalf("a stranger's key logged in to pgs from %s", local)
		}
		ended()
	}
	refusedAtConnect := func(local string) bool {
		t.Helper()
		conn, said, closed := stall(t, local, f.ssh, 300*time.Millisecond)
		conn.Close()
		ended()
		return closed && strings.Contains(said, "refused for")
	}

	// Failed logins: 5 s each; the address is refused once the penalty left reaches 15 s,
	// here (the clock stands still) at the third.
	for i := range 2 {
		failLogin("127.0.0.6")
		if refusedAtConnect("127.0.0.6") {
			t.Fatalf("refused after %d failed logins", i+1)
		}
	}
	failLogin("127.0.0.6")
	if !refusedAtConnect("127.0.0.6") {
		t.Fatal("not refused after three failed logins")
	}
	if d := f.dialFrom("127.0.0.6", f.ssh, "pgs", gossh.PublicKeys(f.alice.login)); d.err == nil {
		t.Error("a penalised address logged in with a good key")
	}
	if d := f.dialFrom("127.0.0.7", f.ssh, "pgs", gossh.PublicKeys(f.alice.login)); d.err != nil {
		t.Errorf("another address was refused: %v", d.err)
	}
	for range 6 {
		failLogin("127.0.0.9")
	}
	if refusedAtConnect("127.0.0.9") {
		t.Error("an exempt address was penalised")
	}
	clock.advance(21 * time.Second)
	if d := f.dialFrom("127.0.0.6", f.ssh, "pgs", gossh.PublicKeys(f.alice.login)); d.err != nil {
		t.Errorf("still refused once the penalty ran out: %v", d.err)
	}

	// Overrunning the login grace time: 20 s at once.
	conn, _, closed := stall(t, "127.0.0.8", f.ssh, 5*time.Second)
	conn.Close()
	if !closed {
		t.Fatal("a stalled connection outlived the login grace time")
	}
	ended()
	if !refusedAtConnect("127.0.0.8") {
		t.Error("not refused after overrunning the login grace time")
	}
	if n := f.metric(`portico_limit_refusals_total{limit="per_source_penalty"}`); n < 2 {
		t.Errorf("%d penalty refusals counted, want at least 2", n)
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestSignupConnectionsAreSmall: a connection on a sign-up grant has one session at a time
// and is closed once none of its sessions has read input for the sign-up idle timeout, however
// many keepalives its client sends; typing keeps it open. A login key's connection is not
// closed when idle.
func TestSignupConnectionsAreSmall(t *testing.T) {
	const idle = 500 * time.Millisecond
	f := start(t, func(_ *fixture, o *gateway.Options) { o.Limits.SignupIdleTimeout = idle })
	signup := f.connect(f.ssh, "admin", sshtest.NewSigner(t))
	s, err := signup.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s2, err := signup.NewSession(); err == nil {
		s2.Close()
		t.Error("a sign-up connection opened a second session")
	} else if !strings.Contains(err.Error(), "one session") {
		t.Errorf("second session refused with %q, want the reason", err)
	}
	login := f.connect(f.ssh, "admin", f.alice.login)

	// Keepalives are not input.
	ended := make(chan error, 1)
	begin := time.Now()
	go func() { ended <- signup.Wait() }()
	keepalives := time.NewTicker(50 * time.Millisecond)
	defer keepalives.Stop()
wait:
	for {
		select {
		case <-ended:
			break wait
		case <-keepalives.C:
			signup.SendRequest("keepalive@openssh.com", true, nil)
		case <-time.After(10 * time.Second):
			t.Fatal("an idle sign-up connection sending keepalives was not closed")
		}
	}
	t.Logf("idle sign-up connection sending keepalives closed after %s", time.Since(begin).Round(time.Millisecond))

	// Typing into a session is.
	typing := f.connect(f.ssh, "admin", sshtest.NewSigner(t))
	ts, err := typing.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	in, _ := ts.StdinPipe()
	if err := ts.Start("cat"); err != nil {
		t.Fatal(err)
	}
	for range 3 * int(idle/(100*time.Millisecond)) {
		if _, err := in.Write([]byte("a")); err != nil {
			t.Fatalf("a sign-up connection that types was closed: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, _, code := exec(t, login, "ls"); code != 0 {
		t.Errorf("the login key's idle connection: exit %d", code)
	}
}

// TestUnreadDataIsBounded is the attack of issue 8 item 2: clients open session channels and
// fill each one's 2 MiB window without ever starting the session, so the gateway holds what
// they wrote. Sign-up connections get one session, and PORTICO_MAX_CHANNELS bounds what all
// connections together hold; the clients are told why when refused.
func TestUnreadDataIsBounded(t *testing.T) {
	const maxChannels = 12
	f := start(t, func(_ *fixture, o *gateway.Options) { o.Limits.MaxChannels = maxChannels })
	base := measure()
	stdin := bytes.Repeat([]byte("x"), 2<<20)
	opened, refusals := 0, map[string]int{}
	for i := range 10 {
		signer, user := f.alice.login, "pgs"
		if i%2 == 1 {
			signer, user = sshtest.NewSigner(t), "admin"
		}
		c := f.connect(f.ssh, user, signer)
		for range 10 {
			s, err := c.NewSession()
			if err != nil {
				refusals[err.Error()]++
				continue
			}
			opened++
			in, err := s.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := in.Write(stdin); err != nil {
				t.Fatal(err)
			}
		}
	}
	held := measure()
	t.Logf("100 sessions asked for, %d opened and filled; refused: %v; baseline %s, while the clients stay %s", opened, refusals, base, held)
	if opened > maxChannels {
		t.Errorf("%d sessions opened, want at most %d", opened, maxChannels)
	}
	if held.heap > base.heap+(3*maxChannels+16)<<20 { // about 2.6 MiB a filled session
		t.Errorf("the gateway holds %s while the clients stay (baseline %s)", held, base)
	}
	for msg := range refusals {
		if !strings.Contains(msg, "one session at a time") && !strings.Contains(msg, "too many open sessions") {
			t.Errorf("a session was refused with %q, want the reason", msg)
		}
	}
}

// TestOneAddressCannotTakeEveryChannel: the channels of all connections are bounded
// (PORTICO_MAX_CHANNELS), and one address may hold a quarter of them, so that one client (one
// account's connections, free with signups open: 52 connections of 10 sessions took the
// default 512) cannot refuse every other user a session.
func TestOneAddressCannotTakeEveryChannel(t *testing.T) {
	const maxChannels = 40
	f := start(t, withLimits(func(l *gateway.Limits) { l.MaxChannels = maxChannels }))
	opened, refusals := 0, map[string]int{}
	for range 4 {
		d := f.dialFrom("127.0.0.2", f.ssh, "pgs", gossh.PublicKeys(f.alice.login))
		if d.err != nil {
			t.Fatal(d.err)
		}
		for range 10 {
			s, err := d.client.NewSession()
			if err != nil {
				refusals[err.Error()]++
				continue
			}
			defer s.Close()
			if err := s.Start("block"); err != nil {
				t.Fatal(err)
			}
			opened++
		}
	}
	t.Logf("one address asked for 40 sessions: %d opened; refused: %v", opened, refusals)
	if opened > maxChannels/4 {
		t.Errorf("one address opened %d of %d sessions, want at most a quarter", opened, maxChannels)
	}
	for msg := range refusals {
		if !strings.Contains(msg, "from your address") {
			t.Errorf("a session was refused with %q, want the reason", msg)
		}
	}
	d := f.dialFrom("127.0.0.3", f.ssh, "pgs", gossh.PublicKeys(f.alice.login))
	if d.err != nil {
		t.Fatal(d.err)
	}
	if _, stderr, code := exec(t, d.client, "ls"); code != 0 {
		t.Errorf("a user at another address: exit %d, %q", code, stderr)
	}
	if n := f.metric(`portico_limit_refusals_total{limit="per_source_max_channels"}`); n != 40-opened {
		t.Errorf("%d refusals counted, want %d", n, 40-opened)
	}
}

// TestResetConnectionsLeaveNoStartup: a client that connects and resets at once (before the
// server's version line is written) takes a startup slot, which it must give back. The write
// of the version line failed, and the connection was dropped with its slot still counted: 20
// such connections shut their address out for good, and 1000 (MaxStartups' full) every client.
func TestResetConnectionsLeaveNoStartup(t *testing.T) {
	f := start(t, withLimits(func(l *gateway.Limits) { l.Penalty = gateway.Penalty{} }))
	for range 40 {
		conn, err := net.DialTCP("tcp", &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, resolveTCP(t, f.ssh))
		if err != nil {
			t.Fatal(err)
		}
		conn.SetLinger(0) // close with a reset
		conn.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.metric("portico_ssh_unauthenticated_connections") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d unauthenticated connections still counted 5 s after 40 reset ones", f.metric("portico_ssh_unauthenticated_connections"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d := f.dialFrom("127.0.0.2", f.ssh, "pgs", gossh.PublicKeys(f.alice.login)); d.err != nil {
		t.Fatalf("a login from the address after its reset connections: %v (banner %q)", d.err, d.banner)
	}
}

func resolveTCP(t *testing.T, addr string) *net.TCPAddr {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
