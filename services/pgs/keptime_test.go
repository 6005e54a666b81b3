package pgs

import (
	"math"
	"testing"
	"time"
)

// TestKeptTimeExtremes: whatever time a client sends (int64 extremes, nanoseconds out of
// range or negative, which time.Unix carries into the seconds), KeptTime is within years 1
// and 9999 with nanoseconds within a second, is the time the tree stores for it (clampTime),
// and keeps an in-range time as sent, so that a file whose time differs is never taken as
// unchanged.
func TestKeptTimeExtremes(t *testing.T) {
	var f *rsyncFS
	for _, tt := range []struct {
		sec  int64
		nsec int64
	}{
		{0, 0}, {1, 1}, {-1, 999_999_999}, {math.MaxInt64, 0}, {math.MinInt64, 0},
		{math.MaxInt64, 999_999_999}, {math.MinInt64, -1}, {math.MaxInt64, 1_000_000_000},
		{math.MinInt64, math.MinInt32}, {math.MaxInt64, math.MaxInt32}, {minMTime, 0}, {minMTime, -1},
		{maxMTime, 999_999_999}, {maxMTime + 1, 0}, {minMTime - 1, 5}, {1700000000, -5},
	} {
		sent := time.Unix(tt.sec, tt.nsec)
		kept := f.KeptTime(sent)
		if kept.Unix() < minMTime || kept.Unix() > maxMTime || kept.Nanosecond() < 0 || kept.Nanosecond() > 999_999_999 {
			t.Errorf("%d %d: kept %d %d, out of range", tt.sec, tt.nsec, kept.Unix(), kept.Nanosecond())
		}
		sec, nsec := clampTime(sent.Unix(), int32(sent.Nanosecond()))
		if kept.Unix() != sec || int32(kept.Nanosecond()) != nsec {
			t.Errorf("%d %d: kept %d %d, the tree stores %d %d", tt.sec, tt.nsec, kept.Unix(), kept.Nanosecond(), sec, nsec)
		}
		if s := sent.Unix(); s >= minMTime && s <= maxMTime && !kept.Equal(sent) {
			t.Errorf("%d %d: an in-range time kept as %v, sent %v", tt.sec, tt.nsec, kept, sent)
		}
	}
}
