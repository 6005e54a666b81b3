//go:build linux && !race

package gateway

import (
	"net"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// Without the race detector, which shuffles the runtime's run queue on purpose (.ci/run runs
// this file's tests without it).

// TestReadyQueueOrder: connections whose requests arrive while the server is busy are woken in
// the order their bytes arrived, where the runtime's poller would wake them newest first.
func TestReadyQueueOrder(t *testing.T) {
	t.Run("one batch", func(t *testing.T) { testReadyQueueOrder(t, 24) })
	// More than one epoll_wait takes: the oldest of the first batch is still woken first.
	t.Run("more than a batch", func(t *testing.T) { testReadyQueueOrder(t, readyBatch+72) })
}

func testReadyQueueOrder(t *testing.T, n int) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one P: the order of waking is the order of running
	q := startReadyQueue(t)
	server, client := tcpPairs(t, n)
	waiters := make([]*readyWait, n)
	for i := range waiters {
		waiters[i] = q.waiter(server[i])
	}
	order := wokenOrder(t, client, func(i int) { waiters[i].wait(time.Now().Add(time.Minute), nil) },
		func() { waitForWaiters(t, q, n) })
	if !slices.IsSorted(order) {
		t.Fatalf("woken in the order %v, want the order of arrival", order)
	}
}

// TestRuntimeWakesNewestFirst is why there is a readyQueue: goroutines waiting in Read whose
// bytes arrive together are woken newest first. Should this fail after a Go upgrade, the
// runtime's order has changed and the readyQueue may no longer be needed.
func TestRuntimeWakesNewestFirst(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	server, client := tcpPairs(t, 24)
	order := wokenOrder(t, client, func(i int) {
		server[i].SetReadDeadline(time.Now().Add(time.Minute))
		server[i].Read(make([]byte, 1))
	}, func() {})
	if slices.IsSorted(order) {
		t.Fatalf("goroutines waiting in Read were woken in the order their bytes arrived (%v): the runtime's poller no longer wakes a batch newest first", order)
	}
	if order[0] != len(order)-1 {
		t.Logf("woken in the order %v", order)
	}
}

// wokenOrder starts a goroutine per client that calls park(i) and notes i when it returns;
// once parked has returned and they have had time to park, it writes a byte to each client,
// oldest first, while this goroutine holds the only P (GOMAXPROCS 1), so that they are woken as
// one batch; it returns the order they were woken in.
func wokenOrder(t *testing.T, client []net.Conn, park func(i int), parked func()) []int {
	t.Helper()
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range client {
		wg.Go(func() {
			park(i)
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
		})
	}
	parked()
	time.Sleep(20 * time.Millisecond)
	for _, c := range client {
		if _, err := c.Write([]byte("G")); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	return order
}
