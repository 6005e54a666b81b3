package main

import (
	"bufio"
	"context"
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// side is which server a measurement is of.
type side string

const (
	sidePortico side = "portico pipe"
	sideSSHD    side = "sshd cat"
)

// tputKey names a throughput case: a side and its receiver count.
type tputKey struct {
	side side
	k    int
}

// results are the measurements of all runs.
type results struct {
	tput    map[tputKey][]tput
	latency map[side][][]time.Duration // per run, the recorded samples
}

func newResults() *results {
	return &results{tput: map[tputKey][]tput{}, latency: map[side][][]time.Duration{}}
}

func (r *results) addTput(s side, k int, t tput) {
	r.tput[tputKey{s, k}] = append(r.tput[tputKey{s, k}], t)
}

func (r *results) addLatency(s side, samples []time.Duration) {
	r.latency[s] = append(r.latency[s], samples)
}

// median returns the run with the median wall time (ok false when there are none).
func (r *results) median(s side, k int) (tput, bool) {
	ts := slices.Clone(r.tput[tputKey{s, k}])
	if len(ts) == 0 {
		return tput{}, false
	}
	slices.SortFunc(ts, func(a, b tput) int { return int(a.wall - b.wall) })
	return ts[len(ts)/2], true
}

// latencyPercentile returns the median over the runs of each run's p-th percentile.
func (r *results) latencyPercentile(s side, p float64) (time.Duration, bool) {
	runs := r.latency[s]
	if len(runs) == 0 {
		return 0, false
	}
	ps := make([]time.Duration, len(runs))
	for i, samples := range runs {
		ps[i] = percentile(samples, p)
	}
	slices.Sort(ps)
	return ps[len(ps)/2], true
}

// header is what the report says about the machine and the setup.
type header struct {
	lines []string
}

// describe collects the machine, the versions and each side's negotiated algorithms.
func (b *bench) describe(ctx context.Context) (header, error) {
	var h header
	h.add("machine: %d CPUs (%s), %s/%s, load average at the start %s", runtime.NumCPU(), cpuModel(),
		runtime.GOOS, runtime.GOARCH, loadAverage())
	goLine := "go: pipebench " + runtime.Version()
	if b.o.portico != "" {
		if bi, err := buildinfo.ReadFile(b.o.portico); err == nil {
			goLine += ", portico built with " + bi.GoVersion
		}
	}
	h.add("%s", goLine)
	h.add("ssh: %s; sshd: %s", sshVersion(), sshdVersion(b.o.sshd))
	n, err := b.e.probe(ctx, b.e.sshd, b.o.cipher, "root", "true")
	if err != nil {
		return h, err
	}
	h.add("sshd cat connections: %s", n)
	if b.e.portico != nil {
		n, err := b.e.probe(ctx, b.e.portico, b.o.cipher, "pipe", "help")
		if err != nil {
			return h, err
		}
		h.add("portico pipe connections: %s", n)
	}
	cipher := b.o.cipher
	if cipher == "" {
		cipher = "x/crypto's default choice"
	}
	h.add("latency client: golang.org/x/crypto/ssh, cipher %s, %d-byte writes, %d recorded per run after %d unrecorded", cipher, b.o.latencySize, b.o.latencyN, warmup)
	h.add("command: %s", commandLine())
	return h, nil
}

// loadAverage returns the 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func (h *header) add(format string, args ...any) {
	h.lines = append(h.lines, fmt.Sprintf(format, args...))
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// sshdVersion returns the version line sshd prints for an unknown option such as -V.
func sshdVersion(path string) string {
	out, _ := exec.Command(path, "-V").CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// commandLine is this command's invocation, quoted where needed.
func commandLine() string {
	args := make([]string, len(os.Args))
	for i, a := range os.Args {
		if a == "" || strings.ContainsAny(a, " \t'\"\\$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		args[i] = a
	}
	return strings.Join(args, " ")
}

// report prints the header, the comparison table and the CPU table.
func report(w io.Writer, o options, h header, r *results) {
	for _, l := range h.lines {
		fmt.Fprintf(w, "%s  \n", l)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| case (median of %d runs) | portico pipe | sshd cat | ratio portico / sshd |\n", o.runs)
	fmt.Fprintln(w, "|---|---|---|---|")
	ceiling, hasCeiling := r.median(sideSSHD, 1)
	one, hasOne := r.median(sidePortico, 1)
	fmt.Fprintf(w, "| 1→1 throughput, %d MiB | %s | %s | %s |\n", o.mb, rate(one, hasOne), rate(ceiling, hasCeiling),
		ratio(one.aggregate(), ceiling.aggregate(), hasOne && hasCeiling))
	for _, k := range o.fanout {
		t, ok := r.median(sidePortico, k)
		fmt.Fprintf(w, "| 1→%d fan-out, %d MiB to each: per subscriber | %s | — | — |\n", k, o.fanoutMB, perSub(t, ok))
		fmt.Fprintf(w, "| 1→%d fan-out: aggregate (vs. the 1→1 ceiling) | %s | %s | %s |\n", k, rate(t, ok), rate(ceiling, hasCeiling),
			ratio(t.aggregate(), ceiling.aggregate(), ok && hasCeiling))
	}
	for _, p := range []float64{50, 90, 99} {
		pl, okP := r.latencyPercentile(sidePortico, p)
		sl, okS := r.latencyPercentile(sideSSHD, p)
		fmt.Fprintf(w, "| latency p%.0f, %d-byte writes | %s | %s | %s |\n", p, o.latencySize, micros(pl, okP), micros(sl, okS),
			ratio(float64(pl), float64(sl), okP && okS))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Where the CPU went (the median run of each throughput case; server CPU: portico's process, or sshd's per-connection processes including cat):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| case | wall (all runs) | machine CPU busy | server CPU | ssh clients CPU |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	cpuRow(w, r, "sshd cat 1→1", sideSSHD, 1)
	cpuRow(w, r, "portico pipe 1→1", sidePortico, 1)
	for _, k := range o.fanout {
		cpuRow(w, r, fmt.Sprintf("portico pipe 1→%d", k), sidePortico, k)
	}
}

func cpuRow(w io.Writer, r *results, name string, s side, k int) {
	t, ok := r.median(s, k)
	if !ok {
		return
	}
	walls := make([]string, 0, len(r.tput[tputKey{s, k}]))
	for _, x := range r.tput[tputKey{s, k}] {
		walls = append(walls, fmt.Sprintf("%.2f", x.wall.Seconds()))
	}
	fmt.Fprintf(w, "| %s | %.2f s (%s) | %.0f%% of %d CPUs | %.2f s | %.2f s |\n", name, t.wall.Seconds(), strings.Join(walls, ", "),
		100*t.busy, runtime.NumCPU(), t.server.Seconds(), t.clients.Seconds())
}

func rate(t tput, ok bool) string {
	if !ok {
		return "—"
	}
	return fmt.Sprintf("%.0f MiB/s", t.aggregate())
}

func perSub(t tput, ok bool) string {
	if !ok {
		return "—"
	}
	return fmt.Sprintf("%.1f MiB/s", t.perReceiver())
}

func micros(d time.Duration, ok bool) string {
	if !ok {
		return "—"
	}
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

func ratio(a, b float64, ok bool) string {
	if !ok || b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}
