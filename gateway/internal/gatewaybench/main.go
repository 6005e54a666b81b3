// Command gatewaybench measures portico's gateway against its ceiling, a bare
// golang.org/x/crypto/ssh server that accepts one key and one CA and runs nothing, and against
// OpenSSH's sshd, side by side in one run on loopback:
//
//   - authenticated exec sessions per second (connect, key exchange, public-key or certificate
//     authentication, exec one command, close) from concurrent client workers, in rounds in
//     which the bare server and portico take turns in short slices (-slice), so that load from
//     elsewhere falls on both alike;
//   - the memory each idle authenticated connection holds (server RSS growth / connections,
//     the median of several readings), and the growth per connection from one count to the
//     next in one series of connections (the slope).
//
// It prints markdown tables for BENCHMARKS.md. It is run by hand, as root (sshd logs the client
// in as root), never by go test. It starts its own servers on free 127.0.0.1 ports with
// everything in a temporary directory, and stops them and removes it when it ends.
//
//	go build -o /tmp/gatewaybench ./gateway/internal/gatewaybench
//	/tmp/gatewaybench -rounds 3 -round 10s -idle 2000,10000
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/portico-sh/portico/internal/benchenv"
)

// benchPrincipal is the principal of the bench's certificate that the bare server and sshd
// check (sshd: the user it logs in as); portico reads its "admin".
const benchPrincipal = "root"

type options struct {
	portico     string
	porticoArgs []string
	sshd        string
	workers     int
	rounds      int
	round       time.Duration
	slice       time.Duration // the bare server and portico take turns in slices this long
	sshdRound   time.Duration
	idle        []int
	methods     []string // "key", "cert": the session-rate cases to run
	noSSHD      bool
	heapDir     string // where to write portico's heap profiles at each idle count ("" none)
	pprofAddr   string // portico's pprof listener, when heapDir is set
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-serve-bare" {
		// The bench runs its ceiling as a child process of itself, so its memory is its own.
		if len(os.Args) != 6 {
			fmt.Fprintln(os.Stderr, "usage: gatewaybench -serve-bare ADDR HOST_KEY KEY.pub CA.pub")
			os.Exit(2)
		}
		if err := serveBare(os.Args[2], os.Args[3], os.Args[4], os.Args[5]); err != nil {
			fmt.Fprintln(os.Stderr, "bare server:", err)
			os.Exit(1)
		}
		return
	}
	o, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatewaybench:", err)
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
	porticoArgs := flag.String("portico-args", "", "more `portico serve` flags, space-separated")
	flag.StringVar(&o.sshd, "sshd", "/usr/sbin/sshd", "OpenSSH's sshd")
	flag.BoolVar(&o.noSSHD, "no-sshd", false, "leave sshd out")
	flag.IntVar(&o.workers, "workers", 16, "concurrent client workers in the session-rate rounds")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of each session-rate case")
	flag.DurationVar(&o.round, "round", 10*time.Second, "length of one session-rate round")
	flag.DurationVar(&o.slice, "slice", time.Second, "within a round, the bare server and portico take turns in slices this long")
	flag.DurationVar(&o.sshdRound, "sshd-round", 5*time.Second, "length of one sshd session-rate round (sshd forks per connection)")
	flag.StringVar(&o.heapDir, "heap-profile", "", "write portico's heap profile with each idle count's connections open to `DIR`/heap-N.pprof (needs -portico built with -tags pprof)")
	idle := flag.String("idle", "2000,10000", "idle connection counts, comma-separated (empty: none)")
	methods := flag.String("auth", "key,cert", "the session-rate cases: key, cert or both, comma-separated (empty: none)")
	flag.Parse()
	if flag.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	o.porticoArgs = strings.Fields(*porticoArgs)
	for m := range strings.SplitSeq(*methods, ",") {
		switch m = strings.TrimSpace(m); m {
		case "":
		case "key", "cert":
			if !slices.Contains(o.methods, m) {
				o.methods = append(o.methods, m)
			}
		default:
			return o, fmt.Errorf("-auth: %q is neither key nor cert", m)
		}
	}
	for f := range strings.SplitSeq(*idle, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return o, fmt.Errorf("-idle: %q is not a connection count", f)
		}
		if !slices.Contains(o.idle, n) {
			o.idle = append(o.idle, n)
		}
	}
	if o.workers < 1 || o.rounds < 1 || o.round <= 0 || o.slice <= 0 || o.sshdRound <= 0 {
		return o, fmt.Errorf("-workers, -rounds, -round, -slice and -sshd-round must be positive")
	}
	if o.heapDir != "" {
		if err := os.MkdirAll(o.heapDir, 0o755); err != nil {
			return o, fmt.Errorf("-heap-profile: %w", err)
		}
		port, err := benchenv.FreePort()
		if err != nil {
			return o, err
		}
		o.pprofAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	return o, nil
}

func run(ctx context.Context, o options) error {
	raiseFileLimit()
	if o.portico == "" {
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
	head := describe(o, e)
	rates, err := measureRates(ctx, o, e)
	if err != nil {
		return err
	}
	idle, err := measureIdle(ctx, o, e)
	if err != nil {
		return err
	}
	head = append(head, "load average at the end: "+loadAverage())
	report(os.Stdout, o, head, rates, idle)
	return nil
}

// raiseFileLimit lifts this process's open-file limit (and so its servers') to the hard
// limit: thousands of idle connections need a descriptor each on both sides.
func raiseFileLimit() {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		slog.Warn("raising the open-file limit", "err", err)
	}
}

// loadAverage is /proc/loadavg's first three fields.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
