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
	"runtime/debug"
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
	// POST /debug/free collects and returns freed memory to the system, so that a benchmark can
	// read a resident size that does not depend on when the collector last ran.
	http.HandleFunc("POST /debug/free", func(w http.ResponseWriter, r *http.Request) { debug.FreeOSMemory() })
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			slog.Error("pprof listener", "err", err)
		}
	}()
}
