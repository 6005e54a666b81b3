package admin

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/portico-sh/portico/services/admin/ops"
)

// table writes rows of aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer) *table { return &table{tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)} }

func (t *table) row(cells ...string) {
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

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
			return "serial " + r.Value + " of CA " + r.CAFingerprint
		}
		return "serial " + r.Value + " of every CA"
	case "key_id":
		return fmt.Sprintf("key ID %q", r.Value)
	}
	return "certificates of key " + r.Value
}

func validUntil(t *ops.Time) string {
	if t == nil {
		return "forever"
	}
	return t.String()
}
