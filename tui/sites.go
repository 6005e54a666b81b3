package tui

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/services/pgs"
)

// Sites are the pgs operations the Sites page runs, as the pgs commands do.
type Sites interface {
	Projects(ctx context.Context, g auth.Grant) ([]pgs.ProjectView, error)
	Deploys(ctx context.Context, g auth.Grant, project string) ([]pgs.DeployView, error)
	Rollback(ctx context.Context, g auth.Grant, project, to string, notice io.Writer) (string, error)
}

// Option configures the TUI.
type Option func(*Model)

// WithSites adds the Sites page, on these operations.
func WithSites(s Sites) Option {
	return func(m *Model) {
		m.sites = s
		m.pages = append(m.pages, &sitesPage{})
	}
}

// sitesPage lists the account's projects; enter shows a project's deploys, from which one is
// made live again after a y/n question.
type sitesPage struct {
	projects list[pgs.ProjectView]
	project  string // the project whose deploys are shown, or ""
	deploys  list[pgs.DeployView]
}

func (*sitesPage) title() string { return "Sites" }

func (p *sitesPage) hints() string {
	switch {
	case p.deploys.confirm != nil:
		return "[y] make it live  [n] keep"
	case p.project != "":
		return "[enter] make the selected deploy live  [esc] back  [r] refresh"
	}
	return "[enter] deploys  [r] refresh"
}

func (p *sitesPage) capturing() bool { return p.deploys.confirm != nil }

func (p *sitesPage) load(m *Model) error {
	if err := p.projects.fill(m.sites.Projects(m.ctx, m.grant)); err != nil {
		return err
	}
	if p.project == "" {
		return nil
	}
	deploys, err := m.sites.Deploys(m.ctx, m.grant, p.project)
	if err != nil {
		p.project, p.deploys.rows = "", nil
		return err
	}
	p.deploys.set(deploys)
	return nil
}

func (p *sitesPage) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	key := msg.String()
	switch {
	case p.deploys.confirm != nil:
		d := *p.deploys.confirm
		p.deploys.confirm = nil
		if key != "y" && key != "Y" {
			m.inform(fmt.Sprintf("Kept the live deploy of %s.", p.project))
			return nil
		}
		if !m.act() {
			return nil
		}
		id, err := m.sites.Rollback(m.ctx, m.grant, p.project, d.ID, io.Discard)
		if err != nil {
			m.fail(err)
			return nil
		}
		m.inform(fmt.Sprintf("%s: %s is live.", p.project, id))
		return m.reload()
	case p.project != "":
		if cmd, ok := p.deploys.key(m, key, m.height-chromeLines-2); ok {
			return cmd
		}
		switch key {
		case "esc", "backspace":
			p.project, p.deploys.rows = "", nil
		case "enter":
			if d, ok := p.deploys.selected(); ok && d.Live {
				m.inform(fmt.Sprintf("%s is live already.", d.ID))
				return nil
			}
			p.deploys.ask()
		}
		return nil
	}
	if cmd, ok := p.projects.key(m, key, m.height-chromeLines); ok {
		return cmd
	}
	if pr, ok := p.projects.selected(); ok && key == "enter" {
		p.project = pr.Project
		p.deploys.cursor = selection{}
		return m.reload()
	}
	return nil
}

func (p *sitesPage) view(m *Model, height int) string {
	if p.project != "" {
		return p.deploysView(m, height)
	}
	if len(p.projects.rows) == 0 {
		return "No sites yet. Publish one with: rsync -rv ./public/ pgs@HOST:/blog/"
	}
	return p.projects.table(m, []string{"PROJECT", "LIVE", "FILES", "DEPLOYED BY", "UPDATED", "URL"}, func(pr pgs.ProjectView) []string {
		live := "-"
		if pr.LiveDeploy != nil {
			live = *pr.LiveDeploy
		}
		if pr.LinkTo != nil {
			live = "→ " + *pr.LinkTo + " " + live
		}
		return []string{pr.Project, live, strconv.FormatInt(pr.Files, 10), orDash(pr.UpdatedBy), timeText(pr.UpdatedAt.String()), pr.URL}
	}, height)
}

func (p *sitesPage) deploysView(m *Model, height int) string {
	var b strings.Builder
	b.WriteString(m.st.label.Render("Project: ") + p.project + "\n\n")
	height -= 2
	height = p.deploys.question(m, &b, height, func(d pgs.DeployView) string {
		return fmt.Sprintf("Make %s of %s live (deployed by %s)? y/n", d.ID, p.project, orDash(d.Identity))
	})
	if len(p.deploys.rows) == 0 {
		b.WriteString("No deploys kept.")
		return b.String()
	}
	b.WriteString(p.deploys.table(m, []string{"DEPLOY", "LIVE", "CREATED", "BY", "TOOL", "CHANGES", "FILES"}, func(d pgs.DeployView) []string {
		live := ""
		if d.Live {
			live = "live"
		}
		who := d.Identity
		if d.Serial != nil {
			who += " (serial " + strconv.FormatUint(*d.Serial, 10) + ")"
		}
		return []string{d.ID, live, timeText(d.CreatedAt.String()), orDash(who), d.Tool,
			fmt.Sprintf("+%d ~%d -%d", d.Added, d.Changed, d.Removed), strconv.FormatInt(d.Files, 10)}
	}, height))
	return b.String()
}

// timeText shortens a time's default string to the second.
func timeText(s string) string {
	if i := strings.Index(s, "."); i > 0 {
		if j := strings.Index(s[i:], " "); j > 0 {
			return s[:i] + s[i+j:]
		}
	}
	return s
}
