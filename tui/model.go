package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/services/admin/ops"
)

// page is one page of the TUI.
type page interface {
	title() string
	// load refreshes the page's data from the operations.
	load(m *Model) error
	// update handles a key the model did not take for itself.
	update(m *Model, msg tea.KeyMsg) tea.Cmd
	// view renders the page's content in at most height lines (0: no limit).
	view(m *Model, height int) string
	// hints names the page's keys for the footer.
	hints() string
	// capturing reports whether a form or question has the keyboard, so that tab, the
	// digits and q go to it instead of switching pages or quitting.
	capturing() bool
}

// Model is the admin TUI of one session: the signup form for an unregistered key, else the pages.
type Model struct {
	ctx   context.Context
	ops   *ops.Ops
	grant auth.Grant
	key   gossh.PublicKey
	st    styles

	width, height int

	signup  *signupPage // set while an unregistered key signs up
	pages   []page
	current int

	status    string
	statusErr bool

	loaded    []bool        // whether each page has loaded once
	loadedAt  time.Time     // when a page last loaded on a key press
	minReload time.Duration // the shortest time between two such loads, and between two changes
	reloadDue bool          // a deferred load is on its way (reloadMsg)
	acts      float64       // changes keys may make now (see act)
	actsAt    time.Time     // when acts was last topped up

	gone string // set once the account is deleted: all there is left to show

	sites Sites // the Sites page's operations, when the server runs pgs

	regranted func(auth.Grant) // told of a grant the connection gets in the TUI (OnRegrant)
}

// OnRegrant has f told when the connection gets a new grant in the TUI (a sign-up or a claim
// makes the key an account's login key), so that the connection's access ends when that
// grant's grounds do.
func (m *Model) OnRegrant(f func(auth.Grant)) { m.regranted = f }

// regrant makes g the grant of the TUI, and tells OnRegrant's function.
func (m *Model) regrant(g auth.Grant) {
	m.grant = g
	if m.regranted != nil {
		m.regranted(g)
	}
}

// defaultMinReload is the shortest time between two loads that key presses cause (switching
// pages, refreshing, filtering): each load queries the store, and keys arrive faster than this
// only when pasted or sent by a program (20 kB of "3" once cost 10 s of CPU in queries).
const defaultMinReload = 250 * time.Millisecond

// reloadMsg asks for the deferred load of the current page.
type reloadMsg struct{}

// New returns the TUI for a connection with grant g that authenticated with key. ctx bounds
// the operations; r renders the styles for the session's terminal.
func New(ctx context.Context, o *ops.Ops, g auth.Grant, key gossh.PublicKey, r *lipgloss.Renderer, opts ...Option) *Model {
	m := &Model{
		ctx:   ctx,
		ops:   o,
		grant: g,
		key:   key,
		st:    newStyles(r),
		pages: []page{&accountPage{}, &keysPage{}, &logsPage{}, &revocationsPage{}, &principalsPage{}, &helpPage{}},

		minReload: defaultMinReload,
	}
	for _, o := range opts {
		o(m)
	}
	m.loaded = make([]bool, len(m.pages))
	if g.IsSignup() {
		m.signup = newSignupPage(g)
	} else {
		m.show(0)
	}
	return m
}

// Init implements tea.Model.
func (m *Model) Init() tea.Cmd { return nil }

// Update implements tea.Model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		return m, nil
	case reloadMsg:
		m.reloadDue = false
		m.load()
		return m, nil
	case tea.KeyMsg:
		if msg.Type == tea.KeyCtrlC || m.gone != "" {
			return m, tea.Quit
		}
		if msg.Type == tea.KeyRunes && !msg.Paste && len(msg.Runes) > 1 {
			// Keys typed fast (or sent by tmux) can arrive as one message: take them one by
			// one, until a text input has the keyboard; it takes the rest in one piece (one
			// update per key would cost time in the length of its text, per key).
			cmds := make([]tea.Cmd, 0, len(msg.Runes))
			for i, r := range msg.Runes {
				if m.typing() {
					cmds = append(cmds, m.input(tea.KeyMsg{Type: tea.KeyRunes, Runes: msg.Runes[i:], Alt: msg.Alt}))
					break
				}
				_, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: msg.Alt})
				cmds = append(cmds, cmd)
			}
			return m, tea.Batch(cmds...)
		}
		if m.typing() {
			return m, m.input(msg)
		}
		m.status, m.statusErr = "", false
		p := m.pages[m.current]
		if !p.capturing() {
			switch s := msg.String(); s {
			case "q":
				return m, tea.Quit
			case "tab", "right":
				return m, m.show((m.current + 1) % len(m.pages))
			case "shift+tab", "left":
				return m, m.show((m.current + len(m.pages) - 1) % len(m.pages))
			default:
				if len(s) == 1 && s[0] >= '1' && int(s[0]-'1') < len(m.pages) {
					return m, m.show(int(s[0] - '1'))
				}
			}
		}
		return m, p.update(m, msg)
	}
	return m, nil
}

// input hands a key to the signup form or to the page whose form has the keyboard.
func (m *Model) input(msg tea.KeyMsg) tea.Cmd {
	m.status, m.statusErr = "", false
	if m.signup != nil {
		return m.signup.update(m, msg)
	}
	return m.pages[m.current].update(m, msg)
}

// typing reports whether a text input has the keyboard: the signup form, or a page's form.
func (m *Model) typing() bool {
	if m.signup != nil {
		return true
	}
	if p, ok := m.pages[m.current].(interface{ typing() bool }); ok {
		return p.typing()
	}
	return false
}

// show switches to page i and loads its data: at once the first time, else through reload.
func (m *Model) show(i int) tea.Cmd {
	m.current = i
	if !m.loaded[i] {
		m.load()
		return nil
	}
	return m.reload()
}

// reload loads the current page now, or, if a key press loaded one less than minReload ago,
// once that time has passed; meanwhile the page shows what it last loaded. However fast keys
// come, the store sees at most one query per minReload.
func (m *Model) reload() tea.Cmd {
	wait := m.minReload - time.Since(m.loadedAt)
	if wait <= 0 {
		m.load()
		return nil
	}
	if m.reloadDue {
		return nil
	}
	m.reloadDue = true
	return tea.Tick(wait, func(time.Time) tea.Msg { return reloadMsg{} })
}

// errTooFast refuses a change asked for past actBurst within a few minReloads.
var errTooFast = errors.New("too fast: wait a moment, then press the key again")

// actBurst is how many changes keys may make at once; then one per minReload.
const actBurst = 4

// act reports whether a key may change something now (sign up, claim, add or remove a key or
// a revocation, delete the account): actBurst at once, then one per minReload, however fast
// keys come, as for loads. Otherwise the status line says so and nothing changes; the key can
// be pressed again. Each change queries the store and reloads a page: a run of "dy" on the
// keys page (remove? yes) once cost a removal and a query per pair, 24 kB 8 s of CPU, and
// Enter on the sign-up form a sign-up attempt per key.
func (m *Model) act() bool {
	if m.minReload <= 0 {
		return true
	}
	now := time.Now()
	if m.actsAt.IsZero() {
		m.acts = actBurst
	} else {
		m.acts = min(actBurst, m.acts+float64(now.Sub(m.actsAt))/float64(m.minReload))
	}
	m.actsAt = now
	if m.acts < 1 {
		m.fail(errTooFast)
		return false
	}
	m.acts--
	return true
}

// load loads the current page's data.
func (m *Model) load() {
	m.loadedAt = time.Now()
	if err := m.pages[m.current].load(m); err != nil {
		m.fail(err)
		return
	}
	m.loaded[m.current] = true
}

// fail puts err in the status line.
func (m *Model) fail(err error) {
	var oe *ops.Error
	if errors.As(err, &oe) {
		m.status = oe.Message
	} else {
		m.status = err.Error()
	}
	m.statusErr = true
}

// inform puts a message in the status line.
func (m *Model) inform(msg string) { m.status, m.statusErr = msg, false }

// inputWidth is how wide text inputs are.
func (m *Model) inputWidth() int {
	if m.width == 0 {
		return 60
	}
	return max(20, m.width-20)
}

// chromeLines is how many lines the header, titles, footer and status take.
const chromeLines = 7

// View implements tea.Model.
func (m *Model) View() string {
	var b strings.Builder
	var title, body, hints string
	height := 0
	if m.height > 0 {
		height = max(3, m.height-chromeLines)
	}
	if m.gone != "" {
		b.WriteString(m.st.brand.Render("portico"))
		title, body, hints = "Account deleted", m.gone, "[any key] quit"
	} else if m.signup != nil {
		b.WriteString(m.st.brand.Render("portico"))
		title, body, hints = m.signup.title(), m.signup.view(m), m.signup.hints()
	} else {
		b.WriteString(m.st.brand.Render("portico | " + m.grant.Account))
		b.WriteString("  ")
		for i, p := range m.pages {
			tab := string(rune('1'+i)) + " " + p.title()
			if i == m.current {
				b.WriteString(m.st.activeTab.Render(tab))
			} else {
				b.WriteString(m.st.tab.Render(tab))
			}
			b.WriteString("  ")
		}
		p := m.pages[m.current]
		title, body, hints = p.title(), p.view(m, height), p.hints()
		if !p.capturing() {
			hints = strings.TrimPrefix(hints+fmt.Sprintf("  [tab/1-%d] pages  [q] quit", len(m.pages)), "  ")
		}
	}
	b.WriteString("\n\n")
	b.WriteString(m.st.title.Render(title))
	b.WriteString("\n\n")
	b.WriteString(strings.TrimRight(body, "\n"))
	b.WriteString("\n\n")
	b.WriteString(m.st.hint.Render(hints))
	b.WriteString("\n")
	status := m.st.info
	if m.statusErr {
		status = m.st.err
	}
	if m.width > 0 {
		status = status.Width(m.width - 2)
	}
	switch {
	case m.status != "" && m.statusErr:
		b.WriteString(status.Render("error: " + m.status))
	case m.status != "":
		b.WriteString(status.Render(m.status))
	}
	return m.frame(b.String())
}

// frame indents every line by one column and cuts it to the terminal's width.
func (m *Model) frame(view string) string {
	lines := strings.Split(view, "\n")
	for i, l := range lines {
		l = " " + strings.TrimRight(l, " ")
		if m.width > 0 {
			l = ansi.Truncate(l, m.width, "")
		}
		lines[i] = l
	}
	return strings.Join(lines, "\n")
}
