package tui

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/services/admin/ops/opstest"
	"github.com/portico-sh/portico/services/pgs"
)

// fakeSites holds one project with two deploys and records rollbacks.
type fakeSites struct {
	live      string
	rolledTo  []string
	rollbackE error
}

func (f *fakeSites) Projects(context.Context, auth.Grant) ([]pgs.ProjectView, error) {
	live := f.live
	return []pgs.ProjectView{{Project: "blog", URL: "http://alice-blog.example.org/", LiveDeploy: &live, Files: 3,
		UpdatedAt: time.Now(), UpdatedBy: "ci@run-42"}}, nil
}

func (f *fakeSites) Deploys(_ context.Context, _ auth.Grant, project string) ([]pgs.DeployView, error) {
	if project != "blog" {
		return nil, errors.New("no project " + project)
	}
	serial := uint64(42)
	return []pgs.DeployView{
		{ID: "d2", Identity: "ci@run-42", Method: "cert", Serial: &serial, Tool: "rsync", Live: f.live == "d2"},
		{ID: "d1", Identity: "alice", Method: "key", Tool: "sftp", Live: f.live == "d1"},
	}, nil
}

func (f *fakeSites) Rollback(_ context.Context, _ auth.Grant, project, to string, _ io.Writer) (string, error) {
	if f.rollbackE != nil {
		return "", f.rollbackE
	}
	f.rolledTo = append(f.rolledTo, project+" "+to)
	f.live = to
	return to, nil
}

func TestSitesPage(t *testing.T) {
	o, _ := opstest.New(t)
	g := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	sites := &fakeSites{live: "d2"}
	m := New(ctx, o, g, opstest.Key(t, 1), lipgloss.NewRenderer(io.Discard), WithSites(sites))
	m.minReload = 0
	send(m, tea.WindowSizeMsg{Width: 120, Height: 40})
	wantView(t, m, "5 Principals  6 Help  7 Sites", "[tab/1-7] pages")
	typeKeys(m, "7")
	wantView(t, m, "PROJECT", "blog", "d2", "ci@run-42", "http://alice-blog.example.org/")
	press(m, tea.KeyEnter)
	wantView(t, m, "Project: blog", "d2", "live", "ci@run-42 (serial 42)", "d1", "sftp")
	// The live deploy needs no rollback.
	press(m, tea.KeyEnter)
	wantView(t, m, "d2 is live already")
	// d1, after a question; n keeps.
	press(m, tea.KeyDown)
	press(m, tea.KeyEnter)
	wantView(t, m, "Make d1 of blog live", "y/n")
	typeKeys(m, "n")
	if len(sites.rolledTo) != 0 {
		t.Fatalf("n rolled back: %v", sites.rolledTo)
	}
	press(m, tea.KeyEnter)
	typeKeys(m, "y")
	if len(sites.rolledTo) != 1 || sites.rolledTo[0] != "blog d1" {
		t.Fatalf("rollbacks %v", sites.rolledTo)
	}
	wantView(t, m, "blog: d1 is live.")
	// A failure is shown.
	sites.rollbackE = errors.New("another deploy of blog is still running")
	press(m, tea.KeyUp)
	press(m, tea.KeyEnter)
	typeKeys(m, "y")
	wantView(t, m, "error: another deploy of blog is still running")
	// esc goes back to the projects; the TUI without pgs has no Sites page.
	press(m, tea.KeyEsc)
	wantView(t, m, "PROJECT", "blog")
	plain := newModel(t, o, g, opstest.Key(t, 1))
	dontWantView(t, plain, "Sites")
}
