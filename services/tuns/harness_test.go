package tuns

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/db/dbtest"
	"github.com/portico-sh/portico/gateway"
	"github.com/portico-sh/portico/internal/gatewaytest"
	"github.com/portico-sh/portico/internal/sshtest"
	"github.com/portico-sh/portico/services"
)

// harness is a gateway on loopback with the tuns service and two accounts, alice and bob, each
// with a login key; clients are golang.org/x/crypto/ssh, which sends what OpenSSH will not.
type harness struct {
	t          testing.TB
	svc        *Service
	gw         *gateway.Gateway
	sshAddr    string
	httpAddr   string
	alice, bob gossh.Signer
	log        *sshtest.SyncBuffer
}

type harnessOptions struct {
	httpIdle    time.Duration
	tcpPorts    PortRange
	maxChannels int // the gateway's limit of open channels (0: its default)
	exempt      []netip.Prefix
}

func newHarness(t testing.TB, o harnessOptions) *harness {
	t.Helper()
	h := &harness{t: t, log: &sshtest.SyncBuffer{}, alice: sshtest.NewSigner(t), bob: sshtest.NewSigner(t)}
	store := dbtest.Open(t)
	for name, s := range map[string]gossh.Signer{"alice": h.alice, "bob": h.bob} {
		createAccount(t, store, name, s)
	}
	logger := slog.New(slog.NewTextHandler(h.log, nil))
	pub, _ := services.ParsePublic("http://localhost:8080", "localhost:2222")
	h.svc = New(Options{Public: pub, TCPPorts: o.tcpPorts, TCPHost: "127.0.0.1", Exempt: o.exempt, Logger: logger, Grace: 500 * time.Millisecond})
	h.svc.refusalWait = 20 * time.Millisecond
	router, err := services.NewRouter(h.svc)
	if err != nil {
		t.Fatal(err)
	}
	limits := gateway.DefaultLimits()
	if o.maxChannels > 0 {
		limits.MaxChannels = o.maxChannels
	}
	h.gw = gatewaytest.Start(t, gateway.Options{
		Limits: &limits,
		Store:  store, Auth: auth.New(store, auth.Options{}), Router: router, HostKey: sshtest.NewSigner(t),
		SSH: []gateway.Listener{{Addr: "127.0.0.1:0"}}, HTTPAddr: "127.0.0.1:0", Logger: logger,
		DrainTimeout: time.Second, HTTPIdleTimeout: o.httpIdle,
	}, h.log)
	h.sshAddr = h.gw.SSHAddrs()[0].String()
	h.httpAddr = h.gw.HTTPAddr().String()
	return h
}

func createAccount(t testing.TB, store db.Store, name string, s gossh.Signer) {
	t.Helper()
	kl, err := auth.ParseKeyLine(sshtest.AuthorizedKey(s.PublicKey()) + " " + name)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.CreateAccount(context.Background(), name, kl.NewKey(name)); err != nil {
		t.Fatal(err)
	}
}

// client is an SSH client whose forwarded-tcpip channels the test handles itself.
type client struct {
	*gossh.Client
	forwarded <-chan gossh.NewChannel
	t         testing.TB
}

// dial connects as tuns@ with signer.
func (h *harness) dial(signer gossh.Signer) *client {
	h.t.Helper()
	return h.dialHolding(signer, nil)
}

// dialHolding is dial, with the server's global requests (keepalives) sent to held, unanswered,
// when held is not nil.
func (h *harness) dialHolding(signer gossh.Signer, held chan<- *gossh.Request) *client {
	h.t.Helper()
	nc, err := net.DialTimeout("tcp", h.sshAddr, 10*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	conn, chans, reqs, err := gossh.NewClientConn(nc, h.sshAddr, &gossh.ClientConfig{
		User: "tuns", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	forwarded, other := make(chan gossh.NewChannel, 64), make(chan gossh.NewChannel)
	go func() {
		defer close(forwarded)
		defer close(other)
		for nc := range chans {
			if nc.ChannelType() == "forwarded-tcpip" {
				forwarded <- nc
			} else {
				other <- nc
			}
		}
	}()
	if held != nil {
		serverReqs := reqs
		none := make(chan *gossh.Request)
		close(none)
		reqs = none // the client answers nothing of its own accord
		go func() {
			for r := range serverReqs {
				held <- r
			}
		}()
	}
	c := &client{Client: gossh.NewClient(conn, other, reqs), forwarded: forwarded, t: h.t}
	h.t.Cleanup(func() { c.Close() })
	return c
}

// bind sends tcpip-forward for addr:port.
func (c *client) bind(addr string, port uint32) (bool, []byte) {
	ok, payload, err := c.SendRequest("tcpip-forward", true, gossh.Marshal(forwardRequest{addr, port}))
	if err != nil {
		return false, nil
	}
	return ok, payload
}

// mustBind binds addr:port as bind does, and fails the test if the server refuses.
func (c *client) mustBind(addr string, port uint32) {
	c.t.Helper()
	if ok, _ := c.bind(addr, port); !ok {
		c.t.Fatalf("bind %s:%d refused", addr, port)
	}
}

// neverRead accepts the forwarded channels of c and never reads them, as a stuck client does;
// each is closed once the connection has ended. It returns how many it has accepted so far.
func (c *client) neverRead() (opened func() int) {
	var mu sync.Mutex
	n := 0
	go func() {
		for nc := range c.forwarded {
			ch, reqs, err := nc.Accept()
			if err != nil {
				continue
			}
			go gossh.DiscardRequests(reqs)
			defer ch.Close()
			mu.Lock()
			n++
			mu.Unlock()
		}
	}()
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// serve answers the forwarded connections with handler on a local TCP server, as OpenSSH
// connects each one to the user's local server.
func (c *client) serve(handler http.Handler) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(l)
	go func() {
		defer srv.Close()
		for nc := range c.forwarded {
			local, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				nc.Reject(gossh.ConnectionFailed, "connection refused")
				continue
			}
			ch, reqs, err := nc.Accept()
			if err != nil {
				local.Close()
				continue
			}
			go gossh.DiscardRequests(reqs)
			go func() {
				defer ch.Close()
				defer local.Close()
				go func() {
					io.Copy(local, ch)
					local.(*net.TCPConn).CloseWrite()
				}()
				io.Copy(ch, local)
			}()
		}
	}()
}

// session runs command on a new session and returns its stdout, stderr and exit status.
func (c *client) session(t *testing.T, command string) (string, string, int) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out, errOut bytes.Buffer
	s.Stdout, s.Stderr = &out, &errOut
	err = s.Run(command)
	code := 0
	if ee, ok := err.(*gossh.ExitError); ok {
		code = ee.ExitStatus()
	} else if err != nil {
		t.Fatalf("session %q: %v", command, err)
	}
	return out.String(), errOut.String(), code
}

// get requests path from host on the HTTP listener.
func (h *harness) get(client *http.Client, host, path string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+h.httpAddr+path, nil)
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// usage is what the process holds: goroutines and heap in use after a collection.
type usage struct {
	goroutines int
	heap       uint64
}

func measure() usage {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return usage{goroutines: runtime.NumGoroutine(), heap: m.HeapInuse}
}

// settle waits up to 15 s for the goroutines to come back within slack of base and the heap
// within heapSlack of it, and fails the test if they do not.
func settle(t *testing.T, base usage, slack int, heapSlack uint64) usage {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		u := measure()
		if u.goroutines <= base.goroutines+slack && u.heap <= base.heap+heapSlack {
			return u
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("after the clients left: %d goroutines, %d MiB heap (baseline %d, %d MiB)\n%s",
				u.goroutines, u.heap>>20, base.goroutines, base.heap>>20, trimStacks(string(buf[:n])))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// trimStacks keeps the first lines of each goroutine's stack.
func trimStacks(s string) string {
	var b strings.Builder
	for g := range strings.SplitSeq(s, "\n\n") {
		lines := strings.Split(g, "\n")
		b.WriteString(strings.Join(lines[:min(len(lines), 8)], "\n") + "\n\n")
	}
	return b.String()
}
