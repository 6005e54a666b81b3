// Package gcfloor keeps the garbage collector's heap goal at or above a floor while the live
// heap is small. With the default GOGC=100 the goal is twice the live heap: a server whose live
// heap is a few MiB but that allocates fast (an HTTP server answering many small requests
// allocates a few KiB per request) then collects dozens of times a second, and every
// collection stops the world twice. On a machine whose cores are busy, stopping the world
// waits for every thread running Go code to reach a safe point, and a thread the kernel has
// taken off its core holds everyone for as long: requests in flight wait with it.
//
// With a floor of F bytes the goal is max(F, twice the live heap): memory use may reach F even
// when the live heap is smaller, and nothing changes once the live heap is above F/2.
package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// runtimeHeapMinimum is the runtime's minimum heap goal at GOGC=100, which it scales with GOGC:
// at GOGC=p the goal is never below runtimeHeapMinimum×p/100 (Go's defaultHeapMinimum).
const runtimeHeapMinimum = 4 << 20

// percentFor is the GOGC value that makes the heap goal max(floor, the default goal) for a live
// heap of live bytes and scan bytes of stacks and globals. The runtime's goal at GOGC=p is
// max(live + (live+scan)×p/100, runtimeHeapMinimum×p/100); the value is never below 100 (the
// default) and never makes the second term pass floor.
func percentFor(live, scan, floor uint64) int {
	limit := floor * 100 / runtimeHeapMinimum
	if limit <= 100 {
		return 100
	}
	if floor <= live {
		return 100
	}
	if live+scan == 0 { // no collection yet: the runtime's minimum makes the goal
		return int(limit)
	}
	p := (floor - live) * 100 / (live + scan)
	return int(min(limit, max(100, p)))
}

// Floor adjusts GOGC after every collection; see Start.
type Floor struct {
	floor    uint64
	onAdjust func(percent int) // for tests: called after each adjustment

	mu      sync.Mutex
	stopped bool
	percent int
	sample  []metrics.Sample // live heap, stacks and globals scanned
}

// sentinel is allocated once per collection; its cleanup runs once a collection found it
// unreachable. It holds a pointer and is larger than the tiny allocator's 16 bytes, so that it
// is an object of its own.
type sentinel struct {
	_ *byte
	_ [3]uint64
}

// Start sets GOGC so that the heap goal is at least floor bytes, and sets it again after every
// collection, from the live heap that collection found. It replaces any GOGC value: callers
// start it only when the operator has not set GOGC. The memory limit (GOMEMLIMIT) still applies.
func Start(floor uint64) *Floor {
	return start(floor, nil)
}

func start(floor uint64, onAdjust func(int)) *Floor {
	f := &Floor{floor: floor, onAdjust: onAdjust, sample: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.adjust()
	return f
}

// Stop stops adjusting and sets GOGC back to 100.
func (f *Floor) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	f.stopped = true
	debug.SetGCPercent(100)
}

// adjust sets GOGC from the live heap and arms the next adjustment; f.mu is held.
func (f *Floor) adjust() {
	metrics.Read(f.sample)
	var v [3]uint64
	for i, s := range f.sample {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	p := percentFor(v[0], v[1]+v[2], f.floor)
	if p != f.percent {
		debug.SetGCPercent(p)
		f.percent = p
	}
	runtime.AddCleanup(new(sentinel), func(f *Floor) { f.collected() }, f)
	if f.onAdjust != nil {
		f.onAdjust(p)
	}
}

func (f *Floor) collected() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.stopped {
		f.adjust()
	}
}
