package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/portico-sh/portico/internal/sshtest"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/db/dbtest"
	"github.com/portico-sh/portico/gateway"
	"github.com/portico-sh/portico/services"
)

// report is what the test services write to stdout: what they were handed.
type report struct {
	Service    auth.Service
	Account    string
	Method     auth.Method
	Identity   string
	Command    []string
	RawCommand string
	Subsystem  string
	PTY        bool
	Columns    int // the terminal's width as the session started
}

// testService reports its session as JSON. The command "exit N" exits with status N, "block"
// waits until the connection closes, "cat" then copies stdin to stdout.
type testService struct {
	name    auth.Service
	blocked atomic.Int32 // sessions running "block"
	// authn, when set, serves "regrant": the session's key is judged as a login key, the
	// session takes that grant (sess.Regrant) as the TUI does after a sign-up or claim, says
	// "regranted" and waits for its end.
	authn gateway.Authenticator
}

func (s *testService) Name() auth.Service { return s.name }

func (s *testService) Serve(sess *services.Session) int {
	term, _, pty := sess.Pty()
	json.NewEncoder(sess).Encode(report{
		Columns:    term.Window.Width,
		Service:    s.name,
		Account:    sess.Grant.Account,
		Method:     sess.Grant.Method,
		Identity:   sess.Grant.Identity,
		Command:    sess.Command,
		RawCommand: sess.RawCommand,
		Subsystem:  sess.Subsystem,
		PTY:        pty,
	})
	if len(sess.Command) == 2 && sess.Command[0] == "exit" {
		n, _ := strconv.Atoi(sess.Command[1])
		return n
	}
	if len(sess.Command) == 1 && sess.Command[0] == "cat" {
		io.Copy(sess, sess)
		return 0
	}
	if len(sess.Command) == 1 && sess.Command[0] == "regrant" && s.authn != nil {
		g, err := s.authn.Authenticate(sess.Context(), auth.Attempt{Key: sess.PublicKey(), Service: s.name, RemoteAddr: sess.RemoteAddr(), LoginOnly: true})
		if err != nil {
			fmt.Fprintln(sess.Stderr(), err)
			return 1
		}
		sess.Regrant(g)
		io.WriteString(sess.Stderr(), "regranted\n")
		<-sess.Context().Done()
		return 0
	}
	if len(sess.Command) == 1 && sess.Command[0] == "block" {
		s.blocked.Add(1)
		defer s.blocked.Add(-1)
		<-sess.Context().Done()
	}
	return 0
}

// tunnelService also takes port forwarding and serves the site alice-blog.
type tunnelService struct{ testService }

func (s *tunnelService) RequestTypes() []string {
	return []string{"tcpip-forward", "cancel-tcpip-forward"}
}

func (s *tunnelService) HandleRequest(_ *services.Conn, req *gossh.Request) (bool, []byte) {
	if req.Type == "tcpip-forward" {
		return true, binary.BigEndian.AppendUint32(nil, 4242)
	}
	return true, nil
}

func (s *tunnelService) ChannelTypes() []string { return []string{"direct-tcpip"} }

func (s *tunnelService) HandleChannel(c *services.Conn, nc gossh.NewChannel) {
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	go gossh.DiscardRequests(reqs)
	io.WriteString(ch, "tunnel for "+c.Grant.Account)
	ch.Close()
}

func (s *tunnelService) Site(account, name string) (http.Handler, bool) {
	if account != "alice" || name != "blog" {
		return nil, false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "alice's blog") }), true
}

// store wraps a test store: it records access-log entries, and can be taken "down".
type store struct {
	db.Store
	down       atomic.Bool // reads and Ping fail
	failAppend atomic.Bool // AppendAccessBatch fails

	mu      sync.Mutex
	access  []db.AccessEntry
	changed time.Time // when access last grew
}

var errDown = errors.New("database is down")

func (s *store) KeyByFingerprint(ctx context.Context, fp string) (db.Key, error) {
	if s.down.Load() {
		return db.Key{}, errDown
	}
	return s.Store.KeyByFingerprint(ctx, fp)
}

func (s *store) AccountByID(ctx context.Context, id int64) (db.Account, error) {
	if s.down.Load() {
		return db.Account{}, errDown
	}
	return s.Store.AccountByID(ctx, id)
}

func (s *store) FindRevocation(ctx context.Context, accountID int64, c db.CertRef) (db.Revocation, error) {
	if s.down.Load() {
		return db.Revocation{}, errDown
	}
	return s.Store.FindRevocation(ctx, accountID, c)
}

func (s *store) AccessVersion(ctx context.Context, accountID int64) (int64, error) {
	if s.down.Load() {
		return 0, errDown
	}
	return s.Store.AccessVersion(ctx, accountID)
}

func (s *store) Ping(ctx context.Context) error {
	if s.down.Load() {
		return errDown
	}
	return s.Store.Ping(ctx)
}

func (s *store) AppendAccessBatch(ctx context.Context, entries []db.AccessEntry, touched map[int64]time.Time) error {
	if s.failAppend.Load() {
		return errDown
	}
	if err := s.Store.AppendAccessBatch(ctx, entries, touched); err != nil {
		return err
	}
	s.mu.Lock()
	s.access = append(s.access, entries...)
	s.changed = time.Now()
	s.mu.Unlock()
	return nil
}

// entries returns the access-log entries written so far, once the gateway's writer, which
// writes them in the background, has written nothing new for a moment.
func (s *store) entries() []db.AccessEntry {
	const quiet, most = 200 * time.Millisecond, 5 * time.Second
	start := time.Now()
	for {
		s.mu.Lock()
		settled := time.Since(s.changed) >= quiet && time.Since(start) >= quiet
		out := append([]db.AccessEntry(nil), s.access...)
		s.mu.Unlock()
		if settled || time.Since(start) > most {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countingAuth counts decisions asked for, signed or not.
type countingAuth struct {
	gateway.Authenticator
	calls atomic.Int64
}

func (a *countingAuth) Authenticate(ctx context.Context, at auth.Attempt) (auth.Grant, error) {
	a.calls.Add(1)
	return a.Authenticator.Authenticate(ctx, at)
}

type fixture struct {
	t       *testing.T
	store   *store
	auth    *countingAuth
	gw      *gateway.Gateway
	ssh     string // listener serving every service
	sshPGS  string // listener bound to pgs
	httpURL string
	// metricsURL serves /metrics; httpURL does not.
	metricsURL string
	stop       func() error

	alice   *account
	hostKey gossh.PublicKey
	logs    *sshtest.SyncBuffer // the gateway's log
	pgs     *tunnelService      // the pgs test service
}

type account struct {
	db.Account
	login gossh.Signer // a registered login key
	ca    gossh.Signer // a registered CA
}

const domain = "example.test"

// start runs a gateway on loopback ports with admin and pgs test services, tuns as
// Unavailable and pipe not registered, and an account alice with a login key and a CA.
func start(t *testing.T, tweak ...func(*fixture, *gateway.Options)) *fixture {
	t.Helper()
	st := &store{Store: dbtest.Open(t)}
	f := &fixture{t: t, store: st}
	f.alice = f.newAccount("alice")

	f.pgs = &tunnelService{testService{name: auth.PGS}}
	admin := &testService{name: auth.Admin}
	router, err := services.NewRouter(
		admin,
		f.pgs,
		services.Unavailable(auth.Tuns),
	)
	if err != nil {
		t.Fatal(err)
	}
	hostKey := sshtest.NewSigner(t)
	f.hostKey = hostKey.PublicKey()
	f.auth = &countingAuth{Authenticator: auth.New(st, auth.Options{SignupsOpen: true})}
	admin.authn = f.auth
	logs := &sshtest.SyncBuffer{}
	f.logs = logs
	// The tests' clients connect from 127.0.0.1, some of them to be refused: that address is
	// exempt from the per-source limits and penalties unless a test says otherwise (and tests
	// of those limits connect from other loopback addresses too).
	limits := gateway.DefaultLimits()
	limits.Exempt = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	opts := gateway.Options{
		Limits:  &limits,
		Store:   st,
		Auth:    f.auth,
		Router:  router,
		HostKey: hostKey,
		SSH: []gateway.Listener{
			{Addr: "127.0.0.1:0"},
			{Addr: "127.0.0.1:0", Service: auth.PGS},
		},
		HTTPAddr:     "127.0.0.1:0",
		MetricsAddr:  "127.0.0.1:0",
		Domain:       domain,
		DrainTimeout: 2 * time.Second,
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, fn := range tweak {
		fn(f, &opts)
	}
	gw, err := gateway.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Listen(); err != nil {
		t.Fatal(err)
	}
	f.gw = gw
	addrs := gw.SSHAddrs()
	f.ssh, f.sshPGS = addrs[0].String(), addrs[1].String()
	f.httpURL = "http://" + gw.HTTPAddr().String()
	f.metricsURL = "http://" + gw.MetricsAddr().String()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx) }()
	var once sync.Once
	var stopErr error
	f.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(opts.DrainTimeout + 10*time.Second):
				stopErr = errors.New("Serve did not return after the drain timeout")
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := f.stop(); err != nil {
			t.Errorf("stopping the gateway: %v", err)
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	return f
}

// newAccount registers an account with a login key and a CA.
func (f *fixture) newAccount(name string) *account {
	f.t.Helper()
	ctx := context.Background()
	a := &account{login: sshtest.NewSigner(f.t), ca: sshtest.NewSigner(f.t)}
	acct, _, err := f.store.CreateAccount(ctx, name, newKey("laptop", db.KindLogin, a.login.PublicKey(), ""))
	if err != nil {
		f.t.Fatal(err)
	}
	a.Account = acct
	if _, err := f.store.AddKey(ctx, acct.ID, newKey("team-ca", db.KindCA, a.ca.PublicKey(), "cert-authority")); err != nil {
		f.t.Fatal(err)
	}
	return a
}

func newKey(name string, kind db.KeyKind, pub gossh.PublicKey, options string) db.NewKey {
	return db.NewKey{
		Name:        name,
		Kind:        kind,
		Algorithm:   pub.Type(),
		Fingerprint: auth.Fingerprint(pub),
		PublicKey:   strings.TrimSpace(string(gossh.MarshalAuthorizedKey(pub))),
		Options:     options,
	}
}

// certFor signs a user certificate for key with ca: key ID bob@laptop, serial 7, principals
// pgs, valid for an hour, no extensions unless edit adds them.
func certFor(t testing.TB, ca, key gossh.Signer, edit func(*gossh.Certificate)) gossh.Signer {
	t.Helper()
	now := time.Now()
	cert := &gossh.Certificate{
		Key:             key.PublicKey(),
		Serial:          7,
		CertType:        gossh.UserCert,
		KeyId:           "bob@laptop",
		ValidPrincipals: []string{"pgs"},
		ValidAfter:      uint64(now.Add(-time.Hour).Unix()),
		ValidBefore:     uint64(now.Add(time.Hour).Unix()),
		Permissions:     gossh.Permissions{CriticalOptions: map[string]string{}, Extensions: map[string]string{}},
	}
	if edit != nil {
		edit(cert)
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewCertSigner(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dialed is the result of one connection attempt.
type dialed struct {
	client *gossh.Client
	err    error
	banner string
}

// dial connects as user with the given auth methods, capturing the banner.
func (f *fixture) dial(addr, user string, methods ...gossh.AuthMethod) dialed {
	f.t.Helper()
	return f.dialFrom("127.0.0.1", addr, user, methods...)
}

// dialFrom is dial from the loopback address local (127.0.0.2, say): per-source limits count
// clients by address.
func (f *fixture) dialFrom(local, addr, user string, methods ...gossh.AuthMethod) dialed {
	f.t.Helper()
	var d dialed
	var mu sync.Mutex
	cfg := &gossh.ClientConfig{
		User:            user,
		Auth:            methods,
		HostKeyCallback: gossh.FixedHostKey(f.hostKey),
		BannerCallback: func(msg string) error {
			mu.Lock()
			d.banner += msg
			mu.Unlock()
			return nil
		},
		Timeout: 10 * time.Second,
	}
	dialer := net.Dialer{Timeout: cfg.Timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	conn, err := dialer.Dial("tcp", addr)
	if err != nil {
		d.err = err
		return d
	}
	sc, chans, reqs, err := gossh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		d.err = err
		return d
	}
	d.client = gossh.NewClient(sc, chans, reqs)
	if d.client != nil {
		f.t.Cleanup(func() { d.client.Close() })
	}
	return d
}

// connect dials as user with signer and fails the test unless it is accepted.
func (f *fixture) connect(addr, user string, signer gossh.Signer) *gossh.Client {
	f.t.Helper()
	d := f.dial(addr, user, gossh.PublicKeys(signer))
	if d.err != nil {
		f.t.Fatalf("connecting as %s: %v (banner %q)", user, d.err, d.banner)
	}
	return d.client
}

// refused dials as user with signer and fails the test unless it is refused; it returns the
// banner.
func (f *fixture) refused(addr, user string, signer gossh.Signer) string {
	f.t.Helper()
	d := f.dial(addr, user, gossh.PublicKeys(signer))
	if d.err == nil {
		f.t.Fatalf("connecting as %s was accepted, want refused", user)
	}
	return d.banner
}

// exec runs cmd in a new session and returns the service's report, stderr and exit status.
func exec(t testing.TB, c *gossh.Client, cmd string) (report, string, int) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr = &stdout, &stderr
	return finish(t, s.Run(cmd), &stdout, &stderr)
}

func finish(t testing.TB, runErr error, stdout, stderr *bytes.Buffer) (report, string, int) {
	t.Helper()
	code := 0
	var exitErr *gossh.ExitError
	switch {
	case errors.As(runErr, &exitErr):
		code = exitErr.ExitStatus()
	case runErr != nil:
		t.Fatalf("session: %v (stderr %q)", runErr, stderr.String())
	}
	var r report
	if stdout.Len() > 0 {
		if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
			t.Fatalf("service output %q: %v", stdout.String(), err)
		}
	}
	return r, stderr.String(), code
}
