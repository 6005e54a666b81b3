package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/gateway"
	"github.com/portico-sh/portico/internal/gcfloor"
	"github.com/portico-sh/portico/services"
	"github.com/portico-sh/portico/services/admin"
	"github.com/portico-sh/portico/services/admin/ops"
	"github.com/portico-sh/portico/services/pipe"
	"github.com/portico-sh/portico/services/tuns"
)

// How long opening the database at start may take before serve gives up.
const openTimeout = 30 * time.Second

// gcHeapFloor is the heap goal below which serve does not let the garbage collector's goal
// fall, unless the operator set GOGC (internal/gcfloor): with a live heap of a few MiB and an
// HTTP load of tens of thousands of requests a second, the default goal (twice the live heap)
// meant dozens of collections, each stopping the world twice, a second.
const gcHeapFloor = 32 << 20

func serve(ctx context.Context, env *environment, args []string) error {
	var s settings
	fs := newFlagSet("serve", "portico serve [flags]", env, &s, storeSettings, serveSettings)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return usageError(fs, "unexpected argument %q", rest[0])
	}
	cfg, err := s.serveConfig()
	if err != nil {
		return usageError(fs, "%v", err)
	}
	log, err := s.logger(env.stderr)
	if err != nil {
		return usageError(fs, "%v", err)
	}
	if env.getenv("GOGC") == "" {
		defer gcfloor.Start(gcHeapFloor).Stop()
	}

	if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	keyPath := filepath.Join(s.dataDir, gateway.HostKeyFile)
	hostKey, created, err := gateway.LoadOrCreateHostKey(keyPath)
	if err != nil {
		return err
	}
	log.Info("host key", "path", keyPath, "fingerprint", gossh.FingerprintSHA256(hostKey.PublicKey()), "created", created)
	var hostCert *gateway.HostCertificate
	if s.hostCert != "" {
		if hostCert, err = gateway.LoadHostCertificate(s.hostCert, hostKey, time.Now()); err != nil {
			return err
		}
		log.Info("host certificate", "path", s.hostCert, "key_id", hostCert.Cert.KeyId,
			"host_ca", gossh.FingerprintSHA256(hostCert.Cert.SignatureKey), "principals", strings.Join(hostCert.Cert.ValidPrincipals, ","))
	}

	openCtx, cancel := context.WithTimeout(ctx, openTimeout)
	store, err := db.Open(openCtx, s.databaseURL, s.dataDir)
	cancel()
	if err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	defer store.Close()
	log.Info("database ready", "kind", databaseKind(s.databaseURL))

	if databaseKind(s.databaseURL) == "sqlite" {
		// An embedded database has this one gateway: deploy locks left by a previous run are stale.
		if err := store.ResetPGSLocks(ctx); err != nil {
			return fmt.Errorf("database: %w", err)
		}
	}
	tunnels := tuns.NewMemoryRegistry()
	sites, err := newSites(&s, store, cfg.public, cfg.pgs, tunnels, log)
	if err != nil {
		return err
	}
	// The gateway, made below, writes the access log; the operations read it after it.
	var gw *gateway.Gateway
	syncAccessLog := func(ctx context.Context) error { return gw.SyncAccessLog(ctx) }
	accountOps := ops.New(store, ops.Config{
		SyncAccessLog:  syncAccessLog,
		Domain:         s.domain,
		SSHHost:        cfg.public.SSHHost,
		SSHPort:        cfg.public.SSHPort,
		SignupsOpen:    cfg.signupsOpen,
		SignupRate:     cfg.signupRate,
		KRL:            cfg.krl,
		KnownHostsLine: knownHostsLine(hostCert, cfg.public),
		AccountHooks:   accountHooks(sites),
		Log:            log,
	})
	pipeOptions := cfg.pipe
	pipeOptions.Logger = log
	tunsService := newTunnels(&s, cfg, tunnels, sites, accountOps.SSHCommand(string(auth.Tuns)), log)
	router, err := services.NewRouter(
		admin.New(accountOps, admin.WithSites(sites), admin.WithTunnels(tunsService)),
		tunsService, // before sites: a tunnel's host answers without a database lookup
		sites,
		pipe.New(pipe.Options{
			Broker:     pipe.NewMemoryBroker(pipeOptions),
			SSHCommand: accountOps.SSHCommand(string(auth.Pipe)),
			Logger:     log,
		}),
	)
	if err != nil {
		return err
	}
	gw, err = gateway.New(gateway.Options{
		Store:              store,
		Auth:               auth.New(store, auth.Options{SignupsOpen: cfg.signupsOpen, Admin: cfg.public.SSHCommand(string(auth.Admin))}),
		Router:             router,
		HostKey:            hostKey,
		HostCert:           hostCert,
		Ciphers:            cfg.ciphers,
		SSH:                cfg.listeners,
		HTTPAddr:           s.httpListen,
		MetricsAddr:        cfg.metricsAddr,
		Domain:             s.domain,
		Version:            versionString(),
		DrainTimeout:       cfg.drainTimeout,
		AccessLogRetention: cfg.retention,
		Limits:             &cfg.limits,
		Logger:             log,
	})
	if err != nil {
		return err
	}
	go sites.Sweep(ctx, time.Hour)
	log.Info("starting", "version", versionString(), "domain", s.domain, "signups", s.signups, "signup_rate", cfg.signupRate.String())
	// KRL sources due (revocations import --url --every) are fetched by every gateway on the
	// database, each source by one at a time; it stops before the store closes.
	refreshCtx, stopRefresh := context.WithCancel(ctx)
	refreshed := make(chan struct{})
	go func() {
		defer close(refreshed)
		accountOps.RunKRLRefresher(refreshCtx)
	}()
	err = gw.Serve(ctx)
	stopRefresh()
	<-refreshed
	return err
}

func databaseKind(url string) string {
	if url == "" {
		return "sqlite"
	}
	return "postgres"
}

func migrate(ctx context.Context, env *environment, args []string) error {
	var s settings
	fs := newFlagSet("migrate", "portico migrate [flags]", env, &s, storeSettings)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return usageError(fs, "unexpected argument %q", rest[0])
	}
	log, err := s.logger(env.stderr)
	if err != nil {
		return usageError(fs, "%v", err)
	}
	if err := db.Migrate(ctx, s.databaseURL, s.dataDir); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	log.Info("migrations applied", "kind", databaseKind(s.databaseURL))
	return nil
}

// knownHostsLine is the known_hosts line that trusts the host certificate's CA for the public
// SSH address, or empty without a host certificate.
func knownHostsLine(h *gateway.HostCertificate, p services.Public) string {
	if h == nil {
		return ""
	}
	return h.KnownHostsLine(p.SSHHost, p.SSHPort)
}
