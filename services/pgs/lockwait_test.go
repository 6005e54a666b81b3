package pgs

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/db/dbtest"
)

// countingLocks counts the lock writes of a store.
type countingLocks struct {
	db.Store
	n atomic.Int64
}

func (c *countingLocks) LockPGSProject(ctx context.Context, accountID int64, project, holder string, ttl time.Duration) (bool, error) {
	c.n.Add(1)
	return c.Store.LockPGSProject(ctx, accountID, project, holder, ttl)
}

// TestLockWaitBacksOff: a session waiting for another deploy of a project asks for the lock
// less and less often: each ask is a database write, and many sessions may wait at once.
// Before, each asked five times a second for the whole wait (60 s by default).
func TestLockWaitBacksOff(t *testing.T) {
	store := dbtest.Open(t)
	ctx := context.Background()
	a, _, err := store.CreateAccount(ctx, "alice", newFuzzKey())
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingLocks{Store: store}
	s := New(Options{Store: cs, LockWait: 5 * time.Second, LockTTL: time.Minute})
	if ok, err := store.LockPGSProject(ctx, a.ID, "blog", "other", time.Minute); err != nil || !ok {
		t.Fatal(ok, err)
	}
	start := time.Now()
	err = s.acquire(ctx, a.ID, "blog", "me", io.Discard)
	if err == nil || !strings.Contains(err.Error(), "another deploy of blog") {
		t.Fatalf("acquire = %v", err)
	}
	if d := time.Since(start); d < 5*time.Second || d > 6*time.Second {
		t.Errorf("waited %s, want the lock wait of 5s", d)
	}
	// 0, 0.2, 0.6, 1.4, 3, 5 s: six asks (25 at a fixed 200 ms).
	if n := cs.n.Load(); n > 8 {
		t.Errorf("%d lock writes in a 5 s wait", n)
	}
}
