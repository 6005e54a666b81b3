package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name              string
		live, scan, floor uint64
		want              int
	}{
		{"no collection yet: the runtime's minimum is the floor", 0, 0, 64 * mib, 1600},
		{"tiny live heap: capped so the minimum is the floor", 1 * mib, 0, 64 * mib, 1600},
		{"small live heap", 4 * mib, 0, 64 * mib, 1500},
		{"stacks and globals count", 4 * mib, 4 * mib, 64 * mib, 750},
		{"live heap at half the floor: the default", 32 * mib, 0, 64 * mib, 100},
		{"live heap above the floor: the default", 200 * mib, 0, 64 * mib, 100},
		{"floor below the runtime's minimum: the default", 1 * mib, 0, 2 * mib, 100},
		{"floor equal to the runtime's minimum", 1 * mib, 0, 4 * mib, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := percentFor(tc.live, tc.scan, tc.floor)
			if got != tc.want {
				t.Fatalf("percentFor(%d, %d, %d) = %d, want %d", tc.live, tc.scan, tc.floor, got, tc.want)
			}
			// The goal the runtime makes of it reaches the floor (or the default goal) and
			// its minimum never passes the floor.
			if got > 100 && runtimeHeapMinimum*uint64(got)/100 > tc.floor {
				t.Fatalf("GOGC=%d makes the runtime's minimum %d, above the floor %d", got, runtimeHeapMinimum*uint64(got)/100, tc.floor)
			}
		})
	}
}

func cycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// TestFloorFollowsCollections: GOGC is raised while the live heap is small, falls back to 100
// once the live heap passes half the floor, and Stop restores 100.
func TestFloorFollowsCollections(t *testing.T) {
	defer debug.SetGCPercent(gcPercent())
	type adjustment struct {
		percent int
		cycles  uint64 // collections completed when it was made
	}
	adjusted := make(chan adjustment, 1000)
	f := start(32<<20, func(p int) { adjusted <- adjustment{p, cycles()} })
	defer f.Stop()
	if a := <-adjusted; a.cycles == 0 && a.percent != 800 {
		t.Fatalf("GOGC before any collection %d, want 800 (32 MiB floor)", a.percent)
	}
	// waitAfterGC collects and returns the adjustment made after that collection (the cleanup
	// runs once a collection found the sentinel unreachable).
	// A sentinel allocated while a collection marks survives it: then the next one finds it.
	waitAfterGC := func() int {
		t.Helper()
		runtime.GC()
		n := cycles()
		for range 1000 {
			select {
			case a := <-adjusted:
				if a.cycles >= n {
					return a.percent
				}
			default:
				runtime.GC()
			}
		}
		t.Fatal("no adjustment after 1000 collections")
		return 0
	}
	if p := waitAfterGC(); p <= 100 || p != gcPercent() {
		t.Fatalf("small live heap: adjusted to %d, GOGC is %d; want the same value, above 100", p, gcPercent())
	}
	held := make([][]byte, 48)
	for i := range held {
		held[i] = make([]byte, 1<<20)
	}
	if p := waitAfterGC(); p != 100 || gcPercent() != 100 {
		t.Fatalf("48 MiB live heap: adjusted to %d, GOGC is %d; want 100", p, gcPercent())
	}
	runtime.KeepAlive(held)
	held = nil
	if p := waitAfterGC(); p <= 100 {
		t.Fatalf("live heap freed: adjusted to %d, want above 100", p)
	}
	f.Stop()
	if p := gcPercent(); p != 100 {
		t.Fatalf("after Stop GOGC is %d, want 100", p)
	}
}
