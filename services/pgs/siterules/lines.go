package siterules

import (
	"strings"
	"unicode/utf8"
)

// line is one line of a rules file, without its line break.
type line struct {
	no   int
	text string
}

// splitLines checks a file's size and bytes and splits it into lines. It reports lines that are
// too long or not UTF-8 (and drops them); a file over MaxFileSize is one error.
func splitLines(data []byte, errs *errorList) []line {
	if len(data) > MaxFileSize {
		errs.add(0, "the file is %d bytes, more than the %d allowed", len(data), MaxFileSize)
		return nil
	}
	s := strings.TrimPrefix(string(data), "\ufeff")
	var out []line
	for no := 1; s != ""; no++ {
		text, rest, _ := strings.Cut(s, "\n")
		s = rest
		text = strings.TrimSuffix(text, "\r")
		switch {
		case len(text) > MaxLine:
			errs.add(no, "the line is %d bytes, more than the %d allowed", len(text), MaxLine)
		case !utf8.ValidString(text):
			errs.add(no, "the line is not UTF-8")
		case strings.ContainsFunc(text, isControl):
			errs.add(no, "the line holds a control character")
		default:
			out = append(out, line{no: no, text: text})
		}
	}
	return out
}

// isControl: control characters other than the tab.
func isControl(r rune) bool {
	return (r < 0x20 && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0)
}

// isBlankOrComment: a line with nothing to read.
func isBlankOrComment(s string) bool {
	s = strings.TrimSpace(s)
	return s == "" || s[0] == '#'
}
