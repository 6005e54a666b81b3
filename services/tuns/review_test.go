package tuns

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// TestHugeResponseHeaderRefused: a tunnel's local server (the owner's side, which the server does
// not trust) that answers with a huge header gets its visitor a 502, and the server holds no
// more than a bounded header per open channel: Go's default would read up to 10 MiB each.
func TestHugeResponseHeaderRefused(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	c := h.dial(h.alice)
	big := strings.Repeat("x", 2<<20)
	c.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Header().Set("X-Big", big)
		}
		w.Write([]byte("ok"))
	}))
	c.mustBind("hdr", 80)
	status, body, err := h.get(http.DefaultClient, "alice-hdr.localhost", "/big")
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusBadGateway || !strings.Contains(body, "header") {
		t.Fatalf("a 2 MiB response header: %d %q, want 502 saying the header is too large", status, body[:min(len(body), 200)])
	}
	if status, body, err := h.get(http.DefaultClient, "alice-hdr.localhost", "/small"); err != nil || status != 200 || body != "ok" {
		t.Fatalf("after it, a normal request: %d %q %v", status, body, err)
	}
}

// TestEndingTunnelCutsItsConnections: once the owner cancels a tunnel (or a new connection
// takes it over), nothing reaches the owner's machine through it any more: a visitor's open
// connection to a private tunnel and a request in flight through an HTTP tunnel are cut, not
// left to run on (the user ended the tunnel to stop exposing the local server).
func TestEndingTunnelCutsItsConnections(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	alice := h.dial(h.alice)
	hold := make(chan struct{})
	defer close(hold)
	alice.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("first\n"))
		w.(http.Flusher).Flush()
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}))
	if ok, _ := alice.bind("db", 5432); !ok {
		t.Fatal("private bind refused")
	}
	if ok, _ := alice.bind("web", 80); !ok {
		t.Fatal("http bind refused")
	}

	// A private tunnel's visitor connection ends with a cancel.
	nc, err := alice.Dial("tcp", "alice-db:5432")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ok, _, err := alice.SendRequest("cancel-tcpip-forward", true, gossh.Marshal(forwardRequest{"db", 5432}))
	if err != nil || !ok {
		t.Fatalf("cancel: %v %v", ok, err)
	}
	ended := make(chan error, 1)
	go func() { _, err := nc.Read(make([]byte, 1)); ended <- err }()
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("read data after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the private tunnel's connection is still open 5 s after the tunnel was cancelled")
	}

	// An HTTP request in flight ends with a takeover.
	req, _ := http.NewRequest(http.MethodGet, "http://"+h.httpAddr+"/slow", nil)
	req.Host = "alice-web.localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); line != "first\n" {
		t.Fatalf("first line %q", line)
	}
	second := h.dial(h.alice)
	if ok, _ := second.bind("web", 80); !ok {
		t.Fatal("takeover refused")
	}
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(br); done <- err }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a request through the taken-over tunnel still runs on the old connection 5 s later")
	}
}

// TestNameRaceWithFirstDeploy: a tunnel and a pgs project of the same name, bound and first
// deployed at the same moment, cannot both win. pgs takes the project's lock (which
// ProjectExists counts) and then asks TunnelLive; here that happens just after the tunnel's
// first ProjectExists answered "no", the worst interleaving.
func TestNameRaceWithFirstDeploy(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	var mu sync.Mutex
	projects := map[string]bool{}
	deployed := false
	h.svc.o.ProjectExists = func(ctx context.Context, account, name string) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		exists := projects[name]
		if name == "site" && !deployed {
			deployed = true
			// pgs, concurrently: the lock is taken, then the tunnel names are asked.
			projects[name] = true
			if h.svc.reg.TunnelLive(account, name) {
				delete(projects, name) // refused: a live tunnel has the name
			}
		}
		return exists, nil
	}
	c := h.dial(h.alice)
	bound, _ := c.bind("site", 80)
	mu.Lock()
	created := projects["site"]
	mu.Unlock()
	if bound && created {
		t.Fatal("both the tunnel and the project took the name site")
	}
	if !bound && h.svc.reg.TunnelLive("alice", "site") {
		t.Fatal("a refused tunnel still holds its name")
	}
}

// TestForwardFloodIsQuiet: a client sending forward requests without end past the bound gets
// them refused without the server writing a log line (and a session line) for each: one
// connection must not be able to fill the server's log at network speed.
func TestForwardFloodIsQuiet(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	c := h.dial(h.alice)
	c.mustBind("good", 80)
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.Start(""); err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n {
		if ok, _ := c.bind(fmt.Sprintf("Bad%d", i), 80); ok {
			t.Fatal("a bad name was accepted")
		}
	}
	if got := strings.Count(h.log.String(), "forward refused"); got > maxForwardRequests+1 {
		t.Fatalf("%d forward requests wrote %d log lines, want at most %d", n, got, maxForwardRequests+1)
	}
}

// TestTunnelChannelsBoundedPerSource: the channels the tunnels of one source's connections
// open hold at most that source's share of the gateway's open channels, as its own channels do:
// one account's tunnels (with visitors it sends itself, or a client that never answers) could
// otherwise take every channel of the gateway, and every user's sessions would be refused.
func TestTunnelChannelsBoundedPerSource(t *testing.T) {
	h := newHarness(t, harnessOptions{httpIdle: time.Second, maxChannels: 40}) // 10 per source
	c := h.dial(h.alice)
	opened := c.neverRead()
	c.mustBind("stuck", 80)
	visitor := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { h.get(visitor, "alice-stuck.localhost", "/") })
	}
	wg.Wait()
	if n := opened(); n > 10 {
		t.Errorf("one source's tunnel opened %d channels, past its share of 10 of the gateway's 40", n)
	}
}

// TestVisitorHeaderTricks: a visitor cannot smuggle a second request past the proxy (both
// Transfer-Encoding and Content-Length), nor strip or forge the X-Forwarded headers the local
// server gets (naming them hop-by-hop in Connection, or sending its own).
func TestVisitorHeaderTricks(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	c := h.dial(h.alice)
	var mu sync.Mutex
	var seen []string
	c.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s xff=%q xfh=%q body=%q", r.Method, r.URL.Path,
			r.Header.Values("X-Forwarded-For"), r.Header.Get("X-Forwarded-Host"), body))
		mu.Unlock()
		w.Write([]byte("ok"))
	}))
	c.mustBind("web", 80)
	raw := func(req string) string {
		nc, err := net.DialTimeout("tcp", h.httpAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(nc, req)
		out, _ := io.ReadAll(nc)
		return string(out)
	}
	smuggle := "POST /a HTTP/1.1\r\nHost: alice-web.localhost\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
		"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: alice-web.localhost\r\n\r\n"
	raw(smuggle)
	raw("GET /b HTTP/1.1\r\nHost: alice-web.localhost\r\nConnection: close, X-Forwarded-For, X-Forwarded-Host\r\n" +
		"X-Forwarded-For: 10.9.9.9\r\nX-Forwarded-Host: evil.example\r\n\r\n")
	mu.Lock()
	defer mu.Unlock()
	for _, s := range seen {
		if strings.Contains(s, "/smuggled") {
			t.Errorf("a smuggled request reached the local server: %v", seen)
		}
		if strings.Contains(s, "10.9.9.9") || strings.Contains(s, "evil.example") || strings.Contains(s, "xff=[]") {
			t.Errorf("forged or stripped X-Forwarded headers reached the local server: %s", s)
		}
	}
	t.Logf("the local server saw: %q", seen)
}

// TestAllowEndsWithItsSession: allow= is the word of one session; once that session has
// ended (and its tunnels with it), a tunnel the connection binds later is its owner's only, as
// any tunnel before a session command says otherwise (ssh -O forward through a ControlMaster).
func TestAllowEndsWithItsSession(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	alice := h.dial(h.alice)
	alice.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	alice.mustBind("db", 5432)
	sess, err := alice.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Start("allow=bob"); err != nil {
		t.Fatal(err)
	}
	bob := h.dial(h.bob)
	deadline := time.Now().Add(5 * time.Second)
	for {
		nc, err := bob.Dial("tcp", "alice-db:5432")
		if err == nil {
			nc.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob, allowed, cannot reach alice-db: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	sess.Close()
	for h.svc.reg.TunnelLive("alice", "db") {
		if time.Now().After(deadline) {
			t.Fatal("the session's tunnel outlived it")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ok, _ := alice.bind("db2", 5433); !ok {
		t.Fatal("a later bind refused")
	}
	if nc, err := bob.Dial("tcp", "alice-db2:5433"); err == nil {
		nc.Close()
		t.Fatal("bob reached a tunnel bound after the session that allowed him had ended")
	}
}

// TestDirectTCPIPOriginIsTheRealAddress: the originator a private tunnel's owner is told is the
// visitor's real address, not whatever its client claims in its direct-tcpip request.
func TestDirectTCPIPOriginIsTheRealAddress(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	alice := h.dial(h.alice)
	alice.mustBind("db", 5432)
	got := make(chan string, 1)
	go func() {
		for nc := range alice.forwarded {
			var p forwardedTCPIP
			gossh.Unmarshal(nc.ExtraData(), &p)
			got <- p.OriginAddr
			nc.Reject(gossh.ConnectionFailed, "no")
		}
	}()
	go alice.OpenChannel("direct-tcpip", gossh.Marshal(directTCPIP{Host: "alice-db", Port: 5432, OriginAddr: "6.6.6.6", OriginPort: 666}))
	select {
	case origin := <-got:
		if origin != "127.0.0.1" {
			t.Fatalf("the owner was told the visitor is %q, not its real address 127.0.0.1", origin)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no forwarded channel")
	}
}

// TestPublicPortsBoundedPerAddress: the connections from one address hold at most a quarter of
// the public TCP port range, whatever their accounts (sign-up may be open): one user cannot take
// every public port of the server.
func TestPublicPortsBoundedPerAddress(t *testing.T) {
	first := freePortRange(t, 48)
	h := newHarness(t, harnessOptions{tcpPorts: PortRange{first, first + 47}}) // 12 per address
	alice, bob := h.dial(h.alice), h.dial(h.bob)
	got := bindPublicPorts(alice, bob, 16)
	if got != 12 {
		t.Fatalf("one address got %d public ports of 48, want 12", got)
	}
	alice.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ok, _ := bob.bind("", 0); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the ports of a closed connection were not given back")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPublicPortsOfExemptAddresses: an address in PORTICO_PER_SOURCE_EXEMPT (a trusted proxy,
// the operator's hosts) is not held to a share of the public ports, as it is not to the
// gateway's other per-source limits.
func TestPublicPortsOfExemptAddresses(t *testing.T) {
	first := freePortRange(t, 48)
	h := newHarness(t, harnessOptions{tcpPorts: PortRange{first, first + 47}, exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	alice, bob := h.dial(h.alice), h.dial(h.bob)
	got := bindPublicPorts(alice, bob, 16)
	if got != 16 {
		t.Fatalf("an exempt address got %d public ports of 48, want all 16 it asked for", got)
	}
}

// bindPublicPorts asks for n public ports from one address, alice's connection first, then
// bob's past alice's own limit of tunnels, and returns how many it got.
func bindPublicPorts(alice, bob *client, n int) int {
	got := 0
	for i := range n {
		c := alice
		if i >= DefaultMaxTunnels {
			c = bob
		}
		if ok, _ := c.bind("", 0); ok {
			got++
		}
	}
	return got
}

// freePortRange finds n consecutive free loopback ports. It looks below Linux's ephemeral
// ports (32768 up): among those, the local ends of other tests' and benchmarks' connections
// made runs of 48 free ones rare on a busy machine.
func freePortRange(t *testing.T, n int) int {
	for try := 0; try < 50; try++ {
		first := 20000 + rand.IntN(32768-20000-n)
		ok := true
		for p := first; p < first+n; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return first
		}
	}
	t.Fatal("no free port range")
	return 0
}

// TestCancelOthersTunnel: cancel-tcpip-forward ends only the sending connection's own forward:
// not another account's, nor the same account's on another connection.
func TestCancelOthersTunnel(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	alice, alice2, bob := h.dial(h.alice), h.dial(h.alice), h.dial(h.bob)
	alice.mustBind("dev", 80)
	for _, c := range []*client{bob, alice2} {
		for _, addr := range []string{"dev", "alice-dev", ""} {
			ok, _, _ := c.SendRequest("cancel-tcpip-forward", true, gossh.Marshal(forwardRequest{addr, 80}))
			if ok {
				t.Errorf("a cancel of %q:80 from another connection was accepted", addr)
			}
		}
	}
	if !h.svc.reg.TunnelLive("alice", "dev") {
		t.Fatal("alice's tunnel was ended by another connection's cancel")
	}
}
