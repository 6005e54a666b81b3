package tui

import (
	"strconv"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/portico-sh/portico/services/admin/ops"
)

// accountPage is the overview: the account, this connection's grant, and key counts.
type accountPage struct {
	who       ops.Whoami
	logins    int
	cas       int
	keysKnown bool
}

func (*accountPage) title() string   { return "Account" }
func (*accountPage) hints() string   { return "" }
func (*accountPage) capturing() bool { return false }

func (p *accountPage) load(m *Model) error {
	who, err := m.ops.Whoami(m.grant)
	if err != nil {
		return err
	}
	p.who = who
	p.keysKnown = false
	keys, err := m.ops.ListKeys(m.ctx, m.grant)
	if err != nil {
		return err
	}
	p.logins, p.cas, p.keysKnown = 0, 0, true
	for _, k := range keys {
		if k.IsCA() {
			p.cas++
		} else {
			p.logins++
		}
	}
	return nil
}

func (*accountPage) update(*Model, tea.KeyMsg) tea.Cmd { return nil }

func (p *accountPage) view(m *Model, height int) string {
	w := p.who
	rows := [][]string{
		{"Account name", w.Account},
		{"Method", methodWords(w.Method)},
		{"Identity", w.Identity},
		{"Services", strings.Join(w.Services, ", ")},
		{"Key fingerprint", w.KeyFingerprint},
	}
	if c := w.Cert; c != nil {
		valid := "forever"
		if c.ValidBefore != nil {
			valid = c.ValidBefore.String()
		}
		rows = append(rows,
			[]string{"Certificate key ID", c.KeyID},
			[]string{"Serial", strconv.FormatUint(c.Serial, 10)},
			[]string{"Signed by CA", strings.TrimSpace(c.CAName + " " + c.CAFingerprint)},
			[]string{"Principals", strings.Join(c.Principals, ", ")},
			[]string{"Valid until", valid},
		)
	}
	if p.keysKnown {
		rows = append(rows,
			[]string{"Login keys", strconv.Itoa(p.logins)},
			[]string{"Certificate authorities", strconv.Itoa(p.cas)},
		)
	}
	return m.fields(rows)
}

func methodWords(method string) string {
	switch method {
	case "key":
		return "login key"
	case "cert":
		return "certificate"
	}
	return method
}
