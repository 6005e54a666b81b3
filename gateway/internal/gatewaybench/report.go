package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// describe is the header of the report: machine, versions, the command.
func describe(o options, e *env) []string {
	var head []string
	head = append(head, fmt.Sprintf("machine: %d CPUs, %s/%s, load average at the start %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, loadAverage()))
	if out, err := exec.Command(o.portico, "version").Output(); err == nil {
		head = append(head, "portico: "+strings.TrimSpace(string(out)))
	}
	head = append(head, "go: gatewaybench "+runtime.Version())
	if e.sshd != nil {
		if out, err := exec.Command("ssh", "-V").CombinedOutput(); err == nil {
			head = append(head, "sshd: "+strings.TrimSpace(string(out)))
		}
	}
	head = append(head, fmt.Sprintf("clients: golang.org/x/crypto/ssh, %d workers, default algorithms, ed25519 key and certificate", o.workers))
	head = append(head, "command: "+strings.Join(os.Args, " "))
	return head
}

func report(w io.Writer, o options, head []string, rates map[rateCase][]rateRound, idle []idleResult) {
	for _, h := range head {
		fmt.Fprintf(w, "%s  \n", h)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Authenticated exec sessions per second (%d rounds of %v each, the bare server and portico taking turns in %v slices; sshd %v), each round's figure:\n\n", o.rounds, o.round, o.slice, o.sshdRound)
	fmt.Fprintln(w, "| auth | bare x/crypto | portico | sshd | portico / bare, each round | portico / bare (median) | sessions per server CPU-second: bare, portico | portico / bare per CPU-second |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, method := range o.methods {
		bare := rates[rateCase{"bare x/crypto", method}]
		port := rates[rateCase{"portico", method}]
		sshd := rates[rateCase{"sshd", method}]
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %.2f× | %s, %s | %s |\n", method, perSecondList(bare), perSecondList(port), perSecondList(sshd),
			roundRatios(port, bare), median(roundRatioValues(port, bare)), perCPU(bare), perCPU(port), cpuRatio(port, bare))
	}
	if failed := totalFailures(rates); failed > 0 {
		fmt.Fprintf(w, "\n%d sessions failed (see the log).\n", failed)
	}
	if len(idle) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Idle authenticated connections, opened in one series per server up to each count: server RSS growth per connection since before the first (median of %d readings %v apart, from %v after the count's last connection opened), and the growth per connection since the previous count (slope):\n\n", idleSamples, idleSampleEvery, idleSettle)
	fmt.Fprintln(w, "| connections | bare x/crypto | portico | portico / bare | slope: bare, portico | slope portico / bare |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	byN := map[int]map[string]idleResult{}
	var ns []int
	for _, r := range idle {
		if byN[r.n] == nil {
			byN[r.n] = map[string]idleResult{}
			ns = append(ns, r.n)
		}
		byN[r.n][r.target] = r
	}
	for _, n := range ns {
		b, p := byN[n]["bare x/crypto"], byN[n]["portico"]
		slope := "–, – | –"
		if b.slope > 0 && p.slope > 0 {
			slope = fmt.Sprintf("%.1f KiB, %.1f KiB | %.2f×", b.slope/1024, p.slope/1024, p.slope/b.slope)
		}
		fmt.Fprintf(w, "| %d | %.1f KiB (RSS %d→%d MiB) | %.1f KiB (RSS %d→%d MiB) | %.2f× | %s |\n", n,
			b.perConn()/1024, b.before>>20, b.after>>20, p.perConn()/1024, p.before>>20, p.after>>20, p.perConn()/b.perConn(), slope)
	}
	var collected []string
	for _, n := range ns {
		b, p := byN[n]["bare x/crypto"], byN[n]["portico"]
		if b.collected > 0 && p.collected > 0 {
			collected = append(collected, fmt.Sprintf("| %d | %.1f KiB | %.1f KiB | %.2f× | %.1f KiB | %.1f KiB | %.2f× | %.2f, %.2f |", n,
				b.collected/1024, p.collected/1024, p.collected/b.collected, b.freed/1024, p.freed/1024, p.freed/b.freed, b.goroutines, p.goroutines))
		}
	}
	if len(collected) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "After each server collected and returned its freed memory to the system (-heap-profile), which does not depend on when the collector last ran: live heap and goroutine stacks per connection, and RSS growth per connection since before the first (both read so):")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| connections | live: bare x/crypto | live: portico | live portico / bare | RSS: bare x/crypto | RSS: portico | RSS portico / bare | goroutines per connection: bare, portico |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
		for _, l := range collected {
			fmt.Fprintln(w, l)
		}
	}
}

// roundRatioValues is a/b round by round (the rounds of both ran interleaved).
func roundRatioValues(a, b []rateRound) []float64 {
	var out []float64
	for i := range min(len(a), len(b)) {
		out = append(out, a[i].perSecond()/b[i].perSecond())
	}
	return out
}

func roundRatios(a, b []rateRound) string {
	var parts []string
	for _, x := range roundRatioValues(a, b) {
		parts = append(parts, fmt.Sprintf("%.2f", x))
	}
	return strings.Join(parts, ", ")
}

func perSeconds(rs []rateRound) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = r.perSecond()
	}
	return out
}

func perSecondList(rs []rateRound) string {
	if len(rs) == 0 {
		return "–"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%.0f", r.perSecond())
	}
	return strings.Join(parts, ", ")
}

// sessionsPerCPU is the sessions the server completed per second of its own CPU time over all
// rounds; 0 when no CPU time was measured.
func sessionsPerCPU(rs []rateRound) float64 {
	var sessions int
	var cpu time.Duration
	for _, r := range rs {
		sessions += r.sessions
		cpu += r.cpu
	}
	if cpu <= 0 {
		return 0
	}
	return float64(sessions) / cpu.Seconds()
}

// cpuRatio compares how many sessions each server completes per CPU-second: a figure that load
// from other processes on the machine changes much less than sessions per wall-clock second.
func cpuRatio(a, b []rateRound) string {
	x, y := sessionsPerCPU(a), sessionsPerCPU(b)
	if x == 0 || y == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", x/y)
}

func perCPU(rs []rateRound) string {
	if x := sessionsPerCPU(rs); x > 0 {
		return fmt.Sprintf("%.0f", x)
	}
	return "–"
}

func totalFailures(rates map[rateCase][]rateRound) int {
	n := 0
	for _, rs := range rates {
		for _, r := range rs {
			n += r.failures
		}
	}
	return n
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
