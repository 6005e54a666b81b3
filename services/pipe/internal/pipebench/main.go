// Command pipebench measures portico's pipe service over real SSH connections on loopback and
// compares it with `ssh HOST cat` through OpenSSH's sshd on the same machine, the transport
// ceiling: 1→1 throughput, 1→K fan-out throughput, and publish-to-receive latency of small
// writes. It prints a markdown table for BENCHMARKS.md.
//
// It is run by hand, as root (sshd logs the client in as root to run cat), never by go test.
// It starts its own sshd and `portico serve` on free 127.0.0.1 ports with everything in a
// temporary directory (keys, sshd_config, portico's data), and stops both and removes the
// directory when it ends; the only thing it may create elsewhere is sshd's privilege
// separation directory /run/sshd when that is missing. Throughput uses OpenSSH client processes
// on both sides; latency uses golang.org/x/crypto/ssh sessions, so that no process pipe sits
// in the timed path. Every wait has a timeout.
//
//	go build -o /tmp/pipebench ./services/pipe/internal/pipebench
//	/tmp/pipebench -runs 3    # builds ./cmd/portico unless -portico names a binary
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/internal/benchenv"
)

// options are the command's flags.
type options struct {
	portico     string
	sshd        string
	mb          int
	fanoutMB    int
	fanout      []int
	latencyN    int
	latencySize int
	runs        int
	cipher      string
	timeout     time.Duration
	verify      bool
	noPipe      bool
}

func main() {
	o, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipebench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		slog.Error("benchmark failed", "err", err)
		stop()
		os.Exit(1)
	}
}

func parseFlags() (options, error) {
	var o options
	flag.StringVar(&o.portico, "portico", "", "built portico binary (default: go build ./cmd/portico of the module in the current directory)")
	flag.StringVar(&o.sshd, "sshd", "/usr/sbin/sshd", "OpenSSH's sshd, for the `ssh HOST cat` ceiling")
	flag.IntVar(&o.mb, "mb", 1024, "MiB sent in the 1→1 cases (sshd cat and pipe)")
	flag.IntVar(&o.fanoutMB, "fanout-mb", 256, "MiB sent to each subscriber in the fan-out cases")
	fanout := flag.String("fanout", "10,100", "subscriber counts of the fan-out cases, comma-separated (empty: none)")
	flag.IntVar(&o.latencyN, "latency-n", 2000, "recorded messages per latency run (after 100 unrecorded ones)")
	flag.IntVar(&o.latencySize, "latency-size", 64, "bytes per latency message (at least 8)")
	flag.IntVar(&o.runs, "runs", 3, "runs per case (the median is reported)")
	flag.StringVar(&o.cipher, "cipher", "chacha20-poly1305@openssh.com", "cipher forced on every connection of both sides (empty: each side's own negotiation)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "limit for one run of one case")
	flag.BoolVar(&o.verify, "verify", false, "check every received byte, not only the count (costs CPU in the benchmark process)")
	flag.BoolVar(&o.noPipe, "no-pipe", false, "measure only the sshd side (to check the setup when portico has no pipe service)")
	flag.Parse()
	if flag.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	for f := range strings.SplitSeq(*fanout, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		k, err := strconv.Atoi(f)
		if err != nil || k < 1 {
			return o, fmt.Errorf("-fanout: %q is not a subscriber count", f)
		}
		if k > 1 && !slices.Contains(o.fanout, k) { // 1→1 is always measured
			o.fanout = append(o.fanout, k)
		}
	}
	switch {
	case o.runs < 1 || o.mb < 1 || o.fanoutMB < 1 || o.latencyN < 1:
		return o, fmt.Errorf("-runs, -mb, -fanout-mb and -latency-n must be positive")
	case o.latencySize < 8:
		return o, fmt.Errorf("-latency-size must be at least 8")
	}
	return o, nil
}

// bench is one benchmark: its options, environment and the control connection to portico.
type bench struct {
	o        options
	e        *env
	p        pattern
	ctl      *ssh.Client // to portico's pipe service, for `ls --json`
	lsBroken bool        // ls --json did not answer; wait a fixed time for subscribers instead
}

func run(ctx context.Context, o options) error {
	if !o.noPipe && o.portico == "" {
		bin, cleanup, err := benchenv.BuildPortico(ctx)
		if err != nil {
			return err
		}
		defer cleanup()
		o.portico = bin
	}
	e, err := setup(ctx, o)
	if err != nil {
		return err
	}
	defer e.close()
	b := &bench{o: o, e: e, p: newPattern()}
	head, err := b.describe(ctx)
	if err != nil {
		return err
	}
	if !o.noPipe {
		if b.ctl, err = e.dial(e.portico, o.cipher, "pipe"); err != nil {
			return err
		}
		defer b.ctl.Close()
		if err := b.checkPipe(); err != nil {
			return err
		}
	}
	res := newResults()
	for r := range o.runs {
		if err := b.runOnce(ctx, r, res); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted in run %d: %w", r+1, err)
			}
			return fmt.Errorf("run %d: %w", r+1, err)
		}
	}
	head.add("load average at the end: %s", loadAverage())
	report(os.Stdout, o, head, res)
	return nil
}

// runOnce measures every case once, alternating the sides so that load from elsewhere on the
// machine spreads over both.
func (b *bench) runOnce(ctx context.Context, r int, res *results) error {
	slog.Info("run", "n", r+1, "of", b.o.runs)
	size := int64(b.o.mb) << 20
	t, err := b.ceiling(ctx, size)
	if err != nil {
		return err
	}
	res.addTput(sideSSHD, 1, t)
	slog.Info("measured", "case", "sshd cat 1→1", "wall", t.wall.Round(time.Millisecond), "MiB/s", int(t.aggregate()))
	if !b.o.noPipe {
		ks := append([]int{1}, b.o.fanout...)
		for _, k := range ks {
			n := size
			if k > 1 {
				n = int64(b.o.fanoutMB) << 20
			}
			t, err := b.fanout(ctx, k, n, fmt.Sprintf("bench-r%d-k%d", r, k))
			if err != nil {
				return fmt.Errorf("pipe 1→%d: %w", k, err)
			}
			res.addTput(sidePortico, k, t)
			slog.Info("measured", "case", fmt.Sprintf("pipe 1→%d", k), "wall", t.wall.Round(time.Millisecond),
				"MiB/s per subscriber", int(t.perReceiver()), "aggregate", int(t.aggregate()))
		}
	}
	lat, err := b.latencySSHD(ctx)
	if err != nil {
		return err
	}
	res.addLatency(sideSSHD, lat)
	slog.Info("measured", "case", "sshd cat latency", "p50", percentile(lat, 50))
	if !b.o.noPipe {
		lat, err := b.latencyPortico(ctx, fmt.Sprintf("lat-r%d", r))
		if err != nil {
			return err
		}
		res.addLatency(sidePortico, lat)
		slog.Info("measured", "case", "pipe latency", "p50", percentile(lat, 50))
	}
	return nil
}

// checkPipe fails unless portico's pipe service answers `help` as a real service.
func (b *bench) checkPipe() error {
	sess, err := b.ctl.NewSession()
	if err != nil {
		return fmt.Errorf("pipe help: %w", err)
	}
	defer sess.Close()
	out, err := sess.CombinedOutput("help")
	if strings.Contains(string(out), "not available yet") {
		return fmt.Errorf("this portico has no pipe service yet (%q); -no-pipe measures only the sshd side", strings.TrimSpace(string(out)))
	}
	if err != nil {
		return fmt.Errorf("pipe help: %w\n%s", err, out)
	}
	return nil
}
