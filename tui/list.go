package tui

import (
	"strings"
	"text/tabwriter"

	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

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

// list is what every list page holds: its rows, the selected one, and the y/n question about
// one row, asked before it is removed (or made live).
type list[T any] struct {
	rows    []T
	cursor  selection
	confirm *T
}

// set shows rows, keeping the selection inside them.
func (l *list[T]) set(rows []T) {
	l.rows = rows
	l.cursor.clamp(len(rows))
}

// fill shows rows, as loaded with err; an error leaves the rows shown before.
func (l *list[T]) fill(rows []T, err error) error {
	if err != nil {
		return err
	}
	l.set(rows)
	return nil
}

// selected returns the selected row; ok is false when there are none.
func (l *list[T]) selected() (row T, ok bool) {
	if len(l.rows) == 0 {
		return row, false
	}
	return l.rows[l.cursor.pos], true
}

// key takes the keys every list page shares: the moves of a list shown height rows at a time,
// and r, which loads the page again. It reports whether key was one of them.
func (l *list[T]) key(m *Model, key string, height int) (tea.Cmd, bool) {
	if l.cursor.listKey(key, len(l.rows), height) {
		return nil, true
	}
	if key == "r" {
		return m.reload(), true
	}
	return nil, false
}

// ask asks the question about the selected row, if there is one.
func (l *list[T]) ask() {
	if row, ok := l.selected(); ok {
		l.confirm = &row
	}
}

// askKey asks the question about the selected row when key is one that removes, and reports
// whether it was.
func (l *list[T]) askKey(key string) bool {
	switch key {
	case "d", "x", "delete":
		l.ask()
		return true
	}
	return false
}

// answer takes key as the answer to the question: y has remove remove the row and p load
// again, then says removed; n (or esc, q) says kept. y waits for Model.act, as every change
// keys make does. Other keys leave the question open.
func (l *list[T]) answer(m *Model, p interface{ load(*Model) error }, key string, remove func(T) error, removed, kept string) {
	switch key {
	case "y", "Y":
		if !m.act() {
			return
		}
		row := *l.confirm
		l.confirm = nil
		if err := remove(row); err != nil {
			m.fail(err)
			return
		}
		if err := p.load(m); err != nil {
			m.fail(err)
			return
		}
		m.inform(removed)
	case "n", "N", "esc", "q":
		l.confirm = nil
		m.inform(kept)
	}
}

// question renders the question, asked with text, above the table, and returns the height
// left for the table.
func (l *list[T]) question(m *Model, b *strings.Builder, height int, text func(T) string) int {
	if l.confirm == nil {
		return height
	}
	b.WriteString(m.st.err.Render(text(*l.confirm)) + "\n\n")
	return height - 2
}

// table renders the rows under header, a row's cells by cells, the selected row marked, in at
// most height lines.
func (l *list[T]) table(m *Model, header []string, cells func(T) []string, height int) string {
	rows := make([][]string, len(l.rows))
	for i, r := range l.rows {
		rows[i] = cells(r)
	}
	return m.table(header, rows, &l.cursor, height)
}

// editor is a list page whose rows a form adds (or changes) and a y/n question removes: while
// the form is open the keys go to it, while the question is asked they answer it.
type editor[T any] struct {
	list[T]
	form *form
}

func (e *editor[T]) capturing() bool { return e.form != nil || e.confirm != nil }

// typing reports whether the form's text inputs have the keyboard.
func (e *editor[T]) typing() bool { return e.form != nil }

// hints names the keys of the form (enter does submit), of the question (y does remove), or
// else the list's keys.
func (e *editor[T]) hints(submit, remove, keys string) string {
	switch {
	case e.form != nil:
		return "[enter] " + submit + "  [tab] next field  [esc] cancel"
	case e.confirm != nil:
		return "[y] " + remove + "  [n] keep"
	}
	return keys
}

// editing is what an editor's page does itself: send the form, and answer the question.
type editing interface {
	submit(m *Model) tea.Cmd
	answer(m *Model, msg tea.KeyMsg)
}

// update takes the keys an editor's page shares, and reports whether msg was one: while the
// form is open, esc closes it, enter has p submit it and the other keys edit it; while the
// question is asked, p answers it; else the list's keys, and d asks the question.
func (e *editor[T]) update(m *Model, p editing, msg tea.KeyMsg) (tea.Cmd, bool) {
	switch {
	case e.form != nil && msg.Type == tea.KeyEsc:
		e.form = nil
		return nil, true
	case e.form != nil && msg.Type == tea.KeyEnter:
		return p.submit(m), true
	case e.form != nil:
		return e.form.update(msg), true
	case e.confirm != nil:
		p.answer(m, msg)
		return nil, true
	}
	key := msg.String()
	cmd, ok := e.key(m, key, m.height-chromeLines)
	return cmd, ok || e.askKey(key)
}

// form is a page's form of text inputs, one of which has the keyboard.
type form struct {
	inputs []textinput.Model
	focus  int
}

// newForm returns a form of inputs with these placeholders and character limits, as wide as
// the model's inputs, the first focused.
func newForm(m *Model, placeholders []string, limits []int) *form {
	f := &form{}
	for i, ph := range placeholders {
		in := newInput(ph, limits[i])
		in.Width = m.inputWidth()
		if i > 0 {
			in.Blur()
		}
		f.inputs = append(f.inputs, in)
	}
	return f
}

// focusOn gives input i the keyboard.
func (f *form) focusOn(i int) tea.Cmd {
	f.inputs[f.focus].Blur()
	f.focus = i
	return f.inputs[i].Focus()
}

// update moves the keyboard to the next input (tab, down) or the previous one (shift+tab,
// up), or hands msg to the input that has it. Enter and esc are the page's to take first.
func (f *form) update(msg tea.KeyMsg) tea.Cmd {
	switch msg.Type {
	case tea.KeyTab, tea.KeyDown:
		return f.focusOn((f.focus + 1) % len(f.inputs))
	case tea.KeyShiftTab, tea.KeyUp:
		return f.focusOn((f.focus + len(f.inputs) - 1) % len(f.inputs))
	}
	var cmd tea.Cmd
	f.inputs[f.focus], cmd = f.inputs[f.focus].Update(msg)
	return cmd
}

// value is what input i holds, without surrounding space.
func (f *form) value(i int) string { return strings.TrimSpace(f.inputs[i].Value()) }

// view renders the form under title and intro, each input after its label.
func (f *form) view(m *Model, title, intro string, labels []string) string {
	var b strings.Builder
	b.WriteString(m.st.title.Render(title) + "\n\n")
	b.WriteString(intro + "\n")
	for i, in := range f.inputs {
		b.WriteString(m.st.label.Render(labels[i]) + in.View() + "\n")
	}
	return b.String()
}
