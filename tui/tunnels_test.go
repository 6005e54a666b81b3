package tui

import (
	"io"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/portico-sh/portico/services/admin/ops/opstest"
	"github.com/portico-sh/portico/services/tuns"
)

// fakeTunnels has one HTTP tunnel of alice's.
type fakeTunnels struct{ asked []string }

func (f *fakeTunnels) Tunnels(account string) []tuns.TunnelView {
	f.asked = append(f.asked, account)
	url := "http://alice-dev.example.org/"
	return []tuns.TunnelView{{Name: "dev", Kind: tuns.KindHTTP, URL: &url, Where: url, Port: 80, Identity: "laptop",
		ConnectedAt: time.Now(), Requests: 7, BytesIn: 1234, BytesOut: 5678}}
}

func TestTunnelsPage(t *testing.T) {
	o, _ := opstest.New(t)
	g := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	src := &fakeTunnels{}
	m := New(ctx, o, g, opstest.Key(t, 1), lipgloss.NewRenderer(io.Discard), WithSites(&fakeSites{live: "d1"}), WithTunnels(src))
	m.minReload = 0
	send(m, tea.WindowSizeMsg{Width: 140, Height: 40})
	wantView(t, m, "7 Sites  8 Tunnels", "[tab/1-8] pages")
	typeKeys(m, "8")
	wantView(t, m, "NAME", "KIND", "WHERE", "dev", "http", "http://alice-dev.example.org/", "laptop", "7", "1234", "5678")
	if len(src.asked) == 0 || src.asked[len(src.asked)-1] != "alice" {
		t.Fatalf("asked for the tunnels of %v", src.asked)
	}
	plain := newModel(t, o, g, opstest.Key(t, 1))
	dontWantView(t, plain, "Tunnels")
}
