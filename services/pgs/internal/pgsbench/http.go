package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-sh/portico/internal/benchenv"
)

// httpResult is one run of the HTTP case.
type httpResult struct {
	rps      float64
	p50, p99 time.Duration
	cpu      time.Duration
	busy     float64
	errors   int64
}

// httpBench deploys a site of small files and requests them over keep-alive connections from
// o.httpConc goroutines, o.httpRequests requests per run.
func (b *bench) httpBench(ctx context.Context) error {
	o := b.o
	site := filepath.Join(b.dir, "site")
	for i := range o.httpFiles {
		if err := writeRandom(filepath.Join(site, "assets", fmt.Sprintf("f%03d.css", i)), int64(o.httpSize)); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>bench</h1>\n"), 0o644); err != nil {
		return err
	}
	portico := b.targets()[0]
	if _, err := b.rsync(ctx, portico, site, "/web/"); err != nil {
		return err
	}
	paths := []string{"/"}
	for i := range o.httpFiles {
		paths = append(paths, fmt.Sprintf("/assets/f%03d.css", i))
	}
	var results []httpResult
	for r := range o.runs {
		slog.Info("http run", "n", r+1)
		res, err := b.httpRun(ctx, paths)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	slices.SortFunc(results, func(a, b httpResult) int {
		switch {
		case a.rps < b.rps:
			return -1
		case a.rps > b.rps:
			return 1
		}
		return 0
	})
	m := results[len(results)/2]
	fmt.Printf("\n## HTTP: small files of a deployed site (median of %d runs)\n\n", o.runs)
	fmt.Printf("%d requests per run for %d files of %d bytes (and index.html), %d keep-alive connections, load generator on the same machine.\n\n",
		o.httpRequests, o.httpFiles, o.httpSize, o.httpConc)
	fmt.Println("| requests/s | p50 | p99 | server CPU per 1,000 requests | machine CPU busy | errors |")
	fmt.Println("|---|---|---|---|---|---|")
	fmt.Printf("| %.0f | %s | %s | %.1f ms | %.0f%% | %d |\n", m.rps, m.p50.Round(time.Microsecond), m.p99.Round(time.Microsecond),
		float64(m.cpu.Milliseconds())*1000/float64(o.httpRequests), 100*m.busy, m.errors)
	fmt.Println("\nAll runs (requests/s):")
	for _, r := range results {
		fmt.Printf("- %.0f (p99 %s)\n", r.rps, r.p99.Round(time.Microsecond))
	}
	return nil
}

func (b *bench) httpRun(ctx context.Context, paths []string) (httpResult, error) {
	o := b.o
	url := "http://" + b.portico.HTTPAddr
	lat := make([]time.Duration, o.httpRequests)
	var next, errs atomic.Int64
	var firstErr atomic.Value
	meter := benchenv.StartCPUMeter(b.portico)
	start := time.Now()
	var wg sync.WaitGroup
	for range o.httpConc {
		wg.Go(func() {
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			for {
				i := next.Add(1) - 1
				if i >= int64(o.httpRequests) || ctx.Err() != nil {
					return
				}
				req, _ := http.NewRequest("GET", url+paths[int(i)%len(paths)], nil)
				req.Host = "alice-web.localhost"
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					body, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					err = rerr
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("GET %s: status %d: %.100s", req.URL.Path, resp.StatusCode, body)
					}
				}
				lat[i] = time.Since(t0)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	busy, cpu := meter.Stop()
	if err := ctx.Err(); err != nil {
		return httpResult{}, err
	}
	if e := firstErr.Load(); e != nil {
		slog.Warn("HTTP requests failed", "count", errs.Load(), "first", e)
	}
	slices.Sort(lat)
	q := func(f float64) time.Duration { return lat[int(f*float64(len(lat)-1))] }
	return httpResult{rps: float64(o.httpRequests) / elapsed.Seconds(), p50: q(0.5), p99: q(0.99), cpu: cpu, busy: busy, errors: errs.Load()}, nil
}
