//go:build linux && !race

package gateway

import (
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// Without the race detector, which shuffles the runtime's run queue on purpose (.ci/run runs
// this file's test without it).

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
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range n {
		w := q.waiter(server[i])
		wg.Go(func() {
			w.wait(time.Now().Add(time.Minute), stop)
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
		})
	}
	// Every waiter registered and parked; then the requests arrive, oldest first, while this
	// goroutine holds the only P: they are handed over as one batch.
	waitForWaiters(t, q, n)
	time.Sleep(20 * time.Millisecond)
	for _, c := range client {
		if _, err := c.Write([]byte("G")); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	if !slices.Equal(order, want) {
		t.Fatalf("woken in the order %v, want the order of arrival %v", order, want)
	}
}
