package tui

import (
	"strconv"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/services/admin/ops"
)

// logsPage is the access log, newest first, filtered by service.
type logsPage struct {
	list[ops.LogEntry]
	service string // "" for every service
}

func (*logsPage) title() string   { return "Access log" }
func (*logsPage) hints() string   { return "[s] next service  [r] refresh" }
func (*logsPage) capturing() bool { return false }

func (p *logsPage) load(m *Model) error {
	return p.fill(m.ops.Logs(m.ctx, m.grant, p.service, ops.DefaultLogLimit))
}

func (p *logsPage) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	if cmd, ok := p.key(m, msg.String(), m.height-chromeLines-2); ok {
		return cmd
	}
	if msg.String() != "s" {
		return nil
	}
	p.service = nextService(p.service)
	p.cursor = selection{}
	return m.reload()
}

// nextService cycles "" (all), then every service, then "" again.
func nextService(s string) string {
	if s == "" {
		return string(auth.Services[0])
	}
	for i, svc := range auth.Services {
		if string(svc) == s && i+1 < len(auth.Services) {
			return string(auth.Services[i+1])
		}
	}
	return ""
}

func (p *logsPage) view(m *Model, height int) string {
	filter := p.service
	if filter == "" {
		filter = "all"
	}
	head := m.st.label.Render("Service: ") + filter + "\n\n"
	if len(p.rows) == 0 {
		return head + "No access log entries."
	}
	if height > 0 {
		height = max(height-2, 2)
	}
	return head + p.table(m, []string{"TIME", "SERVICE", "OUTCOME", "METHOD", "IDENTITY", "SERIAL", "REMOTE", "REASON"}, func(e ops.LogEntry) []string {
		serial := "-"
		if e.Serial != nil {
			serial = strconv.FormatUint(*e.Serial, 10)
		}
		return []string{e.Time.String(), e.Service, e.Outcome, e.Method, orDash(e.Identity), serial, orDash(e.RemoteAddr), orDash(e.Reason)}
	}, height)
}
