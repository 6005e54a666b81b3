package filter

// API, for the receiver's --delete and for the sender:
//
//	l, err := filter.Parse(rules)      // rules as read from the wire, in order
//	if l.Excluded("dir/file.txt", false) { ... }
//
// Names are relative to the transfer root, slash-separated, without a leading slash; isDir says
// whether the name is a directory (for rules ending in "/"). The first matching rule decides;
// no match means included.

import (
	"fmt"
	"strings"
)

// maxRuleLen bounds one rule (rsync's BIGPATHBUFLEN).
const maxRuleLen = 4096 + 1024

// List is an ordered list of include/exclude rules.
type List struct {
	rules []rule
}

type rule struct {
	include   bool
	negate    bool   // "!" modifier: the rule applies when the pattern does not match
	pattern   string // without the leading "/" of an anchored rule and without a trailing "/"
	anchored  bool   // started with "/": matched from the transfer root
	dirOnly   bool   // ended with "/": matches directories only
	wild      bool   // has * ? or [
	wild2     bool   // has **
	wild2Pre  bool   // starts with **
	slashes   int    // slashes in the pattern (a leading one included)
	dirAndAll string // for "dir/***": the pattern without "/***", which also matches the directory
}

// Parse reads rules in the old (protocol < 29) syntax a protocol-27 client sends: "+ pattern"
// includes, "- pattern" excludes, "!" clears the rules so far, and any other text is an
// exclude pattern.
func Parse(rules []string) (*List, error) {
	l := &List{}
	for _, text := range rules {
		if len(text) > maxRuleLen {
			return nil, fmt.Errorf("filter rule of %d bytes is too long", len(text))
		}
		if text == "!" {
			l.rules = l.rules[:0]
			continue
		}
		include := false
		switch {
		case strings.HasPrefix(text, "+ "):
			include, text = true, text[2:]
		case strings.HasPrefix(text, "- "):
			text = text[2:]
		}
		if text == "" {
			continue
		}
		l.rules = append(l.rules, newRule(include, text))
	}
	return l, nil
}

func newRule(include bool, p string) rule {
	r := rule{include: include}
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		r.dirOnly = true
		p = p[:len(p)-1]
	}
	r.slashes = strings.Count(p, "/")
	if strings.HasPrefix(p, "/") {
		r.anchored = true
		p = p[1:]
	}
	r.pattern = p
	r.wild = strings.ContainsAny(p, "*?[")
	if i := strings.Index(p, "**"); i >= 0 {
		r.wild2 = true
		r.wild2Pre = i == 0
	}
	if base, ok := strings.CutSuffix(p, "/***"); ok {
		r.dirAndAll = base
	}
	return r
}

// Len returns the number of rules in effect.
func (l *List) Len() int {
	if l == nil {
		return 0
	}
	return len(l.rules)
}

// Excluded reports whether name is excluded: the first rule that matches decides.
func (l *List) Excluded(name string, isDir bool) bool {
	if l == nil {
		return false
	}
	name = strings.TrimPrefix(name, "/")
	if name == "" || name == "." {
		return false
	}
	for i := range l.rules {
		r := &l.rules[i]
		if r.matches(name, isDir) {
			return !r.include
		}
	}
	return false
}

func (r *rule) matches(name string, isDir bool) bool {
	if r.negate {
		return !r.matchesPlain(name, isDir)
	}
	return r.matchesPlain(name, isDir)
}

func (r *rule) matchesPlain(name string, isDir bool) bool {
	if r.dirOnly && !isDir {
		return false
	}
	if r.matchPattern(r.pattern, name) {
		return true
	}
	return r.dirAndAll != "" && isDir && r.matchPattern(r.dirAndAll, name)
}

func (r *rule) matchPattern(pattern, name string) bool {
	if r.slashes == 0 && !r.wild2 {
		// A pattern without slashes or "**" matches the last component only.
		name = name[strings.LastIndexByte(name, '/')+1:]
	}
	switch {
	case !r.anchored && r.slashes > 0 && !r.wild2:
		// An unanchored pattern with an inner slash matches the last slashes+1 components.
		return r.match1(pattern, lastComponents(name, r.slashes+1))
	case !r.anchored && r.wild2 && !r.wild2Pre:
		// An unanchored pattern with an inner or trailing "**" may match after any slash.
		for {
			if r.match1(pattern, name) {
				return true
			}
			i := strings.IndexByte(name, '/')
			if i < 0 {
				return false
			}
			name = name[i+1:]
		}
	default:
		return r.match1(pattern, name)
	}
}

func (r *rule) match1(pattern, text string) bool {
	if !r.wild {
		return pattern == text
	}
	return Match(pattern, text)
}

// lastComponents returns the last n slash-separated components of name (all of it if it has
// fewer).
func lastComponents(name string, n int) string {
	i := len(name)
	for ; n > 0; n-- {
		j := strings.LastIndexByte(name[:i], '/')
		if j < 0 {
			return name
		}
		i = j
	}
	return name[i+1:]
}

// Side is the end of a transfer a rule list is used on: rules with the "s" modifier only apply
// on the sending side, with "r" only on the receiving side.
type Side int

const (
	Sender Side = iota
	Receiver
)

// ParseFor reads rules as a client sends them. Below protocol 29 (modern false) that is the old
// syntax Parse reads. From 29 on every rule starts with "+" or "-" and modifiers up to a space:
// "/" (anchored at the root), "!" (applies when the pattern does not match), "s" (sender
// only), "r" (receiver only), "p" (perishable: ignored here), "x" (xattr names: the rule is
// dropped), "e", "n", "w" (merge-file modifiers, meaningless on a plain rule); "!" alone clears
// the list. Per-directory merge rules (":") and anything else are refused.
func ParseFor(rules []string, modern bool, side Side) (*List, error) {
	if !modern {
		return Parse(rules)
	}
	l := &List{}
	for _, text := range rules {
		if len(text) > maxRuleLen {
			return nil, fmt.Errorf("filter rule of %d bytes is too long", len(text))
		}
		if text == "!" {
			l.rules = l.rules[:0]
			continue
		}
		mods, pattern, ok := strings.Cut(text, " ")
		if !ok || mods == "" || (mods[0] != '+' && mods[0] != '-') {
			if mods != "" && mods[0] == ':' {
				return nil, fmt.Errorf("per-directory merge rules (%q) are not supported", text)
			}
			return nil, fmt.Errorf("unsupported filter rule %q", text)
		}
		include := mods[0] == '+'
		var anchored, negate, skip bool
		for _, m := range mods[1:] {
			switch m {
			case '/':
				anchored = true
			case '!':
				negate = true
			case 's':
				skip = skip || side != Sender
			case 'r':
				skip = skip || side != Receiver
			case 'x':
				skip = true
			case 'p', 'e', 'n', 'w':
			case 'C':
				return nil, fmt.Errorf("CVS-ignore filter rules are not supported")
			default:
				return nil, fmt.Errorf("unsupported filter rule modifier %q in %q", m, text)
			}
		}
		if skip || pattern == "" {
			continue
		}
		if anchored && !strings.HasPrefix(pattern, "/") {
			pattern = "/" + pattern
		}
		r := newRule(include, pattern)
		r.negate = negate
		l.rules = append(l.rules, r)
	}
	return l, nil
}
