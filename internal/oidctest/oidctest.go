package oidctest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// GroupsClaim is the ID-token claim that lists a user's groups; ScopeGroups is the scope that
// asks for it at providers such as Dex (this provider gives it either way).
const (
	GroupsClaim = "groups"
	ScopeGroups = "groups"
)

// Paths of the provider's own pages.
const (
	devicePath        = "/device"
	deviceApprovePath = "/device/approve"
	loginPath         = "/login"
)

// User is one account at the provider.
type User struct {
	Subject         string
	Username        string
	Password        string
	Email           string
	EmailUnverified bool     // email_verified is false
	Groups          []string // nil: no groups claim at all
}

// Options configure a provider.
type Options struct {
	Users   []User
	Clients []string // IDs of public clients; each may use every flow
	// IDTokenLifetime is how long ID tokens live (default 1h).
	IDTokenLifetime time.Duration
	// JWTAccessTokens makes access tokens signed JWTs (typ JWT, aud the client, as zitadel
	// issues them) carrying the user's email and groups, as Keycloak, Azure AD and Okta can be
	// configured to; else they are opaque.
	JWTAccessTokens bool
}

// Provider is a running OpenID Connect provider on a loopback port.
type Provider struct {
	Issuer string
	store  *storage
	server *http.Server
	done   chan struct{}
}

// Start runs a provider for the test and stops it when the test ends.
func Start(t testing.TB, opts Options) *Provider {
	t.Helper()
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// New starts a provider on a free loopback port. Close stops it.
func New(opts Options) (*Provider, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	lifetime := opts.IDTokenLifetime
	if lifetime == 0 {
		lifetime = time.Hour
	}
	st := &storage{
		users:         map[string]*User{},
		clients:       map[string]*client{},
		authRequests:  map[string]*authRequest{},
		codes:         map[string]string{},
		accessTokens:  map[string]*accessToken{},
		refreshTokens: map[string]*refreshToken{},
		devices:       map[string]*op.DeviceAuthorizationState{},
		userCodes:     map[string]string{},
		key:           &signingKey{id: newID(), key: key},
	}
	for _, u := range opts.Users {
		u.Groups = slices.Clone(u.Groups)
		st.users[u.Subject] = &u
	}
	for _, id := range opts.Clients {
		st.clients[id] = &client{id: id, redirectURIs: []string{"http://127.0.0.1/callback"}, idTokenLifetime: lifetime, jwtAccessTokens: opts.JWTAccessTokens}
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	issuer := "http://" + l.Addr().String()
	config := &op.Config{
		CryptoKey:             sha256.Sum256([]byte(issuer)),
		CodeMethodS256:        true,
		GrantTypeRefreshToken: true,
		SupportedUILocales:    []language.Tag{language.English},
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     5 * time.Minute,
			PollInterval: time.Second,
			UserFormPath: devicePath,
			UserCode:     op.UserCodeBase20,
		},
	}
	provider, err := op.NewProvider(config, st, op.StaticIssuer(issuer), op.WithAllowInsecure())
	if err != nil {
		l.Close()
		return nil, err
	}
	p := &Provider{Issuer: issuer, store: st, done: make(chan struct{})}
	mux := http.NewServeMux()
	pages := &pages{store: st, callback: op.AuthCallbackURL(provider), issuer: issuer}
	mux.HandleFunc("GET "+devicePath, pages.deviceForm)
	mux.HandleFunc("POST "+deviceApprovePath, pages.deviceApprove)
	mux.HandleFunc("GET "+loginPath, pages.loginForm)
	mux.HandleFunc("POST "+loginPath, pages.login)
	mux.Handle("/", provider)
	p.server = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
	}
	go func() {
		defer close(p.done)
		_ = p.server.Serve(l)
	}()
	return p, nil
}

// Close stops the provider.
func (p *Provider) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.server.Shutdown(ctx)
	<-p.done
}

// SetGroups changes a user's groups, as an administrator of the provider would; tokens issued
// from now on (also by a refresh) carry them.
func (p *Provider) SetGroups(username string, groups []string) error {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	u := p.store.userByName(username)
	if u == nil {
		return fmt.Errorf("no user %q", username)
	}
	u.Groups = slices.Clone(groups)
	return nil
}

// RevokeRefreshTokens ends every refresh token of a user, as logging them out everywhere does.
// It returns how many there were.
func (p *Provider) RevokeRefreshTokens(username string) int {
	p.store.mu.Lock()
	u := p.store.userByName(username)
	p.store.mu.Unlock()
	if u == nil {
		return 0
	}
	return p.store.revoke(func(rt *refreshToken) bool { return rt.subject == u.Subject })
}

// Mint signs claims as an ID token with the provider's own key (RS256 and its key ID), for tests
// of tokens no flow would give: odd claims, expired ones, another audience.
func (p *Provider) Mint(claims map[string]any) (string, error) {
	return Sign(claims, jose.RS256, p.store.key.key, p.store.key.id)
}

// MintPayload signs payload, a JSON object written as the test wants it (duplicate or oddly
// spelled claims, in any order), as an ID token with the provider's own key.
func (p *Provider) MintPayload(payload []byte) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: p.store.key.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", p.store.key.id))
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// MintTyped is Mint with another typ header, as the provider's other tokens have (at+jwt for
// access tokens, logout+jwt for logout tokens).
func (p *Provider) MintTyped(claims map[string]any, typ string) (string, error) {
	return SignTyped(claims, jose.RS256, p.store.key.key, p.store.key.id, typ)
}

// SigningKey returns the provider's public key and its key ID.
func (p *Provider) SigningKey() (*rsa.PublicKey, string) {
	return &p.store.key.key.PublicKey, p.store.key.id
}

// Sign makes a compact JWS of claims with any key and algorithm: for forged tokens.
func Sign(claims map[string]any, alg jose.SignatureAlgorithm, key any, keyID string) (string, error) {
	return SignTyped(claims, alg, key, keyID, "JWT")
}

// SignTyped is Sign with the given typ header.
func SignTyped(claims map[string]any, alg jose.SignatureAlgorithm, key any, keyID, typ string) (string, error) {
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	if keyID != "" {
		opts = opts.WithHeader("kid", keyID)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		return "", err
	}
	payload, err := jsonMarshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// --- the login pages ---

var pageTemplates = template.Must(template.New("").Parse(`
{{define "device"}}<!doctype html><title>Device login</title>
<h1>Log in a device</h1>{{if .Error}}<p class="error">{{.Error}}</p>{{end}}
<form method="post" action="` + deviceApprovePath + `">
<label>Code <input name="user_code" value="{{.UserCode}}"></label>
<label>Username <input name="username"></label>
<label>Password <input name="password" type="password"></label>
<button name="action" value="allow">Allow</button> <button name="action" value="deny">Deny</button>
</form>{{end}}
{{define "login"}}<!doctype html><title>Log in</title>
<h1>Log in</h1>{{if .Error}}<p class="error">{{.Error}}</p>{{end}}
<form method="post" action="` + loginPath + `">
<input type="hidden" name="authRequestID" value="{{.ID}}">
<label>Username <input name="username"></label>
<label>Password <input name="password" type="password"></label>
<button>Log in</button>
</form>{{end}}`))

type pages struct {
	store    *storage
	callback func(context.Context, string) string
	issuer   string
}

func render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pageTemplates.ExecuteTemplate(w, name, data)
}

func (pg *pages) deviceForm(w http.ResponseWriter, r *http.Request) {
	render(w, http.StatusOK, "device", map[string]string{"UserCode": r.URL.Query().Get("user_code")})
}

func (pg *pages) deviceApprove(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	code := r.PostFormValue("user_code")
	subject, err := pg.store.checkPassword(r.PostFormValue("username"), r.PostFormValue("password"))
	if err != nil {
		render(w, http.StatusUnauthorized, "device", map[string]string{"UserCode": code, "Error": err.Error()})
		return
	}
	if r.PostFormValue("action") == "deny" {
		subject = ""
	}
	if err := pg.store.decideDevice(code, subject); err != nil {
		render(w, http.StatusBadRequest, "device", map[string]string{"UserCode": code, "Error": err.Error()})
		return
	}
	if subject == "" {
		io.WriteString(w, "Device denied.\n")
		return
	}
	io.WriteString(w, "Device approved. You can return to your device.\n")
}

func (pg *pages) loginForm(w http.ResponseWriter, r *http.Request) {
	render(w, http.StatusOK, "login", map[string]string{"ID": r.URL.Query().Get("authRequestID")})
}

func (pg *pages) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	id := r.PostFormValue("authRequestID")
	subject, err := pg.store.checkPassword(r.PostFormValue("username"), r.PostFormValue("password"))
	if err == nil {
		err = pg.store.completeAuthRequest(id, subject)
	}
	if err != nil {
		render(w, http.StatusUnauthorized, "login", map[string]string{"ID": id, "Error": err.Error()})
		return
	}
	ctx := op.ContextWithIssuer(r.Context(), pg.issuer)
	http.Redirect(w, r, pg.callback(ctx, id), http.StatusFound)
}

// errNoForm is returned when a page a browser expected to hold a form does not.
var errNoForm = errors.New("no form on the page")
