package gateway

import (
	"fmt"
	"net"
	"testing"
	"time"
)

// TestDeniedRowsAreBoundedAcrossSources: denials of keys of no account from many sources (an
// IPv6 attacker has billions of /64s) give a bounded number of rows per minute, and every
// attempt is still counted: in a row of its own or in a suppressed row's count.
func TestDeniedRowsAreBoundedAcrossSources(t *testing.T) {
	var d deniedRows
	minute := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	logged, attempts := 0, 0
	for i := range 5000 {
		remote := &net.TCPAddr{IP: net.ParseIP(fmt.Sprintf("2001:db8:%x:%x::1", i/65536, i%65536)), Port: 22}
		for range 7 {
			attempts++
			if d.log(remote, "pgs", "key", minute.Add(time.Duration(i)*time.Millisecond)) {
				logged++
			}
		}
	}
	// One source sends many more in the same minute.
	one := &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 22}
	for range 1000 {
		attempts++
		if d.log(one, "pgs", "key", minute.Add(30*time.Second)) {
			logged++
		}
	}
	rows := d.take(minute.Add(time.Minute))
	var counted int64
	for _, e := range rows {
		counted += e.Count
		if e.Outcome != "suppressed" || !e.Time.Equal(minute) {
			t.Errorf("row %+v", e)
		}
	}
	t.Logf("%d attempts from 5001 sources in a minute: %d rows one by one, %d suppressed rows", attempts, logged, len(rows))
	if logged > deniedRowsPerMinute {
		t.Errorf("%d denials logged one by one in a minute, want at most %d", logged, deniedRowsPerMinute)
	}
	if len(rows) > maxDeniedSources+1 {
		t.Errorf("%d suppressed rows for a minute, want at most %d", len(rows), maxDeniedSources+1)
	}
	if int(counted)+logged != attempts {
		t.Errorf("%d logged and %d counted, want all %d attempts accounted for", logged, counted, attempts)
	}
	if len(d.sources) != 0 {
		t.Errorf("%d sources kept after their minute was written", len(d.sources))
	}
}
