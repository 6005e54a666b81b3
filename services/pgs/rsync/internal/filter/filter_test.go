package filter

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestExcluded(t *testing.T) {
	tests := []struct {
		rules []string
		name  string
		isDir bool
		want  bool
	}{
		{[]string{"*.log"}, "a.log", false, true},
		{[]string{"*.log"}, "dir/a.log", false, true},
		{[]string{"*.log"}, "a.log.txt", false, false},
		{[]string{"- *.log"}, "x/y/z.log", false, true},
		{[]string{"+ keep.log", "- *.log"}, "keep.log", false, false},
		{[]string{"+ keep.log", "- *.log"}, "other.log", false, true},
		{[]string{"- *.log", "!", "- *.txt"}, "a.log", false, false},
		{[]string{"- *.log", "!", "- *.txt"}, "a.txt", false, true},
		{[]string{"cache/"}, "cache", true, true},
		{[]string{"cache/"}, "cache", false, false},
		{[]string{"cache/"}, "a/cache", true, true},
		{[]string{"/keep.txt"}, "keep.txt", false, true},
		{[]string{"/keep.txt"}, "sub/keep.txt", false, false},
		{[]string{"keep.txt"}, "sub/keep.txt", false, true},
		{[]string{"a/b"}, "a/b", false, true},
		{[]string{"a/b"}, "x/a/b", false, true},
		{[]string{"a/b"}, "xa/b", false, false},
		{[]string{"/a/*"}, "a/b", false, true},
		{[]string{"/a/*"}, "a/b/c", false, false},
		{[]string{"/a/**"}, "a/b/c", false, true},
		{[]string{"a/**/z"}, "x/a/b/c/z", false, true},
		{[]string{"**/z"}, "x/y/z", false, true},
		{[]string{"?.txt"}, "a.txt", false, true},
		{[]string{"?.txt"}, "ab.txt", false, false},
		{[]string{"[ab].txt"}, "b.txt", false, true},
		{[]string{"[!ab].txt"}, "b.txt", false, false},
		{[]string{"[!ab].txt"}, "c.txt", false, true},
		{[]string{"[a-c]x"}, "bx", false, true},
		{[]string{"[[:digit:]]*"}, "9lives", false, true},
		{[]string{"[[:digit:]]*"}, "lives", false, false},
		{[]string{`\*.txt`}, "*.txt", false, true},
		{[]string{`\*.txt`}, "a.txt", false, false},
		{[]string{"dir/***"}, "dir", true, true},
		{[]string{"dir/***"}, "dir/a/b", false, true},
		{[]string{"dir/***"}, "dirx", true, false},
		{[]string{"*"}, "anything", false, true},
		{nil, "anything", false, false},
	}
	for _, tt := range tests {
		l, err := Parse(tt.rules)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.Excluded(tt.name, tt.isDir); got != tt.want {
			t.Errorf("rules %q: Excluded(%q, dir=%v) = %v, want %v", tt.rules, tt.name, tt.isDir, got, tt.want)
		}
	}
}

func TestMatchDoesNotBlowUp(t *testing.T) {
	pattern := strings.Repeat("*a", 40) + "b"
	text := strings.Repeat("a", 4000)
	if Match(pattern, text) {
		t.Error("matched")
	}
}

// TestAgreesWithRsync lists a tree with the real rsync and each rule set, and compares the
// names it transfers with what the matcher keeps.
func TestAgreesWithRsync(t *testing.T) {
	rsync, err := exec.LookPath("rsync")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("rsync not installed (required under CI=true)")
		}
		t.Skip("rsync not installed")
	}
	src := t.TempDir()
	for _, name := range []string{
		"a.log", "a.txt", "b.txt", "ab.txt", "9lives", "keep.txt", "dir/keep.txt", "dir/x.log",
		"dir/sub/z", "cache/blob", "x/cache/blob", "a/b", "x/a/b", "xa/b", "x/a/q/r/z", "[br].c",
		"dirx/f", "dir/***x", "sp ace/f", "deep/a/b/c/d.txt",
	} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, rules := range [][]string{
		{"*.log"}, {"cache/"}, {"/keep.txt"}, {"keep.txt"}, {"a/b"}, {"/a/*"}, {"/a/**"},
		{"a/**/z"}, {"**/z"}, {"?.txt"}, {"[ab].txt"}, {"[!ab].txt"}, {"[[:digit:]]*"},
		{"dir/***"}, {"+ keep.txt", "- *.txt"}, {"- d*/", "+ *"}, {"*/sub"}, {"deep/*/b"},
		{"+ */", "+ *.txt", "- *"}, {`\[br\].c`}, {"[[]br].c"}, {"sp ace"},
	} {
		args := []string{"-rn", "--out-format=%n"}
		for _, r := range rules {
			args = append(args, "--filter="+ruleAsFilter(r))
		}
		out, err := exec.Command(rsync, append(args, src+"/", t.TempDir()+"/")...).CombinedOutput()
		if err != nil {
			t.Fatalf("rsync %q: %v\n%s", args, err, out)
		}
		var want []string
		for _, line := range strings.Split(string(out), "\n") {
			if line = strings.TrimSuffix(line, "/"); line != "" && line != "." {
				want = append(want, line)
			}
		}
		l, err := Parse(rules)
		if err != nil {
			t.Fatal(err)
		}
		got := walk(t, src, l)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("rules %q:\n got %q\nwant %q", rules, got, want)
		}
	}
}

// ruleAsFilter writes a protocol-27 rule as a --filter argument.
func ruleAsFilter(r string) string {
	if strings.HasPrefix(r, "+ ") || strings.HasPrefix(r, "- ") {
		return r
	}
	return "- " + r
}

// walk lists the tree as a sender would: excluded directories are not entered.
func walk(t *testing.T, root string, l *List) []string {
	var names []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if l.Excluded(rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		names = append(names, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func TestParseForModernRules(t *testing.T) {
	rules := []string{"- *.tmp", "+ keep.tmp", "-s hidden", "-r protected", "-! *.html", "-/ top", "-p perish"}
	// The first matching rule decides, so keep.tmp (after "- *.tmp") is still excluded.
	tests := []struct {
		name  string
		side  Side
		isDir bool
		want  bool
	}{
		{"a.tmp", Receiver, false, true},
		{"hidden", Sender, false, true},
		{"hidden", Receiver, false, true}, // "-! *.html" excludes what is not html
		{"x.html", Receiver, false, false},
		{"protected.html", Sender, false, false},
		{"sub/top.html", Receiver, false, false},
		{"perish.html", Receiver, false, false},
	}
	for _, tt := range tests {
		l, err := ParseFor(rules, true, tt.side)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.Excluded(tt.name, tt.isDir); got != tt.want {
			t.Errorf("side %d: Excluded(%q) = %v, want %v", tt.side, tt.name, got, tt.want)
		}
	}
	l, _ := ParseFor([]string{"-r protected", "-/ top"}, true, Receiver)
	if !l.Excluded("protected", false) || !l.Excluded("top", false) || l.Excluded("sub/top", false) {
		t.Errorf("receiver-side or anchored rule not applied")
	}
	l, _ = ParseFor([]string{"-r protected"}, true, Sender)
	if l.Excluded("protected", false) {
		t.Errorf("receiver-only rule applied on the sender")
	}
	for _, bad := range []string{": .rsync-filter", "-C", "x foo", "-q foo"} {
		if _, err := ParseFor([]string{bad}, true, Receiver); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
