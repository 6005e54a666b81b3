package login

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/certifier"
	"github.com/portico-sh/portico/internal/oidctest"
)

var (
	alice = oidctest.User{Subject: "u-alice", Username: "alice", Password: "pw-alice", Email: "alice@example.com", Groups: []string{"web-team"}}
	bob   = oidctest.User{Subject: "u-bob", Username: "bob", Password: "pw-bob", Email: "bob@example.com", Groups: []string{"sales"}}
)

type fixture struct {
	t         *testing.T
	provider  *oidctest.Provider
	url       string
	configDir string
	offset    time.Duration // the certifier's clock, ahead of real time
	mu        sync.Mutex
	config    atomic.Pointer[string] // if set, what GET /config answers instead of the certifier
}

func (f *fixture) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Now().Add(f.offset)
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offset += d
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, configDir: t.TempDir()}
	f.provider = oidctest.Start(t, oidctest.Options{Users: []oidctest.User{alice, bob}, Clients: []string{"portico"}})
	state, err := certifier.OpenState(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { state.Close() })
	mapping, _ := certifier.ParseMapping([]string{"web-team=pgs,tuns"})
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	ca, _ := gossh.NewSignerFromKey(priv)
	s, err := certifier.New(certifier.Config{
		CA: ca, Issuer: f.provider.Issuer, ClientID: "portico", Mapping: mapping, GroupsClaim: "groups",
		Scopes: []string{"openid", "email", "profile", "offline_access"}, MaxTTL: time.Hour,
		Extensions: []string{"permit-pty"}, State: state, Now: f.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	handler := s.Handler()
	h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := f.config.Load(); c != nil && r.URL.Path == "/config" {
			io.WriteString(w, *c)
			return
		}
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(h.Close)
	f.url = h.URL
	return f
}

// syncWriter collects what a login prints, for the test to read while it runs.
type syncWriter struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{}
}

func newSyncWriter() *syncWriter { return &syncWriter{changed: make(chan struct{}, 1)} }

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	select {
	case w.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// waitFor waits until the writer's text matches re.
func (w *syncWriter) waitFor(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if m := re.FindStringSubmatch(w.String()); m != nil {
			return m
		}
		select {
		case <-w.changed:
		case <-deadline:
			t.Fatalf("no %v in %q", re, w.String())
		}
	}
}

var deviceRe = regexp.MustCompile(`open (http\S+)\nand enter the code (\S+)\n`)

// login runs the device flow and approves it at the provider as user, as a browser would.
func (f *fixture) login(user oidctest.User, ttl string) (string, error) {
	f.t.Helper()
	out, result := newSyncWriter(), newSyncWriter()
	done := make(chan error, 1)
	go func() {
		done <- Run(f.t.Context(), Options{Certifier: f.url, ConfigDir: f.configDir, TTL: ttl, Out: out, Result: result})
	}()
	m := out.waitFor(f.t, deviceRe)
	if err := oidctest.NewBrowser().ApproveDevice(f.t.Context(), m[1], m[2], user.Username, user.Password, true); err != nil {
		f.t.Fatal(err)
	}
	err := <-done
	return result.String(), err
}

func (f *fixture) refresh(now time.Time) error {
	return Run(f.t.Context(), Options{Certifier: f.url, ConfigDir: f.configDir, Refresh: true, Quiet: true,
		Out: io.Discard, Result: io.Discard, Now: func() time.Time { return now }})
}

func (f *fixture) cert() *gossh.Certificate {
	f.t.Helper()
	files, _ := FilesFor(f.configDir, f.url)
	c, err := files.LoadCertificate(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

// The device flow: the URL and code are printed, the user approves at the provider, and the key,
// certificate and refresh token are written (the secrets 0600) and the outcome printed.
func TestDeviceLogin(t *testing.T) {
	f := newFixture(t)
	result, err := f.login(alice, "")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := FilesFor(f.configDir, f.url)
	for _, want := range []string{"Logged in as alice@example.com", "principals:  pgs, tuns", "valid until: ", "(1h0m0s from now)", files.Certificate} {
		if !strings.Contains(result, want) {
			t.Errorf("output %q lacks %q", result, want)
		}
	}
	if m := mode(t, files.Key); m != 0o600 {
		t.Errorf("key mode %04o", m)
	}
	if m := mode(t, files.RefreshToken); m != 0o600 {
		t.Errorf("refresh token mode %04o", m)
	}
	if m := mode(t, files.Dir); m != 0o700 {
		t.Errorf("directory mode %04o", m)
	}
	key, err := files.LoadOrCreateKey()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := files.LoadCertificate(key.PublicKey())
	if err != nil || cert.KeyId != "alice@example.com" {
		t.Fatalf("certificate %v, %v", cert, err)
	}
	// A second login keeps the key and replaces the certificate.
	if _, err := f.login(alice, "10m"); err != nil {
		t.Fatal(err)
	}
	again := f.cert()
	if again.Serial == cert.Serial || string(again.Key.Marshal()) != string(cert.Key.Marshal()) ||
		time.Duration(again.ValidBefore-again.ValidAfter)*time.Second != 11*time.Minute {
		t.Errorf("second login: serial %d (first %d), validity %v", again.Serial, cert.Serial, time.Duration(again.ValidBefore-again.ValidAfter)*time.Second)
	}
}

// A user whose groups map to nothing is told so, and nothing is written.
func TestLoginRefused(t *testing.T) {
	f := newFixture(t)
	_, err := f.login(bob, "")
	if err == nil || !strings.Contains(err.Error(), "the certifier refused: no services") || !strings.Contains(err.Error(), `"sales"`) {
		t.Fatalf("bob's login: %v", err)
	}
	files, _ := FilesFor(f.configDir, f.url)
	if _, err := os.Stat(files.Certificate); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a certificate was written: %v", err)
	}
}

// --browser: the authorization code flow with PKCE through a loopback redirect.
func TestBrowserLogin(t *testing.T) {
	f := newFixture(t)
	browsed := make(chan error, 1)
	result := newSyncWriter()
	err := Run(t.Context(), Options{
		Certifier: f.url, ConfigDir: f.configDir, Browser: true, Out: io.Discard, Result: result,
		OpenBrowser: func(url string) error {
			if !strings.Contains(url, "code_challenge_method=S256") || !strings.Contains(url, "redirect_uri=http%3A%2F%2F127.0.0.1%3A") {
				t.Errorf("authorization URL %s", url)
			}
			go func() {
				page, err := oidctest.NewBrowser().LogIn(context.WithoutCancel(t.Context()), url, "alice", alice.Password)
				if err == nil && !strings.Contains(page.Body, "you are logged in") {
					err = errors.New(page.Body)
				}
				browsed <- err
			}()
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-browsed; err != nil {
		t.Errorf("browser: %v", err)
	}
	if !strings.Contains(result.String(), "Logged in as alice@example.com") || f.cert().KeyId != "alice@example.com" {
		t.Errorf("output %q", result.String())
	}
}

// --refresh does nothing while two thirds of the life are left, then renews quietly with the
// refresh token; concurrent refreshes use it one after another.
func TestRefresh(t *testing.T) {
	f := newFixture(t)
	if _, err := f.login(alice, ""); err != nil {
		t.Fatal(err)
	}
	first := f.cert()
	if err := f.refresh(time.Now().Add(30 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	if f.cert().Serial != first.Serial {
		t.Fatal("a certificate with half its life left was renewed")
	}
	// 45 minutes on: a quarter of the life is left. The certifier's clock moves on too.
	f.advance(45 * time.Minute)
	later := time.Now().Add(45 * time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() { errs <- f.refresh(later) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("refresh: %v", err)
		}
	}
	renewed := f.cert()
	if renewed.Serial == first.Serial || renewed.KeyId != "alice@example.com" || NeedsRefresh(renewed, later) {
		t.Errorf("renewed certificate: serial %d, key ID %q", renewed.Serial, renewed.KeyId)
	}

	// Groups taken away at the provider: the next refresh is refused by the certifier.
	f.provider.SetGroups("alice", []string{"sales"})
	f.advance(-45 * time.Minute) // the certifier's clock back to real time, where the provider's tokens are valid
	if err := f.refresh(time.Now().Add(95 * time.Minute)); err == nil || !strings.Contains(err.Error(), "no services") {
		t.Errorf("refresh without groups: %v", err)
	}
	// Logged out at the provider: the refresh token is refused, and the user is told to log in.
	f.provider.SetGroups("alice", alice.Groups)
	f.provider.RevokeRefreshTokens("alice")
	err := f.refresh(time.Now().Add(95 * time.Minute))
	if !errors.Is(err, ErrNotLoggedIn) || !strings.Contains(err.Error(), "run portico login --certifier "+f.url) {
		t.Errorf("refresh with a revoked refresh token: %v", err)
	}
}

// --refresh never starts an interactive login.
func TestRefreshWithoutLogin(t *testing.T) {
	f := newFixture(t)
	if err := f.refresh(time.Now()); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("refresh before any login: %v", err)
	}
}

func TestNeedsRefresh(t *testing.T) {
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	cert := func(after, before time.Time) *gossh.Certificate {
		return &gossh.Certificate{ValidAfter: uint64(after.Unix()), ValidBefore: uint64(before.Unix())}
	}
	// Issued at 12:00 for an hour (valid from 11:59).
	hour := cert(at.Add(-time.Minute), at.Add(time.Hour))
	tests := []struct {
		cert *gossh.Certificate
		now  time.Time
		want bool
	}{
		{hour, at, false},
		{hour, at.Add(40*time.Minute - time.Second), false},
		{hour, at.Add(40*time.Minute + time.Second), true},
		{hour, at.Add(2 * time.Hour), true},
		{cert(at.Add(-time.Minute), at.Add(9*time.Second)), at.Add(5 * time.Second), false},
		{cert(at.Add(-time.Minute), at.Add(9*time.Second)), at.Add(7 * time.Second), true},
		{cert(at, at.Add(30*time.Second)), at.Add(15 * time.Second), false}, // not from the certifier: life from valid_after
		{nil, at, true},
		{&gossh.Certificate{ValidAfter: 0, ValidBefore: gossh.CertTimeInfinity}, at, false},
	}
	for i, tt := range tests {
		if got := NeedsRefresh(tt.cert, tt.now); got != tt.want {
			t.Errorf("%d: NeedsRefresh = %v, want %v", i, got, tt.want)
		}
	}
}

func TestWriteSSHConfig(t *testing.T) {
	var b strings.Builder
	err := WriteSSHConfig(&b, SSHConfigOptions{Certifier: "https://cert.example.com", Host: "example.com", Port: 2222,
		ConfigDir: "/home/al ice/.config/portico", Command: "/usr/local/bin/portico"})
	if err != nil {
		t.Fatal(err)
	}
	dir := `"/home/al ice/.config/portico/certifiers/cert.example.com/id_ed25519`
	want := `# portico: certificates from https://cert.example.com, renewed before they expire.
Match host example.com,pgs,tuns,pipe exec "/usr/local/bin/portico login --certifier https://cert.example.com --config-dir '/home/al ice/.config/portico' --refresh --quiet"

Host example.com
  Port 2222
  IdentityFile ` + dir + `"
  CertificateFile ` + dir + `-cert.pub"
  IdentitiesOnly yes
`
	for _, alias := range []string{"pgs", "tuns", "pipe"} {
		want += "\nHost " + alias + "\n  HostName example.com\n  Port 2222\n  User " + alias + "\n  IdentityFile " + dir + "\"\n  CertificateFile " + dir + "-cert.pub\"\n  IdentitiesOnly yes\n"
	}
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := WriteSSHConfig(&b, SSHConfigOptions{Certifier: "http://127.0.0.1:8443/x%25y", Host: "10.0.0.1", ConfigDir: "/c", Command: "/opt/my tools/portico"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `exec "'/opt/my tools/portico' login --certifier 'http://127.0.0.1:8443/x%%25y' --config-dir /c --refresh --quiet"`) || strings.Contains(b.String(), "Port") {
		t.Errorf("quoting and no port:\n%s", b.String())
	}
	for _, bad := range []SSHConfigOptions{
		{Certifier: "http://cert.example.com", Host: "h", ConfigDir: "/c", Command: "portico"},   // plain http off loopback
		{Certifier: "https://c", Host: "h\nProxyCommand x", ConfigDir: "/c", Command: "portico"}, // an injected line
		{Certifier: "https://c", Host: "*", ConfigDir: "/c", Command: "portico"},                 // a pattern
		{Certifier: "https://c", Host: "h", Port: 70000, ConfigDir: "/c", Command: "portico"},    // a port
		{Certifier: "https://c", Host: "h", ConfigDir: "/c\"x", Command: "portico"},              // a quote
		{Certifier: "https://c", Host: "h", ConfigDir: "/c/${HOME}", Command: "portico"},         // ssh's ${VAR}
		{Certifier: "https://c", Host: "h", ConfigDir: "/c", Command: "/bin/port'ico"},           // a quote
	} {
		if err := WriteSSHConfig(io.Discard, bad); err == nil {
			t.Errorf("%+v was written", bad)
		}
	}
	if slices.Contains(Aliases, "admin") {
		t.Error("admin is not an alias")
	}
}

// What the certifier and the provider send is checked before the user's browser, codes or
// tokens go anywhere, and before it reaches the terminal.
func TestLoginDistrustsWhatItIsSent(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	mux.HandleFunc("GET /config", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer": %q, "client_id": "portico", "scopes": ["openid"]}`, srv.URL)
	})
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer": %q, "authorization_endpoint": "http://idp.example.com/authorize",
			"token_endpoint": %q, "device_authorization_endpoint": %q, "jwks_uri": %q}`,
			srv.URL, srv.URL+"/token", srv.URL+"/device", srv.URL+"/keys")
	})
	err := Run(t.Context(), Options{Certifier: srv.URL, ConfigDir: t.TempDir(), Out: io.Discard, Result: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "not https") {
		t.Errorf("a provider with a plain-http endpoint elsewhere: %v", err)
	}
	if err := Run(t.Context(), Options{Certifier: "http://cert.example.com", ConfigDir: t.TempDir()}); err == nil {
		t.Error("a plain-http certifier off loopback was used")
	}
	if got := printable("https://idp/\x1b]0;pwned\x07device\r\n"); got != "https://idp/]0;pwneddevice" {
		t.Errorf("printable = %q", got)
	}
}

// The refresh token goes only to the provider that issued it: a certifier whose /config later
// names another provider (or client), because it was taken over or its answer was, gets no
// refresh token sent there; the user is told to log in again.
func TestRefreshTokenStaysWithItsProvider(t *testing.T) {
	f := newFixture(t)
	if _, err := f.login(alice, ""); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var received []string
	mux := http.NewServeMux()
	hostile := httptest.NewServer(mux)
	t.Cleanup(hostile.Close)
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer": %q, "authorization_endpoint": %q, "token_endpoint": %q, "device_authorization_endpoint": %q, "jwks_uri": %q}`,
			hostile.URL, hostile.URL+"/authorize", hostile.URL+"/token", hostile.URL+"/device", hostile.URL+"/keys")
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		received = append(received, r.PostForm.Get("refresh_token"))
		mu.Unlock()
		http.Error(w, `{"error": "invalid_grant"}`, http.StatusBadRequest)
	})
	for name, config := range map[string]string{
		"another provider": fmt.Sprintf(`{"issuer": %q, "client_id": "portico", "scopes": ["openid", "offline_access"]}`, hostile.URL),
		"another client":   fmt.Sprintf(`{"issuer": %q, "client_id": "other-app", "scopes": ["openid", "offline_access"]}`, f.provider.Issuer),
	} {
		f.config.Store(&config)
		err := f.refresh(time.Now().Add(50 * time.Minute))
		if !errors.Is(err, ErrNotLoggedIn) || !strings.Contains(err.Error(), "run portico login") {
			t.Errorf("%s: refresh: %v", name, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(received) != 0 {
		t.Errorf("the refresh token was sent to another provider: %q", received)
	}
	// The certifier names its provider again: the refresh works.
	f.config.Store(nil)
	if err := f.refresh(time.Now().Add(50 * time.Minute)); err != nil {
		t.Errorf("refresh: %v", err)
	}
}
