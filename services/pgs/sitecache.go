package pgs

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/portico-sh/portico/db"
)

// liveTTL is how long a gateway trusts what it knows about a project's live deploy: a deploy
// switch made by another gateway shows here within this time (the gateway that made it forgets
// at once).
const liveTTL = time.Second

// loadTimeout bounds one load from the store, shared by every request waiting for it.
const loadTimeout = 10 * time.Second

// Bounds on what HTTP requests for host names make a gateway remember and ask the store: the
// projects whose live deploy it remembers, the names it remembers are no project, and how many
// store lookups a second (and in a burst) names that are not known projects may cost. Visitors
// choose host names freely; without these, random ones would be a query each.
const (
	maxLiveEntries = 100_000
	maxMissing     = 10_000
	missLookups    = 500
	missBurst      = 1000
)

// errLookupsBusy: too many lookups of unknown names; the request should be retried.
var errLookupsBusy = errors.New("too many lookups of unknown sites; try again")

// siteCache remembers which deploy each project serves (for liveTTL) and the manifests of
// deploys (immutable, so kept until evicted, least recently used first, within a number of
// files).
type siteCache struct {
	store Store

	mu       sync.Mutex
	live     map[siteKey]liveEntry // known projects
	missing  map[siteKey]time.Time // names known to be no project, when that was learnt
	tokens   float64               // lookups of unknown names allowed now
	refilled time.Time
	trees    map[int64]*list.Element // deploy id → element of lru holding a *cachedTree
	lru      *list.List
	files    int // files of the cached trees, weighed by their paths' lengths (tree.cost)
	maxFiles int

	loads singleflight.Group
}

type siteKey struct{ account, project string }

type liveEntry struct {
	live  db.PGSLive
	found bool
	at    time.Time
}

type cachedTree struct {
	deployID int64
	t        *tree
}

func newSiteCache(store Store, maxFiles int) *siteCache {
	return &siteCache{store: store, live: map[siteKey]liveEntry{}, missing: map[siteKey]time.Time{},
		tokens: missBurst, refilled: time.Now(), trees: map[int64]*list.Element{}, lru: list.New(), maxFiles: maxFiles}
}

// liveOf returns what the project serves; found is false when the account has no such project.
// A store failure with a remembered answer serves the remembered answer. A visitor's lookups of
// names that are not known projects are limited; those of authenticated sessions are not.
func (c *siteCache) liveOf(ctx context.Context, account, project string, visitor bool) (db.PGSLive, bool, error) {
	key := siteKey{account, project}
	c.mu.Lock()
	e, ok := c.live[key]
	missedAt, missed := c.missing[key]
	switch {
	case ok && time.Since(e.at) < liveTTL:
		c.mu.Unlock()
		return e.live, true, nil
	case missed && time.Since(missedAt) < liveTTL:
		c.mu.Unlock()
		return db.PGSLive{}, false, nil
	case !ok && visitor && !c.takeToken():
		c.mu.Unlock()
		if missed {
			return db.PGSLive{}, false, nil
		}
		return db.PGSLive{}, false, errLookupsBusy
	}
	c.mu.Unlock()
	v, err, _ := c.loads.Do("live\x00"+account+"\x00"+project, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loadTimeout)
		defer cancel()
		l, err := c.store.PGSLive(ctx, account, project)
		found := err == nil
		if err != nil && !errors.Is(err, db.ErrNotFound) {
			return nil, err
		}
		ne := liveEntry{live: l, found: found, at: time.Now()}
		c.mu.Lock()
		if found {
			if len(c.live) >= maxLiveEntries {
				clear(c.live)
			}
			c.live[key] = ne
			delete(c.missing, key)
		} else {
			if len(c.missing) >= maxMissing {
				clear(c.missing)
			}
			c.missing[key] = ne.at
			delete(c.live, key)
		}
		c.mu.Unlock()
		return ne, nil
	})
	if err != nil {
		if ok && e.found {
			return e.live, true, nil
		}
		return db.PGSLive{}, false, err
	}
	ne := v.(liveEntry)
	return ne.live, ne.found, nil
}

// takeToken spends one lookup of a name that is not a known project, if the rate allows;
// c.mu is held.
func (c *siteCache) takeToken() bool {
	now := time.Now()
	c.tokens = min(missBurst, c.tokens+now.Sub(c.refilled).Seconds()*missLookups)
	c.refilled = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

// forget makes this gateway look up the account's projects again: after a deploy switch of
// project, so that the next request sees it (links to a project change with it, so all of
// them go). The projects stay known as projects, and project becomes one: their lookups are
// not among those of unknown names, which a flood of made-up host names may use up.
func (c *siteCache) forget(account, project string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.live {
		if k.account == account {
			e.at = time.Time{}
			c.live[k] = e
		}
	}
	for k := range c.missing {
		if k.account == account {
			delete(c.missing, k)
		}
	}
	if k := (siteKey{account, project}); project != "" {
		if _, ok := c.live[k]; !ok {
			if len(c.live) >= maxLiveEntries {
				clear(c.live)
			}
			c.live[k] = liveEntry{} // found false: nothing remembered to serve
		}
	}
}

// tree returns the files of a deploy (an empty tree for deploy 0).
func (c *siteCache) tree(ctx context.Context, deployID int64) (*tree, error) {
	if deployID == 0 {
		return newTree(time.Time{}), nil
	}
	c.mu.Lock()
	if el, ok := c.trees[deployID]; ok {
		c.lru.MoveToFront(el)
		t := el.Value.(*cachedTree).t
		c.mu.Unlock()
		return t, nil
	}
	c.mu.Unlock()
	v, err, _ := c.loads.Do(fmt.Sprint("tree\x00", deployID), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loadTimeout)
		defer cancel()
		files, err := c.store.PGSFiles(ctx, deployID)
		if err != nil {
			return nil, err
		}
		t, err := treeOf(files, time.Now())
		if err != nil {
			return nil, fmt.Errorf("manifest of deploy %d: %w", deployID, err)
		}
		c.add(deployID, t)
		return t, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*tree), nil
}

func (c *siteCache) add(deployID int64, t *tree) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.trees[deployID]; ok {
		return
	}
	// A deploy larger than the cache is kept alone rather than read again on every request.
	c.trees[deployID] = c.lru.PushFront(&cachedTree{deployID: deployID, t: t})
	c.files += t.weight()
	for c.files > c.maxFiles && c.lru.Len() > 1 {
		el := c.lru.Back()
		ct := el.Value.(*cachedTree)
		c.lru.Remove(el)
		delete(c.trees, ct.deployID)
		c.files -= ct.t.weight()
	}
}
