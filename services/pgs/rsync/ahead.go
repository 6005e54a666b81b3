package rsync

import (
	"sync"
)

// Starting an upload can cost more than receiving the file: on ext4 the kernel's inode
// allocation for the temporary file (openat) was three quarters of the server's CPU in an
// upload of 2,000 files of 50 KiB. So the receiver does not start each upload itself when the
// file's data arrives: helper goroutines start the uploads of the files the generator asked
// for, in the order asked (the order the client sends them in), a few files ahead, while the
// receiver reads and writes the current one.
//
// What that holds is bounded: at most aheadWindow uploads started and not yet taken, and
// aheadWorkers goroutines. Uploads the receiver does not take (the client skipped the file,
// the phase ended, the session ended) are aborted, so an FS sees every upload either committed
// or aborted as before; what it sees differently is that Create is called earlier, and from
// another goroutine, than the file's data arrives.

const (
	// aheadWindow bounds the uploads started ahead and not yet taken by the receiver.
	aheadWindow = 4
	// aheadWorkers is how many goroutines start uploads at once.
	aheadWorkers = 2
)

// aheadState is where one requested file's upload stands.
type aheadState uint8

const (
	aheadQueued   aheadState = iota // asked for, not started
	aheadStarting                   // a worker is in Create
	aheadReady                      // started, waiting to be taken
)

// aheadEntry is one requested file.
type aheadEntry struct {
	ndx     int32
	target  string
	state   aheadState
	discard bool // no longer wanted: the worker aborts the upload when Create returns
	up      Upload
	err     error
}

// starter starts uploads ahead of the receiver. Its methods are safe for concurrent use.
type starter struct {
	create func(target string) (Upload, error)

	mu      sync.Mutex
	cond    *sync.Cond
	entries []*aheadEntry // requested and not taken, in request order
	count   map[int32]int // entries per file index
	started int           // entries starting or ready (bounded by aheadWindow)
	closed  bool
	workers sync.WaitGroup
}

// newStarter starts the workers; close ends them.
func newStarter(create func(target string) (Upload, error)) *starter {
	st := &starter{create: create, count: map[int32]int{}}
	st.cond = sync.NewCond(&st.mu)
	for range aheadWorkers {
		st.workers.Add(1)
		go st.work()
	}
	return st
}

// add queues a requested file, in request order.
func (st *starter) add(ndx int32, target string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return
	}
	st.entries = append(st.entries, &aheadEntry{ndx: ndx, target: target})
	st.count[ndx]++
	st.cond.Broadcast()
}

// next returns the first queued entry, marked as starting, once the window has room; nil when
// the starter is closed.
func (st *starter) next() *aheadEntry {
	st.mu.Lock()
	defer st.mu.Unlock()
	for {
		if st.closed {
			return nil
		}
		if st.started < aheadWindow {
			for _, e := range st.entries {
				if e.state == aheadQueued {
					e.state = aheadStarting
					st.started++
					return e
				}
			}
		}
		st.cond.Wait()
	}
}

func (st *starter) work() {
	defer st.workers.Done()
	for {
		e := st.next()
		if e == nil {
			return
		}
		up, err := st.create(e.target)
		st.mu.Lock()
		if e.discard {
			st.mu.Unlock()
			st.abort([]*aheadEntry{{up: up}})
			continue
		}
		e.up, e.err, e.state = up, err, aheadReady
		st.mu.Unlock()
		st.cond.Broadcast()
	}
}

// take returns the upload for file ndx started ahead (or the error that starting it gave); ok
// false when it was not started, and the caller starts it itself. Entries requested before ndx and not
// taken are files the client skipped: they are dropped and their uploads aborted.
func (st *starter) take(ndx int32) (up Upload, ok bool, err error) {
	st.mu.Lock()
	if st.count[ndx] == 0 {
		// Dropped already (a client answering out of order): nothing to drop on its
		// account. The look-up keeps such a client from costing a scan of the queue per file.
		st.mu.Unlock()
		return nil, false, nil
	}
	i := 0
	for st.entries[i].ndx != ndx {
		i++
	}
	var drop []*aheadEntry
	for _, e := range st.entries[:i] {
		drop = st.forget(e, drop)
	}
	e := st.entries[i]
	st.uncount(e)
	clear(st.entries[:i+1])
	st.entries = st.entries[i+1:]
	for e.state == aheadStarting {
		st.cond.Wait()
	}
	if e.state == aheadReady {
		st.started--
		up, err, ok = e.up, e.err, true
	}
	st.cond.Broadcast()
	st.mu.Unlock()
	st.abort(drop)
	return up, ok, err
}

// uncount removes e from count (st.mu held).
func (st *starter) uncount(e *aheadEntry) {
	if st.count[e.ndx]--; st.count[e.ndx] == 0 {
		delete(st.count, e.ndx)
	}
}

// forget drops entry e (st.mu held): a started one joins drop (for abort), one being started
// is aborted by its worker.
func (st *starter) forget(e *aheadEntry, drop []*aheadEntry) []*aheadEntry {
	st.uncount(e)
	switch e.state {
	case aheadStarting:
		e.discard = true
	case aheadReady:
		drop = append(drop, e)
	}
	return drop
}

// abort aborts the uploads of dropped entries, then gives their room in the window to the
// workers (not before: the uploads open at once stay within the window).
func (st *starter) abort(drop []*aheadEntry) {
	if len(drop) == 0 {
		return
	}
	for _, e := range drop {
		if e.up != nil {
			e.up.Abort()
		}
	}
	st.mu.Lock()
	st.started -= len(drop)
	st.cond.Broadcast()
	st.mu.Unlock()
}

// dropAll aborts every upload started and not taken (the end of a phase: what was asked for
// and not sent will not come in it).
func (st *starter) dropAll() {
	st.mu.Lock()
	drop := st.forgetAll()
	st.mu.Unlock()
	st.abort(drop)
}

// forgetAll drops every entry (st.mu held) and returns those to abort.
func (st *starter) forgetAll() []*aheadEntry {
	var drop []*aheadEntry
	for _, e := range st.entries {
		drop = st.forget(e, drop)
	}
	st.entries = nil
	return drop
}

// close drops everything, stops the workers and waits for them: when it returns, every upload
// the starter made was taken or aborted.
func (st *starter) close() {
	st.mu.Lock()
	st.closed = true
	drop := st.forgetAll()
	st.cond.Broadcast()
	st.mu.Unlock()
	st.abort(drop)
	st.workers.Wait()
}
