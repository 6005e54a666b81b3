package pgs

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTunnels has live tunnels by account/name.
type fakeTunnels struct {
	mu   sync.Mutex
	live map[string]bool
}

func (f *fakeTunnels) TunnelLive(account, name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.live[account+"/"+name]
}

// Project and tunnel names share one namespace per account: a project cannot be created under
// the name of a live tunnel; the tuns side asks ProjectExists.
func TestNamesSharedWithTunnels(t *testing.T) {
	tunnels := &fakeTunnels{live: map[string]bool{"alice/api": true}}
	h := newHarness(t, harnessOptions{tunnels: tunnels})
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.html": "x"})
	_, errOut, code := h.rsync("-r", src+"/", remote+"/api/")
	if code == 0 || !strings.Contains(errOut, "api is the name of a live tunnel of alice") {
		t.Fatalf("upload under a tunnel's name: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := h.ssh("link", "api", "--to", "blog"); code == 0 || !strings.Contains(errOut, "live tunnel") {
		t.Fatalf("link under a tunnel's name: exit %d\n%s", code, errOut)
	}
	ctx := context.Background()
	if ok, err := h.svc.ProjectExists(ctx, "alice", "blog"); err != nil || ok {
		t.Fatalf("ProjectExists before any upload = %v, %v", ok, err)
	}
	h.mustRsync("-r", src+"/", remote+"/blog/")
	if ok, err := h.svc.ProjectExists(ctx, "alice", "blog"); err != nil || !ok {
		t.Fatalf("ProjectExists after an upload = %v, %v", ok, err)
	}
	if ok, _ := h.svc.ProjectExists(ctx, "bob", "blog"); ok {
		t.Fatal("bob has alice's project")
	}
	// A project that exists keeps deploying even if a tunnel took its name meanwhile (tuns
	// refuses that; pgs does not take away a site).
	tunnels.mu.Lock()
	tunnels.live["alice/blog"] = true
	tunnels.mu.Unlock()
	writeTree(t, src, map[string]string{"index.html": "xy"})
	h.mustRsync("-r", src+"/", remote+"/blog/")
}

// TestSiteUnderFloodHidesTunnels: a flood of requests for unknown host names spends the
// lookups a second that such names may cost; pgs then answers 503 alike for a name a private
// tunnel holds and for a free one, so a visitor cannot probe which names tunnels hold.
func TestSiteUnderFloodHidesTunnels(t *testing.T) {
	// HTTP tunnels are asked before pgs (the router's order); what pgs must not do is tell a
	// visitor whether a private tunnel holds a name it cannot look up.
	tunnels := &fakeTunnels{live: map[string]bool{"alice/db": true}}
	h := newHarness(t, harnessOptions{tunnels: tunnels})
	h.svc.sites.mu.Lock()
	h.svc.sites.tokens, h.svc.sites.refilled = 0, time.Now().Add(time.Hour) // spent by a flood
	h.svc.sites.mu.Unlock()
	for _, name := range []string{"db", "other"} {
		handler, ok := h.svc.Site("alice", name)
		if !ok || handler == nil {
			t.Fatalf("%s: an unknown name while lookups are busy: want the busy answer (503)", name)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s: %d, want 503 whether or not a tunnel holds the name", name, rec.Code)
		}
	}
}

// TestDeployVisibleUnderFlood: while a flood of made-up host names uses up the lookups of
// unknown names, a deploy must still show: the project's name (new or redeployed) is known,
// not an unknown name needing a lookup token. Before, a deploy forgot the account's projects,
// and their next visitors got 503 for as long as the flood lasted.
func TestDeployVisibleUnderFlood(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.html": "one"})
	h.mustRsync("-r", src+"/", remote+"/blog/")
	h.mustRsync("-r", src+"/", remote+"/other/")
	if code, body, _ := h.get("blog", "/"); code != 200 || body != "one" {
		t.Fatalf("blog: %d %q", code, body)
	}
	if code, _, _ := h.get("other", "/"); code != 200 {
		t.Fatalf("other: %d", code)
	}
	flood := func() {
		h.svc.sites.mu.Lock()
		h.svc.sites.tokens, h.svc.sites.refilled = 0, time.Now().Add(time.Hour)
		h.svc.sites.mu.Unlock()
	}
	flood()
	writeTree(t, src, map[string]string{"index.html": "second"})
	h.mustRsync("-r", src+"/", remote+"/blog/")
	if code, body, _ := h.get("blog", "/"); code != 200 || body != "second" {
		t.Fatalf("blog redeployed under a flood: %d %q", code, body)
	}
	if code, _, _ := h.get("other", "/"); code != 200 {
		t.Fatalf("another project of the account after the deploy, under a flood: %d", code)
	}
	h.mustRsync("-r", src+"/", remote+"/fresh/")
	if code, body, _ := h.get("fresh", "/"); code != 200 || body != "second" {
		t.Fatalf("a new project under a flood: %d %q", code, body)
	}
	if _, errOut, code := h.ssh("rm", "fresh", "--yes"); code != 0 {
		t.Fatal(errOut)
	}
	if code, _, _ := h.get("fresh", "/"); code != 404 {
		t.Fatalf("a removed project under a flood: %d", code)
	}
}

// bindingTunnels is the tuns side binding a tunnel just after pgs asked about the name (the
// answer was no): it binds only if pgs does not have the name then (what tuns asks,
// ProjectExists).
type bindingTunnels struct {
	svc  func() *Service
	live atomic.Bool
}

func (b *bindingTunnels) TunnelLive(account, name string) bool {
	if b.live.Load() {
		return true
	}
	if exists, err := b.svc().ProjectExists(context.Background(), account, name); err == nil && !exists {
		b.live.Store(true) // bound right after this answer
	}
	return false
}

// TestLinkTunnelRace: `link` asked whether a tunnel had the name before taking the project's
// lock, so a tunnel bound in between (tuns then saw no project) and the link went ahead: both
// had the host name. The question is now asked under the lock.
func TestLinkTunnelRace(t *testing.T) {
	tunnels := &bindingTunnels{}
	h := newHarness(t, harnessOptions{tunnels: tunnels})
	tunnels.svc = func() *Service { return h.svc }
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.html": "x"})
	h.mustRsync("-r", src+"/", remote+"/blog/")
	tunnels.live.Store(false)
	_, _, code := h.ssh("link", "api", "--to", "blog")
	exists, _ := h.svc.ProjectExists(context.Background(), "alice", "api")
	if exists && tunnels.live.Load() {
		t.Fatalf("both a tunnel and a project (link exit %d) have alice-api", code)
	}
}
