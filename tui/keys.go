package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/portico-sh/portico/services/admin/ops"
)

// keysPage lists login keys and CAs, adds either by pasting a public key, and removes one
// after a y/n question.
type keysPage struct {
	keys    []ops.Key
	cursor  selection
	form    *keyForm
	confirm *ops.Key
}

// maxKeyLineRunes bounds the key line of the form: a text input's cost per key typed grows
// with its length, so an unbounded one lets a paste of megabytes take hours of CPU. An
// authorized_keys line of a 16384-bit RSA key with options fits.
const maxKeyLineRunes = 8 << 10

// keyForm is the form that adds a key.
type keyForm struct {
	ca    bool
	line  textinput.Model
	name  textinput.Model
	focus int // 0: line, 1: name
}

func (*keysPage) title() string { return "Keys" }

func (p *keysPage) hints() string {
	switch {
	case p.form != nil:
		return "[enter] add  [tab] next field  [esc] cancel"
	case p.confirm != nil:
		return "[y] remove  [n] keep"
	}
	return "[a] add login key  [c] add CA key  [d] remove"
}

func (p *keysPage) capturing() bool { return p.form != nil || p.confirm != nil }

func (p *keysPage) load(m *Model) error {
	keys, err := m.ops.ListKeys(m.ctx, m.grant)
	if err != nil {
		return err
	}
	p.keys = keys
	p.cursor.clamp(len(keys))
	return nil
}

func (p *keysPage) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	switch {
	case p.form != nil:
		return p.updateForm(m, msg)
	case p.confirm != nil:
		p.answer(m, msg)
		return nil
	}
	if p.cursor.listKey(msg.String(), len(p.keys), m.height-chromeLines) {
		return nil
	}
	switch msg.String() {
	case "a":
		p.openForm(m, false)
	case "c":
		p.openForm(m, true)
	case "d", "x", "delete":
		if len(p.keys) > 0 {
			k := p.keys[p.cursor.pos]
			p.confirm = &k
		}
	case "r":
		return m.reload()
	}
	return nil
}

func (p *keysPage) openForm(m *Model, ca bool) {
	f := &keyForm{ca: ca, line: newInput("paste: ssh-ed25519 AAAA... comment", maxKeyLineRunes), name: newInput("optional; default: the key's comment", 64)}
	f.line.Width, f.name.Width = m.inputWidth(), m.inputWidth()
	f.name.Blur()
	p.form = f
}

func (p *keysPage) updateForm(m *Model, msg tea.KeyMsg) tea.Cmd {
	f := p.form
	switch msg.Type {
	case tea.KeyEsc:
		p.form = nil
		return nil
	case tea.KeyTab, tea.KeyShiftTab, tea.KeyUp, tea.KeyDown:
		f.focus = 1 - f.focus
		if f.focus == 0 {
			f.name.Blur()
			return f.line.Focus()
		}
		f.line.Blur()
		return f.name.Focus()
	case tea.KeyEnter:
		k, err := m.ops.AddKey(m.ctx, m.grant, f.line.Value(), strings.TrimSpace(f.name.Value()), f.ca)
		if err != nil {
			m.fail(err)
			return nil
		}
		p.form = nil
		if err := p.load(m); err != nil {
			m.fail(err)
			return nil
		}
		for i, have := range p.keys {
			if have.ID == k.ID {
				p.cursor.pos = i
			}
		}
		m.inform(fmt.Sprintf("Added %s %q (%s).", k.KindName(), k.Name, k.Fingerprint))
		return nil
	}
	var cmd tea.Cmd
	if f.focus == 0 {
		f.line, cmd = f.line.Update(msg)
	} else {
		f.name, cmd = f.name.Update(msg)
	}
	return cmd
}

func (p *keysPage) answer(m *Model, msg tea.KeyMsg) {
	k := *p.confirm
	switch msg.String() {
	case "y", "Y":
		p.confirm = nil
		if _, err := m.ops.RemoveKey(m.ctx, m.grant, k.Fingerprint); err != nil {
			m.fail(err)
			return
		}
		if err := p.load(m); err != nil {
			m.fail(err)
			return
		}
		m.inform(fmt.Sprintf("Removed %s %q.", k.KindName(), k.Name))
	case "n", "N", "esc", "q":
		p.confirm = nil
		m.inform(fmt.Sprintf("Kept %s %q.", k.KindName(), k.Name))
	}
}

func (p *keysPage) view(m *Model, height int) string {
	if f := p.form; f != nil {
		var b strings.Builder
		if f.ca {
			b.WriteString(m.st.title.Render("Add CA key") + "\n\n")
			b.WriteString("Paste the certificate authority's public key line (its .pub file).\n")
			b.WriteString("Options such as principals=\"pgs,tuns\" may come first. Certificates\n")
			b.WriteString("it signs can then log in, for the services of their principals.\n\n")
		} else {
			b.WriteString(m.st.title.Render("Add login key") + "\n\n")
			b.WriteString("Paste a public key line (a .pub file). With the cert-authority\n")
			b.WriteString("option first, it is added as a certificate authority instead.\n\n")
		}
		b.WriteString(m.st.label.Render("Key:  ") + f.line.View() + "\n")
		b.WriteString(m.st.label.Render("Name: ") + f.name.View() + "\n")
		return b.String()
	}
	if len(p.keys) == 0 {
		return "No keys."
	}
	var b strings.Builder
	if k := p.confirm; k != nil {
		b.WriteString(m.st.err.Render(fmt.Sprintf("Remove %s %q? y/n", k.KindName(), k.Name)) + "\n\n")
		height -= 2
	}
	rows := make([][]string, len(p.keys))
	for i, k := range p.keys {
		rows[i] = []string{k.Name, k.Type, k.Fingerprint}
	}
	if height > 0 {
		height = max(height-detailLines, 2)
	}
	b.WriteString(m.table([]string{"NAME", "TYPE", "FINGERPRINT"}, rows, &p.cursor, height))
	b.WriteString("\n")
	k := p.keys[p.cursor.pos]
	last := "never"
	if k.LastUsedAt != nil {
		last = k.LastUsedAt.String()
	}
	b.WriteString(m.fields([][]string{
		{"Algorithm", k.Algorithm},
		{"Options", orDash(k.Options)},
		{"Added", k.CreatedAt.String()},
		{"Last used", last},
	}))
	return b.String()
}

// detailLines is how many lines the selected key's details take under the table.
const detailLines = 5
