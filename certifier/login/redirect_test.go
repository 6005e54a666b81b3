package login

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/portico-sh/portico/internal/oidctest"
)

// A redirect never takes the ID token or the refresh token off https: an https certifier (or
// provider) that answers with a redirect to plain http, as a proxy set up for http does, is
// not followed there. Go's client keeps the Authorization header (and a 307's body) on a
// redirect to the same host name, whatever the scheme.
func TestLoginFollowsNoRedirectToPlainHTTP(t *testing.T) {
	provider := oidctest.Start(t, oidctest.Options{Users: []oidctest.User{alice}, Clients: []string{"portico"}})

	// What an eavesdropper on plain http would see.
	var mu sync.Mutex
	var leaked []string
	clear := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		leaked = append(leaked, fmt.Sprintf("%s %s Authorization=%q body=%q", r.Method, r.URL, r.Header.Get("Authorization"), body))
		mu.Unlock()
		http.Error(w, "gone", http.StatusNotFound)
	}))
	t.Cleanup(clear.Close)
	_, clearPort, _ := net.SplitHostPort(clear.Listener.Addr().String())

	// The certifier at https://example.com:PORT (httptest's certificate names example.com),
	// whose /sign is redirected to http://example.com:CLEAR/sign.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /config", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer": %q, "client_id": "portico", "scopes": ["openid", "email", "offline_access"]}`, provider.Issuer)
	})
	mux.HandleFunc("POST /sign", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://example.com:"+clearPort+"/sign", http.StatusTemporaryRedirect)
	})
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	certifierURL := "https://example.com:" + port

	// A client that trusts the test certificate and finds example.com on loopback.
	transport := srv.Client().Transport.(*http.Transport).Clone()
	transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, p, err := net.SplitHostPort(addr); err == nil && host == "example.com" {
			addr = net.JoinHostPort("127.0.0.1", p)
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	client := &http.Client{Transport: transport}

	// Alice is logged in: a refresh token is on file, the certificate is missing.
	tok, err := provider.Token(t.Context(), "portico", alice.Username, alice.Password)
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("token: %v (refresh token %q)", err, tok.RefreshToken)
	}
	configDir := t.TempDir()
	files, _ := FilesFor(configDir, certifierURL)
	if err := os.MkdirAll(files.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(files.RefreshToken, []byte(tok.RefreshToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = Run(t.Context(), Options{Certifier: certifierURL, ConfigDir: configDir, Refresh: true, Quiet: true,
		Out: io.Discard, Result: io.Discard, HTTPClient: client})
	if err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Errorf("login with a certifier that redirects to plain http: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(leaked) != 0 {
		t.Errorf("sent over plain http: %q", leaked)
	}
}
