package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/portico-sh/portico/services/admin/ops"
)

// keysPage lists login keys and CAs, adds either by pasting a public key, shows how to claim
// a key that waits to be claimed (and takes a CA's claim certificate), and removes one after a
// y/n question.
type keysPage struct {
	keys    []ops.Key
	cursor  selection
	form    *keyForm
	confirm *ops.Key
	claim   *claimPanel
}

// claimPanel shows how to claim a pending key; for a CA it takes the claim certificate.
type claimPanel struct {
	key  ops.Key
	cert *textinput.Model // nil for a login key
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
	case p.claim != nil && p.claim.cert != nil:
		return "[enter] claim with the certificate  [esc] later"
	case p.claim != nil:
		return "[enter/esc] done"
	}
	return "[a] add login key  [c] add CA key  [enter] how to claim  [d] remove"
}

func (p *keysPage) capturing() bool { return p.form != nil || p.confirm != nil || p.claim != nil }

// typing reports whether a text input has the keyboard: the form's, or the claim panel's.
func (p *keysPage) typing() bool { return p.form != nil || p.claim != nil && p.claim.cert != nil }

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
	case p.claim != nil:
		return p.updateClaim(m, msg)
	}
	if p.cursor.listKey(msg.String(), len(p.keys), m.height-chromeLines) {
		return nil
	}
	switch msg.String() {
	case "a":
		p.openForm(m, false)
	case "c":
		p.openForm(m, true)
	case "enter":
		if len(p.keys) > 0 && p.keys[p.cursor.pos].IsPending() {
			p.openClaim(m, p.keys[p.cursor.pos])
		}
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
		if !m.act() {
			return nil
		}
		k, err := m.ops.AddKey(m.ctx, m.grant, f.line.Value(), strings.TrimSpace(f.name.Value()), f.ca)
		if err != nil {
			m.fail(err)
			return nil
		}
		p.form = nil
		p.added(m, k)
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

// added reloads the list with k selected, and shows how to claim k if it waits to be claimed.
func (p *keysPage) added(m *Model, k ops.Key) {
	if err := p.load(m); err != nil {
		m.fail(err)
		return
	}
	for i, have := range p.keys {
		if have.Fingerprint == k.Fingerprint {
			p.cursor.pos = i
		}
	}
	if k.IsPending() {
		p.openClaim(m, k)
		m.inform(fmt.Sprintf("Added %s %q (%s), pending.", k.KindName(), k.Name, k.Fingerprint))
		return
	}
	m.inform(fmt.Sprintf("Claimed %s %q (%s): it is active.", k.KindName(), k.Name, k.Fingerprint))
}

func (p *keysPage) openClaim(m *Model, k ops.Key) {
	p.claim = &claimPanel{key: k}
	if k.IsCA() {
		in := newInput("paste: ssh-ed25519-cert-v01@openssh.com AAAA...", maxKeyLineRunes)
		in.Width = m.inputWidth()
		p.claim.cert = &in
	}
}

func (p *keysPage) updateClaim(m *Model, msg tea.KeyMsg) tea.Cmd {
	c := p.claim
	if c.cert == nil {
		if msg.Type == tea.KeyEnter || msg.Type == tea.KeyEsc || msg.String() == "q" {
			p.claim = nil
		}
		return nil
	}
	switch msg.Type {
	case tea.KeyEsc:
		p.claim = nil
		return nil
	case tea.KeyEnter:
		if !m.act() {
			return nil
		}
		k, err := m.ops.AddKey(m.ctx, m.grant, c.cert.Value(), "", true)
		if err != nil {
			m.fail(err)
			return nil
		}
		p.claim = nil
		p.added(m, k)
		return nil
	}
	var cmd tea.Cmd
	*c.cert, cmd = c.cert.Update(msg)
	return cmd
}

func (p *keysPage) answer(m *Model, msg tea.KeyMsg) {
	k := *p.confirm
	switch msg.String() {
	case "y", "Y":
		if !m.act() {
			return
		}
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
	if c := p.claim; c != nil {
		return p.claimView(m, c)
	}
	if f := p.form; f != nil {
		var b strings.Builder
		if f.ca {
			b.WriteString(m.st.title.Render("Add CA key") + "\n\n")
			b.WriteString("Paste the certificate authority's public key line (its .pub file).\n")
			b.WriteString("Options such as principals=\"pgs,tuns\" may come first. Once you have\n")
			b.WriteString("proved you hold it, certificates it signs log in, for the services of\n")
			b.WriteString("their principals. (A claim certificate may be pasted here too.)\n\n")
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
		rows[i] = []string{k.Name, k.Type, k.State, k.Fingerprint}
	}
	if height > 0 {
		height = max(height-detailLines, 2)
	}
	b.WriteString(m.table([]string{"NAME", "TYPE", "STATE", "FINGERPRINT"}, rows, &p.cursor, height))
	b.WriteString("\n")
	k := p.keys[p.cursor.pos]
	last := "never"
	if k.LastUsedAt != nil {
		last = k.LastUsedAt.String()
	}
	if k.Claim != nil {
		last = "waits to be claimed until " + k.Claim.ExpiresAt.String() + " (enter: how)"
	}
	b.WriteString(m.fields([][]string{
		{"Algorithm", k.Algorithm},
		{"Options", orDash(k.Options)},
		{"Added", k.CreatedAt.String()},
		{"Last used", last},
	}))
	return b.String()
}

// claimView says how to claim the pending key of c, with the command on a line of its own,
// ready to paste.
func (p *keysPage) claimView(m *Model, c *claimPanel) string {
	k := c.key
	var b strings.Builder
	command := "  " + k.Claim.Command
	if m.width > 4 {
		command = ansi.Wrap(command, m.width-4, "")
	}
	if k.IsCA() {
		b.WriteString(m.st.title.Render("Claim certificate authority "+strconvQuote(k.Name)) + "\n\n")
		b.WriteString("It vouches for nothing until you prove you hold it. Before " + k.Claim.ExpiresAt.String() + ",\n")
		b.WriteString("sign a claim certificate with its private key (CA_KEY; SOME_KEY.pub is any\n")
		b.WriteString("public key: ssh-keygen writes the certificate to SOME_KEY-cert.pub):\n\n")
		b.WriteString(command + "\n\n")
		b.WriteString("then paste the certificate line here:\n\n")
		b.WriteString(m.st.label.Render("Certificate: ") + c.cert.View() + "\n")
		return b.String()
	}
	b.WriteString(m.st.title.Render("Claim login key "+strconvQuote(k.Name)) + "\n\n")
	b.WriteString("It grants nothing until its holder claims it. Before " + k.Claim.ExpiresAt.String() + ", run this\n")
	b.WriteString("where the key's private half is (-i: its file):\n\n")
	b.WriteString(command + "\n")
	return b.String()
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }

// detailLines is how many lines the selected key's details take under the table.
const detailLines = 5
