package login

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/coreos/go-oidc/v3/oidc"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/oauth2"

	"github.com/portico-sh/portico/certifier"
)

// Bounds of the client's requests.
const (
	requestTimeout = 30 * time.Second // one request to the certifier or the provider
	maxResponse    = 1 << 20          // bytes of an answer
	browserTimeout = 10 * time.Minute // how long the loopback redirect is awaited
	callbackPath   = "/callback"
)

// Options are what `portico login` was asked to do.
type Options struct {
	Certifier string // the certifier's URL
	ConfigDir string // the user's portico config directory
	Browser   bool   // use a loopback redirect with PKCE instead of the device flow
	Refresh   bool   // renew with the refresh token, only when a third of the life is left
	TTL       string // how long the certificate should live (the certifier clamps it)
	Reason    string // why, for the certifier's audit log
	// Out gets the instructions (the URL and code to open); Result the outcome (who, principals,
	// expiry), unless Quiet.
	Out, Result io.Writer
	Quiet       bool
	// OpenBrowser opens a URL in the user's browser (nil: $BROWSER, xdg-open or open).
	OpenBrowser func(url string) error
	HTTPClient  *http.Client     // nil: one with timeouts
	Now         func() time.Time // nil: time.Now
}

// ErrNotLoggedIn says a refresh is impossible without logging in again.
var ErrNotLoggedIn = errors.New("not logged in")

// Run logs in (or refreshes) and writes the certificate beside the key.
func Run(ctx context.Context, o Options) error {
	if err := certifier.CheckServiceURL(o.Certifier); err != nil {
		return fmt.Errorf("certifier: %w", err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: requestTimeout}
	}
	// Tokens go to the certifier and the provider: no redirect takes them off https.
	client := *o.HTTPClient
	client.CheckRedirect = certifier.CheckRedirect
	o.HTTPClient = &client
	if o.OpenBrowser == nil {
		o.OpenBrowser = openBrowser
	}
	if o.ConfigDir == "" {
		return errors.New("no config directory (set PORTICO_CONFIG_DIR or HOME)")
	}
	files, err := FilesFor(o.ConfigDir, o.Certifier)
	if err != nil {
		return err
	}
	// A refresh holds the lock throughout, so that ssh processes started together use the
	// refresh token one after another (the second finds the certificate fresh). A login only
	// holds it while it makes the key: the user may take minutes at the provider.
	unlock, err := files.Lock()
	if err != nil {
		return fmt.Errorf("config directory: %w", err)
	}
	key, err := files.LoadOrCreateKey()
	if !o.Refresh || err != nil {
		unlock()
	} else {
		defer unlock()
	}
	if err != nil {
		return err
	}

	var refresh string
	if o.Refresh {
		// A certificate that is missing, unreadable or for another key is renewed too.
		if cert, err := files.LoadCertificate(key.PublicKey()); err == nil && !NeedsRefresh(cert, o.Now()) {
			return nil
		}
		if refresh, err = files.readRefreshToken(); err != nil {
			return err
		}
		if refresh == "" {
			return fmt.Errorf("%w to %s: run portico login --certifier %s", ErrNotLoggedIn, o.Certifier, o.Certifier)
		}
	}

	ctx = oidc.ClientContext(ctx, o.HTTPClient)
	cfg, err := fetchConfig(ctx, o.HTTPClient, o.Certifier)
	if err != nil {
		return err
	}
	// The refresh token goes only to the provider and client it was issued by and for: a
	// certifier that names another since the login (taken over, or its answer) gets nothing.
	current := providerRecord{Issuer: cfg.Issuer, ClientID: cfg.ClientID}
	if o.Refresh {
		rec, ok, err := files.readProvider()
		if err != nil {
			return err
		}
		if ok && rec != current {
			return fmt.Errorf("%w to %s: the certifier now names the identity provider %s (client %q), not %s (client %q) where you logged in; if that is right, run portico login --certifier %s",
				ErrNotLoggedIn, o.Certifier, printable(cfg.Issuer), printable(cfg.ClientID), rec.Issuer, rec.ClientID, o.Certifier)
		}
	}
	provider, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return fmt.Errorf("identity provider %s: %w", cfg.Issuer, err)
	}
	endpoint := provider.Endpoint()
	// The provider's endpoints get the user's browser, codes and tokens: https only (http on
	// loopback), whatever its discovery document says.
	for _, u := range []string{endpoint.AuthURL, endpoint.TokenURL, endpoint.DeviceAuthURL} {
		if u == "" {
			continue
		}
		if err := certifier.CheckServiceURL(u); err != nil {
			return fmt.Errorf("identity provider %s: an endpoint is not https: %w", cfg.Issuer, err)
		}
	}
	endpoint.AuthStyle = oauth2.AuthStyleInParams // a public client: client_id in the form, no secret
	oc := oauth2.Config{ClientID: cfg.ClientID, Endpoint: endpoint, Scopes: cfg.Scopes}

	var tok *oauth2.Token
	switch {
	case o.Refresh:
		tok, err = oc.TokenSource(ctx, &oauth2.Token{RefreshToken: refresh}).Token()
		if err != nil {
			return fmt.Errorf("%w to %s: the identity provider refused the refresh token (%s): run portico login --certifier %s",
				ErrNotLoggedIn, o.Certifier, oauthError(err), o.Certifier)
		}
	case o.Browser:
		tok, err = browserFlow(ctx, o, oc)
	default:
		tok, err = deviceFlow(ctx, o, oc)
	}
	if err != nil {
		return err
	}
	idToken, _ := tok.Extra("id_token").(string)
	if idToken == "" {
		return fmt.Errorf("the identity provider %s gave no ID token (is openid among the scopes %v?)", cfg.Issuer, cfg.Scopes)
	}
	// A rotated refresh token is kept before anything else can fail: the old one may be dead.
	// So is the provider it is for (a refresh token from before that was recorded is taken to
	// be for this one).
	if tok.RefreshToken != "" && tok.RefreshToken != refresh || o.Refresh {
		if err := files.writeProvider(current); err != nil {
			return err
		}
	}
	if tok.RefreshToken != "" && tok.RefreshToken != refresh {
		if err := writeFileAtomic(files.RefreshToken, []byte(tok.RefreshToken+"\n"), 0o600); err != nil {
			return err
		}
	}

	line, cert, err := sign(ctx, o, idToken, key.PublicKey())
	if err != nil {
		return err
	}
	if err := writeFileAtomic(files.Certificate, []byte(line+"\n"), 0o600); err != nil {
		return err
	}
	if !o.Quiet {
		report(o.Result, o.Certifier, files, cert, o.Now())
	}
	return nil
}

// fetchConfig reads GET /config.
func fetchConfig(ctx context.Context, client *http.Client, base string) (certifier.ConfigResponse, error) {
	var cfg certifier.ConfigResponse
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/config", nil)
	if err != nil {
		return cfg, err
	}
	body, status, err := do(client, req)
	if err != nil {
		return cfg, fmt.Errorf("certifier %s: %w", base, err)
	}
	if status != http.StatusOK {
		return cfg, fmt.Errorf("certifier %s: GET /config: HTTP %d", base, status)
	}
	if err := json.Unmarshal(body, &cfg); err != nil {
		return cfg, fmt.Errorf("certifier %s: GET /config: %w", base, err)
	}
	if err := certifier.CheckServiceURL(cfg.Issuer); err != nil {
		return cfg, fmt.Errorf("certifier %s names an identity provider that is not https: %w", base, err)
	}
	if cfg.ClientID == "" {
		return cfg, fmt.Errorf("certifier %s: GET /config names no client ID", base)
	}
	if !slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
		cfg.Scopes = append([]string{oidc.ScopeOpenID}, cfg.Scopes...)
	}
	return cfg, nil
}

func do(client *http.Client, req *http.Request) ([]byte, int, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, 0, err
	}
	if len(body) > maxResponse {
		return nil, 0, fmt.Errorf("%s %s: the answer has more than %d bytes", req.Method, req.URL.Path, maxResponse)
	}
	return body, resp.StatusCode, nil
}

// deviceFlow is RFC 8628: print the URL and code, wait until the user approves.
func deviceFlow(ctx context.Context, o Options, oc oauth2.Config) (*oauth2.Token, error) {
	da, err := oc.DeviceAuth(ctx)
	if err != nil {
		return nil, fmt.Errorf("identity provider: starting the device login: %s", oauthError(err))
	}
	fmt.Fprintf(o.Out, "To log in, open %s\nand enter the code %s\n", printable(da.VerificationURI), printable(da.UserCode))
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(o.Out, "(or open %s)\n", printable(da.VerificationURIComplete))
	}
	fmt.Fprintf(o.Out, "Waiting for you to log in...\n")
	tok, err := oc.DeviceAccessToken(ctx, da)
	if err != nil {
		return nil, fmt.Errorf("the device login did not finish: %s", oauthError(err))
	}
	return tok, nil
}

// browserFlow is RFC 8252: the authorization code flow with PKCE and a redirect to a
// loopback port this process listens on.
func browserFlow(ctx context.Context, o Options, oc oauth2.Config) (*oauth2.Token, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	oc.RedirectURL = "http://" + l.Addr().String() + callbackPath
	verifier := oauth2.GenerateVerifier()
	state := oauth2.GenerateVerifier()
	authURL := oc.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))

	type answer struct {
		code string
		err  error
	}
	answers := make(chan answer, 1)
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    16 << 10,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			if r.URL.Path != callbackPath || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
				http.Error(w, "not the login this portico login is waiting for", http.StatusBadRequest)
				return
			}
			a := answer{code: q.Get("code")}
			if e := q.Get("error"); e != "" {
				a.err = fmt.Errorf("the identity provider refused the login: %s %s", e, q.Get("error_description"))
			} else if a.code == "" {
				a.err = errors.New("the identity provider sent no code")
			}
			select {
			case answers <- a:
			default:
				http.Error(w, "this login is already done", http.StatusConflict)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			if a.err != nil {
				fmt.Fprintf(w, "portico login failed: %v\n", a.err)
				return
			}
			io.WriteString(w, "portico login: you are logged in. You can close this window.\n")
		}),
	}
	go srv.Serve(l)
	defer srv.Close()

	fmt.Fprintf(o.Out, "To log in, open this address in your browser (opening it for you):\n%s\nWaiting for you to log in...\n", printable(authURL))
	_ = o.OpenBrowser(authURL)
	ctx, cancel := context.WithTimeout(ctx, browserTimeout)
	defer cancel()
	var a answer
	select {
	case a = <-answers:
	case <-ctx.Done():
		return nil, fmt.Errorf("no login within %v", browserTimeout)
	}
	if a.err != nil {
		return nil, a.err
	}
	tok, err := oc.Exchange(ctx, a.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, fmt.Errorf("identity provider: exchanging the code: %s", oauthError(err))
	}
	return tok, nil
}

// openBrowser opens url with $BROWSER, else the desktop's opener; it does not wait.
func openBrowser(url string) error {
	name := os.Getenv("BROWSER")
	if name == "" {
		switch runtime.GOOS {
		case "darwin":
			name = "open"
		case "windows":
			return errors.New("open the address yourself")
		default:
			name = "xdg-open"
		}
	}
	cmd := exec.Command(name, url)
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}

// oauthError shows an OAuth error's code and description.
func oauthError(err error) string {
	if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok && re.ErrorCode != "" {
		if re.ErrorDescription != "" {
			return printable(re.ErrorCode + ": " + re.ErrorDescription)
		}
		return printable(re.ErrorCode)
	}
	return printable(err.Error())
}

// sign posts the key to the certifier and checks what comes back is a certificate for it.
func sign(ctx context.Context, o Options, idToken string, key gossh.PublicKey) (string, *gossh.Certificate, error) {
	body, _ := json.Marshal(certifier.SignRequest{
		PublicKey: strings.TrimSpace(string(gossh.MarshalAuthorizedKey(key))),
		TTL:       o.TTL,
		Reason:    o.Reason,
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(o.Certifier, "/")+"/sign", bytes.NewReader(body))
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Authorization", "Bearer "+idToken)
	req.Header.Set("Content-Type", "application/json")
	data, status, err := do(o.HTTPClient, req)
	if err != nil {
		return "", nil, fmt.Errorf("certifier %s: %w", o.Certifier, err)
	}
	if status != http.StatusOK {
		var refusal certifier.ErrorResponse
		if json.Unmarshal(data, &refusal) == nil && refusal.Error != "" {
			return "", nil, fmt.Errorf("the certifier refused: %s", printable(refusal.Error))
		}
		return "", nil, fmt.Errorf("certifier %s: POST /sign: HTTP %d", o.Certifier, status)
	}
	var resp certifier.SignResponse
	if err := json.Unmarshal(data, &resp); err != nil {
		return "", nil, fmt.Errorf("certifier %s: POST /sign: %w", o.Certifier, err)
	}
	pub, _, _, _, err := gossh.ParseAuthorizedKey([]byte(resp.Certificate))
	cert, ok := pub.(*gossh.Certificate)
	if err != nil || !ok || cert.CertType != gossh.UserCert || !bytes.Equal(cert.Key.Marshal(), key.Marshal()) {
		return "", nil, fmt.Errorf("certifier %s answered with something that is not a user certificate for this key", o.Certifier)
	}
	// Written as parsed: nothing else the answer held reaches the file ssh reads.
	line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(cert))) + " " + strings.ReplaceAll(printable(cert.KeyId), " ", "_")
	return line, cert, nil
}

// printable drops control characters from text that came from the provider or the certifier
// before it reaches the user's terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, s)
}

// report prints who the certificate says the user is.
func report(w io.Writer, certifierURL string, files Files, cert *gossh.Certificate, now time.Time) {
	before := time.Unix(int64(cert.ValidBefore), 0).UTC()
	fmt.Fprintf(w, "Logged in as %s\n", printable(cert.KeyId))
	fmt.Fprintf(w, "  principals:  %s\n", printable(strings.Join(cert.ValidPrincipals, ", ")))
	left := before.Sub(now)
	if left >= time.Minute {
		left = left.Round(time.Minute)
	}
	fmt.Fprintf(w, "  valid until: %s (%s from now)\n", before.Format(time.RFC3339), left.Round(time.Second))
	fmt.Fprintf(w, "  key:         %s\n", files.Key)
	fmt.Fprintf(w, "  certificate: %s\n", files.Certificate)
	fmt.Fprintf(w, "  certifier:   %s\n", certifierURL)
}
