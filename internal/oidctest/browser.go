package oidctest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// Browser is what a person at a web browser does with the provider's pages: it keeps cookies,
// follows redirects (to the provider and on to a client's loopback redirect URI), and fills in
// and submits the forms it finds.
type Browser struct {
	client *http.Client
}

// NewBrowser returns a browser with an empty cookie jar.
func NewBrowser() *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{client: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
}

// Page is a page the browser loaded.
type Page struct {
	URL    *url.URL
	Status int
	Body   string
}

// Get loads a page.
func (b *Browser) Get(ctx context.Context, rawURL string) (*Page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	return b.do(req)
}

func (b *Browser) do(req *http.Request) (*Page, error) {
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return &Page{URL: resp.Request.URL, Status: resp.StatusCode, Body: string(body)}, nil
}

var (
	formRe  = regexp.MustCompile(`(?s)<form method="(\w+)" action="([^"]*)">(.*?)</form>`)
	inputRe = regexp.MustCompile(`<input (?:type="(\w+)" )?name="([^"]+)"(?: value="([^"]*)")?`)
)

// Submit fills in the page's form with fields (inputs not named keep their value) and sends
// it with the given button value for "action" (if not empty), following redirects.
func (b *Browser) Submit(ctx context.Context, page *Page, fields map[string]string, action string) (*Page, error) {
	m := formRe.FindStringSubmatch(page.Body)
	if m == nil {
		return nil, fmt.Errorf("%w at %s (HTTP %d): %.300s", errNoForm, page.URL, page.Status, page.Body)
	}
	form := url.Values{}
	for _, in := range inputRe.FindAllStringSubmatch(m[3], -1) {
		form.Set(in[2], html.UnescapeString(in[3]))
	}
	for k, v := range fields {
		form.Set(k, v)
	}
	if action != "" {
		form.Set("action", action)
	}
	target, err := page.URL.Parse(html.UnescapeString(m[2]))
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, strings.ToUpper(m[1]), target.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// ApproveDevice does what a person does with the device flow's URL and code: opens the URL,
// types the code, logs in and allows (or, with allow false, denies) the device.
func (b *Browser) ApproveDevice(ctx context.Context, verificationURI, userCode, username, password string, allow bool) error {
	page, err := b.Get(ctx, verificationURI)
	if err != nil {
		return err
	}
	action := "allow"
	if !allow {
		action = "deny"
	}
	page, err = b.Submit(ctx, page, map[string]string{"user_code": userCode, "username": username, "password": password}, action)
	if err != nil {
		return err
	}
	if page.Status != http.StatusOK {
		return fmt.Errorf("device approval: HTTP %d: %s", page.Status, strings.TrimSpace(page.Body))
	}
	return nil
}

// LogIn does what a person does with an authorization URL: opens it, logs in at the provider's
// page, and lets the browser follow the redirects to the client's redirect URI. It returns
// that last page (the client's own answer).
func (b *Browser) LogIn(ctx context.Context, authURL, username, password string) (*Page, error) {
	page, err := b.Get(ctx, authURL)
	if err != nil {
		return nil, err
	}
	return b.Submit(ctx, page, map[string]string{"username": username, "password": password}, "")
}

// Token logs username in through the authorization code flow with PKCE, as a native client
// with a loopback redirect does, and returns the token response (ID token in Extra("id_token")).
// scopes default to openid, email, profile and offline_access.
func (p *Provider) Token(ctx context.Context, clientID, username, password string, scopes ...string) (*oauth2.Token, error) {
	if len(scopes) == 0 {
		scopes = []string{"openid", "email", "profile", "offline_access"}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	codes := make(chan string, 1)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case codes <- r.URL.Query().Get("code"):
		default:
		}
		io.WriteString(w, "logged in\n")
	})}
	go srv.Serve(l)
	defer srv.Close()
	config := oauth2.Config{
		ClientID:    clientID,
		Endpoint:    oauth2.Endpoint{AuthURL: p.Issuer + "/authorize", TokenURL: p.Issuer + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: "http://" + l.Addr().String() + "/callback",
		Scopes:      scopes,
	}
	verifier := oauth2.GenerateVerifier()
	page, err := NewBrowser().LogIn(ctx, config.AuthCodeURL("state", oauth2.S256ChallengeOption(verifier)), username, password)
	if err != nil {
		return nil, err
	}
	var code string
	select {
	case code = <-codes:
	default:
		return nil, fmt.Errorf("login did not reach the redirect URI: HTTP %d at %s: %.300s", page.Status, page.URL, page.Body)
	}
	return config.Exchange(ctx, code, oauth2.VerifierOption(verifier))
}

// IDToken is Token's ID token.
func (p *Provider) IDToken(ctx context.Context, clientID, username, password string) (string, error) {
	tok, err := p.Token(ctx, clientID, username, password)
	if err != nil {
		return "", err
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", errors.New("no ID token in the token response")
	}
	return raw, nil
}
