package db_test

import (
	"sync"
	"testing"
	"time"

	"github.com/portico-sh/portico/db"
)

// testSuppressedAccess: counts of suppressed denials add up into one row per source address
// and minute, concurrently too, among the account-less rows; they are pruned like the others.
func testSuppressedAccess(t *testing.T, s db.Store) {
	minute := time.Date(2026, 11, 1, 12, 5, 0, 0, time.UTC)
	add := func(at time.Time, remote string, n int64) {
		t.Helper()
		e := db.AccessEntry{Time: at, Service: "pgs", Method: "key", RemoteAddr: remote, Outcome: "denied",
			Reason: "more than 10 denied attempts in a minute", Count: n}
		if err := s.AddSuppressedAccess(ctx, e); err != nil {
			t.Fatalf("AddSuppressedAccess(%s, %s, %d): %v", at, remote, n, err)
		}
	}
	add(minute.Add(3*time.Second), "192.0.2.7", 5)
	add(minute.Add(59*time.Second+999*time.Millisecond), "192.0.2.7", 2)
	add(minute.Add(time.Minute), "192.0.2.7", 1) // the next minute: a row of its own
	add(minute.Add(10*time.Second), "2001:db8::/64", 4)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				if err := s.AddSuppressedAccess(ctx, db.AccessEntry{Time: minute.Add(30 * time.Second), RemoteAddr: "198.51.100.1", Count: 1}); err != nil {
					t.Errorf("concurrent AddSuppressedAccess: %v", err)
				}
			}
		})
	}
	wg.Wait()
	// A denied row of the same source and minute is a row of its own.
	if err := s.AppendAccess(ctx, db.AccessEntry{Time: minute, Service: "pgs", RemoteAddr: "192.0.2.7", Outcome: "denied"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddSuppressedAccess(ctx, db.AccessEntry{Time: minute, RemoteAddr: "192.0.2.7", Count: 0}); err == nil {
		t.Error("a count of 0 was accepted")
	}

	got, err := s.ListAccess(ctx, 0, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		time    time.Time
		remote  string
		outcome string
		count   int64
	}
	var rows []row
	for _, e := range got {
		rows = append(rows, row{e.Time, e.RemoteAddr, e.Outcome, e.Count})
	}
	want := []row{
		{minute.Add(time.Minute), "192.0.2.7", "suppressed", 1},
		{minute, "198.51.100.1", "suppressed", 40},
		{minute, "2001:db8::/64", "suppressed", 4},
		{minute, "192.0.2.7", "suppressed", 7},
		{minute, "192.0.2.7", "denied", 1},
	}
	if len(rows) != len(want) {
		t.Fatalf("account-less rows %+v, want %+v", rows, want)
	}
	seen := map[row]bool{}
	for _, r := range rows {
		seen[row{r.time.UTC(), r.remote, r.outcome, r.count}] = true
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("no row %+v among %+v", w, rows)
		}
	}
	if got[0].Reason != "more than 10 denied attempts in a minute" || got[0].Service != "pgs" {
		t.Errorf("the suppressed row lost its reason or service: %+v", got[0])
	}
	if n, err := s.PruneAccess(ctx, minute.Add(time.Minute)); err != nil || n != 4 {
		t.Errorf("PruneAccess = %d, %v; want the 4 rows of the first minute", n, err)
	}
}
