package tui

import (
	"crypto/rand"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/stripe/krl"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/services/admin/ops/opstest"
)

func TestPrincipalsPage(t *testing.T) {
	o, _ := opstest.New(t)
	g := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	opstest.AddCA(t, o, g, opstest.Signer(t, 11), opstest.Line(opstest.Key(t, 11), "team-ca"), "")
	m := newModel(t, o, g, opstest.Key(t, 1))
	typeKeys(m, "5")
	wantView(t, m, "Principals", "No principals mapped.", "[a] map a principal")

	typeKeys(m, "a")
	wantView(t, m, "Map a principal", "Principal:", "Services:", "From:", "CA:")
	typeKeys(m, "web-team")
	press(m, tea.KeyTab)
	typeKeys(m, "pgs,git")
	press(m, tea.KeyEnter)
	wantView(t, m, `error: services: "git" is not a service`)
	for range "git" {
		press(m, tea.KeyBackspace)
	}
	typeKeys(m, "tuns")
	press(m, tea.KeyTab)
	typeKeys(m, "10.0.0.0/8,!10.0.0.1")
	press(m, tea.KeyTab)
	typeKeys(m, "team-ca")
	press(m, tea.KeyEnter)
	wantView(t, m, "Mapped principal web-team: pgs,tuns.", "PRINCIPAL", "web-team", "pgs,tuns", "10.0.0.0/8,!10.0.0.1", "team-ca")

	// q and the digits go to the form, not to the pages.
	typeKeys(m, "a")
	typeKeys(m, "q1peter")
	press(m, tea.KeyTab)
	typeKeys(m, "admin")
	press(m, tea.KeyEnter)
	wantView(t, m, "Mapped principal q1peter: admin.", "any address", "any CA")

	// Change the selected one: the form comes filled in.
	typeKeys(m, "e")
	wantView(t, m, "Map a principal", "q1peter", "admin")
	for range "admin" {
		press(m, tea.KeyBackspace)
	}
	typeKeys(m, "pipe")
	press(m, tea.KeyEnter)
	wantView(t, m, "Changed principal q1peter: pipe.")
	list, err := o.ListPrincipals(ctx, g)
	if err != nil || len(list) != 2 || list[0].Principal != "q1peter" || list[0].Services[0] != "pipe" || list[1].CAName != "team-ca" {
		t.Errorf("the map after the TUI: %+v, %v", list, err)
	}

	typeKeys(m, "d")
	wantView(t, m, "Unmap principal q1peter? Certificates listing it lose pipe. y/n")
	typeKeys(m, "y")
	wantView(t, m, "Unmapped principal q1peter.")
	dontWantView(t, m, "q1peter  ")
	typeKeys(m, "d")
	typeKeys(m, "n")
	wantView(t, m, "Kept principal web-team.")

	// A connection that may not manage the account sees the refusal, not the map.
	pgsOnly := g
	pgsOnly.Services = []auth.Service{auth.PGS}
	m = newModel(t, o, pgsOnly, opstest.Key(t, 1))
	typeKeys(m, "5")
	wantView(t, m, "error: this connection does not grant admin")
	dontWantView(t, m, "web-team")
}

func TestRevocationsPageKRL(t *testing.T) {
	o, _ := opstest.New(t)
	g := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	team := opstest.Signer(t, 11)
	opstest.AddCA(t, o, g, team, opstest.Line(team.PublicKey(), "team-ca"), "")
	serials := make(krl.KRLCertificateSerialList, 600)
	for i := range serials {
		serials[i] = uint64(2*i + 1) // not a run: 600 serials
	}
	ids := krl.KRLCertificateKeyID{"carol\x1b[31m"}
	data, err := (&krl.KRL{Sections: []krl.KRLSection{&krl.KRLCertificateSection{CA: team.PublicKey(),
		Sections: []krl.KRLCertificateSubsection{&ids, &serials}}}}).Marshal(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.ImportKRL(ctx, g, data, ""); err != nil {
		t.Fatal(err)
	}
	m := newModel(t, o, g, opstest.Key(t, 1))
	typeKeys(m, "4")
	wantView(t, m, "The first 500 of 601 revocations; revocations ls over ssh lists them all.", "ORIGIN", "krl", "team-ca")
	if p := m.pages[m.current].(*revocationsPage); len(p.rows) != maxShownRevocations {
		t.Errorf("the page holds %d revocations", len(p.rows))
	}
	typeKeys(m, "g")
	wantView(t, m, "carol?[31m")
	if v := m.View(); strings.Contains(v, "carol\x1b") {
		t.Errorf("a key ID from a KRL reaches the terminal raw:\n%q", v)
	}
}

func TestAccountPageForceCommand(t *testing.T) {
	o, _ := opstest.New(t)
	g := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	g.ForceCommand = "pipe pub deploys\x1b[2J"
	m := newModel(t, o, g, opstest.Key(t, 1))
	wantView(t, m, "Force command", "pipe pub deploys?[2J")
}
