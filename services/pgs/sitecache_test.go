package pgs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-sh/portico/db"
)

// countingStore answers PGSLive for alice/blog only and counts the lookups.
type countingStore struct {
	Store
	lookups atomic.Int64
}

func (s *countingStore) PGSLive(_ context.Context, account, project string) (db.PGSLive, error) {
	s.lookups.Add(1)
	if account == "alice" && project == "blog" {
		return db.PGSLive{AccountID: 1, ProjectID: 1, DeployID: 7}, nil
	}
	return db.PGSLive{}, db.ErrNotFound
}

// Visitors' random host names cost at most missBurst store lookups at once; names seen to be
// no project are remembered; a known site is never held up by them.
func TestSiteCacheBoundsLookups(t *testing.T) {
	store := &countingStore{}
	c := newSiteCache(store, 1000)
	ctx := context.Background()
	if l, ok, err := c.liveOf(ctx, "alice", "blog", true); err != nil || !ok || l.DeployID != 7 {
		t.Fatalf("alice/blog = %+v, %v, %v", l, ok, err)
	}
	busy := 0
	for i := range 3 * missBurst {
		_, ok, err := c.liveOf(ctx, "alice", fmt.Sprintf("random-%d", i), true)
		switch {
		case errors.Is(err, errLookupsBusy):
			busy++
		case err != nil || ok:
			t.Fatalf("random name %d: %v, %v", i, ok, err)
		}
	}
	if n := store.lookups.Load(); n > missBurst+100 {
		t.Fatalf("%d store lookups for %d random names", n, 3*missBurst)
	}
	if busy == 0 {
		t.Fatal("random names were never refused")
	}
	before := store.lookups.Load()
	if _, ok, err := c.liveOf(ctx, "alice", "random-1", true); ok || err != nil {
		t.Fatalf("a remembered missing name: %v, %v", ok, err)
	}
	if store.lookups.Load() != before {
		t.Fatal("a remembered missing name was looked up again")
	}
	if _, ok, err := c.liveOf(ctx, "alice", "blog", true); !ok || err != nil {
		t.Fatalf("the known site while lookups are spent: %v, %v", ok, err)
	}
}

// TestSiteCacheWeighsPaths: the cache of manifests is bounded by their files weighed by their
// paths' text, which the trees keep: manifests of long paths (up to 1 KiB each) take several
// times the memory of short names, and must not fill several times the memory.
func TestSiteCacheWeighsPaths(t *testing.T) {
	c := newSiteCache(nil, 1000)
	manifest := func(n, pathLen int) *tree {
		var files []db.PGSFile
		for i := range n {
			p := fmt.Sprintf("%0*d", pathLen, i)
			files = append(files, db.PGSFile{Path: p, Hash: strings.Repeat("ab", 32), Size: 1, Mode: 0o644})
		}
		tr, err := treeOf(files, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	c.add(1, manifest(200, 250))
	c.add(2, manifest(200, 250))
	if len(c.trees) != 2 || c.files != 800 {
		t.Fatalf("two manifests of 200 files with 250-byte names: %d cached, weight %d", len(c.trees), c.files)
	}
	c.add(3, manifest(200, 250)) // 600 files, weighing 1,200: the oldest goes
	if _, ok := c.trees[1]; ok || len(c.trees) != 2 || c.files != 800 {
		t.Fatalf("after a third: %d cached (the first: %v), weight %d", len(c.trees), c.trees[1] != nil, c.files)
	}
	c.add(4, manifest(900, 10)) // short names weigh their files
	if len(c.trees) != 1 || c.files != 900 {
		t.Fatalf("after 900 short names: %d cached, weight %d", len(c.trees), c.files)
	}
}
