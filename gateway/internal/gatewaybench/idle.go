package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/internal/benchenv"
)

// idleSettle is how long the servers get to settle after the last connection opened, before
// their memory is read.
const idleSettle = 3 * time.Second

// idleResult is the memory n idle authenticated connections cost one server.
type idleResult struct {
	target string
	n      int
	before int64 // server RSS before, bytes
	after  int64 // server RSS with the n connections open, bytes
}

func (r idleResult) perConn() float64 { return float64(r.after-r.before) / float64(r.n) }

// measureIdle opens each count of idle connections to the bare server and to portico (sshd
// forks a process pair per connection, so it is left out), reads their memory and closes them.
func measureIdle(ctx context.Context, o options, e *env) ([]idleResult, error) {
	var out []idleResult
	for _, n := range o.idle {
		for _, t := range e.targets()[:2] {
			var heap string
			if o.heapDir != "" && t.name == "portico" {
				heap = fmt.Sprintf("http://%s/debug/pprof/heap?gc=1 %s", o.pprofAddr, filepath.Join(o.heapDir, fmt.Sprintf("heap-%d.pprof", n)))
			}
			r, err := idleOf(ctx, t, e.key, n, o.workers, heap)
			if err != nil {
				return nil, fmt.Errorf("%d idle connections to %s: %w", n, t.name, err)
			}
			out = append(out, r)
			slog.Info("measured", "server", t.name, "idle connections", n,
				"KiB per connection", int(r.perConn()/1024), "RSS before MiB", r.before>>20, "after MiB", r.after>>20)
		}
	}
	return out, nil
}

// idleOf opens n idle connections to t and reads its memory; heap, when not empty, is "URL
// FILE": the server's heap profile to save while the connections are open.
func idleOf(ctx context.Context, t target, key ssh.Signer, n, workers int, heap string) (idleResult, error) {
	config := &ssh.ClientConfig{
		User:            t.user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.FixedHostKey(t.s.HostKey),
		Timeout:         30 * time.Second,
	}
	time.Sleep(idleSettle)
	before, err := benchenv.RSS(t.s.PID())
	if err != nil {
		return idleResult{}, err
	}
	clients := make([]*ssh.Client, n)
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
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}()
	if firstErr != nil {
		return idleResult{}, firstErr
	}
	if ctx.Err() != nil {
		return idleResult{}, ctx.Err()
	}
	time.Sleep(idleSettle)
	after, err := benchenv.RSS(t.s.PID())
	if err != nil {
		return idleResult{}, err
	}
	if err := t.s.Alive(); err != nil {
		return idleResult{}, err
	}
	if heap != "" {
		url, file, _ := strings.Cut(heap, " ")
		if err := saveProfile(url, file); err != nil {
			return idleResult{}, fmt.Errorf("heap profile: %w", err)
		}
		// And the goroutines, whose stacks the heap profile does not count.
		gURL := strings.Replace(url, "/heap?gc=1", "/goroutine?debug=1", 1)
		gFile := strings.Replace(file, "heap-", "goroutines-", 1) + ".txt"
		if err := saveProfile(gURL, gFile); err != nil {
			return idleResult{}, fmt.Errorf("goroutine profile: %w", err)
		}
		slog.Info("saved heap and goroutine profiles", "heap", file, "goroutines", gFile)
	}
	// Check that the connections are still up (none was closed by a limit meanwhile).
	if _, _, err := clients[n-1].SendRequest("keepalive@openssh.com", true, nil); err != nil {
		return idleResult{}, fmt.Errorf("the last connection is gone: %w", err)
	}
	return idleResult{target: t.name, n: n, before: before, after: after}, nil
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
