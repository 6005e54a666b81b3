package tui

import (
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// helpPage shows the recipes for this server: signing certificates and the ssh_config block.
// Lines wider than the terminal wrap, so that no command is cut.
type helpPage struct {
	text   string
	offset int
}

func (*helpPage) title() string   { return "Help" }
func (*helpPage) hints() string   { return "[up/down] scroll" }
func (*helpPage) capturing() bool { return false }

func (p *helpPage) load(m *Model) error {
	p.text = strings.TrimRight(m.ops.Recipes(m.grant), "\n")
	return nil
}

// lines are the text's lines, wrapped to the terminal.
func (p *helpPage) lines(m *Model) []string {
	if m.width <= 4 {
		return strings.Split(p.text, "\n")
	}
	return strings.Split(ansi.Wrap(p.text, m.width-2, ""), "\n")
}

func (p *helpPage) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	height := max(m.height-chromeLines, 1)
	n := len(p.lines(m))
	switch msg.String() {
	case "up", "k":
		p.offset--
	case "down", "j":
		p.offset++
	case "pgup":
		p.offset -= height
	case "pgdown", " ":
		p.offset += height
	case "home", "g":
		p.offset = 0
	case "end", "G":
		p.offset = n
	}
	p.offset = min(max(p.offset, 0), max(n-height, 0))
	return nil
}

func (p *helpPage) view(m *Model, height int) string {
	lines := p.lines(m)
	if height > 0 && len(lines) > height {
		from := min(p.offset, len(lines)-height)
		lines = lines[from : from+height]
	}
	return strings.Join(lines, "\n")
}
