package tui

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/portico-sh/portico/services/admin/ops"
)

// revocationsPage lists revocations, adds one and lifts one after a y/n question.
type revocationsPage struct {
	list    []ops.Revocation
	total   int // the account's revocations: the page shows the first maxShownRevocations
	cursor  selection
	form    *revocationForm
	confirm *ops.Revocation
}

// revocationForm is the form that adds a revocation; one of serial, key ID or key is filled.
type revocationForm struct {
	inputs []textinput.Model // serial, CA, key ID, key fingerprint
	focus  int
}

var revocationLabels = []string{"Serial:          ", "CA:              ", "Key ID:          ", "Key fingerprint: "}

func (*revocationsPage) title() string { return "Revocations" }

func (p *revocationsPage) hints() string {
	switch {
	case p.form != nil:
		return "[enter] revoke  [tab] next field  [esc] cancel"
	case p.confirm != nil:
		return "[y] lift  [n] keep"
	}
	return "[a] add  [d] lift"
}

func (p *revocationsPage) capturing() bool { return p.form != nil || p.confirm != nil }

// typing reports whether the form's text inputs have the keyboard.
func (p *revocationsPage) typing() bool { return p.form != nil }

// maxShownRevocations bounds what the page holds: an account may have tens of thousands (an
// imported KRL), which revocations ls lists over ssh.
const maxShownRevocations = 500

func (p *revocationsPage) load(m *Model) error {
	list, total, err := m.ops.RevocationsPage(m.ctx, m.grant, 0, maxShownRevocations)
	if err != nil {
		return err
	}
	p.list, p.total = list, total
	p.cursor.clamp(len(list))
	return nil
}

func (p *revocationsPage) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	switch {
	case p.form != nil:
		return p.updateForm(m, msg)
	case p.confirm != nil:
		p.answer(m, msg)
		return nil
	}
	if p.cursor.listKey(msg.String(), len(p.list), m.height-chromeLines) {
		return nil
	}
	switch msg.String() {
	case "a":
		f := &revocationForm{}
		placeholders := []string{"a number, e.g. 42", "a CA's name; empty: every CA", "e.g. bob@laptop", "SHA256:..."}
		for i, limit := range []int{20, 64, 128, 64} { // a uint64, a key name or fingerprint, a key ID, a fingerprint
			in := newInput(placeholders[i], limit)
			in.Width = m.inputWidth()
			if i > 0 {
				in.Blur()
			}
			f.inputs = append(f.inputs, in)
		}
		p.form = f
	case "d", "x", "delete":
		if len(p.list) > 0 {
			r := p.list[p.cursor.pos]
			p.confirm = &r
		}
	case "r":
		return m.reload()
	}
	return nil
}

func (p *revocationsPage) updateForm(m *Model, msg tea.KeyMsg) tea.Cmd {
	f := p.form
	switch msg.Type {
	case tea.KeyEsc:
		p.form = nil
		return nil
	case tea.KeyTab, tea.KeyDown, tea.KeyShiftTab, tea.KeyUp:
		step := 1
		if msg.Type == tea.KeyShiftTab || msg.Type == tea.KeyUp {
			step = len(f.inputs) - 1
		}
		f.inputs[f.focus].Blur()
		f.focus = (f.focus + step) % len(f.inputs)
		return f.inputs[f.focus].Focus()
	case tea.KeyEnter:
		req, err := f.request()
		if err != nil {
			m.fail(err)
			return nil
		}
		if !m.act() {
			return nil
		}
		r, err := m.ops.Revoke(m.ctx, m.grant, req)
		if err != nil {
			m.fail(err)
			return nil
		}
		p.form = nil
		if err := p.load(m); err != nil {
			m.fail(err)
			return nil
		}
		m.inform(fmt.Sprintf("Added revocation %d (%s %s).", r.ID, r.Kind, r.Value))
		return nil
	}
	var cmd tea.Cmd
	f.inputs[f.focus], cmd = f.inputs[f.focus].Update(msg)
	return cmd
}

func (f *revocationForm) request() (ops.RevokeRequest, error) {
	req := ops.RevokeRequest{
		CA:    strings.TrimSpace(f.inputs[1].Value()),
		KeyID: strings.TrimSpace(f.inputs[2].Value()),
		Key:   strings.TrimSpace(f.inputs[3].Value()),
	}
	if s := strings.TrimSpace(f.inputs[0].Value()); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return req, fmt.Errorf("serial %q is not a decimal number", s)
		}
		req.Serial = &n
	}
	return req, nil
}

func (p *revocationsPage) answer(m *Model, msg tea.KeyMsg) {
	r := *p.confirm
	switch msg.String() {
	case "y", "Y":
		if !m.act() {
			return
		}
		p.confirm = nil
		if err := m.ops.RemoveRevocation(m.ctx, m.grant, r.ID); err != nil {
			m.fail(err)
			return
		}
		if err := p.load(m); err != nil {
			m.fail(err)
			return
		}
		m.inform(fmt.Sprintf("Lifted revocation %d.", r.ID))
	case "n", "N", "esc", "q":
		p.confirm = nil
		m.inform(fmt.Sprintf("Kept revocation %d.", r.ID))
	}
}

func (p *revocationsPage) view(m *Model, height int) string {
	if f := p.form; f != nil {
		var b strings.Builder
		b.WriteString(m.st.title.Render("Add revocation") + "\n\n")
		b.WriteString("Fill in one of: a serial (with a CA, or for every CA), a certificate\n")
		b.WriteString("key ID, or a certificate key's fingerprint. It refuses new connections\n")
		b.WriteString("at once.\n\n")
		for i, in := range f.inputs {
			b.WriteString(m.st.label.Render(revocationLabels[i]) + in.View() + "\n")
		}
		return b.String()
	}
	if len(p.list) == 0 {
		return "No revocations."
	}
	var b strings.Builder
	if r := p.confirm; r != nil {
		b.WriteString(m.st.err.Render(fmt.Sprintf("Lift revocation %d (%s %s)? y/n", r.ID, r.Kind, r.Value)) + "\n\n")
		height -= 2
	}
	if more := p.total - len(p.list); more > 0 {
		b.WriteString(fmt.Sprintf("The first %d of %d revocations; revocations ls over ssh lists them all.\n\n", len(p.list), p.total))
		height -= 2
	}
	rows := make([][]string, len(p.list))
	for i, r := range p.list {
		ca := "every CA"
		switch {
		case r.CAName != "":
			ca = r.CAName
		case r.CAFingerprint != "":
			ca = r.CAFingerprint + " (removed)"
		case r.Kind == "key" || r.Kind == "key_hash":
			ca = "-"
		}
		origin := r.Origin
		if r.Source != nil {
			origin = "krl " + shown(*r.Source)
		}
		rows[i] = []string{strconv.FormatInt(r.ID, 10), r.Kind, shown(r.Value), ca, origin, r.CreatedAt.String()}
	}
	b.WriteString(m.table([]string{"ID", "KIND", "VALUE", "CA", "ORIGIN", "CREATED"}, rows, &p.cursor, height))
	return b.String()
}
