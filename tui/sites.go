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
	projects []pgs.ProjectView
	cursor   selection

	project string // the project whose deploys are shown, or ""
	deploys []pgs.DeployView
	dcursor selection
	confirm *pgs.DeployView
}

func (*sitesPage) title() string { return "Sites" }

func (p *sitesPage) hints() string {
	switch {
	case p.confirm != nil:
		return "[y] make it live  [n] keep"
	case p.project != "":
		return "[enter] make the selected deploy live  [esc] back  [r] refresh"
	}
	return "[enter] deploys  [r] refresh"
}

func (p *sitesPage) capturing() bool { return p.confirm != nil }

func (p *sitesPage) load(m *Model) error {
	list, err := m.sites.Projects(m.ctx, m.grant)
	if err != nil {
		return err
	}
	p.projects = list
	p.cursor.clamp(len(list))
	if p.project == "" {
		return nil
	}
	deploys, err := m.sites.Deploys(m.ctx, m.grant, p.project)
	if err != nil {
		p.project, p.deploys = "", nil
		return err
	}
	p.deploys = deploys
	p.dcursor.clamp(len(deploys))
	return nil
}

func (p *sitesPage) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	key := msg.String()
	switch {
	case p.confirm != nil:
		d := *p.confirm
		p.confirm = nil
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
		if p.dcursor.listKey(key, len(p.deploys), m.height-chromeLines-2) {
			return nil
		}
		switch key {
		case "esc", "backspace":
			p.project, p.deploys = "", nil
		case "enter":
			if len(p.deploys) > 0 {
				d := p.deploys[p.dcursor.pos]
				if d.Live {
					m.inform(fmt.Sprintf("%s is live already.", d.ID))
					return nil
				}
				p.confirm = &d
			}
			return nil
		case "r":
			return m.reload()
		}
		return nil
	}
	if p.cursor.listKey(key, len(p.projects), m.height-chromeLines) {
		return nil
	}
	switch key {
	case "enter":
		if len(p.projects) > 0 {
			p.project = p.projects[p.cursor.pos].Project
			p.dcursor = selection{}
			return m.reload()
		}
	case "r":
		return m.reload()
	}
	return nil
}

func (p *sitesPage) view(m *Model, height int) string {
	if p.project != "" {
		return p.deploysView(m, height)
	}
	if len(p.projects) == 0 {
		return "No sites yet. Publish one with: rsync -rv ./public/ pgs@HOST:/blog/"
	}
	rows := make([][]string, len(p.projects))
	for i, pr := range p.projects {
		live := "-"
		if pr.LiveDeploy != nil {
			live = *pr.LiveDeploy
		}
		if pr.LinkTo != nil {
			live = "→ " + *pr.LinkTo + " " + live
		}
		rows[i] = []string{pr.Project, live, strconv.FormatInt(pr.Files, 10), orDash(pr.UpdatedBy), timeText(pr.UpdatedAt.String()), pr.URL}
	}
	return m.table([]string{"PROJECT", "LIVE", "FILES", "DEPLOYED BY", "UPDATED", "URL"}, rows, &p.cursor, height)
}

func (p *sitesPage) deploysView(m *Model, height int) string {
	var b strings.Builder
	b.WriteString(m.st.label.Render("Project: ") + p.project + "\n\n")
	height -= 2
	if d := p.confirm; d != nil {
		b.WriteString(m.st.err.Render(fmt.Sprintf("Make %s of %s live (deployed by %s)? y/n", d.ID, p.project, orDash(d.Identity))) + "\n\n")
		height -= 2
	}
	if len(p.deploys) == 0 {
		b.WriteString("No deploys kept.")
		return b.String()
	}
	rows := make([][]string, len(p.deploys))
	for i, d := range p.deploys {
		live := ""
		if d.Live {
			live = "live"
		}
		who := d.Identity
		if d.Serial != nil {
			who += " (serial " + strconv.FormatUint(*d.Serial, 10) + ")"
		}
		rows[i] = []string{d.ID, live, timeText(d.CreatedAt.String()), orDash(who), d.Tool,
			fmt.Sprintf("+%d ~%d -%d", d.Added, d.Changed, d.Removed), strconv.FormatInt(d.Files, 10)}
	}
	b.WriteString(m.table([]string{"DEPLOY", "LIVE", "CREATED", "BY", "TOOL", "CHANGES", "FILES"}, rows, &p.dcursor, height))
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
