package gateway

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/portico-sh/portico/auth"
)

// Live access: a connection keeps its access only while its grounds hold. Each authenticated
// connection is kept here with the attempt that authenticated it; when what grounds an
// account's access changes (the store's access version of the account moves: a key or CA
// removed, a revocation added, the account deleted — on this gateway or any other sharing the
// database) or a grant's own expiry comes, its connections are judged again by auth, and those
// now refused are ended with the reason.

// How live access watches.
const (
	// livePollInterval is how often the access versions of the accounts with open connections
	// are read. With the time a re-judgement and the end take, a connection ends within
	// seconds of the change that refused it, on any gateway.
	livePollInterval = 250 * time.Millisecond
	// liveJudges bounds the re-judgements running at once.
	liveJudges = 4
)

// versionStore reads the accounts' access versions; db.Store is one.
type versionStore interface {
	AccessVersions(ctx context.Context, accountIDs []int64) (map[int64]int64, error)
}

// liveConn is one authenticated connection under watch.
type liveConn struct {
	attempt auth.Attempt
	grant   *auth.Grant         // shared with the connection's Permissions: never changed
	end     func(reason string) // tells the connection's sessions why, then closes it
	timer   *time.Timer         // the grant's expiry, if it has one
	ended   bool
}

// liveAccess is the set of watched connections, by account.
type liveAccess struct {
	auth  Authenticator
	store versionStore
	log   *slog.Logger
	now   func() time.Time

	mu        sync.Mutex
	byAccount map[int64]map[*liveConn]struct{}
	versions  map[int64]int64 // each watched account's version when last judged; absent: not yet read
	gen       uint64          // counts the polls that found a change
}

func newLiveAccess(a Authenticator, store versionStore, log *slog.Logger, now func() time.Time) *liveAccess {
	return &liveAccess{auth: a, store: store, log: log, now: now,
		byAccount: map[int64]map[*liveConn]struct{}{}, versions: map[int64]int64{}}
}

// generation is read before a connection is judged and given back to add, which judges it
// again if a change was seen meanwhile: the change may have committed after the judgement read
// the store and before the connection was watched.
func (l *liveAccess) generation() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gen
}

// judgeNow, given to add as the generation seen, has the connection judged at once.
const judgeNow = ^uint64(0)

// add watches a connection that at authenticated with grant g, and returns the function that
// stops watching it (when the connection closes).
func (l *liveAccess) add(at auth.Attempt, g *auth.Grant, seen uint64, end func(reason string)) (remove func()) {
	c := &liveConn{attempt: at, grant: g, end: end}
	l.mu.Lock()
	conns := l.byAccount[g.AccountID]
	if conns == nil {
		conns = map[*liveConn]struct{}{}
		l.byAccount[g.AccountID] = conns
	}
	conns[c] = struct{}{}
	changed := l.gen != seen
	if g.ExpiresAt != nil {
		c.timer = time.AfterFunc(g.ExpiresAt.Sub(l.now()), func() { l.judge(c) })
	}
	l.mu.Unlock()
	if changed {
		go l.judge(c)
	}
	return func() { l.remove(c) }
}

func (l *liveAccess) remove(c *liveConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
	}
	id := c.grant.AccountID
	delete(l.byAccount[id], c)
	if len(l.byAccount[id]) == 0 {
		delete(l.byAccount, id)
		delete(l.versions, id)
	}
}

// run polls the access versions until ctx ends.
func (l *liveAccess) run(ctx context.Context) {
	t := time.NewTicker(livePollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.poll(ctx)
		}
	}
}

// poll reads the versions of the watched accounts and judges again the connections of each
// account whose version moved, is gone (the account was deleted) or was not read yet.
func (l *liveAccess) poll(ctx context.Context) {
	l.mu.Lock()
	ids := make([]int64, 0, len(l.byAccount))
	for id := range l.byAccount {
		ids = append(ids, id)
	}
	l.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	qctx, cancel := context.WithTimeout(ctx, storeTimeout)
	versions, err := l.store.AccessVersions(qctx, ids)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn("live access: reading access versions failed; trying again", "err", err)
		}
		return
	}
	var judge []*liveConn
	l.mu.Lock()
	for _, id := range ids {
		v, exists := versions[id]
		last, read := l.versions[id]
		if exists && read && v == last {
			continue
		}
		if _, watched := l.byAccount[id]; !watched {
			continue
		}
		l.versions[id] = v
		for c := range l.byAccount[id] {
			judge = append(judge, c)
		}
	}
	if len(judge) > 0 {
		l.gen++
	}
	l.mu.Unlock()
	sem := make(chan struct{}, liveJudges)
	var wg sync.WaitGroup
	for _, c := range judge {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			l.judge(c)
		})
	}
	wg.Wait()
}

// judge decides c's attempt again and ends c when it is now refused. When the store cannot
// decide, the account's version is forgotten so that the next poll tries again.
func (l *liveAccess) judge(c *liveConn) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	_, err := l.auth.Authenticate(ctx, c.attempt)
	if err == nil {
		l.rearm(c)
		return
	}
	refusal, ok := auth.AsRefusal(err)
	if !ok {
		l.log.Warn("live access: judging an open connection failed; trying again", "account", c.grant.Account, "err", err)
		l.mu.Lock()
		delete(l.versions, c.grant.AccountID)
		l.mu.Unlock()
		return
	}
	l.mu.Lock()
	if c.ended {
		l.mu.Unlock()
		return
	}
	c.ended = true
	l.mu.Unlock()
	l.log.Info("live access: ending a connection whose access ended", "account", c.grant.Account,
		"service", c.grant.Service, "identity", c.grant.Identity, "reason", refusal.Reason, "message", refusal.Message)
	c.end(refusal.Message)
}

// rearm sets the expiry timer again after an early judgement said yes (a clock that ran ahead
// of the timer's).
func (l *liveAccess) rearm(c *liveConn) {
	if c.grant.ExpiresAt == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.timer != nil && !c.ended {
		if d := c.grant.ExpiresAt.Sub(l.now()); d > 0 {
			c.timer.Reset(d)
		} else {
			c.timer.Reset(time.Second)
		}
	}
}
