package tui

import (
	"strconv"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/portico-sh/portico/services/tuns"
)

// Tunnels lists an account's live tunnels, as ssh tuns@HOST ls does.
type Tunnels interface {
	Tunnels(account string) []tuns.TunnelView
}

// WithTunnels adds the Tunnels page, on these tunnels.
func WithTunnels(t Tunnels) Option {
	return func(m *Model) {
		m.pages = append(m.pages, &tunnelsPage{src: t})
	}
}

// tunnelsPage lists the account's tunnels with their counts; r refreshes them.
type tunnelsPage struct {
	list[tuns.TunnelView]
	src Tunnels
}

func (*tunnelsPage) title() string { return "Tunnels" }

func (*tunnelsPage) hints() string { return "[r] refresh" }

func (*tunnelsPage) capturing() bool { return false }

func (p *tunnelsPage) load(m *Model) error {
	p.set(p.src.Tunnels(m.grant.Account))
	return nil
}

func (p *tunnelsPage) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	cmd, _ := p.key(m, msg.String(), m.height-chromeLines)
	return cmd
}

func (p *tunnelsPage) view(m *Model, height int) string {
	if len(p.rows) == 0 {
		return "No tunnels. Open one with: ssh -R NAME:80:localhost:3000 tuns@HOST"
	}
	return p.table(m, []string{"NAME", "KIND", "WHERE", "CONNECTED", "IDENTITY", "REQUESTS", "IN", "OUT"}, func(t tuns.TunnelView) []string {
		return []string{orDash(t.Name), string(t.Kind), t.Where, timeText(t.ConnectedAt.Local().String()), orDash(t.Identity),
			strconv.FormatInt(t.Requests, 10), strconv.FormatInt(t.BytesIn, 10), strconv.FormatInt(t.BytesOut, 10)}
	}, height)
}
