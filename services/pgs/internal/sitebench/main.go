// sitebench serves the same files with portico (deployed with rsync over SSH) and with nginx
// (its own unprivileged config: sendfile on, gzip off, access log off, as many workers as
// cores), and, as the floor for a Go server, with a bare Go server that answers from memory
// (bare.go); then loads each with wrk from the same machine, taking turns: 1 KiB and 64 KiB files
// over 64 keep-alive connections (requests/s, p99) and a 10 MB file (throughput). Then portico's
// compressed responses: after one warming request, the CPU time portico spends per 10,000
// requests of a 64 KiB stylesheet in br, in gzip and as it is. It prints markdown tables for
// BENCHMARKS.md.
//
//	go build -o /tmp/sitebench ./services/pgs/internal/sitebench
//	go build -o /tmp/portico-bench ./cmd/portico
//	/tmp/sitebench -portico /tmp/portico-bench -runs 3 -duration 10s
//
// With -pin, wrk runs with one thread on CPU 0 and each server on CPU 1 from its start
// (taskset), sized for that one core: portico's GOMAXPROCS follows its CPU affinity (1) and
// nginx gets one worker. The load generator then no longer queues for the servers' core, so
// the latency tail (p99) is the server's own.
//
// With -hold it only starts the servers and waits, for profiling by hand (with a portico
// built with -tags pprof and -portico-env PORTICO_PPROF_LISTEN=127.0.0.1:PORT, or perf).
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/portico-sh/portico/internal/benchenv"
)

type options struct {
	portico  string
	nginx    string
	nopush   bool // nginx's tcp_nopush
	wrk      string
	runs     int
	duration time.Duration
	conns    int
	threads  int
	hold     bool
	env      string
	pin      bool
	files    string // the HTTP table's files, comma-separated
	bareAddr string // serve as the bare Go server (started by sitebench itself)
	bareSite string
}

func main() {
	var o options
	flag.StringVar(&o.portico, "portico", "", "built portico binary (default: go build ./cmd/portico)")
	flag.StringVar(&o.nginx, "nginx", "/usr/sbin/nginx", "nginx binary")
	flag.BoolVar(&o.nopush, "nginx-nopush", true, "nginx's tcp_nopush (on in Debian's config; off, nginx's 64 KiB p99 is about 10 times lower)")
	flag.StringVar(&o.wrk, "wrk", "wrk", "wrk binary")
	flag.IntVar(&o.runs, "runs", 3, "runs per case and server (the median is reported)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "wrk duration per run")
	flag.IntVar(&o.conns, "conns", 64, "keep-alive connections")
	flag.IntVar(&o.threads, "threads", 0, "wrk threads (default 2, or 1 with -pin)")
	flag.BoolVar(&o.hold, "hold", false, "start the servers, print their addresses and wait for an interrupt (to profile by hand)")
	flag.BoolVar(&o.pin, "pin", false, "run wrk on CPU 0 and each server on CPU 1 from its start, with one worker (taskset), so that the load generator does not queue for the servers' core")
	flag.StringVar(&o.env, "portico-env", "", "more environment for portico serve, KEY=VALUE[,KEY=VALUE] (e.g. PORTICO_PPROF_LISTEN=127.0.0.1:6060 with a -tags pprof build)")
	flag.StringVar(&o.files, "files", "1k.bin,64k.bin,10m.bin", "the files of the HTTP table, comma-separated (of 1k.bin, 64k.bin, 10m.bin, app.css)")
	flag.StringVar(&o.bareAddr, "bare-serve", "", "internal: serve -bare-site as the bare Go server on this address")
	flag.StringVar(&o.bareSite, "bare-site", "", "internal: the site the bare Go server serves")
	flag.Parse()
	if o.bareAddr != "" {
		if err := bareServe(o.bareAddr, o.bareSite); err != nil {
			fmt.Fprintln(os.Stderr, "sitebench: bare Go server:", err)
			os.Exit(1)
		}
		return
	}
	if o.threads == 0 {
		o.threads = 2
		if o.pin {
			o.threads = 1
		}
	}
	known := func(name string) bool {
		return slices.ContainsFunc(files, func(f siteFile) bool { return f.name == name })
	}
	if flag.NArg() > 0 || o.runs < 1 || o.conns < 1 || o.threads < 1 || !all(strings.Split(o.files, ","), known) {
		fmt.Fprintln(os.Stderr, "sitebench: bad flags (see -h)")
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

// files are the benchmark's files: name → size. The stylesheet is text (compressible), the
// others random bytes.
type siteFile struct {
	name string
	size int
}

var files = []siteFile{{"1k.bin", 1 << 10}, {"64k.bin", 64 << 10}, {"10m.bin", 10_000_000}, {"app.css", 64 << 10}}

const siteHost = "alice-web.localhost"

func run(ctx context.Context, o options) error {
	if o.portico == "" {
		bin, cleanup, err := benchenv.BuildPortico(ctx)
		if err != nil {
			return err
		}
		defer cleanup()
		o.portico = bin
	}
	dir, err := os.MkdirTemp("", "portico-sitebench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// nginx's workers drop to user nobody when it runs as root: they must be able to read the site.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	site := filepath.Join(dir, "site")
	if err := makeSite(site); err != nil {
		return err
	}
	key := filepath.Join(dir, "client_ed25519")
	if _, err := benchenv.MakeKey(ctx, key, "sitebench"); err != nil {
		return err
	}
	var env []string
	if o.env != "" {
		env = strings.Split(o.env, ",")
	}
	serverCPUs := "" // all
	if o.pin {
		serverCPUs = "1"
	}
	portico, err := benchenv.StartPortico(ctx, benchenv.Portico{Bin: o.portico, Dir: dir, Account: "alice", PubKey: key + ".pub", Env: env, CPUs: serverCPUs})
	if err != nil {
		return err
	}
	defer portico.Stop()
	if err := deploy(ctx, dir, key, portico, site); err != nil {
		return err
	}
	nginx, err := startNginx(ctx, o.nginx, dir, site, serverCPUs, o.nopush)
	if err != nil {
		return err
	}
	defer nginx.stop()
	bare, err := startBare(ctx, site, serverCPUs)
	if err != nil {
		return err
	}
	defer bare.stop()
	if o.hold {
		fmt.Printf("portico http://%s (pid %d)\nnginx http://%s (pids %v)\nbare Go http://%s (pid %d)\nHost: %s; files: 1k.bin 64k.bin 10m.bin app.css\n",
			portico.HTTPAddr, portico.PID(), nginx.addr, nginx.pids(), bare.addr, bare.cmd.Process.Pid, siteHost)
		<-ctx.Done()
		return nil
	}

	type server struct {
		name string
		url  string
		pids func() []int
	}
	servers := []server{
		{"nginx", "http://" + nginx.addr, nginx.pids},
		{"portico", "http://" + portico.HTTPAddr, func() []int { return []int{portico.PID()} }},
		{"bare Go", "http://" + bare.addr, bare.pids},
	}
	where := "on the same machine"
	if o.pin {
		where = "on CPU 0, each server on CPU 1 with one worker"
	}
	fmt.Printf("\n## HTTP: portico against nginx and a bare Go server (the median run of %d runs of %s, p50 and p99 the medians over the runs; wrk -t%d -c%d %s; nginx tcp_nopush %s)\n\n",
		o.runs, o.duration, o.threads, o.conns, where, onOff(o.nopush))
	fmt.Println("| file | server | requests/s | / nginx | p50 | p99 | throughput | CPU per 10k requests |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, f := range strings.Split(o.files, ",") {
		results := map[string][]wrkResult{}
		for r := range o.runs {
			order := slices.Clone(servers)
			if r%2 == 1 {
				slices.Reverse(order)
			}
			for _, s := range order {
				slog.Info("run", "file", f, "server", s.name, "n", r+1)
				res, err := runWrk(ctx, o, s.url+"/"+f, nil, s.pids)
				if err != nil {
					return err
				}
				results[s.name] = append(results[s.name], res)
			}
		}
		ref := median(results["nginx"])
		for _, s := range servers {
			m := median(results[s.name])
			ratio := "—"
			if s.name != "nginx" {
				ratio = fmt.Sprintf("%.2f×", m.rps/ref.rps)
			}
			fmt.Printf("| %s | %s | %.0f | %s | %s | %s | %s/s | %.0f ms |\n", f, s.name, m.rps, ratio, m.p50, m.p99,
				humanBytes(m.bytesPerSec), m.cpuPer10k())
		}
		for _, s := range servers {
			var all []string
			for _, r := range results[s.name] {
				all = append(all, fmt.Sprintf("%.0f (p99 %s)", r.rps, r.p99))
			}
			fmt.Printf("\n%s %s, all runs (requests/s): %s", f, s.name, strings.Join(all, ", "))
		}
		fmt.Println()
		fmt.Println()
	}

	fmt.Printf("\n## Compressed responses: portico's CPU once warm (app.css, 64 KiB of text; median of %d runs)\n\n", o.runs)
	fmt.Println("| Accept-Encoding | Content-Encoding | bytes per response | requests/s | CPU per 10k requests |")
	fmt.Println("|---|---|---|---|---|")
	client := &http.Client{Timeout: time.Minute}
	for _, enc := range []string{"br", "gzip", ""} {
		// One request compresses (once per blob and encoding); the runs that follow are warm.
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+portico.HTTPAddr+"/app.css", nil)
		req.Host = siteHost
		req.Header.Set("Accept-Encoding", enc)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		got := resp.Header.Get("Content-Encoding")
		size := resp.ContentLength
		var headers []string
		if enc != "" {
			headers = []string{"Accept-Encoding: " + enc}
		}
		var rs []wrkResult
		for r := range o.runs {
			slog.Info("compressed run", "encoding", enc, "n", r+1)
			res, err := runWrk(ctx, o, "http://"+portico.HTTPAddr+"/app.css", headers, func() []int { return []int{portico.PID()} })
			if err != nil {
				return err
			}
			rs = append(rs, res)
		}
		m := median(rs)
		fmt.Printf("| %s | %s | %d | %.0f | %.0f ms |\n", orDash(enc), orDash(got), size, m.rps, m.cpuPer10k())
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func makeSite(site string) error {
	if err := os.MkdirAll(site, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		b := make([]byte, f.size)
		if strings.HasSuffix(f.name, ".css") {
			var sb strings.Builder
			for i := 0; sb.Len() < f.size; i++ {
				fmt.Fprintf(&sb, ".rule-%d { margin: %dpx; padding: 0 %dpx; color: #%06x; }\n", i, i%17, i%5, i*7919%0xffffff)
			}
			b = []byte(sb.String()[:f.size])
		} else {
			rand.Read(b)
		}
		if err := os.WriteFile(filepath.Join(site, f.name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// deploy uploads the site to portico's project web with rsync over ssh.
func deploy(ctx context.Context, dir, key string, portico *benchenv.Server, site string) error {
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, []byte(knownhosts.Line([]string{portico.Addr}, portico.HostKey)+"\n"), 0o600); err != nil {
		return err
	}
	_, port, _ := strings.Cut(portico.Addr, ":")
	sshCmd := fmt.Sprintf("ssh -F /dev/null -p %s -i %s -o IdentitiesOnly=yes -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o BatchMode=yes", port, key, kh)
	out, err := exec.CommandContext(ctx, "rsync", "-e", sshCmd, "-r", site+"/", "pgs@127.0.0.1:/web/").CombinedOutput()
	if err != nil {
		return fmt.Errorf("rsync: %w\n%s", err, out)
	}
	return nil
}

// nginxServer is nginx running unprivileged with its own config.
type nginxServer struct {
	cmd  *exec.Cmd
	addr string
}

// startNginx starts nginx serving site with one worker per core, on cpus if set (taskset -c
// cpus, one worker per CPU listed: nginx's "auto" counts the machine's CPUs, not its affinity),
// with tcp_nopush on or off.
func startNginx(ctx context.Context, bin, dir, site, cpus string, nopush bool) (*nginxServer, error) {
	port, err := benchenv.FreePort()
	if err != nil {
		return nil, err
	}
	nd := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(filepath.Join(nd, "tmp"), 0o755); err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	workers := "auto"
	if cpus != "" {
		workers = strconv.Itoa(len(strings.Split(cpus, ",")))
	}
	conf := fmt.Sprintf(`worker_processes %[4]s;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	sendfile on;
	tcp_nopush %[5]s;
	gzip off;
	keepalive_requests 1000000;
	client_body_temp_path %[1]s/tmp/body;
	proxy_temp_path %[1]s/tmp/proxy;
	fastcgi_temp_path %[1]s/tmp/fastcgi;
	uwsgi_temp_path %[1]s/tmp/uwsgi;
	scgi_temp_path %[1]s/tmp/scgi;
	types { text/css css; application/octet-stream bin; }
	server {
		listen %[2]s;
		root %[3]s;
	}
}
`, nd, addr, site, workers, onOff(nopush))
	confPath := filepath.Join(nd, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cmd := benchenv.OnCPUs(cpus, bin, "-c", confPath, "-p", nd, "-e", filepath.Join(nd, "error.log"))
	n := &nginxServer{cmd: cmd, addr: addr}
	if err := startAnswering(ctx, "nginx", cmd, addr, n.stop); err != nil {
		return nil, err
	}
	return n, nil
}

// startAnswering starts a server's command and waits up to 10 s for it to answer 200 for
// /1k.bin on addr; if it does not, stop stops it.
func startAnswering(ctx context.Context, name string, cmd *exec.Cmd, addr string, stop func()) error {
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/1k.bin")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return fmt.Errorf("%s did not answer: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pids are nginx's master and its workers.
func (n *nginxServer) pids() []int {
	pids := []int{n.cmd.Process.Pid}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", n.cmd.Process.Pid, n.cmd.Process.Pid))
	for f := range strings.FieldsSeq(string(b)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}

// stop asks nginx to shut down gracefully and, after 5 s, kills the master and its workers
// (a worker outlives a killed master, still listening).
func (n *nginxServer) stop() {
	pids := n.pids()
	n.cmd.Process.Signal(syscall.SIGQUIT)
	done := make(chan struct{})
	go func() { n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		for _, p := range pids[1:] {
			syscall.Kill(p, syscall.SIGKILL)
		}
		n.cmd.Process.Kill()
		<-done
	}
}

// wrkResult is one wrk run.
type wrkResult struct {
	rps         float64
	p50, p99    time.Duration
	bytesPerSec float64
	requests    int64
	cpu         time.Duration
}

func (r wrkResult) cpuPer10k() float64 {
	if r.requests == 0 {
		return 0
	}
	return float64(r.cpu.Milliseconds()) * 10000 / float64(r.requests)
}

// all reports whether ok holds for every element of s.
func all[T any](s []T, ok func(T) bool) bool {
	return !slices.ContainsFunc(s, func(v T) bool { return !ok(v) })
}

// median is the run with the median requests/s, with p50 and p99 replaced by their own medians
// over the runs (a run's latency tail need not follow its rate).
func median(rs []wrkResult) wrkResult {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b wrkResult) int { return cmp.Compare(a.rps, b.rps) })
	m := s[len(s)/2]
	mid := func(f func(wrkResult) time.Duration) time.Duration {
		d := make([]time.Duration, len(rs))
		for i, r := range rs {
			d[i] = f(r)
		}
		slices.Sort(d)
		return d[len(d)/2]
	}
	m.p50 = mid(func(r wrkResult) time.Duration { return r.p50 })
	m.p99 = mid(func(r wrkResult) time.Duration { return r.p99 })
	return m
}

var (
	rpsRE      = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	transferRE = regexp.MustCompile(`Transfer/sec:\s+([\d.]+)([KMG]?B)`)
	requestsRE = regexp.MustCompile(`(\d+) requests in`)
	pctRE      = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$`)
	non2xxRE   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// runWrk runs wrk against url and measures the CPU time of the server's processes meanwhile.
func runWrk(ctx context.Context, o options, url string, headers []string, pids func() []int) (wrkResult, error) {
	args := []string{"-t" + strconv.Itoa(o.threads), "-c" + strconv.Itoa(o.conns), "-d" + o.duration.String(), "--latency", "-H", "Host: " + siteHost}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	args = append(args, url)
	before := cpuOf(pids())
	cmd := exec.CommandContext(ctx, o.wrk, args...)
	if o.pin {
		cmd = exec.CommandContext(ctx, "taskset", append([]string{"-c", "0", o.wrk}, args...)...)
	}
	out, err := cmd.CombinedOutput()
	after := cpuOf(pids())
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	s := string(out)
	if m := non2xxRE.FindStringSubmatch(s); m != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %s responses were not 2xx\n%s", url, m[1], s)
	}
	var r wrkResult
	if m := rpsRE.FindStringSubmatch(s); m != nil {
		r.rps, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := requestsRE.FindStringSubmatch(s); m != nil {
		r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := transferRE.FindStringSubmatch(s); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		r.bytesPerSec = v * map[string]float64{"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[m[2]]
	}
	for _, m := range pctRE.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		d := time.Duration(v * float64(map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]))
		if m[1] == "50" {
			r.p50 = d.Round(time.Microsecond)
		} else {
			r.p99 = d.Round(time.Microsecond)
		}
	}
	if r.rps == 0 || r.requests == 0 {
		return wrkResult{}, fmt.Errorf("wrk %s: no result\n%s", url, s)
	}
	r.cpu = after - before
	return r, nil
}

// cpuOf is the CPU time (user + system) the processes have used.
func cpuOf(pids []int) time.Duration {
	var total time.Duration
	for _, p := range pids {
		own, children, err := benchenv.ProcessCPU(p)
		if err == nil {
			total += own + children
		}
	}
	return total
}

func humanBytes(v float64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.2f GiB", v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	}
	return fmt.Sprintf("%.0f KiB", v/(1<<10))
}

// onOff is b as nginx's configuration writes it.
func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
