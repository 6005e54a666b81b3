package rsync

import (
	"math"
	"testing"
	"time"
)

// TestMTimeRule is the decision table of the quick check's time comparison, -u's "newer" and
// whether a kept file's time is set again.
func TestMTimeRule(t *testing.T) {
	const sec = 1_700_000_000
	at := func(s int64, ns int64) time.Time { return time.Unix(s, ns) }
	none := mtimeRule{nsec: true}                 // protocol 31+, no --modify-window
	old := mtimeRule{}                            // protocol 27–30
	zero := mtimeRule{nsec: true, windowOn: true} // --modify-window=0
	minus := mtimeRule{nsec: true, windowOn: true, window: -1}
	two := mtimeRule{nsec: true, windowOn: true, window: 2}
	for _, tt := range []struct {
		name         string
		r            mtimeRule
		stored, sent time.Time
		cmp          int
		set          bool
	}{
		{"same instant", none, at(sec, 5), at(sec, 5), 0, false},
		{"same second, client newer", none, at(sec, 100), at(sec, 900), -1, true},
		{"same second, stored newer", none, at(sec, 900), at(sec, 100), 1, true},
		{"stored whole seconds (before nanoseconds were kept, scp, sftp)", none, at(sec, 0), at(sec, 900), 0, false},
		{"client sends whole seconds", none, at(sec, 900), at(sec, 0), 0, false},
		{"whole seconds apart", none, at(sec, 0), at(sec+1, 0), -1, true},
		{"protocol below 31 compares seconds", old, at(sec, 100), at(sec, 900), 0, false},
		{"protocol below 31, seconds differ", old, at(sec+1, 100), at(sec, 900), 1, true},
		{"explicit --modify-window=0 compares seconds", zero, at(sec, 100), at(sec, 900), 0, false},
		{"--modify-window=-1 compares nanoseconds", minus, at(sec, 100), at(sec, 900), -1, true},
		{"--modify-window=-1, stored whole seconds", minus, at(sec, 0), at(sec, 900), 0, false},
		{"--modify-window=2 within", two, at(sec, 100), at(sec+2, 900), 0, true},
		{"--modify-window=2 within, stored newer", two, at(sec+2, 0), at(sec, 0), 0, true},
		{"--modify-window=2 beyond", two, at(sec, 0), at(sec+3, 0), -1, true},
		{"--modify-window=2 beyond, stored newer", two, at(sec+3, 0), at(sec, 0), 1, true},
		{"before 1970", none, at(-5, 100), at(-5, 200), -1, true},
		{"whole seconds differ, client has nanoseconds", none, at(sec, 0), at(sec+1, 900), -1, true},
		// A client may send any 64-bit time: near the ends of the range, comparing times (or
		// subtracting seconds) overflowed, and -u skipped a file it should send or the reverse.
		{"client near the largest time, with nanoseconds", none, at(sec, 500), at(math.MaxInt64-10, 5), -1, true},
		{"client near the smallest time, with nanoseconds", none, at(sec, 500), at(math.MinInt64+10, 5), 1, true},
		{"client at the smallest time, whole seconds", none, at(sec, 0), at(math.MinInt64, 0), 1, true},
		{"client at the largest time, --modify-window=2", two, at(-sec, 0), at(math.MaxInt64, 0), -1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.compare(tt.stored, tt.sent); got != tt.cmp {
				t.Errorf("compare = %d, want %d", got, tt.cmp)
			}
			if got := tt.r.needsSet(tt.stored, tt.sent); got != tt.set {
				t.Errorf("needsSet = %v, want %v", got, tt.set)
			}
		})
	}
}

// TestMTimeRuleOf: the rule follows the options and the protocol.
func TestMTimeRuleOf(t *testing.T) {
	for _, tt := range []struct {
		cmd  string
		v    int
		want mtimeRule
	}{
		{"-r", 32, mtimeRule{nsec: true}},
		{"-r", 30, mtimeRule{}},
		{"--modify-window=0", 31, mtimeRule{nsec: true, windowOn: true}},
		{"-@-1", 32, mtimeRule{nsec: true, windowOn: true, window: -1}},
		{"--modify-window=-7", 32, mtimeRule{nsec: true, windowOn: true, window: -1}},
		{"--modify-window=3", 29, mtimeRule{windowOn: true, window: 3}},
	} {
		o, err := parseCommand([]string{"rsync", "--server", "-r", tt.cmd, ".", "x"})
		if err != nil {
			t.Fatal(err)
		}
		if got := mtimeRuleOf(o, tt.v); got != tt.want {
			t.Errorf("%s at %d: %+v, want %+v", tt.cmd, tt.v, got, tt.want)
		}
	}
}
