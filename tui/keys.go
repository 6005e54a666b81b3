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
// y/n question. Its form takes a key's line and its name.
type keysPage struct {
	editor[ops.Key]
	ca    bool // the form adds a CA
	claim *claimPanel
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

var keyLabels = []string{"Key:  ", "Name: "}

func (*keysPage) title() string { return "Keys" }

func (p *keysPage) hints() string {
	switch {
	case p.editor.capturing() || p.claim == nil:
		return p.editor.hints("add", "remove", "[a] add login key  [c] add CA key  [enter] how to claim  [d] remove")
	case p.claim.cert != nil:
		return "[enter] claim with the certificate  [esc] later"
	}
	return "[enter/esc] done"
}

func (p *keysPage) capturing() bool { return p.editor.capturing() || p.claim != nil }

// typing reports whether a text input has the keyboard: the form's, or the claim panel's.
func (p *keysPage) typing() bool { return p.editor.typing() || p.claim != nil && p.claim.cert != nil }

func (p *keysPage) load(m *Model) error {
	return p.fill(m.ops.ListKeys(m.ctx, m.grant))
}

func (p *keysPage) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	if p.claim != nil { // open only while the form and the question are not
		return p.updateClaim(m, msg)
	}
	if cmd, ok := p.editor.update(m, p, msg); ok {
		return cmd
	}
	switch msg.String() {
	case "a":
		p.openForm(m, false)
	case "c":
		p.openForm(m, true)
	case "enter":
		if k, ok := p.selected(); ok && k.IsPending() {
			p.openClaim(m, k)
		}
	}
	return nil
}

func (p *keysPage) openForm(m *Model, ca bool) {
	p.ca = ca
	p.form = newForm(m,
		[]string{"paste: ssh-ed25519 AAAA... comment", "optional; default: the key's comment"},
		[]int{maxKeyLineRunes, 64})
}

// submit adds the key of the form.
func (p *keysPage) submit(m *Model) tea.Cmd {
	if !m.act() {
		return nil
	}
	k, err := m.ops.AddKey(m.ctx, m.grant, p.form.inputs[0].Value(), p.form.value(1), p.ca)
	if err != nil {
		m.fail(err)
		return nil
	}
	p.form = nil
	p.added(m, k)
	return nil
}

// added reloads the list with k selected, and shows how to claim k if it waits to be claimed.
func (p *keysPage) added(m *Model, k ops.Key) {
	if err := p.load(m); err != nil {
		m.fail(err)
		return
	}
	for i, have := range p.rows {
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
	p.list.answer(m, p, msg.String(),
		func(k ops.Key) error {
			_, err := m.ops.RemoveKey(m.ctx, m.grant, k.Fingerprint)
			return err
		},
		fmt.Sprintf("Removed %s %q.", k.KindName(), k.Name), fmt.Sprintf("Kept %s %q.", k.KindName(), k.Name))
}

func (p *keysPage) view(m *Model, height int) string {
	if c := p.claim; c != nil {
		return p.claimView(m, c)
	}
	if f := p.form; f != nil {
		if p.ca {
			return f.view(m, "Add CA key",
				"Paste the certificate authority's public key line (its .pub file).\n"+
					"Options such as principals=\"pgs,tuns\" may come first. Once you have\n"+
					"proved you hold it, certificates it signs log in, for the services of\n"+
					"their principals. (A claim certificate may be pasted here too.)\n",
				keyLabels)
		}
		return f.view(m, "Add login key",
			"Paste a public key line (a .pub file). With the cert-authority\n"+
				"option first, it is added as a certificate authority instead.\n",
			keyLabels)
	}
	k, ok := p.selected()
	if !ok {
		return "No keys."
	}
	var b strings.Builder
	height = p.question(m, &b, height, func(k ops.Key) string {
		return fmt.Sprintf("Remove %s %q? y/n", k.KindName(), k.Name)
	})
	if height > 0 {
		height = max(height-detailLines, 2)
	}
	b.WriteString(p.table(m, []string{"NAME", "TYPE", "STATE", "FINGERPRINT"}, func(k ops.Key) []string {
		return []string{k.Name, k.Type, k.State, k.Fingerprint}
	}, height))
	b.WriteString("\n")
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
