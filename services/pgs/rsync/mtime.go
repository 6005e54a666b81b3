package rsync

import (
	"cmp"
	"time"
)

// mtimeRule is how a session compares a stored file's modification time with the one the
// client sent: the quick check, -u and whether a kept time needs setting all use it.
type mtimeRule struct {
	window   int64 // --modify-window: whole seconds; negative means nanoseconds
	windowOn bool  // --modify-window was given
	nsec     bool  // the protocol carries nanoseconds (31 and later)
}

// mtimeRuleOf is the rule of a session with options o at protocol version v.
func mtimeRuleOf(o *options, v int) mtimeRule {
	return mtimeRule{window: o.modifyWindow, windowOn: o.modifyWindowOn, nsec: v >= 31}
}

// useNsec reports whether the rule compares nanoseconds for these two times. That needs a
// protocol that carries them, no --modify-window or a negative one, and a sub-second part on
// both sides: a stored time of whole seconds (kept before nanoseconds were stored, or from scp
// or sftp) or a client that sends none is compared in whole seconds, so that an unchanged file
// is still skipped. An explicit --modify-window=0 compares whole seconds, as rsync's default.
func (r mtimeRule) useNsec(stored, sent time.Time) bool {
	return r.nsec && (!r.windowOn || r.window < 0) && stored.Nanosecond() != 0 && sent.Nanosecond() != 0
}

// compare orders a stored mtime against the client's: 0 when the rule counts them as equal,
// positive when the stored one is newer, negative when it is older.
//
// Seconds and nanoseconds are compared apart, and the seconds without subtracting them: a
// client may send any 64-bit time, and time.Time.Compare (or a difference) overflows near the
// ends of that range.
func (r mtimeRule) compare(stored, sent time.Time) int {
	a, b := stored.Unix(), sent.Unix()
	if r.useNsec(stored, sent) {
		if c := cmp.Compare(a, b); c != 0 {
			return c
		}
		return cmp.Compare(stored.Nanosecond(), sent.Nanosecond())
	}
	w := uint64(max(r.window, 0))
	switch { // uint64(a)-uint64(b) is the exact distance when a > b, whatever their signs
	case a > b && uint64(a)-uint64(b) > w:
		return 1
	case b > a && uint64(b)-uint64(a) > w:
		return -1
	}
	return 0
}

// needsSet reports whether touch sets the client's time on a file the quick check kept: when
// the times differ at the precision the rule compared them (nanoseconds where it uses them,
// else whole seconds). It then sets the client's full time, nanoseconds included. Times
// that only the whole-second comparison calls equal are left alone: stamping the client's
// exact time on content that was not compared at that precision would hide a same-second
// edit from every later upload, and an upgrade from whole-second times would otherwise
// rewrite every file's time.
func (r mtimeRule) needsSet(stored, sent time.Time) bool {
	if r.useNsec(stored, sent) {
		return !stored.Equal(sent)
	}
	return stored.Unix() != sent.Unix()
}
