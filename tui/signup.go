package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/portico-sh/portico/auth"
)

// signupPage is what a key of no account sees: a claim prompt when the key waits to be claimed,
// a sign-up form when signups are open, or both, one field each.
type signupPage struct {
	code  *textinput.Model // nil unless the grant may claim
	name  *textinput.Model // nil unless the grant may register
	focus int              // 0: the first field shown, 1: the second
}

func newSignupPage(g auth.Grant) *signupPage {
	p := &signupPage{}
	if g.MayClaim {
		in := newInput("e.g. 7KQ2M9XA", auth.ClaimCodeLen)
		p.code = &in
	}
	if g.MayRegister || !g.MayClaim {
		in := newInput("", 30)
		if p.code != nil {
			in.Blur()
		}
		p.name = &in
	}
	return p
}

// fields are the inputs shown, in order.
func (p *signupPage) fields() []*textinput.Model {
	var out []*textinput.Model
	for _, in := range []*textinput.Model{p.code, p.name} {
		if in != nil {
			out = append(out, in)
		}
	}
	return out
}

func (p *signupPage) title() string {
	if p.code != nil {
		return "Claim this key"
	}
	return "Sign up"
}

func (p *signupPage) hints() string {
	if len(p.fields()) > 1 {
		return "[enter] claim or create, as the field  [tab] other field  [ctrl+c] quit"
	}
	if p.code != nil {
		return "[enter] claim  [ctrl+c] quit"
	}
	return "[enter] create account  [ctrl+c] quit"
}

func (p *signupPage) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	fields := p.fields()
	switch msg.Type {
	case tea.KeyTab, tea.KeyShiftTab, tea.KeyUp, tea.KeyDown:
		if len(fields) > 1 {
			fields[p.focus].Blur()
			p.focus = 1 - p.focus
			return fields[p.focus].Focus()
		}
		return nil
	case tea.KeyEnter:
		if !m.act() {
			return nil
		}
		if fields[p.focus] == p.code {
			p.claim(m)
		} else {
			p.register(m)
		}
		return nil
	}
	in := fields[p.focus]
	var cmd tea.Cmd
	*in, cmd = in.Update(msg)
	return cmd
}

func (p *signupPage) claim(m *Model) {
	g, k, err := m.ops.ClaimKey(m.ctx, m.grant, m.key, p.code.Value())
	if err != nil {
		m.fail(err)
		return
	}
	p.done(m, g, fmt.Sprintf("Key %q is now a login key of account %s.", k.Name, g.Account))
}

func (p *signupPage) register(m *Model) {
	g, err := m.ops.Register(m.ctx, m.grant, m.key, p.name.Value())
	if err != nil {
		m.fail(err)
		return
	}
	p.done(m, g, fmt.Sprintf("Account %s created; this key is its first login key, named %q.", g.Account, g.Identity))
}

// done makes g, the account's grant, the TUI's, and opens the account's pages saying msg.
func (*signupPage) done(m *Model, g auth.Grant, msg string) {
	m.regrant(g)
	m.signup = nil
	m.show(0)
	m.inform(msg)
}

func (p *signupPage) view(m *Model) string {
	var b strings.Builder
	if p.code != nil {
		b.WriteString("This key was added to an account and waits to be claimed. Enter the claim\n" +
			"code you were given with it, to make it a login key of that account.\n\n")
		b.WriteString(m.st.label.Render("Claim code:   ") + p.code.View())
		if p.name != nil {
			b.WriteString("\n\nOr, to sign up instead, choose an account name: 2 to 30 lowercase letters\n" +
				"and digits, starting with a letter.\n\n")
		}
	} else {
		b.WriteString("This key is not registered yet. Choose an account name: 2 to 30 lowercase\n" +
			"letters and digits, starting with a letter.\n\n")
	}
	if p.name != nil {
		b.WriteString(m.st.label.Render("Account name: ") + p.name.View())
	}
	return b.String()
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
