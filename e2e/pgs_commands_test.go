package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// The commands of the pgs scripts:
//
//	site [-X METHOD] [-H 'NAME: VALUE']... [-set VAR=HEADER]... [-until STATUS] HOST /PATH
//	                     request http://$HOST:$HTTP_PORT/PATH with the Host header HOST (for
//	                     example alice-blog.localhost); print "HTTP <status>", the response
//	                     headers Content-Type, Content-Length, Content-Range, ETag, Location,
//	                     Cache-Control and Allow as "Name: value" lines, a blank line, and the
//	                     body; -set sets VAR to a response header's value; with -until, retry
//	                     for up to 10s until the status is STATUS
//	site-watch start HOST /PATH...
//	                     request the paths over and over in the background, noting the first
//	                     line of each body
//	site-watch stop      stop; fail unless every path went through its bodies in one order
//	                     without ever going back to an earlier one; print each path's
//	                     sequence of distinct first lines ("/index.html: v1 v2")
//	portico-kill         SIGKILL the server portico-up started (no drain) and wait for it to die
//	gen-file NAME SIZE [LINE]
//	                     write SIZE bytes (100, 64KiB, 4MiB) to NAME: LINE and a newline (if
//	                     given), then pseudo-random filler that depends on LINE (so files of
//	                     different LINEs share no blocks)
//	mount-tmpfs DIR SIZE mount a tmpfs of SIZE (as mount -o size=) at DIR, unmounted at the end
//	                     of the script; needs root and mount (condition [can-mount], which
//	                     under CI=true fails instead of being false)
//	dir-size DIR         print "files=N bytes=M": the regular files under DIR and their sizes
//	free-port VAR        set VAR to a loopback TCP port that is free (for ssh -L)
//	require-tools TOOL...
//	                     under CI=true, fail when a tool is missing (elsewhere scripts skip
//	                     themselves with [!exec:TOOL] skip)

func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "free-port VAR")
	port, err := freePort()
	ts.Check(err)
	ts.Setenv(args[0], strconv.Itoa(port))
}

func cmdDirSize(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "dir-size DIR")
	var files, bytes int64
	err := filepath.WalkDir(ts.MkAbs(args[0]), func(_ string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files++
		bytes += fi.Size()
		return nil
	})
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "files=%d bytes=%d\n", files, bytes)
}

func cmdRequireTools(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "require-tools")
	for _, tool := range args {
		if _, err := exec.LookPath(tool); err != nil && inCI() {
			ts.Fatalf("%s is required (CI=true): %v", tool, err)
		}
	}
}

// siteHeaders are the response headers site prints, in this order.
var siteHeaders = []string{"Content-Type", "Content-Length", "Content-Range", "ETag", "Location", "Cache-Control", "Allow"}

func siteRequest(ts *testscript.TestScript, method, host, path string, headers []string) (*http.Response, []byte) {
	req, err := http.NewRequest(method, state(ts).endpoints.httpURL(path), nil)
	ts.Check(err)
	req.Host = host
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			ts.Fatalf("site -H %q: want 'Name: value'", h)
		}
		req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	client := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	ts.Check(err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	ts.Check(err)
	return resp, body
}

func cmdSite(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "site")
	method, until := "GET", 0
	var headers, sets []string
	for len(args) > 2 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-X":
			method = args[1]
		case "-H":
			headers = append(headers, args[1])
		case "-set":
			sets = append(sets, args[1])
		case "-until":
			n, err := strconv.Atoi(args[1])
			ts.Check(err)
			until = n
		default:
			ts.Fatalf("site: unknown flag %s", args[0])
		}
		args = args[2:]
	}
	if len(args) != 2 || !strings.HasPrefix(args[1], "/") {
		ts.Fatalf("usage: site [-X METHOD] [-H 'NAME: VALUE'] [-until STATUS] HOST /PATH")
	}
	deadline := time.Now().Add(httpUntilTimeout)
	for {
		resp, body := siteRequest(ts, method, args[0], args[1], headers)
		if until == 0 || resp.StatusCode == until || time.Now().After(deadline) {
			var b strings.Builder
			fmt.Fprintf(&b, "HTTP %d\n", resp.StatusCode)
			for _, h := range siteHeaders {
				if v := resp.Header.Get(h); v != "" {
					fmt.Fprintf(&b, "%s: %s\n", h, v)
				}
			}
			b.WriteString("\n")
			b.Write(body)
			ts.Stdout().Write([]byte(b.String()))
			for _, set := range sets {
				name, header, ok := strings.Cut(set, "=")
				if !ok {
					ts.Fatalf("site -set %q: want VAR=HEADER", set)
				}
				ts.Setenv(name, resp.Header.Get(header))
			}
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// siteWatcher is a running site-watch.
type siteWatcher struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	seen map[string][]string // path → first lines in the order they were seen
	errs []string
}

// watchers holds each script's running site-watch, by its scriptState.
var watchers sync.Map // *scriptState → *siteWatcher

func cmdSiteWatch(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "site-watch")
	if len(args) >= 3 && args[0] == "start" {
		w := &siteWatcher{stop: make(chan struct{}), done: make(chan struct{}), seen: map[string][]string{}}
		if _, loaded := watchers.LoadOrStore(state(ts), w); loaded {
			ts.Fatalf("site-watch: already started")
		}
		host, paths := args[1], args[2:]
		url := state(ts).endpoints.httpURL
		client := &http.Client{Timeout: 10 * time.Second}
		go func() {
			defer close(w.done)
			for {
				for _, p := range paths {
					select {
					case <-w.stop:
						return
					default:
					}
					req, _ := http.NewRequest("GET", url(p), nil)
					req.Host = host
					resp, err := client.Do(req)
					if err != nil {
						w.mu.Lock()
						w.errs = append(w.errs, err.Error())
						w.mu.Unlock()
						continue
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					first, _, _ := bytes.Cut(body, []byte("\n"))
					line := fmt.Sprintf("%d:%s", resp.StatusCode, first)
					w.mu.Lock()
					if s := w.seen[p]; len(s) == 0 || s[len(s)-1] != line {
						w.seen[p] = append(s, line)
					}
					w.mu.Unlock()
				}
			}
		}()
		ts.Defer(func() {
			if _, running := watchers.LoadAndDelete(state(ts)); running {
				close(w.stop)
				<-w.done
			}
		})
		return
	}
	if len(args) != 1 || args[0] != "stop" {
		ts.Fatalf("usage: site-watch start HOST /PATH... | site-watch stop")
	}
	v, ok := watchers.LoadAndDelete(state(ts))
	if !ok {
		ts.Fatalf("site-watch: not started")
	}
	w := v.(*siteWatcher)
	close(w.stop)
	<-w.done
	if len(w.errs) > 0 {
		ts.Fatalf("site-watch: requests failed: %v", w.errs[:min(len(w.errs), 5)])
	}
	var b strings.Builder
	paths := slices.Sorted(func(yield func(string) bool) {
		for p := range w.seen {
			if !yield(p) {
				return
			}
		}
	})
	for _, p := range paths {
		seq := w.seen[p]
		for i, line := range seq {
			if slices.Contains(seq[:i], line) {
				ts.Fatalf("site-watch: %s went back to %q after %v", p, line, seq)
			}
		}
		fmt.Fprintf(&b, "%s: %s\n", p, strings.Join(seq, " "))
	}
	ts.Stdout().Write([]byte(b.String()))
}

func cmdPorticoKill(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "portico-kill")
	st := state(ts)
	if st.server == nil || !st.server.running() {
		ts.Fatalf("portico-kill: no server running")
	}
	st.server.kill()
}

func cmdGenFile(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "gen-file")
	if len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: gen-file NAME SIZE [LINE]")
	}
	size, err := parseSize(args[1])
	ts.Check(err)
	path := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(filepath.Dir(path), 0o755))
	f, err := os.Create(path)
	ts.Check(err)
	defer f.Close()
	var head []byte
	if len(args) == 3 {
		head = []byte(args[2] + "\n")
	}
	if int64(len(head)) > size {
		head = head[:size]
	}
	_, err = f.Write(head)
	ts.Check(err)
	seed := sha256.Sum256(head)
	rng := rand.NewChaCha8(seed)
	_, err = io.CopyN(f, rng, size-int64(len(head)))
	ts.Check(err)
}

func cmdMountTmpfs(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "mount-tmpfs DIR SIZE")
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o700))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "mount", "-t", "tmpfs", "-o", "size="+args[1], "tmpfs", dir).CombinedOutput(); err != nil {
		ts.Fatalf("mount tmpfs at %s: %v\n%s", dir, err, out)
	}
	ts.Defer(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			state(ts).reportError(fmt.Errorf("unmount %s: %w", dir, err))
		}
	})
}

// canMount reports whether this process may mount a tmpfs (root, and a mount command).
func canMount() bool {
	if os.Geteuid() != 0 {
		return false
	}
	_, err := exec.LookPath("mount")
	return err == nil
}
