package pipe

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"
)

// Clients of every role, owners sharing and guests, join, write, read
// (some slowly, so readers get dropped), wait and leave at random on one topic; with -race
// this finds no race, no deadlock, and the topic is gone at the end.
func TestRandomClientsNeitherRaceNorDeadlock(t *testing.T) {
	b := NewMemoryBroker(MemoryOptions{BufferSize: 2048, StallTimeout: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			r := rand.New(rand.NewSource(int64(i)))
			for ctx.Err() == nil {
				req := JoinRequest{Topic: aliceT, Role: Role(1 + r.Intn(3)), Grant: grant("alice"), Keep: r.Intn(2) == 0, Echo: r.Intn(2) == 0}
				if r.Intn(3) == 0 {
					req.Dispatch = RoundRobin
				}
				if r.Intn(4) == 0 {
					req.Grant = grant("bob")
				} else if r.Intn(3) == 0 {
					req.Share = []string{"bob"}
				}
				c, err := b.Join(ctx, req)
				if err != nil {
					continue
				}
				lctx, lcancel := context.WithTimeout(ctx, time.Duration(r.Intn(100))*time.Millisecond)
				var cw sync.WaitGroup
				if c.(*memClient).writes() {
					cw.Go(func() {
						for k := 0; lctx.Err() == nil; k++ {
							if c.Publish(lctx, fmt.Appendf(nil, "%d-%d;", i, k)) != nil {
								return
							}
						}
						c.CloseWrite()
					})
				}
				if c.(*memClient).reads() {
					slow := r.Intn(3) == 0
					cw.Go(func() {
						for {
							if _, err := c.Next(lctx); err != nil {
								return
							}
							if slow {
								time.Sleep(20 * time.Millisecond)
							}
						}
					})
				}
				if r.Intn(2) == 0 {
					cw.Go(func() { c.WaitReader(lctx) })
				}
				b.Topics("alice")
				cw.Wait()
				lcancel()
				c.Leave()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("clients stuck")
	}
	if n := len(b.Topics("alice")); n != 0 {
		t.Fatalf("%d topics left open", n)
	}
}
