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
}

func newMetrics() *metrics {
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
	}
	m.registry.MustRegister(
		m.authDecisions, m.sessionsActive, m.sessionsTotal,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
