package siterules

import (
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// refusedHeaders are the headers a site may not set or remove: the server owns them (framing,
// encoding, redirects, cookies of the shared domain).
var refusedHeaders = map[string]bool{}

func init() {
	for _, h := range []string{"Content-Length", "Content-Encoding", "Content-Range", "Transfer-Encoding",
		"Connection", "Date", "Server", "Set-Cookie", "Upgrade", "Trailer", "Alt-Svc", "Accept-Ranges", "Age",
		"Location", "Keep-Alive", "Proxy-Connection", "Te"} {
		refusedHeaders[http.CanonicalHeaderKey(h)] = true
	}
}

// Refused reports whether a site may not set a header.
func Refused(name string) bool { return refusedHeaders[http.CanonicalHeaderKey(name)] }

// Headers are the rules of a _headers file, in order: a path pattern line, then indented
// `Name: value` and `! Name` lines.
type Headers struct {
	rules []headerRule
}

type headerRule struct {
	line int
	pat  pattern
	ops  []headerOp
}

type headerOp struct {
	name   string // canonical
	value  string
	detach bool
}

// Len is the number of rules (path patterns).
func (h *Headers) Len() int {
	if h == nil {
		return 0
	}
	return len(h.rules)
}

// ParseHeaders reads a _headers file. With errors it also returns the rules that parsed.
func ParseHeaders(data []byte) (*Headers, Errors) {
	errs := &errorList{file: HeadersFile}
	h := &Headers{}
	var cur *headerRule // nil before the first pattern, or after a bad one
	badPattern := false
	for _, ln := range splitLines(data, errs) {
		if isBlankOrComment(ln.text) {
			continue
		}
		indented := ln.text[0] == ' ' || ln.text[0] == '\t'
		text := strings.TrimSpace(ln.text)
		if !indented {
			cur, badPattern = nil, false
			if len(h.rules) >= MaxRules {
				errs.add(ln.no, "more than %d rules", MaxRules)
				break
			}
			if f := strings.Fields(text); len(f) > 1 {
				errs.add(ln.no, "a path pattern line holds one pattern; headers go on the indented lines below it")
				badPattern = true
				continue
			}
			pat, err := parsePattern(text)
			if err != nil {
				errs.add(ln.no, "%v", err)
				badPattern = true
				continue
			}
			h.rules = append(h.rules, headerRule{line: ln.no, pat: pat})
			cur = &h.rules[len(h.rules)-1]
			continue
		}
		op, msg := parseHeaderLine(text)
		switch {
		case msg != "":
			errs.add(ln.no, "%s", msg)
		case cur == nil && !badPattern:
			errs.add(ln.no, "a header line must follow a path pattern line (which is not indented)")
		case cur != nil:
			cur.ops = append(cur.ops, op)
		}
	}
	return h, errs.result()
}

func parseHeaderLine(text string) (headerOp, string) {
	if name, ok := strings.CutPrefix(text, "!"); ok {
		name = strings.TrimSpace(name)
		switch {
		case !httpguts.ValidHeaderFieldName(name):
			return headerOp{}, "`! Name` removes a header: " + quote(name) + " is not a header name"
		case Refused(name):
			return headerOp{}, http.CanonicalHeaderKey(name) + " is set by the server; a site cannot remove it"
		}
		return headerOp{name: http.CanonicalHeaderKey(name), detach: true}, ""
	}
	name, value, ok := strings.Cut(text, ":")
	if !ok {
		return headerOp{}, "a header line is `Name: value` (or `! Name` to remove one)"
	}
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	switch {
	case !httpguts.ValidHeaderFieldName(name):
		return headerOp{}, quote(name) + " is not a header name"
	case Refused(name):
		return headerOp{}, http.CanonicalHeaderKey(name) + " is set by the server; a site cannot set it"
	case value == "":
		return headerOp{}, http.CanonicalHeaderKey(name) + " has no value"
	case !httpguts.ValidHeaderFieldValue(value):
		return headerOp{}, http.CanonicalHeaderKey(name) + ": the value holds a character a header cannot carry"
	}
	return headerOp{name: http.CanonicalHeaderKey(name), value: value}, ""
}

func quote(s string) string { return "\"" + s + "\"" }

// Field is one header a site sets.
type Field struct {
	Name, Value string
}

// HeaderSet is what the rules say for one path: the headers to set, in the order they first
// appeared (each replaces the server's default of that name), and the headers removed by a
// `! Name` and not set again afterwards (the server's default of that name is dropped too).
type HeaderSet struct {
	Set     []Field
	Removed []string
}

// For applies every rule whose pattern matches the request path (decoded), in order: values
// of the same header join with ", "; `! Name` drops what earlier rules set. `:name` and
// `:splat` in values are replaced by what the pattern matched; a value whose placeholders would
// take what they add to this request's values past MaxExpanded bytes is not set.
func (h *Headers) For(path string) HeaderSet {
	var out HeaderSet
	if h == nil {
		return out
	}
	budget := MaxExpanded // bytes placeholders may add to the values, over all rules
	for i := range h.rules {
		r := &h.rules[i]
		ps, ok := r.pat.match(path, true)
		if !ok {
			continue
		}
		for _, op := range r.ops {
			if op.detach {
				out.remove(op.name)
				continue
			}
			value := op.value
			if ps != nil && strings.IndexByte(value, ':') >= 0 {
				v, ok := expandPlaceholders(value, len(value)+budget, func(name string) string {
					v, ok := ps[name]
					if !ok {
						return ":" + name
					}
					return headerSafe(v)
				})
				if !ok {
					continue // too long filled in: the header is not set
				}
				budget -= max(0, len(v)-len(value))
				value = v
			}
			out.add(op.name, value)
		}
	}
	return out
}

func (s *HeaderSet) add(name, value string) {
	for i := range s.Set {
		if s.Set[i].Name == name {
			s.Set[i].Value += ", " + value
			return
		}
	}
	s.Set = append(s.Set, Field{Name: name, Value: value})
	for i, r := range s.Removed {
		if r == name {
			s.Removed = append(s.Removed[:i], s.Removed[i+1:]...)
			if len(s.Removed) == 0 {
				s.Removed = nil
			}
			break
		}
	}
}

func (s *HeaderSet) remove(name string) {
	for i := range s.Set {
		if s.Set[i].Name == name {
			s.Set = append(s.Set[:i], s.Set[i+1:]...)
			break
		}
	}
	for _, r := range s.Removed {
		if r == name {
			return
		}
	}
	s.Removed = append(s.Removed, name)
}

// headerSafe drops from a value taken from the request path what a header cannot carry.
func headerSafe(v string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, v)
}
