package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/portico-sh/portico/services/admin/ops"
)

// principalsPage lists the principal map, maps a principal (new, or the selected one changed)
// and unmaps one after a y/n question.
type principalsPage struct {
	list    []ops.PrincipalMapping
	cursor  selection
	form    *principalForm
	confirm *ops.PrincipalMapping
}

// principalForm is the form of principals set: principal, services, from, CA.
type principalForm struct {
	inputs []textinput.Model
	focus  int
}

var principalLabels = []string{"Principal: ", "Services:  ", "From:      ", "CA:        "}

func (*principalsPage) title() string { return "Principals" }

func (p *principalsPage) hints() string {
	switch {
	case p.form != nil:
		return "[enter] save  [tab] next field  [esc] cancel"
	case p.confirm != nil:
		return "[y] unmap  [n] keep"
	}
	return "[a] map a principal  [e] change  [d] unmap"
}

func (p *principalsPage) capturing() bool { return p.form != nil || p.confirm != nil }

// typing reports whether the form's text inputs have the keyboard.
func (p *principalsPage) typing() bool { return p.form != nil }

func (p *principalsPage) load(m *Model) error {
	list, err := m.ops.ListPrincipals(m.ctx, m.grant)
	if err != nil {
		return err
	}
	p.list = list
	p.cursor.clamp(len(list))
	return nil
}

func (p *principalsPage) update(m *Model, msg tea.KeyMsg) tea.Cmd {
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
		p.openForm(m, nil)
	case "e", "enter":
		if len(p.list) > 0 {
			mp := p.list[p.cursor.pos]
			p.openForm(m, &mp)
		}
	case "d", "x", "delete":
		if len(p.list) > 0 {
			mp := p.list[p.cursor.pos]
			p.confirm = &mp
		}
	case "r":
		return m.reload()
	}
	return nil
}

// openForm opens the form, filled in with mp when it changes one.
func (p *principalsPage) openForm(m *Model, mp *ops.PrincipalMapping) {
	f := &principalForm{}
	placeholders := []string{"e.g. web-team, peter, buildserver", "e.g. pgs,tuns (admin: every service)", "empty: any address; e.g. 10.0.0.0/8,!10.0.0.1", "empty: any of the account's CAs"}
	limits := []int{128, 64, 1024, 64}
	for i, ph := range placeholders {
		in := newInput(ph, limits[i])
		in.Width = m.inputWidth()
		in.Blur()
		f.inputs = append(f.inputs, in)
	}
	if mp != nil {
		f.inputs[0].SetValue(mp.Principal)
		f.inputs[1].SetValue(strings.Join(mp.Services, ","))
		f.inputs[2].SetValue(strings.Join(mp.From, ","))
		f.inputs[3].SetValue(mp.CAName)
		f.focus = 1
	}
	f.inputs[f.focus].Focus()
	p.form = f
}

func (p *principalsPage) updateForm(m *Model, msg tea.KeyMsg) tea.Cmd {
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
		req := ops.PrincipalRequest{
			Principal: strings.TrimSpace(f.inputs[0].Value()),
			Services:  strings.TrimSpace(f.inputs[1].Value()),
			From:      strings.TrimSpace(f.inputs[2].Value()),
			CA:        strings.TrimSpace(f.inputs[3].Value()),
		}
		mp, created, err := m.ops.SetPrincipal(m.ctx, m.grant, req)
		if err != nil {
			m.fail(err)
			return nil
		}
		p.form = nil
		if err := p.load(m); err != nil {
			m.fail(err)
			return nil
		}
		for i, have := range p.list {
			if have.Principal == mp.Principal {
				p.cursor.pos = i
			}
		}
		verb := "Changed"
		if created {
			verb = "Mapped"
		}
		m.inform(fmt.Sprintf("%s principal %s: %s.", verb, shown(mp.Principal), strings.Join(mp.Services, ",")))
		return nil
	}
	var cmd tea.Cmd
	f.inputs[f.focus], cmd = f.inputs[f.focus].Update(msg)
	return cmd
}

func (p *principalsPage) answer(m *Model, msg tea.KeyMsg) {
	mp := *p.confirm
	switch msg.String() {
	case "y", "Y":
		p.confirm = nil
		if err := m.ops.RemovePrincipal(m.ctx, m.grant, mp.Principal); err != nil {
			m.fail(err)
			return
		}
		if err := p.load(m); err != nil {
			m.fail(err)
			return
		}
		m.inform(fmt.Sprintf("Unmapped principal %s.", shown(mp.Principal)))
	case "n", "N", "esc", "q":
		p.confirm = nil
		m.inform(fmt.Sprintf("Kept principal %s.", shown(mp.Principal)))
	}
}

func (p *principalsPage) view(m *Model, height int) string {
	if f := p.form; f != nil {
		var b strings.Builder
		b.WriteString(m.st.title.Render("Map a principal") + "\n\n")
		b.WriteString("Certificates from the account's CAs (or only from CA) that list the principal\n")
		b.WriteString("get these services, when the client's address matches From. Roles change\n")
		b.WriteString("here, without signing certificates again.\n\n")
		for i, in := range f.inputs {
			b.WriteString(m.st.label.Render(principalLabels[i]) + in.View() + "\n")
		}
		return b.String()
	}
	if len(p.list) == 0 {
		return "No principals mapped. Press a to map one: certificates listing it (a person,\n" +
			"a team, a machine) then get the services you choose."
	}
	var b strings.Builder
	if mp := p.confirm; mp != nil {
		b.WriteString(m.st.err.Render(fmt.Sprintf("Unmap principal %s? Certificates listing it lose %s. y/n", shown(mp.Principal), strings.Join(mp.Services, ","))) + "\n\n")
		height -= 2
	}
	rows := make([][]string, len(p.list))
	for i, mp := range p.list {
		from := "any address"
		if mp.From != nil {
			from = strings.Join(mp.From, ",")
		}
		ca := "any CA"
		switch {
		case mp.CAName != "":
			ca = mp.CAName
		case mp.CAFingerprint != "":
			ca = mp.CAFingerprint + " (removed)"
		}
		rows[i] = []string{shown(mp.Principal), strings.Join(mp.Services, ","), from, ca}
	}
	b.WriteString(m.table([]string{"PRINCIPAL", "SERVICES", "FROM", "CA"}, rows, &p.cursor, height))
	return b.String()
}
