package tuns

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// TestBadForwardRequests: each odd request is refused with its reason on the session, and
// nothing is bound.
func TestBadForwardRequests(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	c := h.dial(h.alice)
	cases := []struct {
		addr   string
		port   uint32
		reason string
	}{
		{strings.Repeat("a", 300), 80, "longer than 255 bytes"},
		{strings.Repeat("a", 33), 80, "is not a tunnel name"},
		{"UPPER", 80, "is not a tunnel name"},
		{"a.b", 80, "is not a tunnel name"},
		{"-x", 80, "is not a tunnel name"},
		{"x-", 80, "is not a tunnel name"},
		{"a b", 80, "is not a tunnel name"},
		{"caf\u00e9", 80, "is not a tunnel name"},
		{"nul\x00", 80, "is not a tunnel name"},
		{"alice-dev.localhost", 80, "is not a tunnel name"},
		{"dev", 70000, "is not a TCP port"},
		{"db", 0, "a named tunnel needs a port"},
		{"", 8080, "no public TCP ports"},
		{"localhost", 0, "no public TCP ports"},
	}
	for _, tc := range cases {
		if ok, _ := c.bind(tc.addr, tc.port); ok {
			t.Errorf("tcpip-forward %q:%d was accepted", tc.addr, tc.port)
		}
	}
	// A payload that does not parse is refused too.
	if ok, _, err := c.SendRequest("tcpip-forward", true, []byte{0, 0, 0, 9, 'x'}); err != nil || ok {
		t.Errorf("a malformed tcpip-forward: ok %v, err %v", ok, err)
	}
	if n := len(h.svc.reg.Tunnels("alice")); n != 0 {
		t.Fatalf("%d tunnels bound after bad requests", n)
	}
	_, stderr, code := c.session(t, "")
	if code != exitFailed {
		t.Errorf("session exit %d, want %d", code, exitFailed)
	}
	for _, tc := range cases {
		if !strings.Contains(stderr, tc.reason) {
			t.Errorf("stderr lacks %q:\n%s", tc.reason, stderr)
		}
	}
	if strings.ContainsRune(stderr, 0) || strings.Contains(stderr, "\u00e9") {
		t.Errorf("stderr echoes raw bytes:\n%q", stderr)
	}
}

// TestTooManyForwardRequests: one connection's requests are bounded, refused past the bound.
func TestTooManyForwardRequests(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	c := h.dial(h.alice)
	for i := range maxForwardRequests + 10 {
		c.bind(fmt.Sprintf("Bad%d", i), 80)
	}
	if ok, _ := c.bind("good", 80); ok {
		t.Fatal("a forward past the bound was accepted")
	}
	h.checkRefusalsBounded(t)
}

// checkRefusalsBounded checks that the service keeps a bounded list of reasons per connection.
func (h *harness) checkRefusalsBounded(t *testing.T) {
	t.Helper()
	h.svc.mu.Lock()
	defer h.svc.mu.Unlock()
	for _, cs := range h.svc.conns {
		cs.mu.Lock()
		n := len(cs.refused)
		cs.mu.Unlock()
		if n > maxForwardRequests {
			t.Errorf("%d refusals kept, want at most %d", n, maxForwardRequests)
		}
	}
}

// TestDirectTCPIPRefusals: bob cannot reach alice's private tunnel, another port of it, nor
// anything that is not a tunnel, and the refusal is the same whether or not the tunnel exists.
func TestDirectTCPIPRefusals(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	alice := h.dial(h.alice)
	if ok, _ := alice.bind("db", 5432); !ok {
		t.Fatal("alice's private tunnel was refused")
	}
	bob := h.dial(h.bob)
	for _, target := range []struct {
		host string
		port uint32
	}{{"alice-db", 5432}, {"alice-none", 5432}, {"alice-db", 5433}, {"127.0.0.1", 22}, {"alice-db" + strings.Repeat("x", 300), 5432}, {"", 0}} {
		_, err := bob.Dial("tcp", net.JoinHostPort(target.host, fmt.Sprint(target.port)))
		var oe *gossh.OpenChannelError
		if err == nil {
			t.Fatalf("bob reached %s:%d", target.host, target.port)
		}
		if !asOpenErr(err, &oe) || oe.Reason != gossh.Prohibited {
			t.Fatalf("bob to %s:%d: %v, want a prohibited refusal", target.host, target.port, err)
		}
		if want := fmt.Sprintf("no tunnel %s:%d that you may reach", printable(target.host), target.port); oe.Message != want {
			t.Errorf("bob to %s:%d: %q, want %q", target.host, target.port, oe.Message, want)
		}
	}
}

func asOpenErr(err error, oe **gossh.OpenChannelError) bool {
	e, ok := err.(*gossh.OpenChannelError)
	if ok {
		*oe = e
	}
	return ok
}

// TestClientThatNeverReads: a tunnel client that accepts forwarded channels and never reads
// them holds visitors only until their own limits end them; the server holds a bounded number
// of channels meanwhile, and nothing once the client leaves.
func TestClientThatNeverReads(t *testing.T) {
	h := newHarness(t, harnessOptions{httpIdle: time.Second})
	warm := h.dial(h.alice)
	warm.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	warm.mustBind("warm", 80)
	if code, _, err := h.get(http.DefaultClient, "alice-warm.localhost", "/"); err != nil || code != 200 {
		t.Fatalf("warm-up: %d %v", code, err)
	}
	warm.Close()
	time.Sleep(200 * time.Millisecond)
	http.DefaultClient.CloseIdleConnections()
	base := measure()

	c := h.dial(h.alice)
	opened := c.neverRead()
	c.mustBind("stuck", 80)
	const visitors = 150
	body := strings.Repeat("x", 4<<20)
	visitor := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var wg sync.WaitGroup
	var answered atomic.Int32
	for range visitors {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, "http://"+h.httpAddr+"/", strings.NewReader(body))
			req.Host = "alice-stuck.localhost"
			resp, err := visitor.Do(req)
			if err == nil {
				resp.Body.Close()
				answered.Add(1)
			}
		})
	}
	wg.Wait()
	open := opened()
	if open > maxOpenChannels {
		t.Errorf("%d forwarded channels opened at once, want at most %d", open, maxOpenChannels)
	}
	t.Logf("%d visitors, %d answered (502 or cut), %d channels opened to the stuck client", visitors, answered.Load(), open)
	c.Close()
	visitor.CloseIdleConnections()
	after := settle(t, base, 15, 32<<20)
	t.Logf("baseline %d goroutines %d MiB; after %d goroutines %d MiB", base.goroutines, base.heap>>20, after.goroutines, after.heap>>20)
}

// TestManyVisitors: a thousand visitors at once through one tunnel all get their answer.
func TestManyVisitors(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	c := h.dial(h.alice)
	c.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(10 * time.Millisecond)
		io.WriteString(w, "hello "+r.URL.Path)
	}))
	c.mustBind("busy", 80)
	base := measure()
	const visitors = 1000
	visitor := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: visitors}}
	var wg sync.WaitGroup
	var good atomic.Int32
	for i := range visitors {
		wg.Go(func() {
			code, body, err := h.get(visitor, "alice-busy.localhost", fmt.Sprintf("/%d", i))
			if err == nil && code == 200 && body == fmt.Sprintf("hello /%d", i) {
				good.Add(1)
			}
		})
	}
	wg.Wait()
	if good.Load() != visitors {
		t.Fatalf("%d of %d visitors got their answer", good.Load(), visitors)
	}
	visitor.CloseIdleConnections()
	c.Close()
	settle(t, base, 15, 32<<20)
}

// TestClientVanishesMidResponse: the tunnel's client leaving in the middle of a response cuts
// the visitor's response; the tunnel is gone and nothing is left behind.
func TestClientVanishesMidResponse(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	base := measure()
	c := h.dial(h.alice)
	started := make(chan struct{})
	var once sync.Once
	c.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10000000")
		w.Write(make([]byte, 100<<10))
		w.(http.Flusher).Flush()
		once.Do(func() { close(started) })
		<-r.Context().Done()
	}))
	c.mustBind("gone", 80)
	visitor := &http.Client{Timeout: 20 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, "http://"+h.httpAddr+"/", nil)
	req.Host = "alice-gone.localhost"
	resp, err := visitor.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("visitor: %v %v", resp, err)
	}
	<-started
	c.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("the visitor got a whole response (%d bytes) from a client that left", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _, err := h.get(visitor, "alice-gone.localhost", "/")
		if err == nil && code == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tunnel still answers %d %v after its client left", code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	visitor.CloseIdleConnections()
	settle(t, base, 15, 16<<20)
}

// TestUpgradeOutlivesIdleLimit: an upgraded connection through a tunnel stays open through
// silence longer than the HTTP listener's idle limit.
func TestUpgradeOutlivesIdleLimit(t *testing.T) {
	h := newHarness(t, harnessOptions{httpIdle: time.Second})
	c := h.dial(h.alice)
	c.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw)
	}))
	c.mustBind("ws", 80)
	v, err := net.Dial("tcp", h.httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	fmt.Fprint(v, "GET / HTTP/1.1\r\nHost: alice-ws.localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(v)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	time.Sleep(3 * time.Second)
	fmt.Fprint(v, "ping\n")
	v.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("after 3s of silence: %q %v", line, err)
	}
}

// TestTakeoverAndCancel: a second connection of the same account takes the name over; cancel
// frees it; another account's connection gets its own name.
func TestTakeoverAndCancel(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	first, second := h.dial(h.alice), h.dial(h.alice)
	if ok, _ := first.bind("dev", 80); !ok {
		t.Fatal("first bind refused")
	}
	if ok, _ := second.bind("dev", 80); !ok {
		t.Fatal("takeover refused")
	}
	if tun, ok := h.svc.reg.Lookup("alice", "dev"); !ok || tun.owner.ssh.RemoteAddr().String() != second.LocalAddr().String() {
		t.Fatal("the name is not the second connection's")
	}
	if ok, _ := second.bind("dev", 443); ok {
		t.Fatal("a second forward of the same name on one connection was accepted")
	}
	ok, _, err := second.SendRequest("cancel-tcpip-forward", true, gossh.Marshal(forwardRequest{"dev", 80}))
	if err != nil || !ok {
		t.Fatalf("cancel: %v %v", ok, err)
	}
	if h.svc.reg.TunnelLive("alice", "dev") {
		t.Fatal("the name is still held after cancel")
	}
	// A connection whose only tunnel the client cancelled stays open for more.
	time.Sleep(3 * h.svc.o.Grace)
	if ok, _ := second.bind("dev2", 80); !ok {
		t.Fatal("the connection that cancelled its forward no longer takes forwards")
	}
	// The first connection, with no session and no tunnel left, is closed.
	done := make(chan error, 1)
	go func() { done <- first.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection whose tunnel was taken over is still open")
	}
}

// TestGatewayChannelLimitCountsTunnels: the channels a tunnel opens to its client count against
// the gateway's limit of open channels, which bounds what they may hold whatever the accounts.
func TestGatewayChannelLimitCountsTunnels(t *testing.T) {
	h := newHarness(t, harnessOptions{httpIdle: time.Second, maxChannels: 5})
	c := h.dial(h.alice)
	opened := c.neverRead()
	c.mustBind("stuck", 80)
	visitor := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var wg sync.WaitGroup
	var refused atomic.Int32
	for range 20 {
		wg.Go(func() {
			code, body, err := h.get(visitor, "alice-stuck.localhost", "/")
			if err == nil && code == http.StatusServiceUnavailable && strings.Contains(body, "connections open") {
				refused.Add(1)
			}
		})
	}
	wg.Wait()
	n := opened()
	if n > 5 {
		t.Errorf("%d channels opened past the gateway's limit of 5", n)
	}
	if refused.Load() == 0 {
		t.Error("no visitor was told the tunnel is busy")
	}
	t.Logf("%d channels opened, %d visitors refused at once", n, refused.Load())
}
