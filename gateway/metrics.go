package gateway

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the gateway's Prometheus metrics, in a registry of its own so that several
// gateways (as in tests) never collide.
type metrics struct {
	registry       *prometheus.Registry
	authDecisions  *prometheus.CounterVec
	sessionsActive *prometheus.GaugeVec
	sessionsTotal  *prometheus.CounterVec
	limitRefusals  *prometheus.CounterVec
}

// newMetrics registers the gateway's metrics; held reads what the limits count now.
func newMetrics(held func() counts) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		authDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portico_auth_decisions_total",
			Help: "Authentication decisions on proven keys, by service, method (key, cert, signup) and outcome (allowed, denied, unavailable).",
		}, []string{"service", "method", "outcome"}),
		sessionsActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "portico_sessions_active",
			Help: "SSH sessions running now, by service.",
		}, []string{"service"}),
		sessionsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portico_sessions_total",
			Help: "SSH sessions started, by service.",
		}, []string{"service"}),
		limitRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portico_limit_refusals_total",
			Help: "Connections and channels refused, or connections closed, by a limit, by limit.",
		}, []string{"limit"}),
	}
	for _, l := range limitNames {
		m.limitRefusals.WithLabelValues(string(l))
	}
	gauge := func(name, help string, value func(counts) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(value(held())) })
	}
	m.registry.MustRegister(
		m.authDecisions, m.sessionsActive, m.sessionsTotal, m.limitRefusals,
		gauge("portico_ssh_unauthenticated_connections", "SSH connections that have not authenticated yet.", func(c counts) int { return c.startups }),
		gauge("portico_ssh_connections", "Authenticated SSH connections.", func(c counts) int { return c.conns }),
		gauge("portico_ssh_channels", "Channels clients have open (sessions and forwarded connections).", func(c counts) int { return c.channels }),
		gauge("portico_penalised_sources", "Addresses with a login penalty, active or not.", func(c counts) int { return c.penalised }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
