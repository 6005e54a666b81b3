package ops_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/krl"

	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/services/admin/ops"
	"github.com/portico-sh/portico/services/admin/ops/opstest"
)

// hangingKRL serves a KRL at once until hang is set; then each request waits for release (or
// the client's timeout). It counts the requests waiting at once and those the client gave up.
type hangingKRL struct {
	body    []byte
	hang    atomic.Bool
	release chan struct{}

	mu         sync.Mutex
	waiting    int
	maxWaiting int
	gaveUp     int
}

func (h *hangingKRL) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.hang.Load() {
		h.mu.Lock()
		h.waiting++
		h.maxWaiting = max(h.maxWaiting, h.waiting)
		h.mu.Unlock()
		select {
		case <-h.release:
		case <-r.Context().Done():
			h.mu.Lock()
			h.gaveUp++
			h.mu.Unlock()
		}
		h.mu.Lock()
		h.waiting--
		h.mu.Unlock()
	}
	w.Write(h.body)
}

func (h *hangingKRL) counts() (maxWaiting, gaveUp int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.maxWaiting, h.gaveUp
}

// hitKRL serves a KRL and says when it was asked.
type hitKRL struct {
	body []byte
	hits chan struct{}
}

func (h *hitKRL) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	select {
	case h.hits <- struct{}{}:
	default:
	}
	w.Write(h.body)
}

// TestKRLRefreshIsFairToSlowSources: bob (any account may add sources) has more slow KRL
// sources than the refresher has workers, all due before alice's one. Alice's source is still
// fetched while bob's first is hanging, not after his fetches time out one by one; and bob has
// one fetch at a time.
func TestKRLRefreshIsFairToSlowSources(t *testing.T) {
	now := time.Now()
	cfg := opstest.Config
	cfg.Now = func() time.Time { return now }
	// Without fairness alice would wait for bob's fetches to time out, one after another (so
	// the test fails only after bobSources of these); with it, no fetch here comes near this.
	cfg.KRL = ops.KRLConfig{AllowInternal: true, MinEvery: time.Minute, FetchTimeout: 20 * time.Second}
	e := newTrustEnv(t, cfg)

	slow := &hangingKRL{body: krlOf(t, []krl.KRLSection{certs(e.bobs.PublicKey(), serials(1))}),
		release: make(chan struct{})}
	slowSrv := httptest.NewServer(slow)
	defer slowSrv.Close()
	released := false
	defer func() {
		if !released {
			close(slow.release)
		}
	}()
	const bobSources = 5 // more than the refresher's workers
	for i := range bobSources {
		if _, err := e.o.ImportKRLFromURL(ctx, e.bob, fmt.Sprintf("%s/%d", slowSrv.URL, i), "", 5*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	fast := &hitKRL{body: krlOf(t, []krl.KRLSection{certs(e.team.PublicKey(), serials(7))}), hits: make(chan struct{}, 1)}
	fastSrv := httptest.NewServer(fast)
	defer fastSrv.Close()
	if _, err := e.o.ImportKRLFromURL(ctx, e.alice, fastSrv.URL+"/krl", "", 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	<-fast.hits // the import's own fetch

	slow.hang.Store(true)
	now = now.Add(5 * time.Minute)
	done := make(chan int, 1)
	go func() { done <- e.o.RefreshKRLSources(ctx) }()
	select {
	case <-fast.hits:
	case n := <-done:
		t.Fatalf("the refresh ended (%d fetched) without fetching alice's source", n)
	}
	maxWaiting, gaveUp := slow.counts()
	if gaveUp > 0 {
		t.Errorf("alice's source was fetched only after %d of bob's slow fetches timed out", gaveUp)
	}
	close(slow.release)
	released = true
	n := <-done
	if n != bobSources+1 {
		t.Errorf("refreshed %d sources, want %d", n, bobSources+1)
	}
	maxWaiting, gaveUp = slow.counts()
	if maxWaiting != 1 || gaveUp != 0 {
		t.Errorf("bob's sources: %d fetched at once (want 1), %d timed out", maxWaiting, gaveUp)
	}
	srcs, err := e.o.ListKRLSources(ctx, e.alice)
	if err != nil || len(srcs) != 1 || srcs[0].LastError != "" || srcs[0].Failures != 0 {
		t.Errorf("alice's source after the refresh: %+v, %v", srcs, err)
	}
}

// TestKRLRefresherGoesOnPastAHangingSource: the refresher the server runs fetches alice's
// source while bob's hangs, and stops when its context ends, hanging fetch and all.
func TestKRLRefresherGoesOnPastAHangingSource(t *testing.T) {
	cfg, advance := krlClock()
	e := newTrustEnv(t, cfg)
	slow := &hangingKRL{body: krlOf(t, []krl.KRLSection{certs(e.bobs.PublicKey(), serials(1))}), release: make(chan struct{})}
	defer close(slow.release)
	slowSrv := httptest.NewServer(slow)
	defer slowSrv.Close()
	if _, err := e.o.ImportKRLFromURL(ctx, e.bob, slowSrv.URL+"/krl", "", 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	fast := &hitKRL{body: krlOf(t, []krl.KRLSection{certs(e.team.PublicKey(), serials(7))}), hits: make(chan struct{}, 1)}
	fastSrv := httptest.NewServer(fast)
	defer fastSrv.Close()
	if _, err := e.o.ImportKRLFromURL(ctx, e.alice, fastSrv.URL+"/krl", "", 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	<-fast.hits
	slow.hang.Store(true)
	advance(5 * time.Minute)

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.o.RunKRLRefresher(runCtx)
	}()
	<-fast.hits // alice's source, fetched by the running refresher
	if _, gaveUp := slow.counts(); gaveUp > 0 {
		t.Errorf("alice's source was fetched only after bob's timed out")
	}
	cancel()
	<-done
}

// krlClock is opstest.Config with KRL sources allowed on loopback, fetches timing out after a
// minute, and a clock that stands still until advance moves it (advance returns the new time).
func krlClock() (ops.Config, func(time.Duration) time.Time) {
	now := time.Now()
	var mu sync.Mutex
	cfg := opstest.Config
	cfg.Now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	cfg.KRL = ops.KRLConfig{AllowInternal: true, MinEvery: time.Minute, FetchTimeout: time.Minute}
	return cfg, func(d time.Duration) time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(d)
		return now
	}
}

// TestKRLLeaseOutlastsItsFetch: a scheduled fetch holds its source for as long as the fetch may
// take (its timeout, and its wait for a KRL work slot), so no other look (of this gateway or
// another) takes the same source while the first still downloads it: a hanging source would
// otherwise be fetched again each time the lease ran out, holding one more worker each time,
// and its account would no longer be kept to one fetch at a time.
func TestKRLLeaseOutlastsItsFetch(t *testing.T) {
	cfg, advance := krlClock()
	e := newTrustEnv(t, cfg)
	slow := &hangingKRL{body: krlOf(t, []krl.KRLSection{certs(e.bobs.PublicKey(), serials(1))}), release: make(chan struct{})}
	slowSrv := httptest.NewServer(slow)
	defer slowSrv.Close()
	if _, err := e.o.ImportKRLFromURL(ctx, e.bob, slowSrv.URL+"/krl", "", 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	slow.hang.Store(true)
	advance(5 * time.Minute)
	done := make(chan int, 1)
	go func() { done <- e.o.RefreshKRLSources(ctx) }()
	// Wait (bounded) until the refresher's fetch hangs on bob's server.
	for i := 0; ; i++ {
		if waiting, _ := slow.counts(); waiting > 0 {
			break
		}
		if i == 1000 {
			close(slow.release)
			t.Fatalf("the refresher never fetched bob's source")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Later, still within the fetch's timeout, another look finds nothing to take.
	later := advance(45 * time.Second)
	src, err := e.store.ClaimDueKRLSource(ctx, later, later.Add(time.Minute))
	close(slow.release)
	if err == nil {
		t.Errorf("source %d (%s) was taken again while its first fetch was still running", src.ID, src.URL)
	} else if !errors.Is(err, db.ErrNotFound) {
		t.Fatal(err)
	}
	if n := <-done; n != 1 {
		t.Errorf("refreshed %d sources, want 1", n)
	}
}
