package tui

import (
	"strings"
	"text/tabwriter"

	"github.com/portico-sh/portico/services/admin/ops"
)

// selection is the selected row in a list of n rows, shown height rows at a time.
type selection struct{ pos, offset int }

// move moves the selection by delta, within n rows.
func (s *selection) move(delta, n int) {
	s.pos = min(max(s.pos+delta, 0), max(n-1, 0))
}

// clamp keeps the selection inside n rows, as after a reload.
func (s *selection) clamp(n int) { s.move(0, n) }

// window returns the rows [from, to) to show so that the selection is visible.
func (s *selection) window(n, height int) (from, to int) {
	if height <= 0 || n <= height {
		return 0, n
	}
	if s.pos < s.offset {
		s.offset = s.pos
	}
	if s.pos >= s.offset+height {
		s.offset = s.pos - height + 1
	}
	s.offset = min(s.offset, n-height)
	return s.offset, s.offset + height
}

// listKey moves s for the usual list keys and reports whether key was one of them.
func (s *selection) listKey(key string, n, height int) bool {
	page := max(height-1, 1)
	switch key {
	case "up", "k":
		s.move(-1, n)
	case "down", "j":
		s.move(1, n)
	case "pgup":
		s.move(-page, n)
	case "pgdown", " ":
		s.move(page, n)
	case "home", "g":
		s.move(-n, n)
	case "end", "G":
		s.move(n, n)
	default:
		return false
	}
	return true
}

// columns aligns rows of cells; the first row is the header.
func columns(rows [][]string) []string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		tw.Write([]byte(strings.Join(r, "\t") + "\n"))
	}
	tw.Flush()
	return strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
}

// table renders a header and rows with the selected row marked, in at most height lines.
func (m *Model) table(header []string, rows [][]string, sel *selection, height int) string {
	lines := columns(append([][]string{header}, rows...))
	var b strings.Builder
	b.WriteString("  " + m.st.header.Render(lines[0]) + "\n")
	from, to := sel.window(len(rows), height-1)
	for i := from; i < to; i++ {
		line := lines[i+1]
		if i == sel.pos {
			b.WriteString("> " + m.st.selected.Render(line) + "\n")
		} else {
			b.WriteString("  " + line + "\n")
		}
	}
	return b.String()
}

// fields renders label-value rows with the labels aligned.
func (m *Model) fields(rows [][]string) string {
	var b strings.Builder
	for _, line := range columns(rows) {
		label, value, _ := strings.Cut(line, "  ")
		b.WriteString("  " + m.st.label.Render(label) + "  " + value + "\n")
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shown is s fit for the terminal (ops.Printable).
func shown(s string) string { return ops.Printable(s) }
