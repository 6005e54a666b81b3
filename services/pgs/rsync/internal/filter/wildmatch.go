package filter

// Results of matching a pattern against text; the abort values let a "*" stop early instead
// of trying every position (which would be exponential with many stars).
const (
	noMatch = iota
	match
	abortAll        // the text ran out: no later start position can match either
	abortToStarStar // a single "*" would have to cross a slash: only an outer "**" may go on
)

// Match reports whether text matches an rsync wildcard pattern: "*" matches anything but a
// slash, "**" anything, "?" one character but a slash, "[...]" a class ("!" or "^" negates,
// ranges and [:alpha:]-style names allowed; never a slash) and a backslash quotes the next
// character. A trailing "*" does not cross a slash, a trailing "**" does.
func Match(pattern, text string) bool {
	return wild(pattern, text) == match
}

func wild(p, text string) int {
	for ; len(p) > 0; p = p[1:] {
		pc := p[0]
		if len(text) == 0 && pc != '*' {
			return abortAll
		}
		switch pc {
		case '\\':
			if len(p) > 1 {
				p = p[1:]
			}
			if text[0] != p[0] {
				return noMatch
			}
		case '?':
			if text[0] == '/' {
				return noMatch
			}
		case '*':
			p = p[1:]
			special := false
			if len(p) > 0 && p[0] == '*' {
				for len(p) > 0 && p[0] == '*' {
					p = p[1:]
				}
				special = true
			}
			if len(p) == 0 {
				if !special {
					for i := 0; i < len(text); i++ {
						if text[i] == '/' {
							return noMatch
						}
					}
				}
				return match
			}
			for ; len(text) > 0; text = text[1:] {
				if r := wild(p, text); r != noMatch {
					if !special || r != abortToStarStar {
						return r
					}
				} else if !special && text[0] == '/' {
					return abortToStarStar
				}
			}
			return abortAll
		case '[':
			rest, ok, valid := class(p[1:], text[0])
			if !valid {
				return abortAll
			}
			if !ok || text[0] == '/' {
				return noMatch
			}
			p = rest // points at the closing ']'
		default:
			if text[0] != pc {
				return noMatch
			}
		}
		text = text[1:]
	}
	if len(text) == 0 {
		return match
	}
	return noMatch
}

// class matches c against the class whose text follows "[". It returns the pattern from the
// closing "]" on, whether c is in the class, and whether the class is well formed.
func class(p string, c byte) (rest string, ok, valid bool) {
	negated := false
	if len(p) > 0 && (p[0] == '!' || p[0] == '^') {
		negated = true
		p = p[1:]
	}
	matched := false
	var prev byte
	hasPrev := false
	for first := true; ; first = false {
		if len(p) == 0 {
			return "", false, false
		}
		pc := p[0]
		if pc == ']' && !first {
			break
		}
		switch {
		case pc == '\\':
			if len(p) < 2 {
				return "", false, false
			}
			p = p[1:]
			pc = p[0]
			if c == pc {
				matched = true
			}
			prev, hasPrev = pc, true
		case pc == '-' && hasPrev && len(p) > 1 && p[1] != ']':
			p = p[1:]
			hi := p[0]
			if hi == '\\' {
				if len(p) < 2 {
					return "", false, false
				}
				p = p[1:]
				hi = p[0]
			}
			if c >= prev && c <= hi {
				matched = true
			}
			hasPrev = false
		case pc == '[' && len(p) > 1 && p[1] == ':':
			end := -1
			for i := 2; i+1 < len(p); i++ {
				if p[i] == ':' && p[i+1] == ']' {
					end = i
					break
				}
			}
			if end < 0 {
				return "", false, false
			}
			in, known := namedClass(p[2:end], c)
			if !known {
				return "", false, false
			}
			if in {
				matched = true
			}
			p = p[end+1:]
			hasPrev = false
		default:
			if c == pc {
				matched = true
			}
			prev, hasPrev = pc, true
		}
		p = p[1:]
	}
	return p, matched != negated, true
}

func namedClass(name string, c byte) (in, known bool) {
	isUpper := c >= 'A' && c <= 'Z'
	isLower := c >= 'a' && c <= 'z'
	isDigit := c >= '0' && c <= '9'
	isAlpha := isUpper || isLower
	isPunct := c > ' ' && c < 0x7f && !isAlpha && !isDigit
	switch name {
	case "alnum":
		return isAlpha || isDigit, true
	case "alpha":
		return isAlpha, true
	case "blank":
		return c == ' ' || c == '\t', true
	case "cntrl":
		return c < ' ' || c == 0x7f, true
	case "digit":
		return isDigit, true
	case "graph":
		return c > ' ' && c < 0x7f, true
	case "lower":
		return isLower, true
	case "print":
		return c >= ' ' && c < 0x7f, true
	case "punct":
		return isPunct, true
	case "space":
		return c == ' ' || (c >= '\t' && c <= '\r'), true
	case "upper":
		return isUpper, true
	case "xdigit":
		return isDigit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'), true
	}
	return false, false
}
