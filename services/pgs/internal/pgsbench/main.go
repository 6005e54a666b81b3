// pgsbench compares portico's pgs service with real rsync to OpenSSH's sshd writing to
// a directory, side by side on loopback with the same rsync client: a first upload of many
// files, an unchanged re-upload, and a one-byte change in a large file (wall time, server CPU,
// bytes on the wire); then small-file HTTP requests per second and latency from a deployed
// site. It prints markdown tables for BENCHMARKS.md.
//
// It is run by hand, as root (sshd logs the client in as root), never by go test. It starts its
// own sshd and `portico serve` on free 127.0.0.1 ports with everything in a temporary directory,
// and stops both and removes the directory at the end; the only thing it may create elsewhere
// is sshd's privilege separation directory /run/sshd when that is missing.
//
//	apt-get install -y openssh-server rsync
//	go build -o /tmp/pgsbench ./services/pgs/internal/pgsbench
//	/tmp/pgsbench -runs 3    # builds ./cmd/portico unless -portico names a binary
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// options are the command's flags.
type options struct {
	portico      string
	sshd         string
	dir          string
	runs         int
	files        int
	mb           int
	bigMB        int
	cipher       string
	httpFiles    int
	httpSize     int
	httpRequests int
	httpConc     int
	timeout      time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.portico, "portico", "", "built portico binary (default: go build ./cmd/portico of the module in the current directory)")
	flag.StringVar(&o.sshd, "sshd", "/usr/sbin/sshd", "OpenSSH's sshd")
	flag.StringVar(&o.dir, "dir", "", "where the trees, destinations and portico's data go (default: $TMPDIR)")
	flag.IntVar(&o.runs, "runs", 3, "runs per case (the median is reported)")
	flag.IntVar(&o.files, "files", 2000, "files in the tree of the first upload")
	flag.IntVar(&o.mb, "mb", 100, "MiB in that tree")
	flag.IntVar(&o.bigMB, "big-mb", 50, "MiB of the large file whose one byte changes")
	flag.StringVar(&o.cipher, "cipher", "", "SSH cipher forced on both sides (default: each side's own negotiation)")
	flag.IntVar(&o.httpFiles, "http-files", 200, "files of the site the HTTP case requests")
	flag.IntVar(&o.httpSize, "http-size", 2048, "bytes per file of that site")
	flag.IntVar(&o.httpRequests, "http-requests", 100000, "HTTP requests per run")
	flag.IntVar(&o.httpConc, "http-conc", 32, "concurrent HTTP connections")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "limit for one client command")
	flag.Parse()
	if flag.NArg() > 0 || o.runs < 1 || o.files < 1 || o.mb < 1 || o.bigMB < 1 || o.httpRequests < 1 || o.httpConc < 1 {
		fmt.Fprintln(os.Stderr, "pgsbench: bad flags (see -h)")
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
