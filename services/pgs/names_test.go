package pgs

import (
	"context"
	"strings"
	"sync"
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

// TestSiteLeavesTunnelsUnderFlood: a flood of requests for unknown host names spends the
// lookups a second that such names may cost; a live tunnel's name must still reach the tunnel
// then, not get pgs's 503 (the gateway asks each site server in turn, and the first to claim a
// name answers it).
func TestSiteLeavesTunnelsUnderFlood(t *testing.T) {
	tunnels := &fakeTunnels{live: map[string]bool{"alice/api": true}}
	h := newHarness(t, harnessOptions{tunnels: tunnels})
	h.svc.sites.mu.Lock()
	h.svc.sites.tokens, h.svc.sites.refilled = 0, time.Now().Add(time.Hour) // spent by a flood
	h.svc.sites.mu.Unlock()
	if _, ok := h.svc.Site("alice", "api"); ok {
		t.Fatal("pgs claimed a live tunnel's host name while lookups were busy")
	}
	if handler, ok := h.svc.Site("alice", "other"); !ok || handler == nil {
		t.Fatal("an unknown name that is no tunnel: want the busy answer (503)")
	}
}
