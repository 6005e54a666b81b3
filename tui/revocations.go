package tui

import (
	"fmt"
	"strconv"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/portico-sh/portico/services/admin/ops"
)

// revocationsPage lists revocations, adds one and lifts one after a y/n question.
// Its form adds a revocation: serial, CA, key ID, key fingerprint; one of serial, key ID or
// key is filled.
type revocationsPage struct {
	editor[ops.Revocation]
	total int // the account's revocations: the page shows the first maxShownRevocations
}

var revocationLabels = []string{"Serial:          ", "CA:              ", "Key ID:          ", "Key fingerprint: "}

func (*revocationsPage) title() string { return "Revocations" }

func (p *revocationsPage) hints() string {
	return p.editor.hints("revoke", "lift", "[a] add  [d] lift")
}

// maxShownRevocations bounds what the page holds: an account may have tens of thousands (an
// imported KRL), which revocations ls lists over ssh.
const maxShownRevocations = 500

func (p *revocationsPage) load(m *Model) error {
	rows, total, err := m.ops.RevocationsPage(m.ctx, m.grant, 0, maxShownRevocations)
	if err != nil {
		return err
	}
	p.set(rows)
	p.total = total
	return nil
}

func (p *revocationsPage) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	if cmd, ok := p.editor.update(m, p, msg); ok {
		return cmd
	}
	if msg.String() == "a" {
		p.form = newForm(m,
			[]string{"a number, e.g. 42", "a CA's name; empty: every CA", "e.g. bob@laptop", "SHA256:..."},
			[]int{20, 64, 128, 64}) // a uint64, a key name or fingerprint, a key ID, a fingerprint
	}
	return nil
}

// submit adds the revocation of the form.
func (p *revocationsPage) submit(m *Model) tea.Cmd {
	req, err := revokeRequest(p.form)
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

// revokeRequest is the request the revocation form f asks for.
func revokeRequest(f *form) (ops.RevokeRequest, error) {
	req := ops.RevokeRequest{CA: f.value(1), KeyID: f.value(2), Key: f.value(3)}
	if s := f.value(0); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return req, fmt.Errorf("serial %q is not a decimal number", s)
		}
		req.Serial = &n
	}
	return req, nil
}

func (p *revocationsPage) answer(m *Model, msg tea.KeyMsg) {
	id := p.confirm.ID
	p.list.answer(m, p, msg.String(),
		func(r ops.Revocation) error { return m.ops.RemoveRevocation(m.ctx, m.grant, r.ID) },
		fmt.Sprintf("Lifted revocation %d.", id), fmt.Sprintf("Kept revocation %d.", id))
}

func (p *revocationsPage) view(m *Model, height int) string {
	if p.form != nil {
		return p.form.view(m, "Add revocation",
			"Fill in one of: a serial (with a CA, or for every CA), a certificate\n"+
				"key ID, or a certificate key's fingerprint. It refuses new connections\n"+
				"at once.\n",
			revocationLabels)
	}
	if len(p.rows) == 0 {
		return "No revocations."
	}
	var b strings.Builder
	height = p.question(m, &b, height, func(r ops.Revocation) string {
		return fmt.Sprintf("Lift revocation %d (%s %s)? y/n", r.ID, r.Kind, r.Value)
	})
	if more := p.total - len(p.rows); more > 0 {
		b.WriteString(fmt.Sprintf("The first %d of %d revocations; revocations ls over ssh lists them all.\n\n", len(p.rows), p.total))
		height -= 2
	}
	b.WriteString(p.table(m, []string{"ID", "KIND", "VALUE", "CA", "ORIGIN", "CREATED"}, func(r ops.Revocation) []string {
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
		return []string{strconv.FormatInt(r.ID, 10), r.Kind, shown(r.Value), ca, origin, r.CreatedAt.String()}
	}, height))
	return b.String()
}
