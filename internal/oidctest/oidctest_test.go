package oidctest

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

var alice = User{Subject: "u-alice", Username: "alice", Password: "wonderland", Email: "alice@example.com", Groups: []string{"web-team"}}

type claims struct {
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Groups        []string `json:"groups"`
}

func setup(t *testing.T) (*Provider, *oidc.Provider, oauth2.Config) {
	p := Start(t, Options{Users: []User{alice}, Clients: []string{"portico"}})
	discovered, err := oidc.NewProvider(t.Context(), p.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := discovered.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInParams
	return p, discovered, oauth2.Config{ClientID: "portico", Endpoint: endpoint,
		Scopes: []string{oidc.ScopeOpenID, "email", "profile", oidc.ScopeOfflineAccess}}
}

func verify(t *testing.T, discovered *oidc.Provider, tok *oauth2.Token) claims {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	idt, err := discovered.Verifier(&oidc.Config{ClientID: "portico"}).Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var c claims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != alice.Subject || c.Email != alice.Email || !c.EmailVerified || !slices.Equal(c.Groups, alice.Groups) {
		t.Errorf("ID token sub %q, claims %+v", idt.Subject, c)
	}
	return c
}

// The device flow, approved by a browser, then a refresh.
func TestDeviceFlowAndRefresh(t *testing.T) {
	p, discovered, config := setup(t)
	ctx := t.Context()
	da, err := config.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := NewBrowser().ApproveDevice(ctx, da.VerificationURI, da.UserCode, "alice", "wrong", true); err == nil {
		t.Fatal("a wrong password approved the device")
	}
	if err := NewBrowser().ApproveDevice(ctx, da.VerificationURI, da.UserCode, "alice", "wonderland", true); err != nil {
		t.Fatal(err)
	}
	tok, err := config.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, discovered, tok)
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	fresh, err := config.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	verify(t, discovered, fresh)
	if p.RevokeRefreshTokens("alice") != 1 {
		t.Error("RevokeRefreshTokens did not find the one refresh token")
	}
	if _, err := config.TokenSource(ctx, &oauth2.Token{RefreshToken: fresh.RefreshToken}).Token(); err == nil {
		t.Error("a revoked refresh token still works")
	}
}

// The authorization code flow with PKCE and a loopback redirect on any port.
func TestCodeFlowWithPKCE(t *testing.T) {
	_, discovered, config := setup(t)
	ctx := t.Context()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	codes := make(chan string, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		codes <- r.URL.Query().Get("code")
		w.Write([]byte("logged in"))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	config.RedirectURL = "http://" + l.Addr().String() + "/callback"
	verifier := oauth2.GenerateVerifier()
	page, err := NewBrowser().LogIn(ctx, config.AuthCodeURL("state1", oauth2.S256ChallengeOption(verifier)), "alice", "wonderland")
	if err != nil || !strings.Contains(page.Body, "logged in") {
		t.Fatalf("browser: %v %+v", err, page)
	}
	code := <-codes
	if _, err := config.Exchange(ctx, code, oauth2.VerifierOption("not-the-verifier-"+verifier)); err == nil {
		t.Fatal("the code was exchanged with a wrong PKCE verifier")
	}
	// The failed exchange did not burn the code at this provider; the right verifier works.
	tok, err := config.Exchange(context.WithoutCancel(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	verify(t, discovered, tok)
}
