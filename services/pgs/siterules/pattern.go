package siterules

import (
	"fmt"
	"strings"
)

// pattern is a path pattern: literal segments, `:name` placeholders (one segment each) and an
// optional `*` at the end (the rest of the path, possibly empty, which is :splat). A trailing
// slash does not matter: /blog and /blog/ match the same patterns, as on Netlify.
type pattern struct {
	segs   []string // literal segments, or ":name"
	prefix string   // with splat: what the rest must start with ("" for a segment that is just *)
	splat  bool
	names  []string // the placeholders, in order
}

// parsePattern reads a path pattern (it starts with "/").
func parsePattern(s string) (pattern, error) {
	var p pattern
	switch {
	case !strings.HasPrefix(s, "/"):
		if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") || strings.Contains(s, ".") && !strings.Contains(s, "/") {
			return p, fmt.Errorf("%q: rules for other host names are not supported: start with a path, e.g. /blog/*", s)
		}
		return p, fmt.Errorf("%q is not a path: it must start with /", s)
	case strings.ContainsAny(s, "?#"):
		return p, fmt.Errorf("%q: a path pattern holds no query or fragment", s)
	}
	body := s[1:]
	if i := strings.IndexByte(body, '*'); i >= 0 {
		if i != len(body)-1 {
			return p, fmt.Errorf("%q: * may only end a pattern (use :name placeholders for single segments)", s)
		}
		p.splat = true
		body = body[:i]
		if j := strings.LastIndexByte(body, '/'); j >= 0 {
			p.prefix = body[j+1:]
			body = body[:j]
		} else {
			p.prefix, body = body, ""
		}
		if strings.HasPrefix(p.prefix, ":") {
			return p, fmt.Errorf("%q: a placeholder takes a whole segment", s)
		}
	} else {
		body = strings.TrimSuffix(body, "/")
	}
	if body == "" {
		return p, nil
	}
	seen := map[string]bool{}
	for seg := range strings.SplitSeq(body, "/") {
		if seg == "" {
			return p, fmt.Errorf("%q has an empty segment (//)", s)
		}
		if strings.HasPrefix(seg, ":") {
			name := seg[1:]
			switch {
			case !isName(name):
				return p, fmt.Errorf("%q: placeholder %q: a name is letters, digits and _", s, seg)
			case name == "splat":
				return p, fmt.Errorf("%q: :splat is what * matched: use * in the pattern", s)
			case seen[name]:
				return p, fmt.Errorf("%q: placeholder :%s appears twice", s, name)
			}
			seen[name] = true
			p.names = append(p.names, name)
		} else if strings.Contains(seg, ":") && isName(seg[strings.IndexByte(seg, ':')+1:]) {
			return p, fmt.Errorf("%q: placeholder in %q: a placeholder takes a whole segment", s, seg)
		}
		p.segs = append(p.segs, seg)
	}
	return p, nil
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// params are the values a match bound: placeholders by name, and "splat".
type params map[string]string

// match matches a request path (decoded, starting with "/"). bind is false when only the yes
// or no is wanted.
func (p *pattern) match(path string, bind bool) (params, bool) {
	rest := strings.TrimPrefix(path, "/")
	if !p.splat {
		rest = strings.TrimSuffix(rest, "/")
	}
	var ps params
	if bind && (len(p.names) > 0 || p.splat) {
		ps = make(params, len(p.names)+1)
	}
	last := len(p.segs) - 1
	for k, seg := range p.segs {
		got, after, more := strings.Cut(rest, "/")
		if got == "" {
			return nil, false
		}
		if seg[0] == ':' {
			if ps != nil {
				ps[seg[1:]] = got
			}
		} else if got != seg {
			return nil, false
		}
		if !more {
			// The path ends here: a match only at the pattern's last segment, and with a splat
			// only a bare one ("/blog/*" matches "/blog").
			if k != last || p.splat && p.prefix != "" {
				return nil, false
			}
			if p.splat && ps != nil {
				ps["splat"] = ""
			}
			return ps, true
		}
		rest = after
	}
	if !p.splat {
		return ps, rest == ""
	}
	if !strings.HasPrefix(rest, p.prefix) {
		return nil, false
	}
	if ps != nil {
		ps["splat"] = rest[len(p.prefix):]
	}
	return ps, true
}

// has reports whether the pattern binds name.
func (p *pattern) has(name string) bool {
	if name == "splat" {
		return p.splat
	}
	for _, n := range p.names {
		if n == name {
			return true
		}
	}
	return false
}
