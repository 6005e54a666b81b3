package oidctest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// How long the provider's own tokens and codes live.
const (
	accessTokenLifetime  = 5 * time.Minute
	refreshTokenLifetime = 24 * time.Hour
)

// storage is the provider's in-memory op.Storage and op.DeviceAuthorizationStorage.
type storage struct {
	mu            sync.Mutex
	users         map[string]*User // by subject
	clients       map[string]*client
	authRequests  map[string]*authRequest
	codes         map[string]string // code → auth request ID
	accessTokens  map[string]*accessToken
	refreshTokens map[string]*refreshToken
	devices       map[string]*op.DeviceAuthorizationState // by device code
	userCodes     map[string]string                       // user code → device code
	key           *signingKey
}

var (
	_ op.Storage                    = (*storage)(nil)
	_ op.DeviceAuthorizationStorage = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest  = (*storage)(nil)
)

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// userByName returns the user with that username, nil if none.
func (s *storage) userByName(name string) *User {
	for _, u := range s.users {
		if u.Username == name {
			return u
		}
	}
	return nil
}

// checkPassword returns the subject of the user with these credentials.
func (s *storage) checkPassword(username, password string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userByName(username)
	if u == nil || u.Password != password {
		return "", errors.New("wrong username or password")
	}
	return u.Subject, nil
}

// --- clients ---

// client is a public native client (no secret): device flow, authorization code with PKCE
// (loopback redirects on any port), refresh tokens.
type client struct {
	id              string
	redirectURIs    []string
	idTokenLifetime time.Duration
	jwtAccessTokens bool
}

func (c *client) GetID() string                       { return c.id }
func (c *client) RedirectURIs() []string              { return c.redirectURIs }
func (c *client) PostLogoutRedirectURIs() []string    { return nil }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeNative }
func (c *client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodNone }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) LoginURL(id string) string { return loginPath + "?authRequestID=" + id }
func (c *client) AccessTokenType() op.AccessTokenType {
	if c.jwtAccessTokens {
		return op.AccessTokenTypeJWT
	}
	return op.AccessTokenTypeBearer
}
func (c *client) IDTokenLifetime() time.Duration       { return c.idTokenLifetime }
func (c *client) DevMode() bool                        { return false }
func (c *client) IsScopeAllowed(scope string) bool     { return scope == ScopeGroups }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeDeviceCode}
}
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, fmt.Errorf("client %q not found", id)
	}
	return c, nil
}

func (s *storage) AuthorizeClientIDSecret(context.Context, string, string) error {
	return errors.New("public clients have no secret")
}

// --- authorization code flow ---

type authRequest struct {
	id        string
	req       oidc.AuthRequest
	subject   string
	done      bool
	authTime  time.Time
	createdAt time.Time
}

func (a *authRequest) GetID() string                      { return a.id }
func (a *authRequest) GetACR() string                     { return "" }
func (a *authRequest) GetAMR() []string                   { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string              { return []string{a.req.ClientID} }
func (a *authRequest) GetAuthTime() time.Time             { return a.authTime }
func (a *authRequest) GetClientID() string                { return a.req.ClientID }
func (a *authRequest) GetNonce() string                   { return a.req.Nonce }
func (a *authRequest) GetRedirectURI() string             { return a.req.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType { return a.req.ResponseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.req.ResponseMode }
func (a *authRequest) GetScopes() []string                { return a.req.Scopes }
func (a *authRequest) GetState() string                   { return a.req.State }
func (a *authRequest) GetSubject() string                 { return a.subject }
func (a *authRequest) Done() bool                         { return a.done }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.req.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.req.CodeChallenge, Method: a.req.CodeChallengeMethod}
}

func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if slices.Contains(req.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &authRequest{id: newID(), req: *req, createdAt: time.Now()}
	s.authRequests[a.id] = a
	return a, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authRequests[id]
	if !ok {
		return nil, errors.New("auth request not found")
	}
	return a, nil
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, errors.New("code invalid or used")
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.authRequests, id)
	for code, reqID := range s.codes {
		if reqID == id {
			delete(s.codes, code)
		}
	}
	return nil
}

// completeAuthRequest marks an auth request as logged in by subject.
func (s *storage) completeAuthRequest(id, subject string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authRequests[id]
	if !ok {
		return errors.New("auth request not found")
	}
	a.subject, a.done, a.authTime = subject, true, time.Now()
	return nil
}

// --- tokens ---

type accessToken struct {
	id, clientID, subject, refreshID string
	audience, scopes                 []string
	expires                          time.Time
}

type refreshToken struct {
	token, clientID, subject string
	audience, scopes, amr    []string
	authTime, expires        time.Time
	accessID                 string
}

func (r *refreshToken) GetAMR() []string             { return r.amr }
func (r *refreshToken) GetAudience() []string        { return r.audience }
func (r *refreshToken) GetAuthTime() time.Time       { return r.authTime }
func (r *refreshToken) GetClientID() string          { return r.clientID }
func (r *refreshToken) GetScopes() []string          { return r.scopes }
func (r *refreshToken) GetSubject() string           { return r.subject }
func (r *refreshToken) SetCurrentScopes(sc []string) { r.scopes = sc }
func (s *storage) Health(context.Context) error      { return nil }
func (s *storage) newAccessToken(clientID, subject, refreshID string, aud, scopes []string) *accessToken {
	t := &accessToken{id: newID(), clientID: clientID, subject: subject, refreshID: refreshID,
		audience: aud, scopes: scopes, expires: time.Now().Add(accessTokenLifetime)}
	s.accessTokens[t.id] = t
	return t
}

// requestInfo returns the client, auth time and AMR of a token request.
func requestInfo(req op.TokenRequest) (clientID string, authTime time.Time, amr []string) {
	switch r := req.(type) {
	case *authRequest:
		return r.req.ClientID, r.authTime, r.GetAMR()
	case *refreshToken:
		return r.clientID, r.authTime, r.amr
	case *op.DeviceAuthorizationState:
		return r.ClientID, r.AuthTime, r.AMR
	}
	return "", time.Time{}, nil
}

func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clientID, _, _ := requestInfo(req)
	t := s.newAccessToken(clientID, req.GetSubject(), "", req.GetAudience(), req.GetScopes())
	return t.id, t.expires, nil
}

// CreateAccessAndRefreshTokens issues a new pair; a refresh rotates the refresh token (the old
// one stops working).
func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clientID, authTime, amr := requestInfo(req)
	if current != "" {
		old, ok := s.refreshTokens[current]
		if !ok || time.Now().After(old.expires) {
			return "", "", time.Time{}, errors.New("invalid refresh token")
		}
		delete(s.refreshTokens, current)
		delete(s.accessTokens, old.accessID)
	}
	rt := &refreshToken{token: newID(), clientID: clientID, subject: req.GetSubject(),
		audience: req.GetAudience(), scopes: req.GetScopes(), amr: amr, authTime: authTime,
		expires: time.Now().Add(refreshTokenLifetime)}
	at := s.newAccessToken(clientID, req.GetSubject(), rt.token, req.GetAudience(), req.GetScopes())
	rt.accessID = at.id
	s.refreshTokens[rt.token] = rt
	return at.id, rt.token, at.expires, nil
}

func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok || time.Now().After(rt.expires) {
		return nil, errors.New("invalid refresh token")
	}
	cp := *rt
	return &cp, nil
}

func (s *storage) TerminateSession(_ context.Context, subject, clientID string) error {
	s.revoke(func(rt *refreshToken) bool { return rt.subject == subject && rt.clientID == clientID })
	return nil
}

// revoke drops the refresh tokens (and their access tokens) that match.
func (s *storage) revoke(match func(*refreshToken) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for token, rt := range s.refreshTokens {
		if match(rt) {
			delete(s.refreshTokens, token)
			delete(s.accessTokens, rt.accessID)
			n++
		}
	}
	return n
}

func (s *storage) GetRefreshTokenInfo(_ context.Context, _ string, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.subject, rt.token, nil
}

func (s *storage) RevokeToken(_ context.Context, tokenOrID, _ string, _ string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.accessTokens, tokenOrID)
	if rt, ok := s.refreshTokens[tokenOrID]; ok {
		delete(s.refreshTokens, tokenOrID)
		delete(s.accessTokens, rt.accessID)
	}
	return nil
}

// --- keys ---

// signingKey is the provider's RSA key, used with RS256.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                                       { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm               { return jose.RS256 }
func (p publicKey) Use() string                                      { return "sig" }
func (p publicKey) Key() any                                         { return &p.k.key.PublicKey }
func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }
func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.key}}, nil
}
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

// --- user info and claims ---

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	return s.setUserinfo(info, req.GetSubject(), scopes)
}

func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, _, _ string) error {
	s.mu.Lock()
	t, ok := s.accessTokens[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(t.expires) {
		return errors.New("token invalid or expired")
	}
	return s.setUserinfo(info, t.subject, t.scopes)
}

func (s *storage) SetIntrospectionFromToken(_ context.Context, in *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	s.mu.Lock()
	t, ok := s.accessTokens[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(t.expires) || !slices.Contains(t.audience, clientID) {
		return errors.New("token invalid")
	}
	info := new(oidc.UserInfo)
	if err := s.setUserinfo(info, subject, t.scopes); err != nil {
		return err
	}
	in.SetUserInfo(info)
	in.Scope, in.ClientID = t.scopes, t.clientID
	return nil
}

// setUserinfo fills in the claims of the user's scopes. The groups claim is always given, as
// Keycloak or Azure AD do with a group mapper; ScopeGroups is accepted too, as Dex wants it.
func (s *storage) setUserinfo(info *oidc.UserInfo, subject string, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[subject]
	if !ok {
		return fmt.Errorf("user %q not found", subject)
	}
	info.Subject = u.Subject
	for _, scope := range scopes {
		switch scope {
		case oidc.ScopeEmail:
			if u.Email != "" {
				info.Email = u.Email
				info.EmailVerified = oidc.Bool(!u.EmailUnverified)
			}
		case oidc.ScopeProfile:
			info.PreferredUsername = u.Username
			info.Name = u.Username
		}
	}
	if u.Groups != nil {
		info.AppendClaims(GroupsClaim, slices.Clone(u.Groups))
	}
	return nil
}

// GetPrivateClaimsFromScopes gives JWT access tokens the user's email and groups, as providers
// configured to put them in access tokens do.
func (s *storage) GetPrivateClaimsFromScopes(_ context.Context, subject, _ string, _ []string) (map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[subject]
	if !ok {
		return nil, fmt.Errorf("user %q not found", subject)
	}
	claims := map[string]any{}
	if u.Email != "" {
		claims["email"], claims["email_verified"] = u.Email, !u.EmailUnverified
	}
	if u.Groups != nil {
		claims[GroupsClaim] = slices.Clone(u.Groups)
	}
	return claims, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("no JWT profile clients")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("no JWT profile clients")
}

// --- device flow ---

func (s *storage) StoreDeviceAuthorization(_ context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[clientID]; !ok {
		return fmt.Errorf("client %q not found", clientID)
	}
	if _, ok := s.userCodes[userCode]; ok {
		return op.ErrDuplicateUserCode
	}
	s.devices[deviceCode] = &op.DeviceAuthorizationState{ClientID: clientID, Scopes: scopes, Expires: expires}
	s.userCodes[userCode] = deviceCode
	return nil
}

func (s *storage) GetDeviceAuthorizatonState(ctx context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.devices[deviceCode]
	if !ok || st.ClientID != clientID {
		return nil, errors.New("device code not found")
	}
	cp := *st
	if st.Done || st.Denied {
		// A device code is good for one token response.
		delete(s.devices, deviceCode)
	}
	return &cp, nil
}

// decideDevice approves (subject != "") or denies the device authorization of userCode.
func (s *storage) decideDevice(userCode, subject string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.devices[s.userCodes[userCode]]
	if !ok || time.Now().After(st.Expires) {
		return errors.New("unknown or expired code")
	}
	if st.Done || st.Denied {
		return errors.New("this code was already used")
	}
	if subject == "" {
		st.Denied = true
		return nil
	}
	st.Subject, st.Done, st.AuthTime, st.AMR = subject, true, time.Now(), []string{"pwd"}
	return nil
}
