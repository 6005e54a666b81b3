package certifier

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/net/netutil"
)

// Backdate is how far in the past a certificate's validity starts, for clock skew.
const Backdate = time.Minute

// Certificate and request bounds.
const (
	minTTL            = time.Second
	maxRequestReason  = 256 // characters of the reason a client gives
	minRSABits        = 2048
	maxRSABits        = 16384
	shutdownTimeout   = 10 * time.Second
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 2 * agentTimeout // an agent on a hardware token may wait for a touch
	idleTimeout       = 60 * time.Second
)

// Extensions are the OpenSSH certificate extensions --extensions may name.
var Extensions = []string{
	"no-touch-required", "permit-X11-forwarding", "permit-agent-forwarding",
	"permit-port-forwarding", "permit-pty", "permit-user-rc",
}

// DefaultExtensions are the extensions certificates carry unless --extensions says otherwise.
const DefaultExtensions = "permit-pty,permit-port-forwarding"

// ParseExtensions reads a comma list of extensions; "" or "none" is none.
func ParseExtensions(s string) ([]string, error) {
	var out []string
	if s == "none" {
		return out, nil
	}
	for e := range strings.SplitSeq(s, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if !slices.Contains(Extensions, e) {
			return nil, fmt.Errorf("extension %q: want some of %s, or none", e, strings.Join(Extensions, ", "))
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Config is what the certifier needs to run.
type Config struct {
	CA             gossh.Signer
	Issuer         string
	ClientID       string
	Scopes         []string // what a client asks the provider for (GET /config)
	Mapping        Mapping
	GroupsClaim    string
	MaxTTL         time.Duration
	Extensions     []string
	State          *State
	TrustedProxies []netip.Prefix // peers whose X-Forwarded-For names the client
	Limits         Limits
	Logger         *slog.Logger
	HTTPClient     *http.Client     // reaches the issuer; nil: one with timeouts and bounds
	Now            func() time.Time // nil: time.Now
}

// Server is the certifier's HTTP service: GET /config, GET /ca, POST /sign, GET /krl.
type Server struct {
	cfg      Config
	tokens   *tokenVerifier
	refusals *refusalCounter
	signing  chan struct{} // one slot per /sign request being worked on
	caLine   []byte
}

// New checks cfg and returns the service. The issuer is discovered on first use.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.CA == nil:
		return nil, errors.New("certifier: no CA")
	case cfg.State == nil:
		return nil, errors.New("certifier: no state directory")
	case cfg.Mapping.Len() == 0:
		return nil, errors.New("certifier: no --map: no certificate could ever be signed")
	case cfg.MaxTTL < minTTL:
		return nil, fmt.Errorf("certifier: the maximum TTL %v is under %v", cfg.MaxTTL, minTTL)
	case cfg.ClientID == "":
		return nil, errors.New("certifier: no client ID")
	case cfg.GroupsClaim == "":
		return nil, errors.New("certifier: no groups claim")
	}
	if err := CheckIssuer(cfg.Issuer); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = IssuerClient()
	}
	cfg.Limits = cfg.Limits.withDefaults()
	line := "cert-authority " + strings.TrimSpace(string(gossh.MarshalAuthorizedKey(cfg.CA.PublicKey()))) + " certifier\n"
	return &Server{
		cfg:      cfg,
		tokens:   newTokenVerifier(cfg.Issuer, cfg.ClientID, cfg.GroupsClaim, cfg.HTTPClient, cfg.Now),
		refusals: newRefusalCounter(cfg.Limits),
		signing:  make(chan struct{}, cfg.Limits.MaxSigning),
		caLine:   []byte(line),
	}, nil
}

// CheckIssuer refuses an issuer URL that is not https (or http on a loopback address).
func CheckIssuer(issuer string) error {
	if err := CheckServiceURL(issuer); err != nil {
		return fmt.Errorf("issuer: %w", err)
	}
	return nil
}

// Discover runs OpenID Connect discovery now, to report a wrong --issuer at start.
func (s *Server) Discover(ctx context.Context) error {
	_, _, err := s.tokens.discover(ctx)
	return err
}

// Handler is the service's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /config", s.serveConfig)
	mux.HandleFunc("GET /ca", s.serveCA)
	mux.HandleFunc("POST /sign", s.serveSign)
	mux.HandleFunc("GET /krl", s.serveKRL)
	return mux
}

// ConfigResponse is what GET /config answers: all a client needs besides the certifier's URL.
type ConfigResponse struct {
	Issuer   string   `json:"issuer"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
	MaxTTL   string   `json:"max_ttl"`
}

func (s *Server) serveConfig(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, ConfigResponse{Issuer: s.cfg.Issuer, ClientID: s.cfg.ClientID, Scopes: s.cfg.Scopes, MaxTTL: s.cfg.MaxTTL.String()})
}

func (s *Server) serveCA(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(s.caLine)
}

func (s *Server) serveKRL(w http.ResponseWriter, _ *http.Request) {
	b, err := s.cfg.State.KRL(s.cfg.CA)
	if err != nil {
		s.cfg.Logger.Error("KRL", "err", err)
		http.Error(w, "the KRL is unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

// SignRequest is the body of POST /sign.
type SignRequest struct {
	PublicKey string `json:"public_key"`
	TTL       string `json:"ttl"`
	Reason    string `json:"reason"`
}

// SignResponse is the answer of POST /sign.
type SignResponse struct {
	Certificate string    `json:"certificate"`
	ValidBefore time.Time `json:"valid_before"`
}

// ErrorResponse is the body of every refusal.
type ErrorResponse struct {
	Error  string `json:"error"`
	Reason Reason `json:"reason"`
}

func (s *Server) serveSign(w http.ResponseWriter, r *http.Request) {
	now := s.cfg.Now()
	addr, bucket := sourceOf(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), s.cfg.TrustedProxies)
	ok, ended := s.refusals.admit(bucket, now)
	s.writeSuppressed(ended, now)
	if !ok {
		writeJSON(w, http.StatusTooManyRequests, ErrorResponse{
			Error:  "rate limited: too many refused requests from your address; wait a minute",
			Reason: ReasonRateLimited,
		})
		return
	}
	entry := AuditEntry{Event: "sign", RemoteAddr: addr}
	resp, err := s.sign(r, now, &entry)
	entry.Time = now.UTC()
	if err != nil {
		ref, isRefusal := AsRefusal(err)
		if !isRefusal {
			s.cfg.Logger.Error("sign", "err", err, "remote", addr)
			ref = refuse(ReasonUnavailable, "the certifier could not sign, try again later")
		}
		entry.Outcome, entry.Reason = "refused", ref.Message
		write, ended := s.refusals.refused(bucket, now)
		s.writeSuppressed(ended, now)
		if write {
			s.audit(entry)
		}
		writeJSON(w, ref.Status(), ErrorResponse{Error: ref.Message, Reason: ref.Reason})
		return
	}
	entry.Outcome = "signed"
	if err := s.cfg.State.Audit(entry); err != nil {
		// No certificate leaves without its audit line.
		s.cfg.Logger.Error("audit log", "err", err, "key_id", entry.KeyID)
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "the certifier could not sign, try again later", Reason: ReasonUnavailable})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

// sign decides one /sign request, filling in the audit entry as it learns things.
func (s *Server) sign(r *http.Request, now time.Time, entry *AuditEntry) (SignResponse, error) {
	// The body is read before a signing slot is taken, so that slow senders cannot hold them.
	req, err := readSignRequest(r.Body, s.cfg.Limits.MaxBody)
	if err != nil {
		return SignResponse{}, err
	}
	entry.RequestReason = req.Reason
	select {
	case s.signing <- struct{}{}:
		defer func() { <-s.signing }()
	default:
		return SignResponse{}, refuse(ReasonBusy, "busy: too many requests at once; try again in a moment")
	}

	raw, isBearer := cutFold(r.Header.Get("Authorization"), "Bearer ")
	if !isBearer {
		raw = ""
	}
	id, err := s.tokens.Verify(r.Context(), strings.TrimSpace(raw))
	if id.Subject != "" || id.Email != "" {
		entry.Subject, entry.Email, entry.KeyID, entry.Groups = id.Subject, id.Email, id.KeyID(), id.Groups
	}
	if err != nil {
		return SignResponse{}, err
	}

	pub, err := ParsePublicKey(req.PublicKey)
	if err != nil {
		return SignResponse{}, err
	}
	entry.KeyFingerprint = gossh.FingerprintSHA256(pub)

	ttl, clamped, err := s.ttl(req.TTL)
	if err != nil {
		return SignResponse{}, err
	}
	entry.TTLClamped = clamped

	rev, err := s.cfg.State.Revocations()
	if err != nil {
		return SignResponse{}, err
	}
	if rev.IdentityRevoked(id) {
		return SignResponse{}, refuse(ReasonRevoked, "revoked: certificates for %q are revoked on this certifier", id.KeyID())
	}
	principals := s.cfg.Mapping.Principals(id.Groups)
	if len(principals) == 0 {
		return SignResponse{}, refuse(ReasonNoServices, "no services: your groups (%s) map to no service on this certifier (it maps %s)",
			groupList(id.Groups), s.cfg.Mapping)
	}
	entry.Principals = principals

	cert := &gossh.Certificate{
		Key:             pub,
		Serial:          randomSerial(),
		CertType:        gossh.UserCert,
		KeyId:           id.KeyID(),
		ValidPrincipals: principals,
		ValidAfter:      uint64(now.Add(-Backdate).Unix()),
		ValidBefore:     uint64(now.Add(ttl).Unix()),
		Permissions:     gossh.Permissions{Extensions: map[string]string{}},
	}
	for _, e := range s.cfg.Extensions {
		cert.Extensions[e] = ""
	}
	if err := cert.SignCert(rand.Reader, s.cfg.CA); err != nil {
		s.cfg.Logger.Error("signing a certificate", "err", err, "key_id", id.KeyID())
		return SignResponse{}, refuse(ReasonUnavailable, "the certifier's CA could not sign, try again later")
	}
	after, before := time.Unix(int64(cert.ValidAfter), 0).UTC(), time.Unix(int64(cert.ValidBefore), 0).UTC()
	entry.Serial, entry.ValidAfter, entry.ValidBefore = &cert.Serial, &after, &before
	if err := s.cfg.State.RecordIssued(Issued{Time: now.UTC(), Serial: cert.Serial, KeyID: cert.KeyId, Subject: id.Subject,
		Principals: principals, KeyFingerprint: entry.KeyFingerprint, ValidAfter: after, ValidBefore: before}); err != nil {
		// A certificate nobody could find again is not handed out.
		return SignResponse{}, err
	}
	line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(cert))) + " " + cert.KeyId
	return SignResponse{Certificate: line, ValidBefore: before}, nil
}

// cutFold is strings.CutPrefix ignoring the case of prefix (the auth scheme is
// case-insensitive).
func cutFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// readSignRequest reads and checks the JSON body of /sign.
func readSignRequest(body io.Reader, max int64) (SignRequest, error) {
	var req SignRequest
	data, err := io.ReadAll(io.LimitReader(body, max+1))
	if err != nil {
		return req, refuse(ReasonBadRequest, "bad request: reading the body: %v", err)
	}
	if int64(len(data)) > max {
		return req, refuse(ReasonTooLarge, "too large: the body has more than %d bytes", max)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&req); err != nil {
		return req, refuse(ReasonBadRequest, "bad request: the body is not the JSON object {\"public_key\": ..., \"ttl\": ..., \"reason\": ...}: %v", err)
	}
	if dec.More() {
		return req, refuse(ReasonBadRequest, "bad request: the body has more than one JSON value")
	}
	if utf8.RuneCountInString(req.Reason) > maxRequestReason {
		return req, refuse(ReasonBadRequest, "bad request: the reason has more than %d characters", maxRequestReason)
	}
	req.Reason = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, req.Reason)
	return req, nil
}

// ParsePublicKey reads the public key to certify: one OpenSSH public key line without options,
// of a key type OpenSSH signs with (not a certificate, not DSA, RSA of 2048 to 16384 bits).
func ParsePublicKey(line string) (gossh.PublicKey, error) {
	line = strings.TrimSpace(line)
	if line == "" {
		return nil, refuse(ReasonPublicKey, "bad public key: public_key is empty (send the .pub line of your key)")
	}
	if strings.ContainsAny(line, "\r\n") {
		return nil, refuse(ReasonPublicKey, "bad public key: public_key is more than one line")
	}
	pub, _, options, rest, err := gossh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, refuse(ReasonPublicKey, "bad public key: public_key is not an OpenSSH public key line (%v)", err)
	}
	if len(options) > 0 || len(rest) > 0 {
		return nil, refuse(ReasonPublicKey, "bad public key: public_key has options or more than one key")
	}
	switch pub.Type() {
	case gossh.KeyAlgoED25519, gossh.KeyAlgoSKED25519, gossh.KeyAlgoECDSA256, gossh.KeyAlgoECDSA384,
		gossh.KeyAlgoECDSA521, gossh.KeyAlgoSKECDSA256:
	case gossh.KeyAlgoRSA:
		ck, ok := pub.(gossh.CryptoPublicKey)
		if !ok {
			return nil, refuse(ReasonPublicKey, "bad public key: an RSA key that cannot be read")
		}
		rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
		if !ok || rk.N.BitLen() < minRSABits || rk.N.BitLen() > maxRSABits {
			return nil, refuse(ReasonPublicKey, "bad public key: an RSA key must have %d to %d bits", minRSABits, maxRSABits)
		}
	default:
		if _, isCert := pub.(*gossh.Certificate); isCert {
			return nil, refuse(ReasonPublicKey, "bad public key: public_key is a certificate; send the key itself")
		}
		return nil, refuse(ReasonPublicKey, "bad public key: keys of type %s are not certified (use ed25519)", pub.Type())
	}
	return pub, nil
}

// ttl is the validity asked for, clamped to the maximum.
func (s *Server) ttl(asked string) (time.Duration, bool, error) {
	if asked == "" {
		return s.cfg.MaxTTL, false, nil
	}
	d, err := time.ParseDuration(asked)
	if err != nil || d < minTTL {
		return 0, false, refuse(ReasonBadRequest, "bad request: ttl %.40q is not a duration of at least %v, such as 30m", asked, minTTL)
	}
	if d > s.cfg.MaxTTL {
		return s.cfg.MaxTTL, true, nil
	}
	return d, false, nil
}

func groupList(groups []string) string {
	if len(groups) == 0 {
		return "none"
	}
	shownGroups := make([]string, 0, min(len(groups), 10))
	for _, g := range groups[:min(len(groups), 10)] {
		shownGroups = append(shownGroups, shown(g))
	}
	if len(groups) > 10 {
		shownGroups = append(shownGroups, fmt.Sprintf("and %d more", len(groups)-10))
	}
	return strings.Join(shownGroups, ", ")
}

func (s *Server) audit(e AuditEntry) {
	if err := s.cfg.State.Audit(e); err != nil {
		s.cfg.Logger.Error("audit log", "err", err)
	}
}

// writeSuppressed writes one audit line per source whose refusals were counted, not written.
func (s *Server) writeSuppressed(counts map[string]int, now time.Time) {
	for _, src := range slices.Sorted(maps.Keys(counts)) {
		s.audit(AuditEntry{Time: now.UTC(), Event: "suppressed", Outcome: "refused", RemoteAddr: src, Count: counts[src],
			Reason: "refusals over the limit in the minute before, not written one by one"})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// ListenAndServe serves the certifier on addr (with TLS when certFile is set) until ctx ends,
// then shuts down gracefully. ready, if not nil, is called with the bound address.
func (s *Server) ListenAndServe(ctx context.Context, addr, certFile, keyFile string, ready func(net.Addr)) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    s.cfg.Limits.MaxHeader,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelDebug),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
		// HTTP/1.1 only: HTTP/2 carries up to 250 requests on each connection, which would make
		// one address's share of connections 250 times as many requests in progress.
		Protocols: new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	if ready != nil {
		ready(l.Addr())
	}
	l = netutil.LimitListener(newSourceLimitListener(l, s.cfg.Limits.PerSourceConnections, s.cfg.TrustedProxies), s.cfg.Limits.MaxConnections)
	errc := make(chan error, 1)
	go func() {
		if certFile != "" {
			errc <- srv.ServeTLS(l, certFile, keyFile)
		} else {
			errc <- srv.Serve(l)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	s.writeSuppressed(s.refusals.flush(), s.cfg.Now())
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close()
	}
	return err
}
