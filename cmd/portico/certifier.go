package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/certifier"
)

const certifierUsage = "portico certifier [flags] | portico certifier claim --ca CA CODE | portico certifier revoke --key-id ID | --serial N"

// certifierSettings are the certifier's settings: flags whose defaults come from the
// environment (PORTICO_CERTIFIER_...), so the flag wins.
type certifierSettings struct {
	ca, issuer, clientID, groupsClaim, scopes, ttl, extensions string
	listen, stateDir, tlsCert, tlsKey, trustedProxies          string
	logFormat                                                  string
	maps                                                       mapFlag
}

// certifierFlag registers one string setting.
func certifierFlag(fs *flag.FlagSet, env *environment, dst *string, name, envName, def, help string) {
	if v := env.getenv(envName); v != "" {
		def = v
	}
	fs.StringVar(dst, name, def, fmt.Sprintf("%s (env %s)", help, envName))
}

// mapFlag is the repeatable --map GROUP=SERVICES. Its default is PORTICO_CERTIFIER_MAP (entries
// separated by ";"), which the first --map replaces.
type mapFlag struct {
	values  []string
	fromEnv bool
}

func (m *mapFlag) String() string { return strings.Join(m.values, ";") }

func (m *mapFlag) Set(v string) error {
	if m.fromEnv {
		m.values, m.fromEnv = nil, false
	}
	if _, _, err := certifier.ParseMapEntry(v); err != nil {
		return err
	}
	m.values = append(m.values, v)
	return nil
}

// certifierFlagSet is the flag set of `portico certifier` with every setting registered.
func certifierFlagSet(env *environment, s *certifierSettings) *flag.FlagSet {
	fs := newFlagSet("certifier", "portico certifier --ca FILE|agent: --issuer URL --client-id ID --map GROUP=SERVICES... [flags]", env, &settings{})
	certifierFlag(fs, env, &s.ca, "ca", "PORTICO_CERTIFIER_CA", "", "the CA's private key file, or agent: to sign through the ssh-agent at SSH_AUTH_SOCK (agent:SHA256:... picks a key)")
	certifierFlag(fs, env, &s.issuer, "issuer", "PORTICO_CERTIFIER_ISSUER", "", "the OpenID Connect issuer URL (https)")
	certifierFlag(fs, env, &s.clientID, "client-id", "PORTICO_CERTIFIER_CLIENT_ID", "", "the public client registered at the issuer for portico login; ID tokens must be for it")
	if v := env.getenv("PORTICO_CERTIFIER_MAP"); v != "" {
		for part := range strings.SplitSeq(v, ";") {
			if part = strings.TrimSpace(part); part != "" {
				s.maps.values = append(s.maps.values, part)
			}
		}
		s.maps.fromEnv = true
	}
	fs.Var(&s.maps, "map", "GROUP=SERVICES: members of GROUP get certificates for SERVICES (admin, pgs, tuns, pipe); repeat for more groups (env PORTICO_CERTIFIER_MAP, separated by ;)")
	certifierFlag(fs, env, &s.groupsClaim, "groups-claim", "PORTICO_CERTIFIER_GROUPS_CLAIM", "groups", "the ID-token claim that lists the user's groups")
	certifierFlag(fs, env, &s.scopes, "scopes", "PORTICO_CERTIFIER_SCOPES", "openid,email,profile,offline_access", "scopes portico login asks for (add groups for Dex)")
	certifierFlag(fs, env, &s.ttl, "ttl", "PORTICO_CERTIFIER_TTL", "1h", "the longest validity of a certificate; longer requests are clamped")
	certifierFlag(fs, env, &s.extensions, "extensions", "PORTICO_CERTIFIER_EXTENSIONS", certifier.DefaultExtensions, "certificate extensions, a comma list, or none")
	certifierFlag(fs, env, &s.listen, "listen", "PORTICO_CERTIFIER_LISTEN", "127.0.0.1:8443", "HTTP listen address (loopback behind a TLS proxy; :8443 with --tls-cert)")
	certifierFlag(fs, env, &s.stateDir, "state-dir", "PORTICO_CERTIFIER_STATE_DIR", "./certifier", "audit log, issued certificates and revocations")
	certifierFlag(fs, env, &s.tlsCert, "tls-cert", "PORTICO_CERTIFIER_TLS_CERT", "", "TLS certificate file (PEM, with its chain); empty: plain HTTP")
	certifierFlag(fs, env, &s.tlsKey, "tls-key", "PORTICO_CERTIFIER_TLS_KEY", "", "TLS private key file (PEM)")
	certifierFlag(fs, env, &s.trustedProxies, "trusted-proxies", "PORTICO_CERTIFIER_TRUSTED_PROXIES", "", "addresses or CIDR blocks of proxies whose X-Forwarded-For names the client")
	certifierFlag(fs, env, &s.logFormat, "log-format", "PORTICO_LOG_FORMAT", "text", "log format: text or json")
	return fs
}

func certifierCmd(ctx context.Context, env *environment, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "claim":
			return certifierClaim(env, args[1:])
		case "revoke":
			return certifierRevoke(env, args[1:])
		}
	}
	var s certifierSettings
	fs := certifierFlagSet(env, &s)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return usageError(fs, "unexpected argument %q (commands are claim and revoke)", rest[0])
	}
	cfg, err := s.config()
	if err != nil {
		return usageError(fs, "%v", err)
	}
	log, err := (&settings{logFormat: s.logFormat}).logger(env.stderr)
	if err != nil {
		return usageError(fs, "%v", err)
	}
	if cfg.CA, err = certifier.LoadCA(s.ca, env.getenv("SSH_AUTH_SOCK")); err != nil {
		return err
	}
	if cfg.State, err = certifier.OpenState(s.stateDir); err != nil {
		return err
	}
	defer cfg.State.Close()
	cfg.Logger = log
	srv, err := certifier.New(cfg)
	if err != nil {
		return err
	}
	if err := srv.Discover(ctx); err != nil {
		log.Warn("the issuer cannot be reached yet; logins wait for it", "issuer", cfg.Issuer, "err", err)
	}
	log.Info("certifier starting", "version", versionString(), "issuer", cfg.Issuer, "client_id", cfg.ClientID,
		"ca", gossh.FingerprintSHA256(cfg.CA.PublicKey()), "map", cfg.Mapping.String(), "ttl", cfg.MaxTTL, "state_dir", s.stateDir)
	return srv.ListenAndServe(ctx, s.listen, s.tlsCert, s.tlsKey, func(a net.Addr) {
		log.Info("certifier listening", "addr", a.String(), "tls", s.tlsCert != "")
	})
}

// config checks the settings (all but the CA and the state, which touch the system).
func (s *certifierSettings) config() (certifier.Config, error) {
	var c certifier.Config
	var err error
	switch {
	case s.ca == "":
		return c, errors.New("--ca is required: the CA's private key file, or agent:")
	case s.issuer == "":
		return c, errors.New("--issuer is required: the OpenID Connect issuer URL")
	case s.clientID == "":
		return c, errors.New("--client-id is required: the client portico login uses at the issuer")
	case len(s.maps.values) == 0:
		return c, errors.New("--map GROUP=SERVICES is required: without it no certificate is ever signed")
	case (s.tlsCert == "") != (s.tlsKey == ""):
		return c, errors.New("--tls-cert and --tls-key go together")
	case strings.TrimSpace(s.groupsClaim) == "":
		return c, errors.New("--groups-claim is empty")
	}
	if err := certifier.CheckIssuer(s.issuer); err != nil {
		return c, err
	}
	// The issuer is compared with the tokens' iss byte for byte: it is kept as given.
	c.Issuer, c.ClientID, c.GroupsClaim = s.issuer, s.clientID, s.groupsClaim
	if c.Mapping, err = certifier.ParseMapping(s.maps.values); err != nil {
		return c, err
	}
	if c.MaxTTL, err = time.ParseDuration(s.ttl); err != nil || c.MaxTTL < time.Second {
		return c, fmt.Errorf("ttl %q: want a duration such as 1h", s.ttl)
	}
	if c.Extensions, err = certifier.ParseExtensions(s.extensions); err != nil {
		return c, err
	}
	for sc := range strings.SplitSeq(s.scopes, ",") {
		if sc = strings.TrimSpace(sc); sc != "" {
			c.Scopes = append(c.Scopes, sc)
		}
	}
	if c.TrustedProxies, err = certifier.ParseTrustedProxies(s.trustedProxies); err != nil {
		return c, fmt.Errorf("trusted proxies %q: %w", s.trustedProxies, err)
	}
	if _, _, err := net.SplitHostPort(s.listen); err != nil {
		return c, fmt.Errorf("listen %q: %w", s.listen, err)
	}
	return c, nil
}

// certifierClaim prints the proof-of-possession certificate for keys add --ca.
func certifierClaim(env *environment, args []string) error {
	var ca string
	fs := newFlagSet("certifier claim", "portico certifier claim --ca FILE|agent: CODE", env, &settings{})
	certifierFlag(fs, env, &ca, "ca", "PORTICO_CERTIFIER_CA", "", "the CA's private key file, or agent:")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(rest) != 1:
		return usageError(fs, "want exactly one CODE (the one keys add --ca printed)")
	case ca == "":
		return usageError(fs, "--ca is required")
	}
	signer, err := certifier.LoadCA(ca, env.getenv("SSH_AUTH_SOCK"))
	if err != nil {
		return err
	}
	line, err := certifier.ClaimCertificate(signer, rest[0], time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, line)
	return nil
}

// certifierRevoke revokes a key ID or a serial in the state directory; the running certifier
// serves it in GET /krl and signs nothing more for a revoked key ID.
func certifierRevoke(env *environment, args []string) error {
	var keyID, serialText, stateDir string
	fs := newFlagSet("certifier revoke", "portico certifier revoke --key-id ID | --serial N [--state-dir DIR]", env, &settings{})
	fs.StringVar(&keyID, "key-id", "", "revoke every certificate with this key ID (the user's email), now and later")
	fs.StringVar(&serialText, "serial", "", "revoke the certificate with this serial")
	certifierFlag(fs, env, &stateDir, "state-dir", "PORTICO_CERTIFIER_STATE_DIR", "./certifier", "the certifier's state directory")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return usageError(fs, "unexpected argument %q", rest[0])
	}
	var serial uint64
	switch {
	case (keyID == "") == (serialText == ""):
		return usageError(fs, "give --key-id ID or --serial N")
	case serialText != "":
		if serial, err = strconv.ParseUint(serialText, 10, 64); err != nil || serial == 0 {
			return usageError(fs, "serial %q: want a certificate serial number", serialText)
		}
	}
	now := time.Now()
	added, err := certifier.Revoke(stateDir, keyID, serial, now)
	if err != nil {
		return err
	}
	issued, err := certifier.FindIssued(stateDir, keyID, serial)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("key ID %q", keyID)
	if serial != 0 {
		what = fmt.Sprintf("serial %d", serial)
	}
	if !added {
		fmt.Fprintf(env.stdout, "%s was already revoked\n", what)
		return nil
	}
	entry := certifier.AuditEntry{Time: now.UTC(), Event: "revoke", Outcome: "revoked", KeyID: keyID, RemoteAddr: "local"}
	if serial != 0 {
		entry.Serial = &serial
	}
	if err := certifier.AppendAudit(stateDir, entry); err != nil {
		return err
	}
	live := 0
	for _, r := range issued {
		if r.ValidBefore.After(now) {
			live++
		}
	}
	fmt.Fprintf(env.stdout, "revoked %s: %d certificates issued, %d still valid; GET /krl lists it\n", what, len(issued), live)
	if serial != 0 && len(issued) == 0 {
		fmt.Fprintf(env.stdout, "(this certifier's records have no certificate with serial %d)\n", serial)
	}
	return nil
}
