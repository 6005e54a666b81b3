//go:build !linux

package gateway

import (
	"net"
	"time"
)

// Without epoll there is no readyQueue: keep-alive connections wait in Read, in the order the
// runtime's poller wakes them.
type readyQueue struct{}

type readyWait struct{}

func newReadyQueue() *readyQueue                     { return nil }
func (q *readyQueue) close()                         {}
func (q *readyQueue) waiter(net.Conn) *readyWait     { return nil }
func (w *readyWait) wait(time.Time, <-chan struct{}) {}
func (w *readyWait) release()                        {}
