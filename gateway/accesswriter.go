package gateway

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/portico-sh/portico/db"
)

// Bounds of the access-log writer.
const (
	// accessQueue is how many access-log entries may wait to be written. When it is full, a
	// connection waits for room (at most storeTimeout) and is refused if none comes.
	accessQueue = 4096
	// accessBatch is the most entries written in one transaction.
	accessBatch = 512
	// accessRetryMax is the longest pause between tries when writing fails.
	accessRetryMax = 5 * time.Second
	// accessFinalFlush bounds the last write at shutdown.
	accessFinalFlush = 10 * time.Second
	// accessLinger is how long the writer waits, after the first entry of a batch arrives, for
	// more to join it. Connections do not wait for it (an allowed connection is served once its
	// entry is queued); it turns a commit per connection into a commit per linger on a busy
	// gateway. A sync request ends the wait at once.
	accessLinger = 50 * time.Millisecond
)

// batchStore writes access-log entries and key use times in one transaction; db.Store is one.
type batchStore interface {
	AppendAccessBatch(ctx context.Context, entries []db.AccessEntry, touched map[int64]time.Time) error
}

// accessRecord is one authentication decision to record: its entry, and the key it used; or,
// with synced set, no entry but a request to be told when everything queued before it is
// written.
type accessRecord struct {
	entry  db.AccessEntry
	keyID  int64         // the login key or CA to mark as used; 0 for none
	synced chan struct{} // closed once the records queued before it are written
}

// errAccessLogFull is why a connection is refused when the access log cannot keep up.
var errAccessLogFull = errors.New("the access log cannot keep up")

// accessWriter records authentication decisions in the background, in batches: each
// connection's entry is queued (an allowed connection is served only once its entry is
// queued), and a writer commits whatever is queued in one transaction, so a busy gateway does
// not pay one commit per connection. While writing fails, new entries are refused — an allowed
// connection that cannot be recorded is refused — and what is queued is tried again. At
// shutdown everything queued is written.
type accessWriter struct {
	store batchStore
	log   *slog.Logger
	queue chan accessRecord

	mu      sync.Mutex
	failing error // the last write's error, until a write succeeds
}

func newAccessWriter(store batchStore, log *slog.Logger) *accessWriter {
	return &accessWriter{store: store, log: log, queue: make(chan accessRecord, accessQueue)}
}

// record queues r, waiting for room until ctx ends. It fails while writing fails.
func (w *accessWriter) record(ctx context.Context, r accessRecord) error {
	w.mu.Lock()
	failing := w.failing
	w.mu.Unlock()
	if failing != nil {
		return failing
	}
	select {
	case w.queue <- r:
		return nil
	default:
	}
	select {
	case w.queue <- r:
		return nil
	case <-ctx.Done():
		return errAccessLogFull
	}
}

// sync waits until every record queued before the call is written (so that reading the access
// log finds them), or ctx ends.
func (w *accessWriter) sync(ctx context.Context) error {
	r := accessRecord{synced: make(chan struct{})}
	select {
	case w.queue <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-r.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run writes what is queued until stop is closed, then writes the rest.
func (w *accessWriter) run(stop <-chan struct{}) {
	var batch []accessRecord
	for {
		select {
		case r := <-w.queue:
			batch = append(batch[:0], r)
		case <-stop:
			w.drain()
			return
		}
		batch = w.gather(batch, stop)
		w.write(batch, stop)
	}
}

// gather adds to batch what queues within accessLinger of its first record, up to accessBatch
// records; it returns early when a record asks to be synced or stop is closed.
func (w *accessWriter) gather(batch []accessRecord, stop <-chan struct{}) []accessRecord {
	if batch[0].synced != nil {
		return batch
	}
	linger := time.NewTimer(accessLinger)
	defer linger.Stop()
	for len(batch) < accessBatch {
		select {
		case r := <-w.queue:
			batch = append(batch, r)
			if r.synced != nil {
				return batch
			}
		case <-linger.C:
			return batch
		case <-stop:
			return batch
		}
	}
	return batch
}

// write writes batch, trying again with growing pauses until it succeeds or stop is closed
// (then once more, within accessFinalFlush).
func (w *accessWriter) write(batch []accessRecord, stop <-chan struct{}) {
	defer func() {
		for _, r := range batch {
			if r.synced != nil {
				close(r.synced)
			}
		}
	}()
	pause := 50 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		err := w.store.AppendAccessBatch(ctx, entriesOf(batch), touchesOf(batch))
		cancel()
		w.mu.Lock()
		w.failing = err
		w.mu.Unlock()
		if err == nil {
			return
		}
		w.log.Error("writing the access log failed; new connections are refused until it works again", "entries", len(batch), "err", err)
		select {
		case <-time.After(pause):
			pause = min(2*pause, accessRetryMax)
		case <-stop:
			ctx, cancel := context.WithTimeout(context.Background(), accessFinalFlush)
			defer cancel()
			if err := w.store.AppendAccessBatch(ctx, entriesOf(batch), touchesOf(batch)); err != nil {
				w.log.Error("access-log entries lost at shutdown", "entries", len(batch), "err", err)
			}
			return
		}
	}
}

// drain writes everything still queued, at shutdown.
func (w *accessWriter) drain() {
	closed := make(chan struct{})
	close(closed)
	for {
		var batch []accessRecord
	more:
		for len(batch) < accessBatch {
			select {
			case r := <-w.queue:
				batch = append(batch, r)
			default:
				break more
			}
		}
		if len(batch) == 0 {
			return
		}
		w.write(batch, closed)
	}
}

func entriesOf(batch []accessRecord) []db.AccessEntry {
	out := make([]db.AccessEntry, 0, len(batch))
	for _, r := range batch {
		if r.synced == nil {
			out = append(out, r.entry)
		}
	}
	return out
}

// touchesOf is the last use of each key of the batch.
func touchesOf(batch []accessRecord) map[int64]time.Time {
	out := map[int64]time.Time{}
	for _, r := range batch {
		if r.keyID != 0 && r.entry.Time.After(out[r.keyID]) {
			out[r.keyID] = r.entry.Time
		}
	}
	return out
}
