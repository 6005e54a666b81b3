package tui

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/services/admin/ops"
	"github.com/portico-sh/portico/services/admin/ops/opstest"
)

var ctx = context.Background()

// newModel returns the TUI of a connection with grant g and key, sized 120x40, without colours.
func newModel(t *testing.T, o *ops.Ops, g auth.Grant, key gossh.PublicKey) *Model {
	t.Helper()
	m := New(ctx, o, g, key, lipgloss.NewRenderer(io.Discard))
	m.minReload = 0 // each key loads at once; TestKeyFloodLoadsLittle tests the default
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	return m
}

// send delivers msg and returns the command Update gave back.
func send(m *Model, msg tea.Msg) tea.Cmd {
	_, cmd := m.Update(msg)
	return cmd
}

// typeKeys sends each character of s as a key press, as typing does.
func typeKeys(m *Model, s string) {
	for _, r := range s {
		send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
	}
}

func press(m *Model, k tea.KeyType) tea.Cmd { return send(m, tea.KeyMsg{Type: k}) }

// paste sends text as one bracketed paste.
func paste(m *Model, text string) {
	send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(text), Paste: true})
}

func wantView(t *testing.T, m *Model, parts ...string) {
	t.Helper()
	v := m.View()
	for _, l := range strings.Split(v, "\n") {
		if w := ansi.StringWidth(l); m.width > 0 && w > m.width {
			t.Errorf("line %q is %d wide in a %d-wide terminal", l, w, m.width)
		}
	}
	for _, p := range parts {
		if !strings.Contains(v, p) {
			t.Errorf("view lacks %q:\n%s", p, v)
		}
	}
}

func dontWantView(t *testing.T, m *Model, parts ...string) {
	t.Helper()
	v := m.View()
	for _, p := range parts {
		if strings.Contains(v, p) {
			t.Errorf("view has %q:\n%s", p, v)
		}
	}
}

// hasLine reports whether view has a line that is text, give or take spaces around it.
func hasLine(view, text string) bool {
	for _, l := range strings.Split(view, "\n") {
		if strings.TrimSpace(l) == text {
			return true
		}
	}
	return false
}

func isQuit(cmd tea.Cmd) bool {
	if cmd == nil {
		return false
	}
	_, ok := cmd().(tea.QuitMsg)
	return ok
}

func TestSignup(t *testing.T) {
	o, _ := opstest.New(t)
	opstest.Register(t, o, "alice", opstest.Key(t, 1))
	key := opstest.Key(t, 2)
	m := newModel(t, o, opstest.SignupGrant(key), key)
	var regranted []auth.Grant
	m.OnRegrant(func(g auth.Grant) { regranted = append(regranted, g) })
	wantView(t, m, "Sign up", "This key is not registered yet", "Account name: ")

	// Page keys are typed into the form, not taken as page switches or quitting.
	typeKeys(m, "q-1")
	press(m, tea.KeyEnter)
	wantView(t, m, "Sign up", `error: account name "q-1" may not contain a hyphen`)
	for range "q-1" {
		press(m, tea.KeyBackspace)
	}

	typeKeys(m, "alice")
	press(m, tea.KeyEnter)
	wantView(t, m, "Sign up", `error: account name "alice" is taken; choose another`)
	for range "alice" {
		press(m, tea.KeyBackspace)
	}

	typeKeys(m, "bob")
	press(m, tea.KeyEnter)
	wantView(t, m, "portico | bob", "Account", "Account name", "bob", "Login keys", "1",
		"Account bob created; this key is its first login key, named \"ed25519-")
	dontWantView(t, m, "Sign up", "error:")
	// The connection is told of its new grant (for live access), once.
	if len(regranted) != 1 || regranted[0].Account != "bob" || regranted[0].Method != auth.MethodKey {
		t.Errorf("grants the connection was told of: %+v, want bob's login key", regranted)
	}

	// The new grant manages the account at once.
	typeKeys(m, "2")
	wantView(t, m, "Keys", "ed25519-", "login")
	if !isQuit(send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})) {
		t.Error("q does not quit")
	}
}

func TestSignupCtrlC(t *testing.T) {
	o, _ := opstest.New(t)
	key := opstest.Key(t, 2)
	m := newModel(t, o, opstest.SignupGrant(key), key)
	if !isQuit(press(m, tea.KeyCtrlC)) {
		t.Error("ctrl+c does not quit the signup form")
	}
}

func TestPages(t *testing.T) {
	o, _ := opstest.New(t)
	g := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	m := newModel(t, o, g, opstest.Key(t, 1))
	wantView(t, m, "1 Account  2 Keys  3 Access log  4 Revocations  5 Principals  6 Help", "Account name", "alice", "Method", "login key",
		"Services", "admin, pgs, tuns, pipe", "Login keys", "Certificate authorities")

	titles := []string{"Account", "Keys", "Access log", "Revocations", "Principals", "Help"}
	for i := range titles {
		want := titles[(i+1)%len(titles)]
		press(m, tea.KeyTab)
		if got := m.pages[m.current].title(); got != want {
			t.Errorf("after %d tabs the page is %q, want %q", i+1, got, want)
		}
	}
	press(m, tea.KeyShiftTab)
	if got := m.pages[m.current].title(); got != "Help" {
		t.Errorf("shift+tab from Account goes to %q, want Help", got)
	}
	for i, title := range titles {
		typeKeys(m, string(rune('1'+i)))
		if got := m.pages[m.current].title(); got != title {
			t.Errorf("key %d shows %q, want %q", i+1, got, title)
		}
		if !hasLine(m.View(), title) {
			t.Errorf("page %q has no title line:\n%s", title, m.View())
		}
	}
	wantView(t, m, "ssh-keygen -s ~/.ssh/alice_ca", "HostName example.org", "Port 2222")
	if !isQuit(send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})) {
		t.Error("q does not quit")
	}
	if !isQuit(press(m, tea.KeyCtrlC)) {
		t.Error("ctrl+c does not quit")
	}
}

func TestKeysArrivingTogether(t *testing.T) {
	o, _ := opstest.New(t)
	g := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	m := newModel(t, o, g, opstest.Key(t, 1))
	send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("4a42")})
	press(m, tea.KeyEnter)
	wantView(t, m, "Revocations", "Added revocation 1 (serial 42).")
}

func TestAccountOverviewOfACertificate(t *testing.T) {
	o, _ := opstest.New(t)
	alice := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	ca := opstest.AddCA(t, o, alice, opstest.Signer(t, 11), opstest.Line(opstest.Key(t, 11), "team-ca"), "")
	until := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	bob := auth.Grant{
		AccountID: alice.AccountID, Account: "alice", Method: auth.MethodCert, Identity: "bob@laptop",
		Service: auth.Admin, Services: append([]auth.Service(nil), auth.Services...),
		KeyFingerprint: auth.Fingerprint(opstest.Key(t, 30)),
		Cert: &auth.CertFacts{KeyID: "bob@laptop", Serial: 9, CAName: "team-ca", CAFingerprint: ca.Fingerprint,
			Principals: []string{"admin"}, ValidBefore: &until},
	}
	m := newModel(t, o, bob, opstest.Key(t, 30))
	wantView(t, m, "Method", "certificate", "Identity", "bob@laptop", "Serial", "9",
		"Signed by CA", "team-ca "+ca.Fingerprint, "Valid until", "2027-01-02T03:04:05Z", "Certificate authorities  1")
}

func TestAddCAByPaste(t *testing.T) {
	o, _ := opstest.New(t)
	g := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	m := newModel(t, o, g, opstest.Key(t, 1))
	typeKeys(m, "2")
	wantView(t, m, "Keys", "[a] add login key  [c] add CA key  [enter] how to claim  [d] remove")

	// A bad paste leaves the form open with the reason in the status line.
	typeKeys(m, "c")
	wantView(t, m, "Add CA key", "Key:  > ", "Name: > ")
	paste(m, "no-pty "+opstest.Line(opstest.Key(t, 11), "team-ca")+"\n")
	press(m, tea.KeyEnter)
	wantView(t, m, "Add CA key", `error: unknown option "no-pty"`)
	press(m, tea.KeyEsc)
	dontWantView(t, m, "Add CA key")

	// Page keys typed in the form stay in it. The CA waits to be claimed: the page shows the
	// ssh-keygen command with its code, and takes the certificate.
	typeKeys(m, "c")
	paste(m, `principals="pgs,tuns" `+opstest.Line(opstest.Key(t, 11), "team-ca")+"\n")
	press(m, tea.KeyTab)
	typeKeys(m, "q1ca")
	press(m, tea.KeyEnter)
	fp := auth.Fingerprint(opstest.Key(t, 11))
	keys, err := o.ListKeys(ctx, g)
	if err != nil || len(keys) != 2 || !keys[1].IsCA() || keys[1].Name != "q1ca" || !keys[1].IsPending() {
		t.Fatalf("keys after adding a CA = %+v, %v", keys, err)
	}
	code := keys[1].Claim.Code
	wantView(t, m, `Added certificate authority "q1ca" (`+fp+"), pending.", `Claim certificate authority "q1ca"`,
		"  ssh-keygen -s CA_KEY -I portico-claim -n "+code+" -V +15m SOME_KEY.pub", "Certificate: > ",
		"[enter] claim with the certificate  [esc] later")
	dontWantView(t, m, "Add CA key", "error:")

	// A certificate for another code is refused; the right one activates the CA.
	paste(m, opstest.ClaimCertificate(t, opstest.Signer(t, 11), "7KQ2M9XA"))
	press(m, tea.KeyEnter)
	wantView(t, m, `error: this certificate does not claim certificate authority "q1ca"`, "Certificate: > ")
	for range 2000 {
		press(m, tea.KeyBackspace)
	}
	typeKeys(m, "q") // page keys go into the input: q does not quit
	press(m, tea.KeyBackspace)
	paste(m, opstest.ClaimCertificate(t, opstest.Signer(t, 11), code))
	press(m, tea.KeyEnter)
	wantView(t, m, `Claimed certificate authority "q1ca" (`+fp+"): it is active.", "q1ca", "active", `cert-authority,principals="pgs,tuns"`)
	dontWantView(t, m, "Certificate: >", "error:")

	// A login key pasted with the cert-authority option becomes a CA too; esc leaves it pending.
	typeKeys(m, "a")
	wantView(t, m, "Add login key")
	paste(m, "cert-authority "+opstest.Line(opstest.Key(t, 12), "other-ca"))
	press(m, tea.KeyEnter)
	wantView(t, m, `Added certificate authority "other-ca"`, `Claim certificate authority "other-ca"`)
	press(m, tea.KeyEsc)
	wantView(t, m, "other-ca", "pending", "waits to be claimed until")

	// One without is a login key: the page shows its claim command, ready to paste.
	typeKeys(m, "a")
	typeKeys(m, opstest.Line(opstest.Key(t, 13), "desk"))
	press(m, tea.KeyEnter)
	keys, _ = o.ListKeys(ctx, g)
	wantView(t, m, `Added login key "desk"`, `Claim login key "desk"`,
		"  ssh -o IdentitiesOnly=yes -i ~/.ssh/id_ed25519 -p 2222 admin@example.org keys claim "+keys[3].Claim.Code, "[enter/esc] done")
	press(m, tea.KeyEnter)
	dontWantView(t, m, "Claim login key")
	// Enter on a pending key shows it again.
	press(m, tea.KeyEnter)
	wantView(t, m, `Claim login key "desk"`, keys[3].Claim.Code)
	press(m, tea.KeyEsc)
	typeKeys(m, "1")
	wantView(t, m, "Login keys               1", "Certificate authorities  1", "Waiting to be claimed    2")
}

// TestClaimPrompt: a pending key with a terminal gets the claim prompt, whatever the signups
// setting; the right code makes it a login key and opens the account.
func TestClaimPrompt(t *testing.T) {
	o, store := opstest.New(t)
	alice := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	desk := opstest.Key(t, 10)
	added, err := o.AddKey(ctx, alice, opstest.Line(desk, "desk"), "", false)
	if err != nil {
		t.Fatal(err)
	}
	g, err := auth.New(store, auth.Options{}).Authenticate(ctx, auth.Attempt{Key: desk, Service: auth.Admin, RemoteAddr: opstest.Addr})
	if err != nil {
		t.Fatal(err)
	}
	m := newModel(t, o, g, desk)
	var regranted []auth.Grant
	m.OnRegrant(func(g auth.Grant) { regranted = append(regranted, g) })
	wantView(t, m, "Claim this key", "waits to be claimed", "Claim code:   > ", "[enter] claim")
	dontWantView(t, m, "Account name")

	typeKeys(m, "q1WRONG2")
	press(m, tea.KeyEnter)
	wantView(t, m, "error: ")
	for range 8 {
		press(m, tea.KeyBackspace)
	}
	typeKeys(m, strings.ToLower(added.Claim.Code))
	press(m, tea.KeyEnter)
	wantView(t, m, "portico | alice", "Account name", "alice", `Key "desk" is now a login key of account alice.`)
	if len(regranted) != 1 || regranted[0].Account != "alice" || regranted[0].Identity != "desk" {
		t.Errorf("grants the connection was told of: %+v, want alice's key desk", regranted)
	}
	typeKeys(m, "2")
	wantView(t, m, "desk", "active")
}

func TestClaimPromptWithSignupsOpen(t *testing.T) {
	o, store := opstest.New(t)
	mallory := opstest.Register(t, o, "mallory", opstest.Key(t, 1))
	carol := opstest.Key(t, 10)
	if _, err := o.AddKey(ctx, mallory, opstest.Line(carol, "carol"), "", false); err != nil {
		t.Fatal(err)
	}
	// Carol's key was squatted: she is offered the claim and the sign-up, and signs up.
	g, err := auth.New(store, auth.Options{SignupsOpen: true}).Authenticate(ctx, auth.Attempt{Key: carol, Service: auth.Admin, RemoteAddr: opstest.Addr})
	if err != nil {
		t.Fatal(err)
	}
	m := newModel(t, o, g, carol)
	wantView(t, m, "Claim code:   > ", "Or, to sign up instead", "Account name: >")
	press(m, tea.KeyTab)
	typeKeys(m, "carol")
	press(m, tea.KeyEnter)
	wantView(t, m, "portico | carol", "Account carol created")
	if keys, _ := o.ListKeys(ctx, mallory); len(keys) != 1 {
		t.Errorf("mallory's squat is still there: %+v", keys)
	}
}

func TestDeleteAccount(t *testing.T) {
	o, store := opstest.New(t)
	g := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	m := newModel(t, o, g, opstest.Key(t, 1))
	wantView(t, m, "[D] delete account")
	typeKeys(m, "D")
	wantView(t, m, "Delete account alice for good?", "Account name: > ", "[enter] delete for good  [esc] keep")
	press(m, tea.KeyEsc)
	wantView(t, m, "Kept the account.")
	typeKeys(m, "D")
	typeKeys(m, "bob2q") // page keys go into the input
	press(m, tea.KeyEnter)
	wantView(t, m, "error: type the account's name, alice, to delete it")
	if _, err := store.AccountByName(ctx, "alice"); err != nil {
		t.Fatalf("alice after a wrong name: %v", err)
	}
	for range 5 {
		press(m, tea.KeyBackspace)
	}
	typeKeys(m, "alice")
	press(m, tea.KeyEnter)
	wantView(t, m, "Account deleted", "Account alice was deleted", "cannot be registered again until", "[any key] quit")
	if _, err := store.AccountByName(ctx, "alice"); err == nil {
		t.Fatal("alice still exists")
	}
	if !isQuit(typeKeysCmd(m, "2")) {
		t.Error("a key does not quit after the deletion")
	}
}

// typeKeysCmd types s and returns the last command.
func typeKeysCmd(m *Model, s string) tea.Cmd {
	var cmd tea.Cmd
	for _, r := range s {
		cmd = send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
	}
	return cmd
}

func TestRemoveKeyWithConfirmation(t *testing.T) {
	o, _ := opstest.New(t)
	g := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	if _, err := o.AddKey(ctx, g, opstest.Line(opstest.Key(t, 10), "laptop"), "", false); err != nil {
		t.Fatal(err)
	}
	m := newModel(t, o, g, opstest.Key(t, 1))
	typeKeys(m, "2")
	press(m, tea.KeyDown)
	typeKeys(m, "d")
	wantView(t, m, `Remove login key "laptop"? y/n`, "[y] remove  [n] keep")

	typeKeys(m, "n")
	wantView(t, m, `Kept login key "laptop".`, "laptop")
	dontWantView(t, m, "? y/n")

	typeKeys(m, "d")
	typeKeys(m, "2") // neither y nor n: the question stays
	wantView(t, m, "? y/n")
	typeKeys(m, "y")
	wantView(t, m, `Removed login key "laptop".`)
	dontWantView(t, m, "? y/n", "laptop  ")
	if keys, _ := o.ListKeys(ctx, g); len(keys) != 1 {
		t.Errorf("keys after removal: %+v", keys)
	}

	// The last login key stays, with the reason shown.
	typeKeys(m, "dy")
	wantView(t, m, "is the account's last login key and cannot be removed")
	if keys, _ := o.ListKeys(ctx, g); len(keys) != 1 {
		t.Errorf("the last login key went: %+v", keys)
	}
}

func TestLogFilter(t *testing.T) {
	o, store := opstest.New(t)
	g := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for i, e := range []db.AccessEntry{
		{Service: "admin", Method: "key", Identity: "first-admin", Outcome: "allowed"},
		{Service: "pgs", Method: "cert", Identity: "bob@pgs", Outcome: "allowed"},
		{Service: "tuns", Method: "cert", Identity: "carol@tuns", Outcome: "denied", Reason: "certificate expired"},
		{Service: "admin", Method: "key", Identity: "second-admin", Outcome: "allowed"},
	} {
		e.Time, e.AccountID, e.Account = at.Add(time.Duration(i)*time.Minute), g.AccountID, "alice"
		if err := store.AppendAccess(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	m := newModel(t, o, g, opstest.Key(t, 1))
	typeKeys(m, "3")
	wantView(t, m, "Access log", "Service: all", "TIME", "2026-11-01T12:03:00Z", "bob@pgs", "carol@tuns", "certificate expired")
	v := m.View()
	if strings.Index(v, "second-admin") > strings.Index(v, "first-admin") {
		t.Errorf("log is not newest first:\n%s", v)
	}

	steps := []struct {
		service string
		want    []string
		notWant []string
	}{
		{"admin", []string{"first-admin", "second-admin"}, []string{"bob@pgs", "carol@tuns"}},
		{"pgs", []string{"bob@pgs"}, []string{"first-admin", "carol@tuns"}},
		{"tuns", []string{"carol@tuns"}, []string{"bob@pgs"}},
		{"pipe", []string{"No access log entries."}, []string{"bob@pgs"}},
		{"all", []string{"first-admin", "bob@pgs", "carol@tuns"}, nil},
	}
	for _, s := range steps {
		typeKeys(m, "s")
		wantView(t, m, append([]string{"Service: " + s.service}, s.want...)...)
		dontWantView(t, m, s.notWant...)
	}
}

func TestRevocations(t *testing.T) {
	o, _ := opstest.New(t)
	g := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	opstest.AddCA(t, o, g, opstest.Signer(t, 11), opstest.Line(opstest.Key(t, 11), "team-ca"), "")
	m := newModel(t, o, g, opstest.Key(t, 1))
	typeKeys(m, "4")
	wantView(t, m, "Revocations", "No revocations.")

	typeKeys(m, "a")
	wantView(t, m, "Add revocation", "Serial:", "CA:", "Key ID:", "Key fingerprint:")
	typeKeys(m, "x")
	press(m, tea.KeyEnter)
	wantView(t, m, `error: serial "x" is not a decimal number`)
	press(m, tea.KeyBackspace)
	typeKeys(m, "42")
	press(m, tea.KeyTab)
	typeKeys(m, "nope")
	press(m, tea.KeyEnter)
	wantView(t, m, `error: no certificate authority named "nope"`)
	for range "nope" {
		press(m, tea.KeyBackspace)
	}
	typeKeys(m, "team-ca")
	press(m, tea.KeyEnter)
	wantView(t, m, "Added revocation 1 (serial 42).", "serial", "42", "team-ca", "revoke")

	typeKeys(m, "a")
	press(m, tea.KeyTab)
	press(m, tea.KeyTab)
	typeKeys(m, "bob@laptop")
	press(m, tea.KeyEnter)
	wantView(t, m, "Added revocation 2 (key_id bob@laptop).", "every CA")

	typeKeys(m, "d")
	wantView(t, m, "Lift revocation 1 (serial 42)? y/n")
	typeKeys(m, "y")
	wantView(t, m, "Lifted revocation 1.")
	if list, _ := o.ListRevocations(ctx, g); len(list) != 1 || list[0].Kind != "key_id" {
		t.Errorf("revocations = %+v", list)
	}
}

func TestHelpScrolls(t *testing.T) {
	o, _ := opstest.New(t)
	g := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	m := newModel(t, o, g, opstest.Key(t, 1))
	send(m, tea.WindowSizeMsg{Width: 80, Height: 20})
	typeKeys(m, "6")
	wantView(t, m, "Help", "Certificates: sign your teammates' keys")
	dontWantView(t, m, "CertificateFile")
	for range 100 {
		press(m, tea.KeyDown)
	}
	wantView(t, m, "revoke --key")
	dontWantView(t, m, "Certificates: sign your teammates' keys")
	if lines := strings.Count(m.View(), "\n") + 1; lines > 20 {
		t.Errorf("view is %d lines high in a 20-line terminal", lines)
	}

	// In a narrow terminal long commands wrap instead of being cut.
	send(m, tea.WindowSizeMsg{Width: 40, Height: 200})
	v := strings.ReplaceAll(m.View(), "\n", "")
	v = strings.Join(strings.Fields(v), " ")
	for _, want := range []string{"revoke --key-id bob@laptop", "keys add --ca < ~/.ssh/alice_ca.pub"} {
		if !strings.Contains(v, want) {
			t.Errorf("narrow help page lacks %q:\n%s", want, m.View())
		}
	}
}

// TestLongInputIntoKeyForm: the key form takes a bounded line, and keys arriving many to a
// message go into it a message at a time. A text input's update costs time in the length of
// its text, so an unbounded line fed one key per update took hours of CPU for a megabyte
// (10 s for 20 kB); this input, 200 kB in 256-key messages as a terminal sends them, is
// taken at once.
func TestLongInputIntoKeyForm(t *testing.T) {
	o, _ := opstest.New(t)
	g := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	m := newModel(t, o, g, opstest.Key(t, 1))
	typeKeys(m, "2a")
	wantView(t, m, "Add login key")
	long := []rune(strings.Repeat("A", 200<<10))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < len(long); i += 256 {
			send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: long[i:min(i+256, len(long))]})
		}
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("typing 200 kB into the key form took more than 15s")
	}
	if n := len(m.pages[1].(*keysPage).form.inputs[0].Value()); n != maxKeyLineRunes {
		t.Errorf("key line of %d characters, want it cut at %d", n, maxKeyLineRunes)
	}
}

// TestKeyFloodLoadsLittle: page keys sent faster than anyone types (20 kB of "3", or of "12"
// alternating, in the 256-key messages a terminal sends) query the store at most once per
// minReload, so they cost little CPU. The model once loaded on every key: 20 kB of "3" cost
// 10 s of CPU through the gateway.
func TestKeyFloodLoadsLittle(t *testing.T) {
	_, store := opstest.New(t)
	counted := &countingStore{Store: store}
	o := ops.New(counted, opstest.Config)
	g := opstest.Register(t, o, "alice", opstest.Key(t, 1))
	for _, keys := range []string{"3", "12", "s", "r"} {
		t.Run(keys, func(t *testing.T) {
			m := New(ctx, o, g, opstest.Key(t, 1), lipgloss.NewRenderer(io.Discard))
			m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
			typeKeys(m, "312") // every page the flood visits has loaded once
			typeKeys(m, "3")   // the access log, where s and r reload
			counted.lists.Store(0)
			flood := []rune(strings.Repeat(keys, (20<<10)/len(keys)))
			before := cpuTime(t)
			for i := 0; i < len(flood); i += 256 {
				send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: flood[i:min(i+256, len(flood))]})
			}
			if m.reloadDue {
				send(m, reloadMsg{}) // as the tick would
			}
			t.Logf("20 kB of %q: %d queries, %v of CPU", keys, counted.lists.Load(), cpuTime(t)-before)
			if n := counted.lists.Load(); n > 2 {
				t.Errorf("20 kB of %q made %d queries, want at most 2", keys, n)
			}
			if m.reloadDue {
				t.Error("the deferred load is still due after it ran")
			}
		})
	}
}

// TestKeyFloodChangesLittle: keys that change something, sent faster than anyone types (a
// run of "dy" on the keys page: remove, yes; Enter on the sign-up form), reach the store
// actBurst times at once, then at most once per minReload. Once every "y" removed a key (or tried to) and reloaded the list:
// 24 kB of "dy" cost 8 s of CPU through the gateway, and 20 kB of Enter on the sign-up form,
// open to any key, 8 s in sign-up attempts.
func TestKeyFloodChangesLittle(t *testing.T) {
	_, store := opstest.New(t)
	counted := &countingStore{Store: store}
	o := ops.New(counted, opstest.Config)
	alice := opstest.Key(t, 1)
	g := opstest.Register(t, o, "alice", alice)
	for _, tt := range []struct {
		name  string
		grant auth.Grant
		key   gossh.PublicKey
		setup string // typed first, once the account maps 60 principals
		flood []tea.KeyMsg
	}{
		{"remove a key, yes", g, alice, "2", []tea.KeyMsg{{Type: tea.KeyRunes, Runes: []rune(strings.Repeat("dy", 128))}}},
		{"sign up", opstest.SignupGrant(opstest.Key(t, 2)), opstest.Key(t, 2), "alice", []tea.KeyMsg{{Type: tea.KeyEnter}}},
		// the principals page: Enter opens the selected mapping's form, the next saves it
		{"map a principal", g, alice, "5", []tea.KeyMsg{{Type: tea.KeyEnter}}},
		{"unmap a principal, yes", g, alice, "5", []tea.KeyMsg{{Type: tea.KeyRunes, Runes: []rune(strings.Repeat("dy", 128))}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for i := range 60 {
				if _, _, err := o.SetPrincipal(ctx, g, ops.PrincipalRequest{Principal: fmt.Sprintf("team-%02d", i), Services: "pgs"}); err != nil {
					t.Fatal(err)
				}
			}
			m := New(ctx, o, tt.grant, tt.key, lipgloss.NewRenderer(io.Discard))
			m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
			typeKeys(m, tt.setup)
			counted.changes.Store(0)
			start := time.Now()
			for sent := 0; sent < 20<<10; {
				for _, k := range tt.flood {
					send(m, k)
					sent += max(1, len(k.Runes))
				}
			}
			most := actBurst + int64(time.Since(start)/m.minReload)
			t.Logf("20 kB of keys in %v: %d changes asked of the store", time.Since(start), counted.changes.Load())
			if n := counted.changes.Load(); n > most {
				t.Errorf("20 kB of keys made %d changes, want at most %d (one per %v)", n, most, m.minReload)
			}
			if !strings.Contains(m.View(), errTooFast.Error()) {
				t.Errorf("the keys past the first change were not told they came too fast:\n%s", m.View())
			}
		})
	}
}

// countingStore counts the queries that load pages, and the changes asked of the store.
type countingStore struct {
	db.Store
	lists   atomic.Int64
	changes atomic.Int64
}

func (s *countingStore) RemoveKey(ctx context.Context, accountID, id int64) error {
	s.changes.Add(1)
	return s.Store.RemoveKey(ctx, accountID, id)
}

func (s *countingStore) SetPrincipalMapping(ctx context.Context, accountID int64, m db.NewPrincipalMapping) (db.PrincipalMapping, bool, error) {
	s.changes.Add(1)
	return s.Store.SetPrincipalMapping(ctx, accountID, m)
}

func (s *countingStore) RemovePrincipalMapping(ctx context.Context, accountID int64, principal string) error {
	s.changes.Add(1)
	return s.Store.RemovePrincipalMapping(ctx, accountID, principal)
}

func (s *countingStore) SignUp(ctx context.Context, name string, first db.NewKey, limit db.SignupLimit) (db.Account, db.Key, error) {
	s.changes.Add(1)
	return s.Store.SignUp(ctx, name, first, limit)
}

func (s *countingStore) ListKeys(ctx context.Context, accountID int64) ([]db.Key, error) {
	s.lists.Add(1)
	return s.Store.ListKeys(ctx, accountID)
}

func (s *countingStore) ListAccess(ctx context.Context, accountID int64, service string, limit int) ([]db.AccessEntry, error) {
	s.lists.Add(1)
	return s.Store.ListAccess(ctx, accountID, service, limit)
}

func (s *countingStore) ListRevocations(ctx context.Context, accountID int64) ([]db.Revocation, error) {
	s.lists.Add(1)
	return s.Store.ListRevocations(ctx, accountID)
}

// cpuTime is the CPU time the process has used.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
