package ops

import (
	"context"
	"errors"
)

// Kind says what sort of failure an operation's Error is, so that each face can show it well.
type Kind int

// Error kinds.
const (
	Invalid  Kind = iota + 1 // the input is wrong: a bad name, key line, option or value
	Refused                  // this connection may not do this
	NotFound                 // the named key, CA or revocation is not in the account
	Conflict                 // the name or key is already taken
	Failed                   // the store failed; nothing was changed
)

func (k Kind) String() string {
	switch k {
	case Invalid:
		return "invalid"
	case Refused:
		return "refused"
	case NotFound:
		return "not found"
	case Conflict:
		return "conflict"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// Error is an operation's failure. Message is plain words for the user; Err, when set, is the
// underlying cause (for logs and errors.Is), never shown.
type Error struct {
	Kind    Kind
	Message string
	Err     error
}

func (e *Error) Error() string { return e.Message }

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of the Error inside err, or Failed for any other error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Failed
}

func errorf(kind Kind, msg string) *Error { return &Error{Kind: kind, Message: msg} }

// failed logs a store error and returns the plain Failed error shown to the user.
func (o *Ops) failed(ctx context.Context, what string, err error) *Error {
	o.log.ErrorContext(ctx, "admin operation failed", "op", what, "err", err)
	return &Error{Kind: Failed, Message: "could not " + what + ": the database failed; nothing was changed, try again", Err: err}
}
