package admin

import (
	"context"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/ssh"
	"github.com/muesli/termenv"
	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/services"
	"github.com/portico-sh/portico/tui"
)

// serveTUI runs the TUI on the session's terminal until the user quits or the connection
// ends, as wish's bubbletea middleware does: the session is the program's input and output,
// and window changes become tea.WindowSizeMsg.
func (a *service) serveTUI(s *services.Session, key gossh.PublicKey) int {
	_, windowChanges, _ := s.Pty()
	var pages []tui.Option
	if a.sites != nil {
		pages = append(pages, tui.WithSites(a.sites))
	}
	if a.tunnels != nil {
		pages = append(pages, tui.WithTunnels(a.tunnels))
	}
	m := tui.New(s.Context(), a.ops, s.Grant, key, newRenderer(s.Session), pages...)
	if s.Regrant != nil {
		m.OnRegrant(s.Regrant)
	}
	opts := append(programIO(s.Session), tea.WithAltScreen(), tea.WithoutSignalHandler())
	program := tea.NewProgram(m, opts...)

	ctx, cancel := context.WithCancel(s.Context())
	defer cancel()
	go func() {
		// The session's requests end (its channel is closed, though the connection may live
		// on) or its context does: stop.
		resizes(ctx, windowChanges, minResize, func(w ssh.Window) {
			program.Send(tea.WindowSizeMsg{Width: w.Width, Height: w.Height})
		})
		program.Quit()
	}()
	status := 0
	if _, err := program.Run(); err != nil && ctx.Err() == nil {
		a.ops.Logger().ErrorContext(ctx, "admin TUI failed", "account", s.Grant.Account, "err", err)
		status = 1
	}
	// Kill restores the terminal if the program is still running (after a panic, say).
	program.Kill()
	return status
}

// minResize is the shortest time between two sizes given to the TUI: each is an update and a
// render of the whole screen, and a client may send window changes as fast as it likes
// (45,000 in 2 s kept a core busy); a terminal being resized by hand sends a few dozen a
// second at most.
const minResize = 50 * time.Millisecond

// resizes hands send the terminal sizes from changes, at most one per every: the latest of
// those that came meanwhile. It returns when changes is closed or ctx is done.
func resizes(ctx context.Context, changes <-chan ssh.Window, every time.Duration, send func(ssh.Window)) {
	var last time.Time
	for {
		var w ssh.Window
		select {
		case <-ctx.Done():
			return
		case got, ok := <-changes:
			if !ok {
				return
			}
			w = got
		}
		if wait := every - time.Since(last); wait > 0 {
			timer := time.NewTimer(wait)
		collect:
			for {
				select {
				case <-ctx.Done():
					timer.Stop()
					return
				case got, ok := <-changes:
					if !ok {
						timer.Stop()
						return
					}
					w = got
				case <-timer.C:
					break collect
				}
			}
		}
		last = time.Now()
		send(w)
	}
}

// programIO connects the program to the session: the gateway never allocates a real pty (the
// session is an emulated one), so the session is the terminal, as in wish's
// bubbletea.MakeOptions. Its input passes through tuiInput's bounds.
func programIO(s ssh.Session) []tea.ProgramOption {
	return []tea.ProgramOption{tea.WithInput(newTUIInput(s)), tea.WithOutput(s)}
}

// newRenderer returns a lipgloss renderer for the session's terminal. Unlike wish's
// MakeRenderer it does not query the terminal for its background color (the answer would race
// with the first keys typed) and does not force the ASCII profile: colours follow the TERM the
// client sent.
func newRenderer(s ssh.Session) *lipgloss.Renderer {
	pty, _, ok := s.Pty()
	if !ok || pty.Term == "" || pty.Term == "dumb" {
		return lipgloss.NewRenderer(s, termenv.WithProfile(termenv.Ascii))
	}
	env := environ(append(s.Environ(), "TERM="+pty.Term))
	r := lipgloss.NewRenderer(s, termenv.WithEnvironment(env), termenv.WithUnsafe(), termenv.WithColorCache(true))
	r.SetHasDarkBackground(true)
	return r
}

// environ is an SSH session's environment for termenv.
type environ []string

func (e environ) Environ() []string { return e }

func (e environ) Getenv(k string) string {
	for _, v := range e {
		if val, ok := strings.CutPrefix(v, k+"="); ok {
			return val
		}
	}
	return ""
}
