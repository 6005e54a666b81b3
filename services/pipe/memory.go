package pipe

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-sh/portico/auth"
)

// Defaults of the memory broker's limits (SPEC §8.1).
const (
	DefaultBufferSize   = 1 << 20
	DefaultStallTimeout = 10 * time.Second
	// DefaultMaxReaders caps the readers of one topic: with a buffer each, a topic then holds
	// at most DefaultMaxReaders buffers, 64 MiB with the default buffer size.
	DefaultMaxReaders = 64
)

// chunkOverhead is what each queued chunk costs beyond its bytes in a reader's buffer, so that
// many tiny writes cannot hold more memory than the buffer size says.
const chunkOverhead = 64

// MemoryOptions are the limits of a memory broker.
type MemoryOptions struct {
	// BufferSize bounds the bytes queued for one reader (DefaultBufferSize when zero).
	BufferSize int
	// StallTimeout is how long a reader's buffer may stay full before the reader is dropped
	// (DefaultStallTimeout when zero).
	StallTimeout time.Duration
	// MaxReaders caps the readers (subscribers and pipe clients) of one topic, and so the
	// buffers it holds (DefaultMaxReaders when zero; no cap when negative).
	MaxReaders int
	Logger     *slog.Logger
}

// MemoryBroker is the in-process Broker of one gateway.
type MemoryBroker struct {
	bufSize    int
	stall      time.Duration
	maxReaders int
	log        *slog.Logger

	mu     sync.Mutex
	topics map[string]*topic
}

// NewMemoryBroker returns an empty in-process broker.
func NewMemoryBroker(o MemoryOptions) *MemoryBroker {
	if o.BufferSize <= 0 {
		o.BufferSize = DefaultBufferSize
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	if o.MaxReaders == 0 {
		o.MaxReaders = DefaultMaxReaders
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &MemoryBroker{bufSize: o.BufferSize, stall: o.StallTimeout, maxReaders: o.MaxReaders, log: o.Logger, topics: make(map[string]*topic)}
}

// topic is one open topic: it exists while it has clients.
type topic struct {
	name Topic
	// turn is held (a token in a 1-slot channel) while a chunk is delivered, so that every
	// reader sees the writers' chunks in one order.
	turn chan struct{}
	rr   int // round-robin position, guarded by turn
	// space is signalled whenever a reader of the topic takes a chunk, for a round-robin
	// writer waiting for any of them to make room.
	space chan struct{}

	readers atomic.Pointer[[]*memClient] // copy-on-write, replaced under MemoryBroker.mu

	// Guarded by MemoryBroker.mu.
	clients      []*memClient
	writers      int           // publishers still writing; pipe clients do not count
	readerJoined chan struct{} // closed and replaced whenever a reader joins
}

// memClient is one client on a topic of a MemoryBroker.
type memClient struct {
	b       *MemoryBroker
	t       *topic
	req     JoinRequest
	foreign bool // neither the owner nor on a public topic: admitted by a share list
	events  chan Event
	dropped chan struct{}
	stopped chan struct{} // closed when writeErr is set

	// Guarded by MemoryBroker.mu.
	left      bool
	writing   bool  // a publisher counted in t.writers
	writeErr  error // set when this client may write no more (left, access ended, dropped)
	sawWriter bool  // a publisher was on the topic while this reader was

	// The reader's queue, guarded by qmu.
	qmu       sync.Mutex
	queue     [][]byte
	queued    int       // bytes (with chunkOverhead) in queue
	fullSince time.Time // when a writer first found the buffer full; zero when it is not
	end       error     // once set no chunk is queued; Next returns it after the queue drains
	ready     chan struct{}
}

// Join attaches a client to req.Topic, creating the topic if it is not open yet.
func (b *MemoryBroker) Join(ctx context.Context, req JoinRequest) (Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	owner := req.Topic.Owner
	if len(req.Share) > 0 {
		if req.Topic.Public() {
			return nil, ErrPublicShared
		}
		if req.Grant.Account != owner {
			return nil, ErrNotOwner
		}
	}
	key := req.Topic.String()

	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[key]
	var lists []auth.ShareList
	if t != nil {
		lists = t.shareLists()
	}
	if !auth.MayUse(req.Grant, owner, req.Topic.Public(), lists...) {
		return nil, ErrNoAccess
	}
	foreign := !req.Topic.Public() && req.Grant.Account != owner
	if reads(req.Role) && t != nil && b.maxReaders > 0 && t.readerCount() >= b.maxReaders {
		return nil, &TooManyReadersError{Topic: req.Topic, Max: b.maxReaders}
	}
	if t == nil {
		t = &topic{name: req.Topic, turn: make(chan struct{}, 1), space: make(chan struct{}, 1), readerJoined: make(chan struct{})}
		t.readers.Store(&[]*memClient{})
		b.topics[key] = t
	}
	c := &memClient{
		b: b, t: t, req: req, foreign: foreign,
		events:  make(chan Event, 16),
		dropped: make(chan struct{}),
		stopped: make(chan struct{}),
		ready:   make(chan struct{}, 1),
	}
	t.clients = append(t.clients, c)
	if c.req.Role == Publisher {
		c.writing = true
		t.writers++
		for _, o := range t.clients {
			o.sawWriter = true
		}
	}
	c.sawWriter = t.writers > 0
	if c.reads() {
		t.storeReaders()
		signal(t.space) // a round-robin writer waiting for room may use the newcomer
		close(t.readerJoined)
		t.readerJoined = make(chan struct{})
		for _, o := range t.clients {
			if o != c && o.writes() {
				o.notify(ReaderJoined)
			}
		}
	}
	return c, nil
}

// Topics lists the topics account owns and the public topics its clients have open.
func (b *MemoryBroker) Topics(account string) []TopicStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []TopicStats
	for key, t := range b.topics {
		if t.name.Owner != account && !(t.name.Public() && t.hasClientOf(account)) {
			continue
		}
		st := TopicStats{Topic: key, Public: t.name.Public(), Shared: auth.ShareList{}}
		for _, c := range t.clients {
			switch c.req.Role {
			case Publisher:
				st.Publishers++
			case Subscriber:
				st.Subscribers++
			case Peer:
				st.Pipes++
			}
		}
		for _, l := range t.shareLists() {
			for _, who := range l {
				if !slices.Contains(st.Shared, who) {
					st.Shared = append(st.Shared, who)
				}
			}
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b TopicStats) int {
		switch {
		case a.Topic < b.Topic:
			return -1
		case a.Topic > b.Topic:
			return 1
		}
		return 0
	})
	return out
}

// shareLists returns the access lists of the owner's clients on t. Caller holds b.mu.
func (t *topic) shareLists() []auth.ShareList {
	var ls []auth.ShareList
	for _, c := range t.clients {
		if len(c.req.Share) > 0 {
			ls = append(ls, c.req.Share)
		}
	}
	return ls
}

func (t *topic) hasClientOf(account string) bool {
	return slices.ContainsFunc(t.clients, func(c *memClient) bool { return c.req.Grant.Account == account })
}

// storeReaders publishes the readers whose stream goes on, for writers and WaitReader.
// Caller holds b.mu.
func (t *topic) storeReaders() {
	rs := make([]*memClient, 0, len(t.clients))
	for _, c := range t.clients {
		if c.reads() && !c.ended() {
			rs = append(rs, c)
		}
	}
	t.readers.Store(&rs)
}

// ended reports whether the reader's stream has ended (it may still be draining its queue).
func (c *memClient) ended() bool {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return c.end != nil
}

// readerCount is how many of the topic's clients read. Caller holds b.mu.
func (t *topic) readerCount() int {
	n := 0
	for _, c := range t.clients {
		if c.reads() {
			n++
		}
	}
	return n
}

func reads(r Role) bool { return r == Subscriber || r == Peer }

func (c *memClient) reads() bool  { return reads(c.req.Role) }
func (c *memClient) writes() bool { return c.req.Role == Publisher || c.req.Role == Peer }

// notify queues a status event without ever blocking: status lines may be lost, data not.
func (c *memClient) notify(e Event) {
	select {
	case c.events <- e:
	default:
	}
}

func (c *memClient) Events() <-chan Event     { return c.events }
func (c *memClient) Dropped() <-chan struct{} { return c.dropped }

// HasReader reports whether another client reads the topic.
func (c *memClient) HasReader() bool {
	return slices.ContainsFunc(*c.t.readers.Load(), func(r *memClient) bool { return r != c })
}

// WaitReader blocks until another client reads the topic.
func (c *memClient) WaitReader(ctx context.Context) error {
	for {
		c.b.mu.Lock()
		found := c.HasReader()
		joined := c.t.readerJoined
		err := c.writeErr
		c.b.mu.Unlock()
		switch {
		case err != nil:
			return err
		case found:
			return nil
		}
		select {
		case <-joined:
		case <-c.stopped:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Publish delivers p to the topic's readers: all of them, or the next one for RoundRobin.
func (c *memClient) Publish(ctx context.Context, p []byte) error {
	if !c.writes() {
		return errors.New("pipe: this client does not write")
	}
	select {
	case c.t.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.t.turn }()
	if err := c.Err(); err != nil {
		return err
	}
	if len(p) == 0 {
		return nil
	}
	if c.req.Dispatch == RoundRobin {
		return c.deliverNext(ctx, p)
	}
	return c.deliverAll(ctx, p)
}

// targets are the readers a chunk of c's goes to: every reader of the topic, less c itself
// unless it asked for its own writes back.
func (c *memClient) targets() []*memClient {
	readers := *c.t.readers.Load()
	if c.req.Role == Peer && !c.req.Echo && slices.Contains(readers, c) {
		readers = slices.DeleteFunc(slices.Clone(readers), func(r *memClient) bool { return r == c })
	}
	return readers
}

// deliverAll gives p to every reader. It offers p to all of them first, so that every full
// buffer's stall clock starts together, then waits for the full ones to make room: however
// many readers stall, the publisher waits at most about one stall timeout. Caller holds
// t.turn.
func (c *memClient) deliverAll(ctx context.Context, p []byte) error {
	pending := c.targets()
	for {
		if err := c.Err(); err != nil {
			return err
		}
		full := pending[:0:0]
		for _, r := range pending {
			if queued, ended, _ := r.offer(p); !queued && !ended {
				full = append(full, r)
			}
		}
		if len(full) == 0 {
			return nil
		}
		pending = full
		if err := c.waitForRoom(ctx, pending); err != nil {
			return err
		}
	}
}

// deliverNext gives p to the next reader in turn that has room. When none has, it waits
// for any of them (or a reader that joins meanwhile) to make room. Caller holds t.turn.
func (c *memClient) deliverNext(ctx context.Context, p []byte) error {
	t := c.t
	for {
		if err := c.Err(); err != nil {
			return err
		}
		readers := c.targets()
		n := len(readers)
		start := 0
		if n > 0 {
			start = t.rr % n
		}
		var full []*memClient
		for i := range n {
			r := readers[(start+i)%n]
			queued, ended, _ := r.offer(p)
			switch {
			case queued:
				t.rr = start + i + 1
				return nil
			case !ended:
				full = append(full, r)
			}
		}
		if len(full) == 0 {
			return nil // nobody reads: the chunk is dropped, as with no subscriber at all
		}
		if err := c.waitForRoom(ctx, full); err != nil {
			return err
		}
	}
}

// waitForRoom waits until one of the full readers may have made room (a reader of the topic
// took a chunk, ended or joined), or until the first of them has been full for the stall
// timeout; the readers that have been are dropped. It returns early with the writer's own
// error when the writer may write no more.
func (c *memClient) waitForRoom(ctx context.Context, full []*memClient) error {
	now := time.Now()
	var next time.Time
	for _, r := range full {
		deadline := r.fullSinceOr(now).Add(c.b.stall)
		switch {
		case !deadline.After(now):
			r.drop()
		case next.IsZero() || deadline.Before(next):
			next = deadline
		}
	}
	if next.IsZero() {
		return nil // every full reader was dropped: offer again
	}
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	select {
	case <-c.t.space:
	case <-timer.C:
	case <-c.stopped:
		return c.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// Stopped is closed when the client may write no more; Err says why.
func (c *memClient) Stopped() <-chan struct{} { return c.stopped }

// Err is why the client may write no more (ErrLeft, ErrAccessEnded, ErrDropped), or nil.
func (c *memClient) Err() error {
	select {
	case <-c.stopped: // writeErr is set; the broker's lock is taken only then
		c.b.mu.Lock()
		defer c.b.mu.Unlock()
		return c.writeErr
	default:
		return nil
	}
}

// offer queues p if the reader has room. Otherwise it reports whether the reader has ended
// (it takes nothing more) or since when its buffer has been full.
func (c *memClient) offer(p []byte) (queued, ended bool, fullSince time.Time) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	switch {
	case c.end != nil:
		return false, true, time.Time{}
	case c.roomFor(p):
		c.push(p)
		return true, false, time.Time{}
	}
	if c.fullSince.IsZero() {
		c.fullSince = time.Now()
	}
	return false, false, c.fullSince
}

// fullSinceOr is when the reader's buffer was first found full, or now when it is not full.
func (c *memClient) fullSinceOr(now time.Time) time.Time {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.fullSince.IsZero() {
		return now
	}
	return c.fullSince
}

// roomFor reports whether p fits in the buffer. An empty buffer takes any chunk, so a buffer
// smaller than a chunk still moves. Caller holds qmu.
func (c *memClient) roomFor(p []byte) bool {
	return c.queued == 0 || c.queued+len(p)+chunkOverhead <= c.b.bufSize
}

// push queues p and wakes the reader. Caller holds qmu.
func (c *memClient) push(p []byte) {
	c.queue = append(c.queue, p)
	c.queued += len(p) + chunkOverhead
	signal(c.ready)
}

// Next returns the reader's next chunk.
func (c *memClient) Next(ctx context.Context) ([]byte, error) {
	if !c.reads() {
		return nil, errors.New("pipe: this client does not read")
	}
	for {
		c.qmu.Lock()
		if len(c.queue) > 0 && c.end != ErrDropped {
			p := c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			if len(c.queue) == 0 {
				c.queue = nil // let the backing array go
			}
			c.queued -= len(p) + chunkOverhead
			c.fullSince = time.Time{}
			c.qmu.Unlock()
			signal(c.t.space)
			return p, nil
		}
		end := c.end
		c.qmu.Unlock()
		if end != nil {
			return nil, end
		}
		select {
		case <-c.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// finish ends the reader's stream with err once its queue drains (ErrDropped at once). It
// keeps the first reason.
func (c *memClient) finish(err error) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.end != nil {
		return
	}
	c.end = err
	if err == ErrDropped {
		c.queue, c.queued = nil, 0
	}
	signal(c.ready)
	signal(c.t.space)
}

// drop removes a stalled reader from its topic.
func (c *memClient) drop() {
	c.finish(ErrDropped)
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-c.dropped:
		return
	default:
		close(c.dropped)
	}
	c.stopWriting(ErrDropped)
	b.detach(c)
	b.log.Info("pipe reader dropped", "topic", c.t.name.String(), "account", c.req.Grant.Account,
		"identity", c.req.Grant.Identity, "stalled", b.stall.String())
}

// CloseWrite ends this client's writing.
func (c *memClient) CloseWrite() {
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	c.stopWriting(nil)
}

// stopWriting takes c off the topic's publishers; err, when not nil, is what its later
// Publish calls return. When the last publisher goes, subscribers that saw one end. Caller
// holds b.mu.
func (c *memClient) stopWriting(err error) {
	if err != nil && c.writeErr == nil {
		c.writeErr = err
		close(c.stopped)
	}
	if !c.writing {
		return
	}
	c.writing = false
	t := c.t
	t.writers--
	if t.writers > 0 {
		return
	}
	for _, o := range t.clients {
		if o.req.Role == Subscriber && !o.req.Keep && o.sawWriter {
			o.finish(io.EOF)
		}
	}
	t.storeReaders()
}

// Leave detaches the client from its topic.
func (c *memClient) Leave() {
	c.finish(io.EOF)
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	c.stopWriting(ErrLeft)
	c.b.detach(c)
}

// detach removes c from its topic, ends the access of foreign clients that no share list
// admits any more, and forgets the topic when it has no clients. Caller holds b.mu.
func (b *MemoryBroker) detach(c *memClient) {
	if c.left {
		return
	}
	c.left = true
	t := c.t
	t.clients = slices.DeleteFunc(t.clients, func(o *memClient) bool { return o == c })
	if c.reads() {
		t.storeReaders()
	}
	if len(c.req.Share) > 0 {
		lists := t.shareLists()
		for _, o := range t.clients {
			if o.foreign && !auth.MayUse(o.req.Grant, t.name.Owner, false, lists...) {
				o.stopWriting(ErrAccessEnded)
				o.finish(ErrAccessEnded)
			}
		}
		t.storeReaders()
	}
	if len(t.clients) == 0 {
		delete(b.topics, t.name.String())
	}
}

// signal wakes the one waiter of a 1-slot channel without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
