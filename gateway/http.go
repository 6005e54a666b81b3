package gateway

import (
	"context"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/services"
)

// httpHandler answers sites by host name ({account}-{name}.{domain}) and, on other host
// names, /healthz. Metrics are on a listener of their own (metricsHandler): what the server
// counts is for its operator, not for the public.
func (g *Gateway) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", g.healthz)
	sites := g.siteServers()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		account, name, ok := siteOf(r.Host, g.o.Domain)
		if !ok {
			mux.ServeHTTP(w, r)
			return
		}
		for _, s := range sites {
			if h, ok := s.Site(account, name); ok {
				h.ServeHTTP(w, r)
				return
			}
		}
		http.NotFound(w, r)
	})
}

// siteServers are the router's site servers, in its order. The router is fixed once made: its
// site servers are looked up once, not per request.
func (g *Gateway) siteServers() []services.SiteServer {
	var sites []services.SiteServer
	if g.o.Router != nil {
		for _, svc := range g.o.Router.Services() {
			if s, ok := svc.(services.SiteServer); ok {
				sites = append(sites, s)
			}
		}
	}
	return sites
}

// metricsHandler answers GET /metrics, and nothing else.
func (g *Gateway) metricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", g.metrics.handler())
	return mux
}

func (g *Gateway) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := g.o.Store.Ping(ctx); err != nil {
		g.log.Warn("health check: database unreachable", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("database unreachable\n"))
		return
	}
	w.Write([]byte("ok\n"))
}

// siteOf splits a host name of the form {account}-{name}.{domain} (any port ignored);
// {account}.{domain} names the account's site called like the account itself.
func siteOf(host, domain string) (account, name string, ok bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	label, found := strings.CutSuffix(host, "."+strings.ToLower(domain))
	if !found || strings.Contains(label, ".") {
		return "", "", false
	}
	account, name, found = strings.Cut(label, "-")
	if !found {
		name = account
	}
	if name == "" || auth.ValidAccountName(account) != nil {
		return "", "", false
	}
	return account, name, true
}
