package siterules

import (
	"fmt"
	"strings"
)

// Limits on one rules file: its size, its rules and the length of one line.
const (
	MaxFileSize = 64 << 10
	MaxRules    = 1000
	MaxLine     = 8 << 10
	// MaxExpanded bounds what the placeholders of the rules expand to for one request: a
	// redirect's Location or rewrite path, and all the header values _headers sets (a TO or a
	// value repeating :splat would otherwise multiply a long request path).
	MaxExpanded = 16 << 10
	// maxErrors bounds the errors reported for one file (the rest are counted).
	maxErrors = 100
)

// Names of the rules files at a project's root.
const (
	RedirectsFile = "_redirects"
	HeadersFile   = "_headers"
)

// LineError is a problem with one line of a rules file.
type LineError struct {
	File string
	Line int // 1-based; 0: the file as a whole
	Msg  string
}

func (e *LineError) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Errors are every problem found in a rules file, in line order.
type Errors []*LineError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// errorList collects a file's errors, up to maxErrors.
type errorList struct {
	file    string
	errs    Errors
	dropped int
}

func (l *errorList) add(line int, format string, args ...any) {
	if len(l.errs) >= maxErrors {
		l.dropped++
		return
	}
	l.errs = append(l.errs, &LineError{File: l.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (l *errorList) result() Errors {
	if l.dropped > 0 {
		l.errs = append(l.errs, &LineError{File: l.file, Msg: fmt.Sprintf("%d more errors not shown", l.dropped)})
	}
	if len(l.errs) == 0 {
		return nil
	}
	return l.errs
}
