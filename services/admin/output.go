package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/portico-sh/portico/services/admin/ops"
)

// table writes rows of aligned columns.
// table lays out rows in aligned columns. It renders into memory and writes the whole table
// to out in one call on flush: tabwriter writes a line at a time, and on an SSH channel each
// write is a packet and a system call.
type table struct {
	out io.Writer
	buf bytes.Buffer
	tw  *tabwriter.Writer
}

func newTable(w io.Writer) *table {
	t := &table{out: w}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', 0)
	return t
}

func (t *table) row(cells ...string) {
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	_, err := t.out.Write(t.buf.Bytes())
	t.buf.Reset()
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func revocationWords(r ops.Revocation) string {
	switch r.Kind {
	case "serial":
		if r.CAFingerprint != "" {
			return "serial " + r.Value + " of CA " + strings.TrimSpace(r.CAName+" "+r.CAFingerprint)
		}
		return "serial " + r.Value + " of every CA"
	case "key_id":
		return fmt.Sprintf("key ID %q", r.Value)
	}
	return "certificates of key " + r.Value
}

// shown is s fit for a terminal (ops.Printable).
func shown(s string) string { return ops.Printable(s) }

// jsonList writes a JSON array one element at a time, as writeJSON writes a whole one.
type jsonList struct {
	w   io.Writer
	n   int
	err error
}

func newJSONList(w io.Writer) *jsonList { return &jsonList{w: w} }

func (l *jsonList) add(v any) error {
	if l.err != nil {
		return l.err
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("  ", "  ")
	if l.err = enc.Encode(v); l.err != nil {
		return l.err
	}
	sep := ",\n  "
	if l.n == 0 {
		sep = "[\n  "
	}
	l.n++
	_, l.err = io.WriteString(l.w, sep+strings.TrimSuffix(b.String(), "\n"))
	return l.err
}

func (l *jsonList) close() error {
	if l.err != nil {
		return l.err
	}
	if l.n == 0 {
		_, err := io.WriteString(l.w, "[]\n")
		return err
	}
	_, err := io.WriteString(l.w, "\n]\n")
	return err
}

func validUntil(t *ops.Time) string {
	if t == nil {
		return "forever"
	}
	return t.String()
}
