package pipe

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// TestReadersPerTopicAreCapped is issue 8 item 10: a topic's memory grows with its readers, so
// a topic takes at most MaxReaders of them (subscribers and pipe clients); the next is refused
// and room comes back when one leaves. Readers that never read, fed round-robin until every
// buffer is full, then hold at most MaxReaders buffers.
func TestReadersPerTopicAreCapped(t *testing.T) {
	const bufSize, maxReaders = 1 << 20, 8
	b := NewMemoryBroker(MemoryOptions{BufferSize: bufSize, StallTimeout: time.Hour, MaxReaders: maxReaders})
	base := heapInUse()
	var readers []Client
	refused := 0
	for i := range 100 {
		role := Subscriber
		if i%2 == 1 {
			role = Peer
		}
		c, err := b.Join(context.Background(), JoinRequest{Topic: aliceT, Role: role, Grant: grant("alice")})
		if errors.Is(err, ErrTooManyReaders) {
			refused++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Leave)
		readers = append(readers, c)
	}
	if len(readers) != maxReaders || refused != 100-maxReaders {
		t.Fatalf("%d readers joined and %d were refused, want %d and %d", len(readers), refused, maxReaders, 100-maxReaders)
	}
	pub := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("alice"), Dispatch: RoundRobin})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	for pub.Publish(ctx, make([]byte, 64<<10)) == nil { // until every buffer is full
	}
	held := heapInUse() - base
	t.Logf("100 readers asked for, %d joined; with their buffers full the topic holds %.1f MiB", len(readers), float64(held)/(1<<20))
	if limit := uint64(maxReaders*(bufSize+64<<10) + 4<<20); held > limit {
		t.Errorf("the topic holds %d bytes, want at most %d", held, limit)
	}

	// A publisher is no reader: it still joins. A reader that leaves makes room.
	mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("alice")})
	readers[0].Leave()
	mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice")})
	if _, err := b.Join(context.Background(), JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice")}); !errors.Is(err, ErrTooManyReaders) {
		t.Errorf("a reader past the cap: %v, want ErrTooManyReaders", err)
	}
	// Other topics are not affected.
	mustJoin(t, b, JoinRequest{Topic: Topic{Owner: "alice", Name: "other"}, Role: Subscriber, Grant: grant("alice")})
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func TestReadersUncappedWhenOff(t *testing.T) {
	b := NewMemoryBroker(MemoryOptions{MaxReaders: -1})
	for range DefaultMaxReaders + 1 {
		mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice")})
	}
}
