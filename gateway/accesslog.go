package gateway

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
)

// Bounds on the access-log rows of keys that belong to no account: anyone can make such keys,
// and each attempt would otherwise be a row kept for the retention period. That holds for the
// attempts such a key is allowed (a sign-up or claim connection, which an unknown key gets
// whenever signups are open) as for those it is refused.
//
// So at most deniedRowsPerMinute + maxDeniedSources + 1 such rows are written in a minute,
// however many sources (IPv6 /64s) the attempts come from.
const (
	// deniedRowsPerSource is how many such denials one source gets logged one by one in a
	// minute; the rest are counted into one suppressed row per source and minute.
	deniedRowsPerSource = 10
	// deniedRowsPerMinute is how many such denials all sources together get logged one by
	// one in a minute.
	deniedRowsPerMinute = 100
	// maxDeniedSources bounds the sources counted on their own in one minute; denials from
	// sources past it are counted together, under the source "*".
	maxDeniedSources = 100
	// suppressedFlushEvery is how often the counts are written.
	suppressedFlushEvery = 10 * time.Second
)

// suppressedReason is the reason of a suppressed row.
const suppressedReason = "attempts by keys of no account (refused, or sign-up and claim connections) past the first few from this address in this minute, counted instead of logged one by one"

// deniedRows rations the access-log rows of keys of no account, per source and minute, and
// counts what it holds back. Its name is from when it rationed denials only.
type deniedRows struct {
	mu      sync.Mutex
	sources map[deniedKey]*deniedCount
	minute  time.Time // the minute logged and tracked count
	logged  int       // denials logged one by one in minute
	tracked int       // sources counted on their own in minute
}

type deniedKey struct {
	minute time.Time
	source string
}

type deniedCount struct {
	logged          int
	held            int64  // counted, not yet written
	service, method string // of the first attempt held back
}

// log reports whether a denial from remote at now is logged one by one; if not, it is
// counted.
func (d *deniedRows) log(remote net.Addr, service, method string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sources == nil {
		d.sources = map[deniedKey]*deniedCount{}
	}
	k := deniedKey{now.UTC().Truncate(time.Minute), auth.SourceOf(remote)}
	if !k.minute.Equal(d.minute) {
		d.minute, d.logged, d.tracked = k.minute, 0, 0
	}
	c := d.sources[k]
	if c == nil {
		if k.source != "*" && d.tracked >= maxDeniedSources {
			k.source = "*"
			c = d.sources[k]
		}
		if c == nil {
			c = &deniedCount{}
			d.sources[k] = c
			if k.source != "*" {
				d.tracked++
			}
		}
	}
	if c.logged < deniedRowsPerSource && d.logged < deniedRowsPerMinute {
		c.logged++
		d.logged++
		return true
	}
	if c.held == 0 {
		c.service, c.method = service, method
	}
	c.held++
	return false
}

// take returns the rows to write for what was held back, and forgets the minutes before now.
func (d *deniedRows) take(now time.Time) []db.AccessEntry {
	d.mu.Lock()
	defer d.mu.Unlock()
	minute := now.UTC().Truncate(time.Minute)
	var out []db.AccessEntry
	for k, c := range d.sources {
		if c.held > 0 {
			out = append(out, db.AccessEntry{Time: k.minute, Service: c.service, Method: c.method, RemoteAddr: k.source,
				Outcome: db.OutcomeSuppressed, Reason: suppressedReason, Count: c.held})
			c.held = 0
		}
		if k.minute.Before(minute) {
			delete(d.sources, k)
		}
	}
	return out
}

// writeSuppressed writes the counts held back so far.
func (g *Gateway) writeSuppressed(ctx context.Context) {
	for _, e := range g.denied.take(g.o.Now()) {
		g.log.Warn("denied attempts of keys of no account counted, not logged one by one",
			"remote", e.RemoteAddr, "count", e.Count, "minute", e.Time.Format(time.RFC3339))
		if err := g.o.Store.AddSuppressedAccess(ctx, e); err != nil && ctx.Err() == nil {
			g.log.Error("writing suppressed denials to the access log failed", "err", err, "remote", e.RemoteAddr, "count", e.Count)
		}
	}
}

// flushSuppressed writes the held-back counts every suppressedFlushEvery until ctx is done,
// and once more then.
func (g *Gateway) flushSuppressed(ctx context.Context) {
	t := time.NewTicker(suppressedFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), storeTimeout)
			defer cancel()
			g.writeSuppressed(final)
			return
		case <-t.C:
			g.writeSuppressed(ctx)
		}
	}
}
