package gateway

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"time"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
)

// How long one authentication decision or access-log write may take.
const storeTimeout = 10 * time.Second

type grantKey struct{}

// errNoneAuth refuses the "none" method: charmbracelet/ssh sets NoClientAuth when none of its
// own auth handlers is set, and this callback is what keeps "none" from logging in.
var errNoneAuth = errors.New("portico: authenticate with a public key")

// errShuttingDown refuses an authentication that comes once the server is shutting down.
var errShuttingDown = errors.New("the server is shutting down")

// serverConfig is the per-connection x/crypto configuration. Public keys are the only method:
// no password or keyboard-interactive callback is set, and "none" is refused.
func (g *Gateway) serverConfig(ctx ssh.Context, bound auth.Service) *gossh.ServerConfig {
	ciphers := g.o.Ciphers
	if ci := connInfoOf(ctx); ci != nil && ci.ciphers != nil {
		ciphers = ci.ciphers
	}
	return &gossh.ServerConfig{
		Config:                  gossh.Config{Ciphers: ciphers},
		MaxAuthTries:            g.o.MaxAuthTries,
		PublicKeyAuthAlgorithms: auth.SignatureAlgorithms,
		NoClientAuthCallback: func(gossh.ConnMetadata) (*gossh.Permissions, error) {
			return nil, errNoneAuth
		},
		// A failed attempt of a method portico does not offer (password guessing, say) or a
		// key refused by the SSH library itself (a bad signature, SHA-1) counts as a failed
		// login for the address's penalty, as in sshd; "none" does not. Decisions of auth
		// (banners) are counted where they are made, and refusals by a limit or an
		// unreachable store are not the client's failure.
		AuthLogCallback: func(_ gossh.ConnMetadata, method string, err error) {
			var banner *gossh.BannerError
			if c, ok := clientOf(ctx); ok && err != nil && method != "none" && !errors.As(err, &banner) {
				c.failedAttempt()
			}
		},
		// Any key may be tried: nothing is decided, read or kept for an unsigned query. The
		// decision is made once the client has proven it holds the key (verified), from the
		// store as it is then, so a query learns nothing, no state travels from a query to
		// the signed attempt, and a key removed or revoked after the query is refused.
		PublicKeyCallback: func(gossh.ConnMetadata, gossh.PublicKey) (*gossh.Permissions, error) {
			return &gossh.Permissions{}, nil
		},
		VerifiedPublicKeyCallback: func(conn gossh.ConnMetadata, key gossh.PublicKey, _ *gossh.Permissions, _ string) (*gossh.Permissions, error) {
			c, ok := clientOf(ctx)
			cs, ok2 := connStateOf(ctx)
			if !ok || !ok2 {
				return nil, errors.New("portico: connection not admitted")
			}
			p, err := g.verified(ctx, bound, c, cs, conn, key)
			if err != nil {
				return nil, err
			}
			if ci := connInfoOf(ctx); ci != nil && ci.loginTimer != nil {
				ci.loginTimer.Stop()
			}
			if grant := p.ExtraData[grantKey{}].(*auth.Grant); grant.IsSignup() && g.limits.SignupIdleTimeout > 0 {
				g.watchSignupIdle(ctx, conn.RemoteAddr())
			}
			return p, nil
		},
	}
}

// verified acts for a key whose signature verified: within the connection limits, it asks
// auth to decide the attempt for the service the SSH user routes to, writes the access log,
// touches the key, counts the decision and answers x/crypto.
func (g *Gateway) verified(connCtx ssh.Context, bound auth.Service, c *client, cs *connState, conn gossh.ConnMetadata, key gossh.PublicKey) (*gossh.Permissions, error) {
	if err := c.authenticating(); err != nil {
		g.refuse(err, conn.RemoteAddr())
		return nil, &gossh.BannerError{Err: err, Message: "portico: " + err.Error() + "\r\n"}
	}
	g.deciding.RLock()
	defer g.deciding.RUnlock()
	if g.closing {
		c.decided(false, false, false)
		return nil, &gossh.BannerError{Err: errShuttingDown, Message: "portico: the server is shutting down\r\n"}
	}
	service := g.o.Router.Route(bound, conn.User()).Name()
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	_, isCert := key.(*gossh.Certificate)
	attempt := auth.Attempt{Key: key, Service: service, RemoteAddr: conn.RemoteAddr(), LoginOnly: cs.hadRefusedCert()}
	seen := g.live.generation()
	grant, err := g.o.Auth.Authenticate(ctx, attempt)
	now := g.o.Now()
	method := methodOf(key)

	if err != nil {
		refusal, ok := auth.AsRefusal(err)
		c.decided(false, ok, false)
		if !ok {
			return nil, g.unavailable(conn, service, method, err)
		}
		g.metrics.authDecisions.WithLabelValues(string(service), method, "denied").Inc()
		// Keys of no account cost nothing to make: past a few per source and minute, their
		// denials are counted into one row instead (see deniedRows).
		if refusal.AccountID != 0 || g.denied.log(conn.RemoteAddr(), string(service), method, now) {
			e := deniedEntry(now, service, method, key, conn.RemoteAddr(), refusal)
			if err := g.access.record(ctx, accessRecord{entry: e}); err != nil {
				g.log.Error("writing the access log failed", "err", err, "remote", e.RemoteAddr)
			}
			g.log.Info("auth denied", "account", e.Account, "service", service, "method", method,
				"identity", e.Identity, "key", e.KeyFingerprint, "remote", e.RemoteAddr, "reason", refusal.Reason)
		}
		if isCert {
			cs.refusedCert()
		}
		if refusal.Quiet {
			return nil, refusal
		}
		return nil, &gossh.BannerError{Err: refusal, Message: "portico: " + refusal.Message + "\r\n"}
	}

	e := allowedEntry(now, grant, conn.RemoteAddr())
	// A sign-up or claim grant is a key of no account too: its rows are rationed as the
	// denials of such keys are, or a client connecting with fresh keys in a loop would write
	// a row per connection (a thousand in 3 s from one address, unpenalised: they log in).
	logged := grant.AccountID != 0 || g.denied.log(conn.RemoteAddr(), string(service), string(grant.Method), now)
	if logged {
		if err := g.access.record(ctx, accessRecord{entry: e, keyID: grant.KeyID}); err != nil {
			// An allowed connection that cannot be recorded is refused: nothing half-done.
			c.decided(false, false, false)
			return nil, g.unavailable(conn, service, string(grant.Method), err)
		}
	}
	c.decided(true, false, grant.IsSignup())
	if !grant.IsSignup() && grant.AccountID != 0 {
		// Live access: the connection ends when its grounds do.
		again := attempt
		again.LoginOnly = true // a login key removed since is no sign-up
		remove := g.live.add(again, &grant, seen, cs.end)
		context.AfterFunc(connCtx, remove)
	}
	g.metrics.authDecisions.WithLabelValues(string(grant.Service), string(grant.Method), "allowed").Inc()
	if logged {
		// Debug only: the access log has the decision, and each session's line says who ran
		// what with which key or certificate.
		g.log.Debug("auth allowed", "account", grant.Account, "service", grant.Service, "method", grant.Method,
			"identity", grant.Identity, "key", grant.KeyFingerprint, "remote", e.RemoteAddr)
	}

	// The session's key is the grant's (startedSession.PublicKey): charmbracelet/ssh is not
	// given it to re-parse and keep.
	// The connection keeps one copy of the grant, which live access shares; nothing changes it.
	out := &gossh.Permissions{ExtraData: map[any]any{grantKey{}: &grant}}
	if cert, ok := key.(*gossh.Certificate); ok && len(cert.CriticalOptions) > 0 {
		// x/crypto enforces source-address from here; force-command is applied by the session
		// handler from the grant.
		out.CriticalOptions = maps.Clone(cert.CriticalOptions)
	}
	return out, nil
}

// watchSignupIdle closes a connection on a sign-up grant once none of its sessions has read
// any input for the sign-up idle timeout.
func (g *Gateway) watchSignupIdle(ctx ssh.Context, remote net.Addr) {
	ci := connInfoOf(ctx)
	if ci == nil || ci.activity == nil {
		return
	}
	act := ci.activity
	act.watch(g.limits.SignupIdleTimeout, func() {
		g.refuse(&errLimit{limitSignupIdle, "idle sign-up connection closed"}, remote)
	})
}

// unavailable refuses a connection that could not be decided or recorded; nothing is written.
func (g *Gateway) unavailable(conn gossh.ConnMetadata, service auth.Service, method string, err error) error {
	g.metrics.authDecisions.WithLabelValues(string(service), method, "unavailable").Inc()
	g.log.Error("authentication could not be decided", "err", err, "service", service, "remote", conn.RemoteAddr().String())
	return &gossh.BannerError{
		Err:     fmt.Errorf("%s: %w", auth.ReasonUnavailable, err),
		Message: fmt.Sprintf("portico: the %s service is temporarily unavailable, try again later\r\n", service),
	}
}

func methodOf(key gossh.PublicKey) string {
	if _, ok := key.(*gossh.Certificate); ok {
		return string(auth.MethodCert)
	}
	return string(auth.MethodKey)
}

func allowedEntry(now time.Time, g auth.Grant, remote net.Addr) db.AccessEntry {
	e := db.AccessEntry{
		Time:           now,
		AccountID:      g.AccountID,
		Account:        g.Account,
		Service:        string(g.Service),
		Method:         string(g.Method),
		Identity:       g.Identity,
		KeyFingerprint: g.KeyFingerprint,
		RemoteAddr:     remote.String(),
		Outcome:        "allowed",
	}
	if g.Cert != nil {
		serial := g.Cert.Serial
		e.Serial = &serial
		e.CAFingerprint = g.Cert.CAFingerprint
	}
	return e
}

func deniedEntry(now time.Time, service auth.Service, method string, key gossh.PublicKey, remote net.Addr, r *auth.Refusal) db.AccessEntry {
	e := db.AccessEntry{
		Time:           now,
		AccountID:      r.AccountID,
		Account:        r.Account,
		Service:        string(service),
		Method:         method,
		Identity:       r.Identity,
		KeyFingerprint: gossh.FingerprintSHA256(key),
		RemoteAddr:     remote.String(),
		Outcome:        "denied",
		Reason:         r.Message,
	}
	if cert, ok := key.(*gossh.Certificate); ok {
		e.KeyFingerprint = gossh.FingerprintSHA256(cert.Key)
		serial := cert.Serial
		e.Serial = &serial
		e.CAFingerprint = gossh.FingerprintSHA256(cert.SignatureKey)
	}
	if r.Cert != nil {
		serial := r.Cert.Serial
		e.Serial = &serial
		if r.Cert.CAFingerprint != "" {
			e.CAFingerprint = r.Cert.CAFingerprint
		}
	}
	return e
}

// grantFrom returns the grant of an authenticated connection. charmbracelet/ssh copies the
// Permissions of the connection into its context after authentication.
func grantFrom(ctx ssh.Context) (auth.Grant, bool) {
	p := ctx.Permissions()
	if p == nil || p.Permissions == nil {
		return auth.Grant{}, false
	}
	g, ok := p.ExtraData[grantKey{}].(*auth.Grant)
	if !ok {
		return auth.Grant{}, false
	}
	return *g, true
}
