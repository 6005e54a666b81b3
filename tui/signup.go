package tui

import (
	"fmt"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
)

// signupPage is the form an unregistered key fills in to create an account.
type signupPage struct {
	name textinput.Model
}

func newSignupPage() *signupPage {
	return &signupPage{name: newInput("", 30)}
}

func (p *signupPage) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	if msg.Type != tea.KeyEnter {
		var cmd tea.Cmd
		p.name, cmd = p.name.Update(msg)
		return cmd
	}
	g, err := m.ops.Register(m.ctx, m.grant, m.key, p.name.Value())
	if err != nil {
		m.fail(err)
		return nil
	}
	m.grant, m.signup = g, nil
	m.show(0)
	m.inform(fmt.Sprintf("Account %s created; this key is its first login key, named %q.", g.Account, g.Identity))
	return nil
}

func (p *signupPage) view(m *Model) string {
	return "This key is not registered yet. Choose an account name: 2 to 30 lowercase\n" +
		"letters and digits, starting with a letter.\n\n" +
		m.st.label.Render("Account name: ") + p.name.View()
}

// newInput returns a focused text input with a static cursor, limited to limit characters
// (0: no limit), that ignores ctrl+v (which would read the server's clipboard).
func newInput(placeholder string, limit int) textinput.Model {
	in := textinput.New()
	in.Placeholder = placeholder
	in.CharLimit = limit
	in.Prompt = "> "
	in.KeyMap.Paste.SetEnabled(false)
	in.Cursor.SetMode(cursor.CursorStatic)
	in.Focus()
	return in
}
