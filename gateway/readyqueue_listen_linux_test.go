package gateway

import (
	"io"
	"log/slog"
	"net"
	"os"
	"testing"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/internal/sshtest"
	"github.com/portico-sh/portico/services"
)

// epollFDs counts the process's epoll instances: the runtime's poller and every readyQueue.
func epollFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == "anon_inode:[eventpoll]" {
			n++
		}
	}
	return n
}

// TestListenFailureLeavesNoReadyQueue: a Listen that fails after the HTTP listener was bound
// (here the metrics address is taken) closes what it opened, and Serve never runs to shut it
// down: the HTTP fast path must not have started a readyQueue (an epoll descriptor and its
// goroutine) that nothing will close.
func TestListenFailureLeavesNoReadyQueue(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	router, err := services.NewRouter(services.Unavailable(auth.Admin), services.Unavailable(auth.PGS))
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(Options{Store: discardStore{}, Auth: &recordingAuth{}, Router: router, HostKey: sshtest.NewSigner(t),
		SSH: []Listener{{Addr: "127.0.0.1:0"}}, HTTPAddr: "127.0.0.1:0", MetricsAddr: taken.Addr().String(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	before := epollFDs(t)
	for range 3 {
		if err := g.Listen(); err == nil {
			t.Fatal("Listen succeeded on a taken metrics address")
		}
	}
	if after := epollFDs(t); after != before {
		t.Fatalf("%d epoll descriptors after three failed Listens, %d before", after, before)
	}
}
