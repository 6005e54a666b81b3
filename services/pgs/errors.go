package pgs

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/services/pgs/sitepath"
)

// Kind says what sort of failure an Error is.
type Kind int

// Error kinds.
const (
	Invalid  Kind = iota + 1 // bad input: a path, a name, an argument
	Refused                  // not allowed: a limit, a link, another deploy running
	NotFound                 // no such project, deploy or file
	Failed                   // the server failed (database, storage); nothing was changed
)

// Error is a failure shown to the user: Message is plain words, Err the cause for logs.
type Error struct {
	Kind    Kind
	Message string
	Err     error
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Err }

func errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// kindOf is the Kind of err, Failed for errors that are not an *Error.
func kindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Failed
}

// userError is asError as an error: nil stays nil.
func userError(err error) error {
	if err == nil {
		return nil
	}
	return asError(err)
}

// asError turns any error into one fit to show: a path error as it is, store failures as
// plain words (the cause goes to the log, not to the client).
func asError(err error) *Error {
	var e *Error
	var pe *sitepath.Error
	var errno syscall.Errno
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return e
	case errors.As(err, &pe):
		return &Error{Kind: Invalid, Message: pe.Error(), Err: err}
	case errors.Is(err, db.ErrLockLost):
		return &Error{Kind: Failed, Message: "the deploy lock was lost (the database was unreachable for too long); nothing was published", Err: err}
	case errors.As(err, &errno):
		return &Error{Kind: Failed, Message: "storing files failed: " + errno.Error(), Err: err}
	}
	return &Error{Kind: Failed, Message: "the server failed (its log says why); nothing was changed", Err: err}
}

func tooManyProjects() *Error {
	return errorf(Refused, "an account may have at most %d projects; remove one first (rm PROJECT --yes)", maxProjects)
}

// humanBytes writes a byte count in binary units: 100 MiB, 1 GiB, 512 B.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d %ciB", int64(v), "KMGTPE"[exp])
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[exp])
}

// shown is a path as messages and listings print it: control characters (which a terminal
// would obey) are escaped, the rest is left as it is.
func shown(p string) string {
	var b strings.Builder
	for _, r := range p {
		switch {
		case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
			fmt.Fprintf(&b, "\\x%02x", r)
		case r == '\\':
			b.WriteString(`\\`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
