package filter

import (
	"strings"
	"testing"
)

// FuzzFilter parses arbitrary rule lists (one rule per line) and matches arbitrary names: no
// panic, and an empty or all-include rule list excludes nothing.
func FuzzFilter(f *testing.F) {
	f.Add("*.log\n+ keep.txt\n- *.txt", "dir/keep.txt", false)
	f.Add("cache/\n/a/**\ndir/***\n!\n[!a-c]x", "a/b/c", true)
	f.Add(`[[:digit:]]*`+"\n"+`\*.txt`+"\n[", "9lives", false)
	f.Add("**/z\na/**/z\n*/sub\n[[:bogus:]]\n[a-", "x/a/q/r/z", true)
	f.Fuzz(func(t *testing.T, text, name string, isDir bool) {
		rules := strings.Split(text, "\n")
		l, err := Parse(rules)
		if err != nil {
			return
		}
		excluded := l.Excluded(name, isDir)
		for _, r := range rules {
			Match(r, name)
		}
		if l.Len() == 0 && excluded {
			t.Fatalf("no rules, yet %q is excluded", name)
		}
		for _, r := range l.rules {
			if !r.include {
				return
			}
		}
		if excluded {
			t.Fatalf("only include rules, yet %q is excluded", name)
		}
	})
}

// FuzzFilterModern parses arbitrary protocol-29 rule lists for both sides: no panic, and a list
// without exclude rules excludes nothing.
func FuzzFilterModern(f *testing.F) {
	f.Add("- *.log\n+ keep.txt\n-s x\n-r y\n-! *.html\n-/ top\n!", "dir/keep.txt", false, true)
	f.Add(": .rsync-filter\n-C", "a", true, false)
	f.Fuzz(func(t *testing.T, text, name string, isDir, receiver bool) {
		side := Sender
		if receiver {
			side = Receiver
		}
		l, err := ParseFor(strings.Split(text, "\n"), true, side)
		if err != nil {
			return
		}
		excluded := l.Excluded(name, isDir)
		for _, r := range l.rules {
			if !r.include {
				return
			}
		}
		if excluded {
			t.Fatalf("only include rules, yet %q is excluded", name)
		}
	})
}
