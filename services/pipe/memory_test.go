package pipe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portico-sh/portico/auth"
)

func grant(account string) auth.Grant {
	return auth.Grant{
		AccountID: 1, Account: account, Method: auth.MethodKey, Identity: account + "@laptop",
		Service: auth.Pipe, Services: []auth.Service{auth.Pipe},
		KeyFingerprint: "SHA256:" + account + "-key",
	}
}

func mustJoin(t *testing.T, b Broker, req JoinRequest) Client {
	t.Helper()
	c, err := b.Join(context.Background(), req)
	if err != nil {
		t.Fatalf("join %s as %v: %v", req.Topic, req.Role, err)
	}
	t.Cleanup(c.Leave)
	return c
}

var aliceT = Topic{Owner: "alice", Name: "t"}

// readAll reads c's stream to its end.
func readAll(c Client) ([]byte, error) {
	var out []byte
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		p, err := c.Next(ctx)
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return out, err
		}
		out = append(out, p...)
	}
}

// collect reads c's stream in the background; wait returns what it read.
func collect(c Client) (wait func() ([]byte, error)) {
	var (
		out []byte
		err error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		out, err = readAll(c)
	}()
	return func() ([]byte, error) {
		<-done
		return out, err
	}
}

func TestMulticastKeepsOrderForEveryReader(t *testing.T) {
	b := NewMemoryBroker(MemoryOptions{BufferSize: 4 << 10})
	var waits []func() ([]byte, error)
	for range 3 {
		waits = append(waits, collect(mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice")})))
	}
	pub := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("alice")})
	var want []byte
	for i := range 2000 {
		p := fmt.Appendf(nil, "chunk %d %s\n", i, bytes.Repeat([]byte{'x'}, i%97))
		want = append(want, p...)
		if err := pub.Publish(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	pub.Leave()
	for i, wait := range waits {
		got, err := wait()
		if err != nil {
			t.Fatalf("reader %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("reader %d got %d bytes, want the %d published, in order", i, len(got), len(want))
		}
	}
}

func TestConcurrentPublishersGiveEveryReaderTheSameOrder(t *testing.T) {
	b := NewMemoryBroker(MemoryOptions{BufferSize: 2 << 10})
	var waits []func() ([]byte, error)
	for range 3 {
		waits = append(waits, collect(mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice")})))
	}
	var pubs []Client
	for range 4 {
		pubs = append(pubs, mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("alice")}))
	}
	var wg sync.WaitGroup
	for n, pub := range pubs {
		wg.Go(func() {
			defer pub.Leave()
			for i := range 500 {
				if err := pub.Publish(context.Background(), fmt.Appendf(nil, "[%d:%d]", n, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	first, err := waits[0]()
	if err != nil {
		t.Fatal(err)
	}
	for n := range pubs { // each publisher's chunks arrive whole and in its order
		var own []byte
		for i := range 500 {
			own = append(own, fmt.Appendf(nil, "[%d:%d]", n, i)...)
		}
		var seen []byte
		for _, part := range bytes.SplitAfter(first, []byte("]")) {
			if bytes.HasPrefix(part, fmt.Appendf(nil, "[%d:", n)) {
				seen = append(seen, part...)
			}
		}
		if !bytes.Equal(seen, own) {
			t.Fatalf("publisher %d's chunks are not whole and in order", n)
		}
	}
	for i, wait := range waits[1:] {
		got, err := wait()
		if err != nil || !bytes.Equal(got, first) {
			t.Fatalf("reader %d saw another order than reader 0 (err %v)", i+1, err)
		}
	}
}

func TestRoundRobinGivesEachChunkToOneReaderInTurn(t *testing.T) {
	b := NewMemoryBroker(MemoryOptions{})
	var subs []Client
	var waits []func() ([]byte, error)
	for range 3 {
		c := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice")})
		subs = append(subs, c)
	}
	pub := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("alice"), Dispatch: RoundRobin})
	for i := range 30 {
		if err := pub.Publish(context.Background(), []byte{byte('a' + i%3)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range subs {
		waits = append(waits, collect(c))
	}
	pub.Leave()
	for i, wait := range waits {
		got, err := wait()
		if err != nil {
			t.Fatal(err)
		}
		if want := bytes.Repeat([]byte{byte('a' + i)}, 10); !bytes.Equal(got, want) {
			t.Errorf("reader %d got %q, want %q", i, got, want)
		}
	}
}

func TestRoundRobinSkipsAFullReader(t *testing.T) {
	b := NewMemoryBroker(MemoryOptions{BufferSize: 256, StallTimeout: time.Hour})
	stuck := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice")})
	reader := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice")})
	wait := collect(reader)
	pub := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("alice"), Dispatch: RoundRobin})
	chunk := bytes.Repeat([]byte{'z'}, 100)
	for range 50 { // stuck takes one chunk, then has no room: the rest go to reader
		if err := pub.Publish(context.Background(), chunk); err != nil {
			t.Fatal(err)
		}
	}
	pub.Leave()
	got, err := wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 47*len(chunk) {
		t.Fatalf("the reading reader got %d bytes; a full reader should have been passed over", len(got))
	}
	stuck.Leave()
}

func TestStalledReaderIsDroppedAndTheOthersGoOn(t *testing.T) {
	b := NewMemoryBroker(MemoryOptions{BufferSize: 1 << 10, StallTimeout: 50 * time.Millisecond})
	stalled := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice")})
	wait := collect(mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice")}))
	pub := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("alice")})
	want := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16)
	for p := range slices.Chunk(want, 512) {
		if err := pub.Publish(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	pub.Leave()
	got, err := wait()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the reading subscriber got %d bytes (err %v), want %d", len(got), err, len(want))
	}
	select {
	case <-stalled.Dropped():
	default:
		t.Fatal("the stalled reader was not dropped")
	}
	if _, err := stalled.Next(context.Background()); !errors.Is(err, ErrDropped) {
		t.Fatalf("stalled reader's Next: %v, want ErrDropped", err)
	}
	if st := b.Topics("alice"); len(st) != 1 || st[0].Subscribers != 1 {
		t.Fatalf("the dropped reader is still on the topic: %+v", st)
	}
}

func TestReaderBufferIsBounded(t *testing.T) {
	const bufSize = 8 << 10
	for _, size := range []int{1, 100, 3000, 64 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			b := NewMemoryBroker(MemoryOptions{BufferSize: bufSize, StallTimeout: time.Hour})
			sub := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice")})
			pub := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("alice")})
			published := make(chan error, 1)
			go func() {
				for {
					if err := pub.Publish(context.Background(), make([]byte, size)); err != nil {
						published <- err
						return
					}
				}
			}()
			m := sub.(*memClient)
			for { // until the publisher has found the buffer full and waits
				m.qmu.Lock()
				full, queued, chunks := !m.fullSince.IsZero(), m.queued, len(m.queue)
				m.qmu.Unlock()
				if full {
					if limit := max(bufSize, size+chunkOverhead); queued > limit {
						t.Fatalf("%d bytes queued for one reader, limit %d", queued, limit)
					}
					if chunks > bufSize/(1+chunkOverhead)+1 {
						t.Fatalf("%d chunks queued for one reader", chunks)
					}
					break
				}
				time.Sleep(time.Millisecond)
			}
			sub.Leave() // the waiting publisher goes on
			pub.Leave()
			if err := <-published; !errors.Is(err, ErrLeft) {
				t.Fatalf("publish after leaving: %v, want ErrLeft", err)
			}
		})
	}
}

func TestSubscribersEndWhenTheLastWriterLeaves(t *testing.T) {
	b := NewMemoryBroker(MemoryOptions{})
	early := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice")})
	kept := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice"), Keep: true})
	p1 := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("alice")})
	p2 := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("alice")})
	waitEarly := collect(early)
	p1.Publish(context.Background(), []byte("one "))
	p1.Leave()
	p2.Publish(context.Background(), []byte("two"))
	p2.CloseWrite() // a publisher whose stdin ended
	got, err := waitEarly()
	if err != nil || string(got) != "one two" {
		t.Fatalf("subscriber got %q, %v; want \"one two\" and the end", got, err)
	}

	// With -k the stream goes on with the next publisher.
	p3 := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("alice")})
	p3.Publish(context.Background(), []byte(" three"))
	p3.Leave()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var kgot []byte
	for {
		p, err := kept.Next(ctx)
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("kept subscriber: %v, want it still waiting", err)
			}
			break
		}
		kgot = append(kgot, p...)
	}
	if string(kgot) != "one two three" {
		t.Fatalf("kept subscriber got %q", kgot)
	}
}

func TestSubscriberWaitsForAFirstWriter(t *testing.T) {
	b := NewMemoryBroker(MemoryOptions{})
	sub := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice")})
	// A reader joining and leaving does not end it; only a writer that came and went does.
	mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice")}).Leave()
	wait := collect(sub)
	pub := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("alice")})
	pub.Leave() // pub -e: nothing sent, the subscriber wakes and ends
	if got, err := wait(); err != nil || len(got) != 0 {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestPeersSeeTheOthersAndEchoOnlyWhenAsked(t *testing.T) {
	b := NewMemoryBroker(MemoryOptions{})
	a := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Peer, Grant: grant("alice"), Echo: true})
	p := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Peer, Grant: grant("alice")})
	sub := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice")})
	a.Publish(context.Background(), []byte("from a;"))
	p.Publish(context.Background(), []byte("from p;"))
	for name, tc := range map[string]struct {
		c    Client
		want string
	}{
		"a (echo)": {a, "from a;from p;"},
		"p":        {p, "from a;"},
		"sub":      {sub, "from a;from p;"},
	} {
		m := tc.c.(*memClient)
		m.qmu.Lock()
		got := string(bytes.Join(m.queue, nil))
		m.qmu.Unlock()
		if got != tc.want {
			t.Errorf("%s got %q, want %q", name, got, tc.want)
		}
	}
}

func TestJoinDecidesAccess(t *testing.T) {
	signup := auth.Grant{Method: auth.MethodSignup, Service: auth.Pipe}
	bobKey := grant("dave")
	bobKey.KeyFingerprint = "SHA256:shared-key"
	cases := []struct {
		name  string
		req   JoinRequest
		setup bool // alice has alice/t open, shared with bob and SHA256:shared-key
		want  error
	}{
		{"owner", JoinRequest{Topic: aliceT, Grant: grant("alice")}, false, nil},
		{"owner may share", JoinRequest{Topic: aliceT, Grant: grant("alice"), Share: auth.ShareList{"bob"}}, false, nil},
		{"shared by name", JoinRequest{Topic: aliceT, Grant: grant("bob")}, true, nil},
		{"shared by key", JoinRequest{Topic: aliceT, Grant: bobKey}, true, nil},
		{"not shared", JoinRequest{Topic: aliceT, Grant: grant("carol")}, true, ErrNoAccess},
		{"not open", JoinRequest{Topic: aliceT, Grant: grant("bob")}, false, ErrNoAccess},
		{"other topic", JoinRequest{Topic: Topic{"alice", "other"}, Grant: grant("bob")}, true, ErrNoAccess},
		{"public", JoinRequest{Topic: Topic{publicOwner, "news"}, Grant: grant("carol")}, false, nil},
		{"signup", JoinRequest{Topic: Topic{publicOwner, "news"}, Grant: signup}, false, ErrNoAccess},
		{"guest may not share", JoinRequest{Topic: aliceT, Grant: grant("bob"), Share: auth.ShareList{"carol"}}, true, ErrNotOwner},
		{"public needs no list", JoinRequest{Topic: Topic{publicOwner, "news"}, Grant: grant("carol"), Share: auth.ShareList{"bob"}}, false, ErrPublicShared},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := NewMemoryBroker(MemoryOptions{})
			if tc.setup {
				mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice"), Share: auth.ShareList{"bob", "SHA256:shared-key"}})
			}
			tc.req.Role = Subscriber
			c, err := b.Join(context.Background(), tc.req)
			if !errors.Is(err, tc.want) {
				t.Fatalf("join: %v, want %v", err, tc.want)
			}
			if c != nil {
				c.Leave()
			}
		})
	}
}

func TestAccessEndsWhenTheOwnerStopsSharing(t *testing.T) {
	b := NewMemoryBroker(MemoryOptions{})
	owner := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("alice"), Share: auth.ShareList{"bob"}})
	guestSub := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("bob"), Keep: true})
	guestPub := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("bob")})
	ownerSub := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice"), Keep: true})
	owner.Publish(context.Background(), []byte("before"))
	owner.Leave()

	got, err := readAll(guestSub)
	if string(got) != "before" || !errors.Is(err, ErrAccessEnded) {
		t.Fatalf("guest subscriber got %q, %v; want what came before, then ErrAccessEnded", got, err)
	}
	if err := guestPub.Publish(context.Background(), []byte("after")); !errors.Is(err, ErrAccessEnded) {
		t.Fatalf("guest publish after the owner left: %v", err)
	}
	if _, err := b.Join(context.Background(), JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("bob")}); !errors.Is(err, ErrNoAccess) {
		t.Fatalf("guest join after the owner left: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if p, err := ownerSub.Next(ctx); string(p) != "before" || err != nil {
		t.Fatalf("owner's own subscriber: %q, %v", p, err)
	}
}

func TestWaitReaderAndJoinEvents(t *testing.T) {
	b := NewMemoryBroker(MemoryOptions{})
	pub := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("alice")})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := pub.WaitReader(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReader with no reader: %v", err)
	}
	if pub.HasReader() {
		t.Fatal("HasReader with no reader")
	}
	waited := make(chan error, 1)
	go func() { waited <- pub.WaitReader(context.Background()) }()
	mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice")})
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	if e := <-pub.Events(); e != ReaderJoined {
		t.Fatalf("event %v, want ReaderJoined", e)
	}
}

func TestTopicsCountsClientsPerTopic(t *testing.T) {
	b := NewMemoryBroker(MemoryOptions{})
	mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("alice"), Share: auth.ShareList{"bob"}})
	mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("bob")})
	mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Subscriber, Grant: grant("alice")})
	mustJoin(t, b, JoinRequest{Topic: Topic{"alice", "chat"}, Role: Peer, Grant: grant("alice")})
	mustJoin(t, b, JoinRequest{Topic: Topic{publicOwner, "news"}, Role: Subscriber, Grant: grant("alice")})
	mustJoin(t, b, JoinRequest{Topic: Topic{publicOwner, "other"}, Role: Subscriber, Grant: grant("carol")})
	mustJoin(t, b, JoinRequest{Topic: Topic{"carol", "t"}, Role: Subscriber, Grant: grant("carol")})
	want := []TopicStats{
		{Topic: "alice/chat", Pipes: 1, Shared: auth.ShareList{}},
		{Topic: "alice/t", Publishers: 1, Subscribers: 2, Shared: auth.ShareList{"bob"}},
		{Topic: "public/news", Public: true, Subscribers: 1, Shared: auth.ShareList{}},
	}
	if got := b.Topics("alice"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("alice's topics:\n got %+v\nwant %+v", got, want)
	}
	if got := b.Topics("bob"); len(got) != 0 {
		t.Fatalf("bob owns no topic and has no public one open: %+v", got)
	}
}

func TestAGuestWaitingForAReaderHearsThatAccessEnded(t *testing.T) {
	b := NewMemoryBroker(MemoryOptions{})
	owner := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("alice"), Share: auth.ShareList{"bob"}})
	guest := mustJoin(t, b, JoinRequest{Topic: aliceT, Role: Publisher, Grant: grant("bob")})
	waited := make(chan error, 1)
	go func() { waited <- guest.WaitReader(context.Background()) }()
	owner.Leave()
	if err := <-waited; !errors.Is(err, ErrAccessEnded) {
		t.Fatalf("WaitReader: %v, want ErrAccessEnded", err)
	}
}
