// tunsbench compares portico's tunnels with OpenSSH's own, side by side on loopback with the
// same ssh client and default ciphers: a large TCP transfer each way through a portico public TCP
// port vs through sshd's remote forward (ssh -R to sshd), then HTTP requests per second and
// latency through a portico HTTP tunnel vs the same local server reached directly (wrk). It
// prints markdown tables for BENCHMARKS.md.
//
// It is run by hand, as root (sshd logs the client in as root), never by go test. It starts its
// own sshd and `portico serve` on free 127.0.0.1 ports with everything in a temporary directory,
// and stops both and removes the directory at the end; the only thing it may create elsewhere
// is sshd's privilege separation directory /run/sshd when that is missing.
//
//	apt-get install -y openssh-server wrk
//	go build -o /tmp/tunsbench ./services/tuns/internal/tunsbench
//	/tmp/tunsbench -mb 1024 -runs 3   # builds ./cmd/portico unless -portico names a binary
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
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

	"golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/internal/benchenv"
)

type options struct {
	portico  string
	sshd     string
	dir      string
	runs     int
	mb       int
	duration time.Duration
	conns    int
}

func main() {
	var o options
	flag.StringVar(&o.portico, "portico", "", "built portico binary (default: go build ./cmd/portico of the module in the current directory)")
	flag.StringVar(&o.sshd, "sshd", "/usr/sbin/sshd", "OpenSSH's sshd")
	flag.StringVar(&o.dir, "dir", "", "where the servers' files go (default: $TMPDIR)")
	flag.IntVar(&o.runs, "runs", 3, "runs per transfer (the median is reported)")
	flag.IntVar(&o.mb, "mb", 1024, "MiB per transfer")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each wrk run")
	flag.IntVar(&o.conns, "conns", 32, "concurrent HTTP connections of the throughput run")
	flag.Parse()
	if flag.NArg() > 0 || o.runs < 1 || o.mb < 1 || o.conns < 1 {
		fmt.Fprintln(os.Stderr, "tunsbench: bad flags (see -h)")
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

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp(o.dir, "tunsbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := o.portico
	if bin == "" {
		b, cleanup, err := benchenv.BuildPortico(ctx)
		if err != nil {
			return err
		}
		defer cleanup()
		bin = b
	}
	key := filepath.Join(dir, "client")
	if _, err := benchenv.MakeKey(ctx, key, "bench"); err != nil {
		return err
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		return err
	}
	first, err := freeRange(4)
	if err != nil {
		return err
	}
	sshdDir := filepath.Join(dir, "sshd")
	porticoDir := filepath.Join(dir, "portico")
	for _, d := range []string{sshdDir, porticoDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	sshd, err := benchenv.StartSSHD(ctx, benchenv.SSHD{Path: o.sshd, Dir: sshdDir, AuthorizedKeys: string(pub),
		Extra: "AllowTcpForwarding remote\nGatewayPorts no\n"})
	if err != nil {
		return err
	}
	defer sshd.Stop()
	portico, err := benchenv.StartPortico(ctx, benchenv.Portico{Bin: bin, Dir: porticoDir, Account: "alice", PubKey: key + ".pub",
		Args: []string{"--tuns-tcp-ports", fmt.Sprintf("%d-%d", first, first+3)}})
	if err != nil {
		return err
	}
	defer portico.Stop()
	knownHosts := filepath.Join(dir, "known_hosts")
	var kh strings.Builder
	for _, s := range []*benchenv.Server{sshd, portico} {
		host, port, _ := net.SplitHostPort(s.Addr)
		fmt.Fprintf(&kh, "[%s]:%s %s", host, port, strings.TrimSpace(string(marshalKey(s))))
		kh.WriteString("\n")
	}
	if err := os.WriteFile(knownHosts, []byte(kh.String()), 0o600); err != nil {
		return err
	}
	c := &clients{key: key, knownHosts: knownHosts}

	// The user's local servers: a TCP sink/source, and a small HTTP server.
	tcpLocal, err := startTCPLocal()
	if err != nil {
		return err
	}
	defer tcpLocal.Close()
	httpLocal, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	body := strings.Repeat("x", 512)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })}
	go hs.Serve(httpLocal)
	defer hs.Close()

	fmt.Printf("## tuns benchmark (%s, %d CPUs, %d MiB per transfer, median of %d)\n\n", time.Now().UTC().Format("2006-01-02"), numCPU(), o.mb, o.runs)

	// TCP: portico's public port vs sshd's remote forward.
	sshdPort := first + 3
	refFwd, err := c.start(ctx, sshd.Addr, "root", "-R", fmt.Sprintf("127.0.0.1:%d:%s", sshdPort, tcpLocal.Addr()))
	if err != nil {
		return err
	}
	defer refFwd.stop()
	portFwd, err := c.start(ctx, portico.Addr, "tuns", "-R", fmt.Sprintf("%d:%s", first, tcpLocal.Addr()))
	if err != nil {
		return err
	}
	defer portFwd.stop()
	ref := fmt.Sprintf("127.0.0.1:%d", sshdPort)
	tun := fmt.Sprintf("127.0.0.1:%d", first)
	for _, a := range []string{ref, tun} {
		if err := waitTCP(ctx, a); err != nil {
			return err
		}
	}
	size := int64(o.mb) << 20
	fmt.Println("| transfer through the tunnel | OpenSSH sshd (ssh -R) | portico tuns | ratio (portico / sshd) |")
	fmt.Println("| --- | --- | --- | --- |")
	for _, dir := range []string{"upload", "download"} {
		var refR, tunR []float64
		for range o.runs {
			for _, side := range []struct {
				addr string
				out  *[]float64
			}{{ref, &refR}, {tun, &tunR}} {
				d, err := transfer(side.addr, dir, size)
				if err != nil {
					return fmt.Errorf("%s through %s: %w", dir, side.addr, err)
				}
				*side.out = append(*side.out, float64(size)/d.Seconds()/(1<<20))
			}
		}
		r, t := median(refR), median(tunR)
		what := "visitor → local server"
		if dir == "download" {
			what = "local server → visitor"
		}
		fmt.Printf("| %d MiB, %s | %.0f MiB/s | %.0f MiB/s | %.2f× |\n", o.mb, what, r, t, t/r)
	}
	fmt.Println()

	// HTTP: through a tunnel vs direct.
	httpFwd, err := c.start(ctx, portico.Addr, "tuns", "-R", "bench:80:"+httpLocal.Addr().String())
	if err != nil {
		return err
	}
	defer httpFwd.stop()
	tunnelURL := "http://" + portico.HTTPAddr + "/"
	if err := waitHTTP(ctx, tunnelURL, "alice-bench.localhost"); err != nil {
		return err
	}
	directURL := "http://" + httpLocal.Addr().String() + "/"
	fmt.Printf("| HTTP, %d-byte responses | direct to the local server | through a portico tunnel | ratio |\n", len(body))
	fmt.Println("| --- | --- | --- | --- |")
	d1, err := wrk(ctx, directURL, "", 1, o.duration/2)
	if err != nil {
		return err
	}
	t1, err := wrk(ctx, tunnelURL, "alice-bench.localhost", 1, o.duration/2)
	if err != nil {
		return err
	}
	fmt.Printf("| p50 latency, 1 connection | %s | %s | +%s |\n", d1.p50, t1.p50, t1.p50-d1.p50)
	fmt.Printf("| requests/s, 1 connection | %.0f | %.0f | %.2f× |\n", d1.rps, t1.rps, t1.rps/d1.rps)
	dn, err := wrk(ctx, directURL, "", o.conns, o.duration)
	if err != nil {
		return err
	}
	pBefore, sBefore := portico.CPU(), cpuOf(httpFwd.cmd.Process.Pid)
	tn, err := wrk(ctx, tunnelURL, "alice-bench.localhost", o.conns, o.duration)
	if err != nil {
		return err
	}
	pCPU, sCPU := portico.CPU()-pBefore, cpuOf(httpFwd.cmd.Process.Pid)-sBefore
	fmt.Printf("| requests/s, %d connections | %.0f | %.0f | %.2f× |\n", o.conns, dn.rps, tn.rps, tn.rps/dn.rps)
	fmt.Printf("| p50 / p99 latency, %d connections | %s / %s | %s / %s | |\n", o.conns, dn.p50, dn.p99, tn.p50, tn.p99)
	requests := tn.rps * o.duration.Seconds()
	fmt.Printf("\nCPU per request through the tunnel (%d connections): portico %.0fµs, the ssh client %.0fµs.\n",
		o.conns, float64(pCPU.Microseconds())/requests, float64(sCPU.Microseconds())/requests)
	if err := portico.Alive(); err != nil {
		return err
	}
	rss, _ := benchenv.RSS(portico.PID())
	fmt.Printf("\nportico's RSS at the end: %d MiB\n", rss>>20)
	return nil
}

// cpuOf is a process's CPU time so far, or 0.
func cpuOf(pid int) time.Duration {
	own, _, err := benchenv.ProcessCPU(pid)
	if err != nil {
		return 0
	}
	return own
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "processor\t:")
}

func marshalKey(s *benchenv.Server) []byte {
	return ssh.MarshalAuthorizedKey(s.HostKey)
}

// freeRange finds n consecutive free loopback ports.
func freeRange(n int) (int, error) {
	for range 100 {
		p, err := benchenv.FreePort()
		if err != nil {
			return 0, err
		}
		if p+n > 65535 {
			continue
		}
		ok := true
		for q := p; q < p+n && ok; q++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(q)))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return p, nil
		}
	}
	return 0, errors.New("no free port range")
}

// clients starts OpenSSH clients with the benchmark's key.
type clients struct{ key, knownHosts string }

type forward struct{ cmd *exec.Cmd }

func (f *forward) stop() {
	f.cmd.Process.Kill()
	f.cmd.Wait()
}

func (c *clients) start(ctx context.Context, addr, user string, args ...string) (*forward, error) {
	host, port, _ := net.SplitHostPort(addr)
	all := append([]string{"-F", "/dev/null", "-N", "-p", port, "-i", c.key, "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + c.knownHosts, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
		"-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=ERROR"}, args...)
	cmd := exec.Command("ssh", append(all, user+"@"+host)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &forward{cmd: cmd}, nil
}

// tcpLocal is the user's local TCP server: a connection that starts with "U" is an upload (it
// reads to EOF, then answers the count); "D" + 8-byte size is a download (it writes that much).
func startTCPLocal() (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReaderSize(c, 256<<10)
				op, err := br.ReadByte()
				if err != nil {
					return
				}
				switch op {
				case 'U':
					n, _ := io.Copy(io.Discard, br)
					fmt.Fprintf(c, "%d\n", n)
				case 'D':
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					n, _ := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
					io.Copy(c, io.LimitReader(zeros{}, n))
				}
			}()
		}
	}()
	return l, nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// transfer moves size bytes through addr in one direction and returns how long it took.
func transfer(addr, dir string, size int64) (time.Duration, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	if dir == "upload" {
		if _, err := c.Write([]byte("U")); err != nil {
			return 0, err
		}
		if _, err := io.CopyBuffer(c, io.LimitReader(zeros{}, size), make([]byte, 256<<10)); err != nil {
			return 0, err
		}
		c.(*net.TCPConn).CloseWrite()
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return 0, err
		}
		if got := strings.TrimSpace(line); got != strconv.FormatInt(size, 10) {
			return 0, fmt.Errorf("the local server read %s bytes, want %d", got, size)
		}
		return time.Since(start), nil
	}
	fmt.Fprintf(c, "D%d\n", size)
	n, err := io.CopyBuffer(io.Discard, c, make([]byte, 256<<10))
	if err != nil {
		return 0, err
	}
	if n != size {
		return 0, fmt.Errorf("got %d bytes, want %d", n, size)
	}
	return time.Since(start), nil
}

func waitTCP(ctx context.Context, addr string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s never listened: %w", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitHTTP(ctx context.Context, url, host string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the tunnel never answered 200: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type wrkResult struct {
	rps      float64
	p50, p99 time.Duration
}

var (
	rpsRE     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	latencyRE = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
)

// wrk runs wrk against url (with Host: host unless empty) and reads its requests/s and latency.
func wrk(ctx context.Context, url, host string, conns int, d time.Duration) (wrkResult, error) {
	threads := min(2, conns)
	args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", int(d.Seconds())), "--latency"}
	if host != "" {
		args = append(args, "-H", "Host: "+host)
	}
	out, err := exec.CommandContext(ctx, "wrk", append(args, url)...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	var r wrkResult
	m := rpsRE.FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk: no Requests/sec in\n%s", out)
	}
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	if strings.Contains(string(out), "Non-2xx") {
		return r, fmt.Errorf("wrk saw errors:\n%s", out)
	}
	for _, l := range latencyRE.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(l[2]), 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[string(l[3])]
		dur := time.Duration(v * float64(unit)).Round(time.Microsecond)
		if string(l[1]) == "50" {
			r.p50 = dur
		} else {
			r.p99 = dur
		}
	}
	return r, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
