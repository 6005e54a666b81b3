package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/internal/benchenv"
)

// idleSettle is how long the servers get to settle after the last connection opened, before
// their memory is read; then it is read idleSamples times, idleSampleEvery apart, and the
// median kept: a Go server's RSS moves as its collector and scavenger run, and one reading
// taken at a chance moment swung a run's ratio by a tenth.
const (
	idleSettle      = 3 * time.Second
	idleSamples     = 5
	idleSampleEvery = time.Second
)

// idleResult is the memory n idle authenticated connections cost one server.
type idleResult struct {
	target string
	n      int
	before int64 // server RSS before the first connection, bytes
	after  int64 // server RSS with the n connections open, bytes (median of idleSamples)
	// collected is the live heap and goroutine stacks per connection after a collection,
	// against before the first connection, and the goroutines per connection (0: not
	// measured; see porticoCollected and bareCollected).
	collected, goroutines float64
	// freed is the RSS growth per connection since before the first, both read right after the
	// server collected and returned its freed memory to the system (0: not measured): what
	// the connections hold, whenever the collector last ran.
	freed float64
	// slope is the RSS growth per connection from the previous count to this one, in the
	// same series of connections (0 for the first count): what one more connection costs,
	// without the server's fixed start-up memory or the first connections' warm-up.
	slope float64
}

func (r idleResult) perConn() float64 { return float64(r.after-r.before) / float64(r.n) }

// measureIdle opens idle connections to the bare server, then to portico (sshd forks a process
// pair per connection, so it is left out), up to each count in turn in one series, reads their
// memory at each count and closes them all at the end.
func measureIdle(ctx context.Context, o options, e *env) ([]idleResult, error) {
	if len(o.idle) == 0 {
		return nil, nil
	}
	counts := slices.Clone(o.idle)
	slices.Sort(counts)
	var out []idleResult
	for _, t := range e.targets()[:2] {
		heap := ""
		var mem func() (int64, int64, error)
		if o.heapDir != "" {
			// portico's pprof listener, and the bare server's SIGUSR1, give the memory that
			// survives a collection, which does not depend on when the collector last ran.
			if t.name == "portico" {
				heap = fmt.Sprintf("http://%s/debug/pprof/heap?gc=1", o.pprofAddr)
				mem = func() (int64, int64, error) {
					if err := freeMemory(o.pprofAddr); err != nil {
						return 0, 0, err
					}
					return porticoCollected(o.pprofAddr)
				}
			} else {
				mem = func() (int64, int64, error) { return bareCollected(e.bare, e.bareMemFile) }
			}
		}
		rs, err := idleSeries(ctx, t, e.key, counts, o.workers, heap, o.heapDir, mem)
		if err != nil {
			return nil, fmt.Errorf("idle connections to %s: %w", t.name, err)
		}
		for _, r := range rs {
			slog.Info("measured", "server", t.name, "idle connections", r.n,
				"KiB per connection", int(r.perConn()/1024), "slope KiB", int(r.slope/1024), "RSS before MiB", r.before>>20, "after MiB", r.after>>20)
		}
		out = append(out, rs...)
	}
	return out, nil
}

// idleSeries opens idle connections to t up to each of counts (ascending) and reads its memory
// at each; heapURL, when not empty, is the server's heap profile to save in dir at each count.
func idleSeries(ctx context.Context, t target, key ssh.Signer, counts []int, workers int, heapURL, dir string, mem func() (memory, goroutines int64, err error)) ([]idleResult, error) {
	config := &ssh.ClientConfig{
		User:            t.user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.FixedHostKey(t.s.HostKey),
		Timeout:         30 * time.Second,
	}
	time.Sleep(idleSettle)
	before, err := benchenv.RSS(t.s.PID())
	if err != nil {
		return nil, err
	}
	var memBefore, gBefore, freedBefore int64
	if mem != nil {
		if memBefore, gBefore, err = mem(); err != nil {
			return nil, err
		}
		if freedBefore, err = benchenv.RSS(t.s.PID()); err != nil {
			return nil, err
		}
	}
	clients := make([]*ssh.Client, counts[len(counts)-1])
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}()
	var out []idleResult
	opened := 0
	for _, n := range counts {
		if err := dialIdle(ctx, t, config, clients[opened:n], workers); err != nil {
			return nil, err
		}
		opened = n
		time.Sleep(idleSettle)
		after, err := medianRSS(t.s.PID())
		if err != nil {
			return nil, err
		}
		if err := t.s.Alive(); err != nil {
			return nil, err
		}
		if heapURL != "" {
			if err := saveProfiles(heapURL, dir, n); err != nil {
				return nil, err
			}
		}
		// Check that the connections are still up (none was closed by a limit meanwhile).
		if _, _, err := clients[0].SendRequest("keepalive@openssh.com", true, nil); err != nil {
			return nil, fmt.Errorf("the first connection is gone: %w", err)
		}
		if _, _, err := clients[n-1].SendRequest("keepalive@openssh.com", true, nil); err != nil {
			return nil, fmt.Errorf("the last connection is gone: %w", err)
		}
		r := idleResult{target: t.name, n: n, before: before, after: after}
		if mem != nil {
			m, g, err := mem()
			if err != nil {
				return nil, err
			}
			r.collected = float64(m-memBefore) / float64(n)
			r.goroutines = float64(g-gBefore) / float64(n)
			freed, err := benchenv.RSS(t.s.PID())
			if err != nil {
				return nil, err
			}
			r.freed = float64(freed-freedBefore) / float64(n)
		}
		if len(out) > 0 {
			prev := out[len(out)-1]
			r.slope = float64(after-prev.after) / float64(n-prev.n)
		}
		out = append(out, r)
	}
	return out, nil
}

// dialIdle fills clients with authenticated connections to t, from workers goroutines.
func dialIdle(ctx context.Context, t target, config *ssh.ClientConfig, clients []*ssh.Client, workers int) error {
	var mu sync.Mutex
	var firstErr error
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				c, err := ssh.Dial("tcp", t.s.Addr, config)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("connection %d: %w", i, err)
					}
					mu.Unlock()
					continue
				}
				clients[i] = c
			}
		})
	}
	for i := range clients {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// medianRSS reads pid's RSS idleSamples times, idleSampleEvery apart, and returns the median.
func medianRSS(pid int) (int64, error) {
	var xs []int64
	for i := range idleSamples {
		if i > 0 {
			time.Sleep(idleSampleEvery)
		}
		x, err := benchenv.RSS(pid)
		if err != nil {
			return 0, err
		}
		xs = append(xs, x)
	}
	slices.Sort(xs)
	return xs[len(xs)/2], nil
}

// porticoCollected is portico's live heap and goroutine stacks after a collection (the memory
// statistics at the end of the text heap profile), and its goroutines, from its pprof listener.
func porticoCollected(addr string) (memory, goroutines int64, err error) {
	heapText, err := getText(fmt.Sprintf("http://%s/debug/pprof/heap?gc=1&debug=1", addr))
	if err != nil {
		return 0, 0, err
	}
	var heap, stack int64
	var okHeap, okStack bool
	for line := range strings.SplitSeq(heapText, "\n") {
		if v, ok := strings.CutPrefix(line, "# HeapAlloc = "); ok {
			heap, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			okHeap = err == nil
		}
		if v, ok := strings.CutPrefix(line, "# Stack = "); ok {
			f, _, _ := strings.Cut(v, " ")
			stack, err = strconv.ParseInt(f, 10, 64)
			okStack = err == nil
		}
	}
	if !okHeap || !okStack {
		return 0, 0, errors.New("portico's heap profile has no HeapAlloc or Stack line")
	}
	gText, err := getText(fmt.Sprintf("http://%s/debug/pprof/goroutine?debug=1", addr))
	if err != nil {
		return 0, 0, err
	}
	first, _, _ := strings.Cut(gText, "\n")
	v, ok := strings.CutPrefix(first, "goroutine profile: total ")
	if !ok {
		return 0, 0, fmt.Errorf("portico's goroutine profile starts %q", first)
	}
	if goroutines, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil {
		return 0, 0, err
	}
	return heap + stack, goroutines, nil
}

// freeMemory has portico collect and return its freed memory to the system (its pprof
// listener's POST /debug/free).
func freeMemory(addr string) error {
	resp, err := http.Post(fmt.Sprintf("http://%s/debug/free", addr), "text/plain", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /debug/free: %s", resp.Status)
	}
	return nil
}

// getText is what url answers.
func getText(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// bareCollected asks the bare server (SIGUSR1) for its live heap and goroutine stacks after a
// collection, and its goroutines, which it writes to file.
func bareCollected(s *benchenv.Server, file string) (memory, goroutines int64, err error) {
	os.Remove(file)
	p, err := os.FindProcess(s.PID())
	if err != nil {
		return 0, 0, err
	}
	if err := p.Signal(syscall.SIGUSR1); err != nil {
		return 0, 0, err
	}
	for range 100 {
		time.Sleep(50 * time.Millisecond)
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		var heap, stack, g int64
		if _, err := fmt.Sscan(string(b), &heap, &stack, &g); err != nil {
			return 0, 0, fmt.Errorf("%s: %w", file, err)
		}
		return heap + stack, g, nil
	}
	return 0, 0, errors.New("the bare server wrote no memory statistics")
}

// saveProfiles saves the heap profile at url, the goroutines, whose stacks the heap profile
// does not count, and the runtime's memory statistics, in dir for n connections.
func saveProfiles(url, dir string, n int) error {
	file := filepath.Join(dir, fmt.Sprintf("heap-%d.pprof", n))
	if err := saveProfile(url, file); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	gURL := strings.Replace(url, "/heap?gc=1", "/goroutine?debug=1", 1)
	gFile := filepath.Join(dir, fmt.Sprintf("goroutines-%d.txt", n))
	if err := saveProfile(gURL, gFile); err != nil {
		return fmt.Errorf("goroutine profile: %w", err)
	}
	// And the runtime's memory statistics (heap in use, stacks, what the runtime keeps), at the
	// end of the text heap profile.
	mURL := strings.Replace(url, "/heap?gc=1", "/heap?debug=1", 1)
	mFile := filepath.Join(dir, fmt.Sprintf("memstats-%d.txt", n))
	if err := saveProfile(mURL, mFile); err != nil {
		return fmt.Errorf("memory statistics: %w", err)
	}
	slog.Info("saved heap and goroutine profiles", "heap", file, "goroutines", gFile, "memstats", mFile)
	return nil
}

// saveProfile writes what url answers to file.
func saveProfile(url, file string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
