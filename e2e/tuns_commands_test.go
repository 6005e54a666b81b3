package e2e

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// The commands for tunnel scripts (tuns_*.txtar): local servers behind the tunnels, and
// visitors that stream, upgrade and speak raw TCP.
//
//	local-http VAR      start an HTTP server on a free loopback port (the tunnel owner's local
//	                    server) and set VAR to its port. It answers:
//	                      /big/SIZE    the first SIZE bytes of the -gen stream (see stream-sum)
//	                      POST /upload "bytes=N sha256=HEX" of the body it read
//	                      /upgrade     101 with Upgrade: echo, then echoes bytes until EOF
//	                      anything else: "local METHOD URI", then the Host and X-Forwarded-*
//	                                   headers it got, one "name: value" line each
//	local-stop VAR      stop the server local-http VAR started (its port then refuses)
//	tcp-echo VAR        start a TCP echo server on a free loopback port; set VAR to its port
//	tcp-say ADDR TEXT   connect to ADDR (retrying for 10s while it refuses: an ssh -L starting),
//	                    send TEXT and a newline, close the sending side, and print what comes
//	                    back; ! tcp-say expects nothing back
//	free-ports VAR N    set VAR to the first of N consecutive free loopback ports
//	visit-upload HOST SIZE
//	                    POST SIZE bytes of the -gen stream to /upload on $HOST:$HTTP_PORT with
//	                    Host: HOST; print the response body
//	visit-download HOST SIZE
//	                    GET /big/SIZE with Host: HOST; print "bytes=N sha256=HEX" of the body
//	visit-upgrade HOST SILENCE
//	                    send an Upgrade: echo request with Host: HOST, expect 101, stay silent
//	                    for SILENCE, then send "ping" and expect it back
//	visit-many HOST N   N concurrent GETs of / with Host: HOST; print "ok=K" (K answered 200)
//	server-rss VAR      set VAR to the running portico serve's resident memory (bytes)
//	server-rss-growth-below VAR SIZE
//	                    the running portico serve's resident memory grew by less than SIZE
//	                    since server-rss VAR

// localServers are the servers local-http and tcp-echo started, by script and variable.
var localServers sync.Map // *scriptState + "/" + VAR → io.Closer

func localKey(ts *testscript.TestScript, name string) string {
	return fmt.Sprintf("%p/%s", state(ts), name)
}

func listenLoopback(ts *testscript.TestScript, name string) net.Listener {
	l, err := net.Listen("tcp", loopback+":0")
	ts.Check(err)
	ts.Setenv(name, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	return l
}

func cmdLocalHTTP(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "local-http VAR")
	l := listenLoopback(ts, args[0])
	srv := &http.Server{Handler: http.HandlerFunc(localHandler), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	localServers.Store(localKey(ts, args[0]), srv)
	ts.Defer(func() { srv.Close() })
}

func localHandler(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/big/"):
		size, err := parseSize(strings.TrimPrefix(r.URL.Path, "/big/"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		_ = writeStream(w, size)
	case r.URL.Path == "/upload" && r.Method == http.MethodPost:
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, sumLine(n, h))
	case r.URL.Path == "/upgrade":
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want Upgrade: echo", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw)
	default:
		fmt.Fprintf(w, "local %s %s\n", r.Method, r.URL.RequestURI())
		for _, h := range []string{"Host", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"} {
			v := r.Header.Get(h)
			if h == "Host" {
				v = r.Host
			}
			fmt.Fprintf(w, "%s: %s\n", strings.ToLower(h), v)
		}
	}
}

func cmdLocalStop(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "local-stop VAR")
	v, ok := localServers.LoadAndDelete(localKey(ts, args[0]))
	if !ok {
		ts.Fatalf("local-stop: no server %s", args[0])
	}
	ts.Check(v.(io.Closer).Close())
}

func cmdTCPEcho(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "tcp-echo VAR")
	l := listenLoopback(ts, args[0])
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	localServers.Store(localKey(ts, args[0]), l)
	ts.Defer(func() { l.Close() })
}

func cmdTCPSay(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: tcp-say ADDR TEXT...")
	}
	var c net.Conn
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c, err = net.DialTimeout("tcp", args[0], 10*time.Second); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		ts.Fatalf("tcp-say: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = io.WriteString(c, strings.Join(args[1:], " ")+"\n")
	ts.Check(err)
	c.(*net.TCPConn).CloseWrite()
	out, err := io.ReadAll(c)
	if neg {
		if err == nil && len(out) > 0 {
			ts.Fatalf("tcp-say: got %q, want nothing", out)
		}
		return
	}
	ts.Check(err)
	ts.Stdout().Write(out)
}

// visitURL is the URL of path on the server's HTTP listener.
func visitURL(ts *testscript.TestScript, path string) string {
	return state(ts).endpoints.httpURL(path)
}

func cmdVisitUpload(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "visit-upload HOST SIZE")
	size, err := parseSize(args[1])
	ts.Check(err)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeStream(pw, size)) }()
	req, err := http.NewRequest(http.MethodPost, visitURL(ts, "/upload"), pr)
	ts.Check(err)
	req.Host, req.ContentLength = args[0], size
	resp, err := http.DefaultClient.Do(req)
	ts.Check(err)
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "HTTP %d\n%s", resp.StatusCode, body)
}

func cmdVisitDownload(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "visit-download HOST SIZE")
	req, err := http.NewRequest(http.MethodGet, visitURL(ts, "/big/"+args[1]), nil)
	ts.Check(err)
	req.Host = args[0]
	resp, err := http.DefaultClient.Do(req)
	ts.Check(err)
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "HTTP %d\n%s", resp.StatusCode, sumLine(n, h))
}

func cmdVisitUpgrade(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "visit-upgrade HOST SILENCE")
	silence, err := time.ParseDuration(args[1])
	ts.Check(err)
	e := state(ts).endpoints
	c, err := net.DialTimeout("tcp", net.JoinHostPort(loopback, strconv.Itoa(e.HTTPPort)), 10*time.Second)
	ts.Check(err)
	defer c.Close()
	fmt.Fprintf(c, "GET /upgrade HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n", args[0])
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	ts.Check(err)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		ts.Fatalf("visit-upgrade: status %d, want 101", resp.StatusCode)
	}
	time.Sleep(silence)
	_, err = io.WriteString(c, "ping\n")
	ts.Check(err)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := br.ReadString('\n')
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "upgraded, after %v of silence: %s", silence, line)
}

func cmdVisitMany(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "visit-many HOST N")
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 0, DisableKeepAlives: true}}
	var ok sync.WaitGroup
	var mu sync.Mutex
	good := 0
	for range n {
		ok.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, visitURL(ts, "/"), nil)
			req.Host = args[0]
			resp, err := client.Do(req)
			if err != nil {
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				mu.Lock()
				good++
				mu.Unlock()
			}
		})
	}
	ok.Wait()
	fmt.Fprintf(ts.Stdout(), "ok=%d\n", good)
}

// cmdServerRSS sets VAR to the running portico serve's resident memory, in bytes.
func cmdServerRSS(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "server-rss VAR")
	rss := serverRSS(ts)
	ts.Logf("server RSS %d MiB", rss>>20)
	ts.Setenv(args[0], strconv.FormatInt(rss, 10))
}

// cmdServerRSSGrowthBelow checks that the running portico serve's resident memory grew by less
// than SIZE since server-rss stored it in VAR. A growth, not a level: a -race build's level
// is several times a release build's, and moves with the machine's load.
func cmdServerRSSGrowthBelow(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "server-rss-growth-below VAR SIZE")
	before, err := strconv.ParseInt(ts.Getenv(args[0]), 10, 64)
	ts.Check(err)
	limit, err := parseSize(args[1])
	ts.Check(err)
	rss := serverRSS(ts)
	ts.Logf("server RSS %d MiB, grown by %d MiB", rss>>20, (rss-before)>>20)
	if rss-before >= limit {
		ts.Fatalf("server RSS grew by %d MiB (%d → %d MiB), want less than %s", (rss-before)>>20, before>>20, rss>>20, args[1])
	}
}

// serverRSS is the running portico serve's resident memory, in bytes.
func serverRSS(ts *testscript.TestScript) int64 {
	srv := state(ts).server
	if srv == nil {
		ts.Fatalf("no server")
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", srv.cmd.Process.Pid))
	ts.Check(err)
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			ts.Check(err)
			return kb << 10
		}
	}
	ts.Fatalf("no VmRSS in the server's status")
	return 0
}

func cmdFreePorts(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "free-ports VAR N")
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	for range 200 {
		first, err := freePort()
		ts.Check(err)
		if first+n > ephemeralLow() && first < ephemeralLow() {
			continue
		}
		ok := true
		for p := first; p < first+n && ok; p++ {
			l, err := net.Listen("tcp", net.JoinHostPort(loopback, strconv.Itoa(p)))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			portsMu.Lock()
			for p := first; p < first+n; p++ {
				portsGiven[p] = true
			}
			portsMu.Unlock()
			ts.Setenv(args[0], strconv.Itoa(first))
			return
		}
	}
	ts.Fatalf("free-ports: no %d consecutive free ports", n)
}
