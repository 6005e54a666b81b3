package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/gateway"
	"github.com/portico-sh/portico/internal/cliargs"
	"github.com/portico-sh/portico/services"
	"github.com/portico-sh/portico/services/admin/ops"
	"github.com/portico-sh/portico/services/pgs"
	"github.com/portico-sh/portico/services/pipe"
	"github.com/portico-sh/portico/services/tuns"
)

// settings are the operator's settings (SPEC §7). Each is a flag whose default comes from its
// PORTICO_ environment variable, so the flag wins.
type settings struct {
	dataDir       string
	databaseURL   string
	sshListen     string
	httpListen    string
	domain        string
	signups       string
	logFormat     string
	accessLogDays string
	drainTimeout  string
	pipeBuffer    string
	pipeStall     string
	publicHTTP    string
	publicSSH     string
	pgsKeep       string
	pgsQuota      string
	pgsMaxFile    string
	pgsMaxFiles   string
	signupRate    string
	krlInternal   string
	krlMinEvery   string
	sshCiphers    string
	hostCert      string

	// Limits (README "Limits").
	metricsListen           string
	maxStartups             string
	perSourceMaxStartups    string
	perSourceMaxConnections string
	perSourcePenalty        string
	perSourceExempt         string
	maxConnections          string
	maxChannels             string
	maxHTTPConnections      string
	pipeMaxReaders          string

	tunsMax      string
	tunsTCPPorts string
}

// setting describes one flag and its environment variable.
type setting struct {
	flag, env, def, help string
	dst                  func(*settings) *string
}

var (
	storeSettings = []setting{
		{"data-dir", "PORTICO_DATA_DIR", "./data", "host key, embedded database, stored files", func(s *settings) *string { return &s.dataDir }},
		{"database-url", "PORTICO_DATABASE_URL", "", "postgres://... (empty: SQLite at DATA_DIR/portico.db)", func(s *settings) *string { return &s.databaseURL }},
		{"log-format", "PORTICO_LOG_FORMAT", "text", "log format: text or json", func(s *settings) *string { return &s.logFormat }},
	}
	serveSettings = []setting{
		{"ssh-listen", "PORTICO_SSH_LISTEN", ":2222", "SSH listen addresses, a comma list of [service=]addr", func(s *settings) *string { return &s.sshListen }},
		{"http-listen", "PORTICO_HTTP_LISTEN", ":8080", "HTTP listen address (sites, tunnels, /healthz)", func(s *settings) *string { return &s.httpListen }},
		{"domain", "PORTICO_DOMAIN", "localhost", "public host name used in URLs and recipes", func(s *settings) *string { return &s.domain }},
		{"public-http", "PORTICO_PUBLIC_HTTP", "", "scheme, host and port of printed site and tunnel URLs (empty: http://DOMAIN:HTTP-PORT)", func(s *settings) *string { return &s.publicHTTP }},
		{"public-ssh", "PORTICO_PUBLIC_SSH", "", "host and port in printed ssh, rsync and scp recipes (empty: DOMAIN:SSH-PORT)", func(s *settings) *string { return &s.publicSSH }},
		{"host-cert", "PORTICO_HOST_CERT", "", "an OpenSSH host certificate of the host key (ssh-keygen -s HOSTCA -h), presented to clients", func(s *settings) *string { return &s.hostCert }},
		{"ssh-ciphers", "PORTICO_SSH_CIPHERS", "", "a fixed comma list of SSH ciphers to offer (empty: AES-GCM alone to clients that offer it, all to the others)", func(s *settings) *string { return &s.sshCiphers }},
		{"signups", "PORTICO_SIGNUPS", "open", "whether unregistered keys may register: open or closed", func(s *settings) *string { return &s.signups }},
		{"signup-rate", "PORTICO_SIGNUP_RATE", ops.DefaultSignupRate, "sign-ups per source address (IPv6: per /64): N/s, N/m, N/h, N/d, N/DURATION, or off", func(s *settings) *string { return &s.signupRate }},
		{"access-log-days", "PORTICO_ACCESS_LOG_DAYS", "90", "days the access log is kept", func(s *settings) *string { return &s.accessLogDays }},
		{"drain-timeout", "PORTICO_DRAIN_TIMEOUT", "10s", "how long shutdown waits for open sessions", func(s *settings) *string { return &s.drainTimeout }},
		{"pipe-buffer", "PORTICO_PIPE_BUFFER", "1MiB", "pipe: bytes buffered for each reader", func(s *settings) *string { return &s.pipeBuffer }},
		{"pipe-stall-timeout", "PORTICO_PIPE_STALL_TIMEOUT", "10s", "pipe: how long a reader's buffer may stay full before it is dropped", func(s *settings) *string { return &s.pipeStall }},
		{"krl-allow-internal", "PORTICO_KRL_ALLOW_INTERNAL", "off", "on: revocations import --url may fetch from loopback, private, link-local and other internal addresses", func(s *settings) *string { return &s.krlInternal }},
		{"krl-min-every", "PORTICO_KRL_MIN_EVERY", ops.DefaultKRLMinEvery.String(), "the shortest --every of revocations import --url", func(s *settings) *string { return &s.krlMinEvery }},
		{"metrics-listen", "PORTICO_METRICS_LISTEN", "127.0.0.1:9222", "Prometheus /metrics listen address (off, or an empty flag: none)", func(s *settings) *string { return &s.metricsListen }},
		{"max-startups", "PORTICO_MAX_STARTUPS", "100:30:1000", "unauthenticated connections, as sshd's MaxStartups start:rate:full, or off", func(s *settings) *string { return &s.maxStartups }},
		{"per-source-max-startups", "PORTICO_PER_SOURCE_MAX_STARTUPS", "20", "unauthenticated connections at once from one address (IPv6: one /64), or off", func(s *settings) *string { return &s.perSourceMaxStartups }},
		{"per-source-max-connections", "PORTICO_PER_SOURCE_MAX_CONNECTIONS", "200", "authenticated connections at once from one address, or off", func(s *settings) *string { return &s.perSourceMaxConnections }},
		{"per-source-penalty", "PORTICO_PER_SOURCE_PENALTY", "on", "refuse addresses that keep failing to log in, as sshd's PerSourcePenalties: on or off", func(s *settings) *string { return &s.perSourcePenalty }},
		{"per-source-exempt", "PORTICO_PER_SOURCE_EXEMPT", "", "CIDR list exempt from the per-source limits and penalties", func(s *settings) *string { return &s.perSourceExempt }},
		{"max-connections", "PORTICO_MAX_CONNECTIONS", strconv.Itoa(gateway.DefaultMaxConnections), "authenticated connections at once, from all addresses, or off", func(s *settings) *string { return &s.maxConnections }},
		{"max-channels", "PORTICO_MAX_CHANNELS", strconv.Itoa(gateway.DefaultMaxChannels), "sessions and forwarded connections open at once, over all connections (each may hold 2 MiB of unread data), or off", func(s *settings) *string { return &s.maxChannels }},
		{"max-http-connections", "PORTICO_MAX_HTTP_CONNECTIONS", strconv.Itoa(gateway.DefaultMaxHTTPConnections), "connections each HTTP listener holds at once, or off", func(s *settings) *string { return &s.maxHTTPConnections }},
		{"pipe-max-readers", "PORTICO_PIPE_MAX_READERS", strconv.Itoa(pipe.DefaultMaxReaders), "pipe: subscribers and pipe clients of one topic, or off", func(s *settings) *string { return &s.pipeMaxReaders }},
		{"pgs-keep-deploys", "PORTICO_PGS_KEEP_DEPLOYS", "10", "pgs: deploys kept per project for rollback", func(s *settings) *string { return &s.pgsKeep }},
		{"pgs-quota", "PORTICO_PGS_QUOTA", "1GiB", "pgs: bytes stored per account, each distinct file once (off: no limit)", func(s *settings) *string { return &s.pgsQuota }},
		{"pgs-max-file", "PORTICO_PGS_MAX_FILE", "100MiB", "pgs: bytes in one file (off: no limit)", func(s *settings) *string { return &s.pgsMaxFile }},
		{"pgs-max-files", "PORTICO_PGS_MAX_FILES", "50000", "pgs: files in one deploy (off: no limit)", func(s *settings) *string { return &s.pgsMaxFiles }},
		{"tuns-max", "PORTICO_TUNS_MAX", strconv.Itoa(tuns.DefaultMaxTunnels), "tuns: tunnels one account may have at once, or off", func(s *settings) *string { return &s.tunsMax }},
		{"tuns-tcp-ports", "PORTICO_TUNS_TCP_PORTS", "", "tuns: range of public TCP ports, such as 40000-40099 (empty: none)", func(s *settings) *string { return &s.tunsTCPPorts }},
	}
)

// newFlagSet returns a flag set for command name with the given settings registered.
func newFlagSet(name, usageLine string, env *environment, s *settings, groups ...[]setting) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	for _, g := range groups {
		for _, st := range g {
			def := st.def
			if v := env.getenv(st.env); v != "" {
				def = v
			}
			fs.StringVar(st.dst(s), st.flag, def, fmt.Sprintf("%s (env %s)", st.help, st.env))
		}
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s\n", usageLine)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, allowing flags after positional arguments, and returns the
// positional arguments. Errors are usage errors (already printed) or flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	positional, err := cliargs.Parse(fs, args)
	switch {
	case err == flag.ErrHelp:
		return nil, err
	case err != nil:
		return nil, errUsage
	}
	return positional, nil
}

// usageError prints a usage error for fs and returns errUsage.
func usageError(fs *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fs.Output(), "portico %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return errUsage
}

// logger builds the slog logger of the chosen format on w.
func (s *settings) logger(w io.Writer) (*slog.Logger, error) {
	switch s.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	default:
		return nil, fmt.Errorf("log format %q: want text or json", s.logFormat)
	}
}

// serveConfig is the checked form of the serve settings.
type serveConfig struct {
	listeners    []gateway.Listener
	signupsOpen  bool
	retention    time.Duration
	drainTimeout time.Duration
	pipe         pipe.MemoryOptions
	public       services.Public
	pgs          pgs.Limits
	tunsMax      int
	tunsPorts    tuns.PortRange
	signupRate   ops.SignupRate
	krl          ops.KRLConfig
	limits       gateway.Limits
	metricsAddr  string
	ciphers      []string
}

func (s *settings) serveConfig() (serveConfig, error) {
	var c serveConfig
	var err error
	if c.listeners, err = gateway.ParseListeners(s.sshListen); err != nil {
		return c, err
	}
	switch s.signups {
	case "open":
		c.signupsOpen = true
	case "closed":
	default:
		return c, fmt.Errorf("signups %q: want open or closed", s.signups)
	}
	if c.signupRate, err = ops.ParseSignupRate(s.signupRate); err != nil {
		return c, err
	}
	days, err := strconv.Atoi(s.accessLogDays)
	if err != nil || days < 1 {
		return c, fmt.Errorf("access log days %q: want a whole number of days, at least 1", s.accessLogDays)
	}
	c.retention = time.Duration(days) * 24 * time.Hour
	if c.drainTimeout, err = time.ParseDuration(s.drainTimeout); err != nil || c.drainTimeout <= 0 {
		return c, fmt.Errorf("drain timeout %q: want a duration such as 10s", s.drainTimeout)
	}
	if strings.TrimSpace(s.domain) == "" {
		return c, fmt.Errorf("domain is empty")
	}
	if c.public, err = s.publicAddresses(c.listeners); err != nil {
		return c, err
	}
	if c.pipe.BufferSize, err = pipe.ParseSize(s.pipeBuffer); err != nil {
		return c, fmt.Errorf("pipe buffer: %w", err)
	}
	if c.pipe.StallTimeout, err = time.ParseDuration(s.pipeStall); err != nil || c.pipe.StallTimeout <= 0 {
		return c, fmt.Errorf("pipe stall timeout %q: want a duration such as 10s", s.pipeStall)
	}
	switch s.krlInternal {
	case "on":
		c.krl.AllowInternal = true
	case "off":
	default:
		return c, fmt.Errorf("krl allow internal %q: want on or off", s.krlInternal)
	}
	if c.krl.MinEvery, err = time.ParseDuration(s.krlMinEvery); err != nil || c.krl.MinEvery < time.Second || c.krl.MinEvery > ops.MaxKRLEvery {
		return c, fmt.Errorf("krl min every %q: want a duration from 1s to %v, such as 1m", s.krlMinEvery, ops.MaxKRLEvery)
	}
	if c.pipe.MaxReaders, err = gateway.ParseLimit("pipe max readers", s.pipeMaxReaders); err != nil {
		return c, err
	}
	if c.pipe.MaxReaders == 0 {
		c.pipe.MaxReaders = -1 // off: no cap
	}
	if c.limits, err = s.limits(); err != nil {
		return c, err
	}
	if c.ciphers, err = gateway.ParseCiphers(s.sshCiphers); err != nil {
		return c, err
	}
	if c.metricsAddr = s.metricsListen; c.metricsAddr == "off" {
		c.metricsAddr = ""
	}
	if c.pgs, err = s.pgsLimits(); err != nil {
		return c, err
	}
	if c.tunsMax, err = gateway.ParseLimit("tuns max", s.tunsMax); err != nil {
		return c, err
	}
	if c.tunsMax == 0 {
		c.tunsMax = -1 // off: no cap
	}
	if c.tunsPorts, err = tuns.ParsePortRange(s.tunsTCPPorts); err != nil {
		return c, err
	}
	return c, nil
}

// pgsLimits checks the pgs settings; the size limits and the file count accept off.
func (s *settings) pgsLimits() (pgs.Limits, error) {
	var l pgs.Limits
	keep, err := strconv.Atoi(s.pgsKeep)
	if err != nil || keep < 1 || keep > 1000 {
		return l, fmt.Errorf("pgs keep deploys %q: want a number from 1 to 1000", s.pgsKeep)
	}
	l.KeepDeploys = keep
	size := func(what, v string) (int64, error) {
		if v == "off" {
			return 0, nil
		}
		n, err := pipe.ParseSize(v)
		if err != nil {
			return 0, fmt.Errorf("%s %q: want a size such as 100MiB or 1GiB, or off", what, v)
		}
		return int64(n), nil
	}
	if l.Quota, err = size("pgs quota", s.pgsQuota); err != nil {
		return l, err
	}
	if l.MaxFile, err = size("pgs max file", s.pgsMaxFile); err != nil {
		return l, err
	}
	if l.MaxFiles, err = gateway.ParseLimit("pgs max files", s.pgsMaxFiles); err != nil {
		return l, err
	}
	return l, nil
}

// limits are the gateway's limits from their settings; each accepts off.
func (s *settings) limits() (gateway.Limits, error) {
	l := gateway.DefaultLimits()
	var err error
	if l.MaxStartups, err = gateway.ParseStartups(s.maxStartups); err != nil {
		return l, err
	}
	for _, n := range []struct {
		name, value string
		dst         *int
	}{
		{"per-source max startups", s.perSourceMaxStartups, &l.PerSourceMaxStartups},
		{"per-source max connections", s.perSourceMaxConnections, &l.PerSourceMaxConnections},
		{"max connections", s.maxConnections, &l.MaxConnections},
		{"max channels", s.maxChannels, &l.MaxChannels},
		{"max HTTP connections", s.maxHTTPConnections, &l.MaxHTTPConnections},
	} {
		if *n.dst, err = gateway.ParseLimit(n.name, n.value); err != nil {
			return l, err
		}
	}
	if l.Penalty, err = gateway.ParsePenalty(s.perSourcePenalty); err != nil {
		return l, err
	}
	if l.Exempt, err = gateway.ParseExempt(s.perSourceExempt); err != nil {
		return l, err
	}
	return l, nil
}

// publicAddresses is how users reach this server: PORTICO_PUBLIC_HTTP and PORTICO_PUBLIC_SSH,
// by default the domain with the HTTP listener's port and with the SSH port of recipes.
func (s *settings) publicAddresses(ls []gateway.Listener) (services.Public, error) {
	httpBase := s.publicHTTP
	if httpBase == "" {
		port := "80"
		if _, p, err := net.SplitHostPort(s.httpListen); err == nil && p != "" {
			port = p
		}
		httpBase = "http://" + net.JoinHostPort(s.domain, port)
		if port == "80" {
			httpBase = "http://" + s.domain
		}
	}
	sshAddr := s.publicSSH
	if sshAddr == "" {
		sshAddr = net.JoinHostPort(s.domain, strconv.Itoa(publicSSHPort(ls)))
	}
	return services.ParsePublic(httpBase, sshAddr)
}

// publicSSHPort is the port shown in recipes: that of the first listener not bound to a
// service, else of the first one bound to admin, else of the first one.
func publicSSHPort(ls []gateway.Listener) int {
	pick := ls[0]
	for _, l := range ls {
		if l.Service == "" {
			pick = l
			break
		}
		if l.Service == auth.Admin && pick.Service != auth.Admin {
			pick = l
		}
	}
	_, port, _ := net.SplitHostPort(pick.Addr) // ParseListeners checked it
	n, _ := strconv.Atoi(port)
	return n
}
