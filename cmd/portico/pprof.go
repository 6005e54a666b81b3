//go:build pprof

package main

// Built with -tags pprof (benchmarks only, never a release), portico serves net/http/pprof on
// the loopback address in PORTICO_PPROF_LISTEN, so that a benchmark can read its heap and CPU
// profiles.

import (
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"strings"
)

func init() {
	addr := os.Getenv("PORTICO_PPROF_LISTEN")
	if addr == "" {
		return
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") && !strings.HasPrefix(addr, "[::1]:") {
		slog.Error("PORTICO_PPROF_LISTEN must be a loopback address", "addr", addr)
		os.Exit(2)
	}
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			slog.Error("pprof listener", "err", err)
		}
	}()
}
