package tui

import (
	"fmt"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/portico-sh/portico/services/admin/ops"
)

// principalsPage lists the principal map, maps a principal (new, or the selected one changed)
// and unmaps one after a y/n question. Its form is principals set's: principal, services, from,
// CA.
type principalsPage struct {
	editor[ops.PrincipalMapping]
}

var principalLabels = []string{"Principal: ", "Services:  ", "From:      ", "CA:        "}

func (*principalsPage) title() string { return "Principals" }

func (p *principalsPage) hints() string {
	return p.editor.hints("save", "unmap", "[a] map a principal  [e] change  [d] unmap")
}

func (p *principalsPage) load(m *Model) error {
	return p.fill(m.ops.ListPrincipals(m.ctx, m.grant))
}

func (p *principalsPage) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	if cmd, ok := p.editor.update(m, p, msg); ok {
		return cmd
	}
	switch msg.String() {
	case "a":
		p.openForm(m, nil)
	case "e", "enter":
		if mp, ok := p.selected(); ok {
			p.openForm(m, &mp)
		}
	}
	return nil
}

// openForm opens the form, filled in with mp when it changes one.
func (p *principalsPage) openForm(m *Model, mp *ops.PrincipalMapping) {
	f := newForm(m,
		[]string{"e.g. web-team, peter, buildserver", "e.g. pgs,tuns (admin: every service)", "empty: any address; e.g. 10.0.0.0/8,!10.0.0.1", "empty: any of the account's CAs"},
		[]int{128, 64, 1024, 64})
	if mp != nil {
		f.inputs[0].SetValue(mp.Principal)
		f.inputs[1].SetValue(strings.Join(mp.Services, ","))
		f.inputs[2].SetValue(strings.Join(mp.From, ","))
		f.inputs[3].SetValue(mp.CAName)
		f.focusOn(1)
	}
	p.form = f
}

// submit maps the principal of the form.
func (p *principalsPage) submit(m *Model) tea.Cmd {
	f := p.form
	req := ops.PrincipalRequest{Principal: f.value(0), Services: f.value(1), From: f.value(2), CA: f.value(3)}
	if !m.act() {
		return nil
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
	for i, have := range p.rows {
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

func (p *principalsPage) answer(m *Model, msg tea.KeyMsg) {
	name := shown(p.confirm.Principal)
	p.list.answer(m, p, msg.String(),
		func(mp ops.PrincipalMapping) error { return m.ops.RemovePrincipal(m.ctx, m.grant, mp.Principal) },
		fmt.Sprintf("Unmapped principal %s.", name), fmt.Sprintf("Kept principal %s.", name))
}

func (p *principalsPage) view(m *Model, height int) string {
	if p.form != nil {
		return p.form.view(m, "Map a principal",
			"Certificates from the account's CAs (or only from CA) that list the principal\n"+
				"get these services, when the client's address matches From. Roles change\n"+
				"here, without signing certificates again.\n",
			principalLabels)
	}
	if len(p.rows) == 0 {
		return "No principals mapped. Press a to map one: certificates listing it (a person,\n" +
			"a team, a machine) then get the services you choose."
	}
	var b strings.Builder
	height = p.question(m, &b, height, func(mp ops.PrincipalMapping) string {
		return fmt.Sprintf("Unmap principal %s? Certificates listing it lose %s. y/n", shown(mp.Principal), strings.Join(mp.Services, ","))
	})
	b.WriteString(p.table(m, []string{"PRINCIPAL", "SERVICES", "FROM", "CA"}, func(mp ops.PrincipalMapping) []string {
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
		return []string{shown(mp.Principal), strings.Join(mp.Services, ","), from, ca}
	}, height))
	return b.String()
}
