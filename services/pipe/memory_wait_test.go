package pipe

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/portico-sh/portico/auth"
)

// A round-robin publisher waiting because every reader it knew of was full uses a reader that
// joins meanwhile, instead of waiting for the full one to be dropped and losing the chunk.
func TestRoundRobinUsesAReaderThatJoinsWhileWaiting(t *testing.T) {
	b := NewMemoryBroker(MemoryOptions{BufferSize: 1024, StallTimeout: 400 * time.Millisecond})
	full := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice"), Keep: true})
	pub := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("alice"), Dispatch: RoundRobin})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pub.Publish(ctx, bytes.Repeat([]byte{'1'}, 1000)); err != nil {
		t.Fatal(err)
	}
	second := bytes.Repeat([]byte{'2'}, 1000)
	published := make(chan error, 1)
	go func() { published <- pub.Publish(ctx, second) }()
	time.Sleep(50 * time.Millisecond) // the publisher now waits for room
	late := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice"), Keep: true})

	if err := <-published; err != nil {
		t.Fatal(err)
	}
	nctx, ncancel := context.WithTimeout(context.Background(), time.Second)
	defer ncancel()
	p, err := late.Next(nctx)
	if err != nil || !bytes.Equal(p, second) {
		t.Fatalf("the subscriber that joined with room got %d bytes, %v; want the waiting chunk", len(p), err)
	}
	_ = full
}

// "One stalled reader cannot hold the others longer than the stall timeout": a multicast
// publisher offers a chunk to every reader before it waits for the full ones, so that the
// stall clocks of readers that stopped together run together, instead of one after the other.
func TestStalledReadersStallTogether(t *testing.T) {
	b := NewMemoryBroker(MemoryOptions{BufferSize: 1024, StallTimeout: time.Hour})
	var readers []*memClient
	for range 5 {
		c := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice"), Keep: true})
		readers = append(readers, c.(*memClient))
	}
	pub := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("alice")})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := pub.Publish(ctx, bytes.Repeat([]byte{'1'}, 1000)); err != nil {
		t.Fatal(err)
	}
	published := make(chan error, 1)
	go func() { published <- pub.Publish(ctx, bytes.Repeat([]byte{'2'}, 1000)) }()
	deadline := time.Now().Add(20 * time.Second)
	for _, r := range readers { // every full reader's clock starts, while the publisher waits
		for r.fullSinceOr(time.Time{}).IsZero() {
			if time.Now().After(deadline) {
				t.Fatal("the publisher waits for one full reader before offering to the others")
			}
			time.Sleep(time.Millisecond)
		}
	}
	cancel()
	if err := <-published; !errors.Is(err, context.Canceled) {
		t.Fatalf("publish: %v, want it waiting until cancelled", err)
	}
}

// Once the owner stops sharing, a guest's write that is still waiting for room stops too: it
// neither reaches the owner's readers afterwards nor keeps the topic's turn until the stall
// timeout (and then drops the owner's own reader because of it).
func TestAGuestWriteInFlightStopsWhenAccessEnds(t *testing.T) {
	b := NewMemoryBroker(MemoryOptions{BufferSize: 1024, StallTimeout: 3 * time.Second})
	sharing := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("alice"), Share: auth.ShareList{"bob"}})
	ownerSub := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice"), Keep: true})
	guest := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("bob")})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := guest.Publish(ctx, bytes.Repeat([]byte{'1'}, 1000)); err != nil {
		t.Fatal(err)
	}
	published := make(chan error, 1)
	go func() { published <- guest.Publish(ctx, []byte("after the owner left")) }()
	time.Sleep(50 * time.Millisecond) // the guest waits for room in ownerSub's buffer
	sharing.Leave()

	select {
	case err := <-published:
		if !errors.Is(err, ErrAccessEnded) {
			t.Errorf("the guest's write in flight returned %v, want ErrAccessEnded", err)
		}
	case <-time.After(time.Second):
		t.Errorf("the guest's write still holds the topic a second after access ended")
	}
	// The owner's reader takes its chunk: the guest's later write must not follow it.
	if p, err := ownerSub.Next(ctx); err != nil || len(p) != 1000 {
		t.Fatalf("owner's reader: %d bytes, %v", len(p), err)
	}
	select {
	case err := <-published:
		if !errors.Is(err, ErrAccessEnded) {
			t.Errorf("the guest's write in flight returned %v, want ErrAccessEnded", err)
		}
	case <-time.After(5 * time.Second):
	}
	nctx, ncancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer ncancel()
	if p, err := ownerSub.Next(nctx); err == nil {
		t.Fatalf("the owner's reader got %q from bob after bob's access ended", p)
	}
}

// A subscriber whose stream has ended (the last publisher left; it is only draining what it
// was sent) takes nothing more, so it does not count as a reader: a new `pub` waits for a
// subscriber instead of sending its bytes nowhere.
func TestAnEndedSubscriberIsNotAReaderForANewPublisher(t *testing.T) {
	b := NewMemoryBroker(MemoryOptions{})
	sub := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice")})
	first := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("alice")})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := first.Publish(ctx, []byte("one")); err != nil {
		t.Fatal(err)
	}
	first.Leave() // sub's stream ends after "one"; its client has not read it yet

	second := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("alice")})
	if second.HasReader() {
		wctx, wcancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer wcancel()
		werr := second.WaitReader(wctx)
		second.Publish(ctx, []byte("two"))
		got, err := readAll(sub)
		t.Fatalf("a new publisher counts the ended subscriber as a reader (WaitReader: %v); the subscriber got %q, %v and \"two\" went nowhere", werr, got, err)
	}
}
