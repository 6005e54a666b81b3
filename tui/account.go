package tui

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/portico-sh/portico/services/admin/ops"
)

// accountPage is the overview: the account, this connection's grant, and key counts. It also
// deletes the account, once its name is typed to confirm.
type accountPage struct {
	who       ops.Whoami
	logins    int
	cas       int
	pending   int
	keysKnown bool
	confirm   *textinput.Model // the account's name, typed to delete it
}

func (*accountPage) title() string { return "Account" }

func (p *accountPage) hints() string {
	if p.confirm != nil {
		return "[enter] delete for good  [esc] keep"
	}
	if p.keysKnown { // the connection may manage the account
		return "[D] delete account"
	}
	return ""
}

func (p *accountPage) capturing() bool { return p.confirm != nil }

func (p *accountPage) typing() bool { return p.confirm != nil }

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
	p.logins, p.cas, p.pending, p.keysKnown = 0, 0, 0, true
	for _, k := range keys {
		switch {
		case k.IsPending():
			p.pending++
		case k.IsCA():
			p.cas++
		default:
			p.logins++
		}
	}
	return nil
}

func (p *accountPage) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	if p.confirm == nil {
		if msg.String() == "D" && p.keysKnown {
			in := newInput(p.who.Account, 30)
			p.confirm = &in
		}
		return nil
	}
	switch msg.Type {
	case tea.KeyEsc:
		p.confirm = nil
		m.inform("Kept the account.")
		return nil
	case tea.KeyEnter:
		if p.confirm.Value() != p.who.Account {
			m.fail(fmt.Errorf("type the account's name, %s, to delete it", p.who.Account))
			return nil
		}
		if !m.act() {
			return nil
		}
		p.confirm = nil
		until, err := m.ops.DeleteAccount(m.ctx, m.grant)
		if err != nil {
			m.fail(err)
			return nil
		}
		m.gone = fmt.Sprintf("Account %s was deleted, with its keys, certificate authorities, revocations and\n"+
			"data. Its name cannot be registered again until %s.", p.who.Account, ops.Time{Time: until})
		return nil
	}
	var cmd tea.Cmd
	*p.confirm, cmd = p.confirm.Update(msg)
	return cmd
}

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
	if w.ForceCommand != nil {
		rows = append(rows, []string{"Force command", shown(*w.ForceCommand)})
	}
	if p.keysKnown {
		rows = append(rows,
			[]string{"Login keys", strconv.Itoa(p.logins)},
			[]string{"Certificate authorities", strconv.Itoa(p.cas)},
		)
		if p.pending > 0 {
			rows = append(rows, []string{"Waiting to be claimed", strconv.Itoa(p.pending)})
		}
	}
	out := m.fields(rows)
	if p.confirm != nil {
		out += "\n" + m.st.err.Render("Delete account "+w.Account+" for good? Its keys, certificate authorities,") + "\n" +
			m.st.err.Render("revocations and data go; its name is held for 90 days. Type its name:") + "\n\n" +
			m.st.label.Render("Account name: ") + p.confirm.View() + "\n"
	}
	return out
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
