package tui

import "github.com/charmbracelet/lipgloss"

// styles are the TUI's looks, made for one session's renderer.
type styles struct {
	brand     lipgloss.Style
	tab       lipgloss.Style
	activeTab lipgloss.Style
	title     lipgloss.Style
	label     lipgloss.Style
	header    lipgloss.Style
	selected  lipgloss.Style
	hint      lipgloss.Style
	err       lipgloss.Style
	info      lipgloss.Style
	prompt    lipgloss.Style
}

func newStyles(r *lipgloss.Renderer) styles {
	return styles{
		brand:     r.NewStyle().Bold(true).Foreground(lipgloss.Color("5")),
		tab:       r.NewStyle().Foreground(lipgloss.Color("8")),
		activeTab: r.NewStyle().Bold(true).Underline(true),
		title:     r.NewStyle().Bold(true),
		label:     r.NewStyle().Foreground(lipgloss.Color("8")),
		header:    r.NewStyle().Bold(true),
		selected:  r.NewStyle().Reverse(true),
		hint:      r.NewStyle().Foreground(lipgloss.Color("8")),
		err:       r.NewStyle().Foreground(lipgloss.Color("1")).Bold(true),
		info:      r.NewStyle().Foreground(lipgloss.Color("2")),
		prompt:    r.NewStyle().Foreground(lipgloss.Color("5")),
	}
}
