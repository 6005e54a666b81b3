package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/portico-sh/portico/auth"
)

// judgeAuth refuses whatever its refuse field names, by account.
type judgeAuth struct {
	mu     sync.Mutex
	refuse map[int64]string // account → refusal message
	calls  int
	err    error
}

func (a *judgeAuth) Authenticate(_ context.Context, at auth.Attempt) (auth.Grant, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if a.err != nil {
		return auth.Grant{}, a.err
	}
	id := at.RemoteAddr.(accountAddr).id
	if msg, ok := a.refuse[id]; ok {
		return auth.Grant{}, &auth.Refusal{Reason: auth.ReasonRevoked, Message: msg}
	}
	return auth.Grant{AccountID: id}, nil
}

func (a *judgeAuth) set(id int64, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refuse[id] = msg
}

// accountAddr carries the account a test attempt is for.
type accountAddr struct{ id int64 }

func (accountAddr) Network() string { return "test" }
func (accountAddr) String() string  { return "test" }

// versionsFake is a store of access versions.
type versionsFake struct {
	mu  sync.Mutex
	v   map[int64]int64
	err error
}

func (s *versionsFake) AccessVersions(_ context.Context, ids []int64) (map[int64]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	out := map[int64]int64{}
	for _, id := range ids {
		if v, ok := s.v[id]; ok {
			out[id] = v
		}
	}
	return out, nil
}

func (s *versionsFake) bump(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.v[id]++
}

// ends records the reasons connections were ended with.
type ends struct {
	mu  sync.Mutex
	got map[string]string // connection → reason
}

func (e *ends) end(name string) func(string) {
	return func(reason string) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.got[name] = reason
	}
}

func (e *ends) reason(name string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.got[name]
	return r, ok
}

func newLiveTest() (*liveAccess, *judgeAuth, *versionsFake, *ends) {
	a := &judgeAuth{refuse: map[int64]string{}}
	s := &versionsFake{v: map[int64]int64{1: 0, 2: 0}}
	l := newLiveAccess(a, s, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	return l, a, s, &ends{got: map[string]string{}}
}

func watch(l *liveAccess, e *ends, name string, account int64, expires *time.Time) func() {
	g := auth.Grant{AccountID: account, ExpiresAt: expires}
	return l.add(auth.Attempt{RemoteAddr: accountAddr{account}}, &g, l.generation(), e.end(name))
}

func TestLiveAccessEndsRefusedConnections(t *testing.T) {
	l, a, s, e := newLiveTest()
	watch(l, e, "alice-1", 1, nil)
	watch(l, e, "alice-2", 1, nil)
	watch(l, e, "bob", 2, nil)
	ctx := context.Background()
	l.poll(ctx) // first read of each account: judged, all still allowed
	if len(e.got) != 0 {
		t.Fatalf("ended %v before anything changed", e.got)
	}
	calls := a.calls
	l.poll(ctx)
	if a.calls != calls {
		t.Errorf("a poll with no change judged %d connections", a.calls-calls)
	}

	// A change that does not refuse them: judged, kept.
	s.bump(1)
	l.poll(ctx)
	if a.calls != calls+2 || len(e.got) != 0 {
		t.Errorf("after a harmless change: %d judgements, ended %v; want alice's 2 judged and kept", a.calls-calls, e.got)
	}

	// A revocation that refuses alice's connections: both end with the reason; bob's stays.
	a.set(1, "certificate revoked")
	s.bump(1)
	l.poll(ctx)
	for _, name := range []string{"alice-1", "alice-2"} {
		if r, ok := e.reason(name); !ok || r != "certificate revoked" {
			t.Errorf("%s: ended %v with %q, want ended with the reason", name, ok, r)
		}
	}
	if _, ok := e.reason("bob"); ok {
		t.Error("bob's connection ended too")
	}
}

func TestLiveAccessDeletedAccount(t *testing.T) {
	l, a, s, e := newLiveTest()
	watch(l, e, "alice", 1, nil)
	l.poll(context.Background())
	a.set(1, "key is not registered")
	s.mu.Lock()
	delete(s.v, 1)
	s.mu.Unlock()
	l.poll(context.Background())
	if r, ok := e.reason("alice"); !ok || r != "key is not registered" {
		t.Errorf("ended %v with %q", ok, r)
	}
}

func TestLiveAccessExpiry(t *testing.T) {
	l, a, _, e := newLiveTest()
	soon := time.Now().Add(100 * time.Millisecond)
	a.set(1, "certificate expired")
	watch(l, e, "alice", 1, &soon)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if r, ok := e.reason("alice"); ok {
			if r != "certificate expired" {
				t.Errorf("ended with %q", r)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the connection did not end when its grant expired")
}

// TestLiveAccessChangeDuringJudgement: a connection judged before a change committed, and
// watched only after a poll saw the change, is judged again at once.
func TestLiveAccessChangeDuringJudgement(t *testing.T) {
	l, a, s, e := newLiveTest()
	watch(l, e, "alice-old", 1, nil)
	l.poll(context.Background())
	seen := l.generation() // the new connection's judgement starts
	a.set(1, "key removed")
	s.bump(1)
	l.poll(context.Background()) // the change is seen before the new connection is watched
	l.add(auth.Attempt{RemoteAddr: accountAddr{1}}, &auth.Grant{AccountID: 1}, seen, e.end("alice-new"))
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := e.reason("alice-new"); ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("a connection judged before a change it was watched after was never judged again")
}

func TestLiveAccessStoreErrors(t *testing.T) {
	l, a, s, e := newLiveTest()
	watch(l, e, "alice", 1, nil)
	l.poll(context.Background())
	s.err = errors.New("database down")
	a.set(1, "revoked")
	s.bump(1)
	l.poll(context.Background())
	if _, ok := e.reason("alice"); ok {
		t.Fatal("ended while the versions could not be read")
	}
	s.err = nil
	a.err = errors.New("database down")
	l.poll(context.Background())
	if _, ok := e.reason("alice"); ok {
		t.Fatal("ended while the judgement could not be made")
	}
	a.err = nil
	l.poll(context.Background()) // the failed judgement is tried again
	if _, ok := e.reason("alice"); !ok {
		t.Fatal("not ended once the store answered again")
	}
}

func TestLiveAccessRemove(t *testing.T) {
	l, a, _, e := newLiveTest()
	soon := time.Now().Add(50 * time.Millisecond)
	a.set(1, "expired")
	remove := watch(l, e, "alice", 1, &soon)
	remove()
	time.Sleep(200 * time.Millisecond)
	if _, ok := e.reason("alice"); ok {
		t.Error("a closed connection's expiry still fired")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.byAccount) != 0 || len(l.versions) != 0 {
		t.Errorf("left behind: %d accounts, %d versions", len(l.byAccount), len(l.versions))
	}
}
