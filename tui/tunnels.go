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
	src     Tunnels
	tunnels []tuns.TunnelView
	cursor  selection
}

func (*tunnelsPage) title() string { return "Tunnels" }

func (*tunnelsPage) hints() string { return "[r] refresh" }

func (*tunnelsPage) capturing() bool { return false }

func (p *tunnelsPage) load(m *Model) error {
	p.tunnels = p.src.Tunnels(m.grant.Account)
	p.cursor.clamp(len(p.tunnels))
	return nil
}

func (p *tunnelsPage) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	key := msg.String()
	if p.cursor.listKey(key, len(p.tunnels), m.height-chromeLines) {
		return nil
	}
	if key == "r" {
		return m.reload()
	}
	return nil
}

func (p *tunnelsPage) view(m *Model, height int) string {
	if len(p.tunnels) == 0 {
		return "No tunnels. Open one with: ssh -R NAME:80:localhost:3000 tuns@HOST"
	}
	rows := make([][]string, len(p.tunnels))
	for i, t := range p.tunnels {
		rows[i] = []string{orDash(t.Name), string(t.Kind), t.Where, timeText(t.ConnectedAt.Local().String()), orDash(t.Identity),
			strconv.FormatInt(t.Requests, 10), strconv.FormatInt(t.BytesIn, 10), strconv.FormatInt(t.BytesOut, 10)}
	}
	return m.table([]string{"NAME", "KIND", "WHERE", "CONNECTED", "IDENTITY", "REQUESTS", "IN", "OUT"}, rows, &p.cursor, height)
}
