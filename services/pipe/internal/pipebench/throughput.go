package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os/exec"
	"strings"
	"time"

	"github.com/portico-sh/portico/internal/benchenv"
)

const (
	// patternSize is the length of the incompressible block every stream repeats.
	patternSize = 1 << 20
	// chunkSize is the write and read size of the benchmark's side of the client pipes.
	chunkSize = 256 << 10
	// subscribeTimeout bounds the wait for all subscribers to be connected.
	subscribeTimeout = 60 * time.Second
	// pollInterval is the pause between two `ls --json` polls.
	pollInterval = 50 * time.Millisecond
)

// pattern is the incompressible block the streams repeat (from a fixed seed, so that a
// receiver can check what it got).
type pattern []byte

func newPattern() pattern {
	rng := rand.New(rand.NewPCG(1, 2))
	p := make(pattern, patternSize)
	for i := 0; i < len(p); i += 8 {
		v := rng.Uint64()
		for k := range 8 {
			p[i+k] = byte(v >> (8 * k))
		}
	}
	return p
}

// matches reports whether b is what the stream holds at offset off.
func (p pattern) matches(off int64, b []byte) bool {
	for len(b) > 0 {
		at := int(off % int64(len(p)))
		n := min(len(b), len(p)-at)
		if !bytes.Equal(b[:n], p[at:at+n]) {
			return false
		}
		b, off = b[n:], off+int64(n)
	}
	return true
}

// source reads n bytes of the pattern; its WriteTo lets exec's stdin copy write big chunks.
type source struct {
	p   pattern
	n   int64 // bytes left
	off int64
}

func newSource(p pattern, n int64) *source { return &source{p: p, n: n} }

func (s *source) Read(b []byte) (int, error) {
	if s.n == 0 {
		return 0, io.EOF
	}
	at := int(s.off % int64(len(s.p)))
	k := copy(b[:min(int64(len(b)), s.n)], s.p[at:])
	s.n -= int64(k)
	s.off += int64(k)
	return k, nil
}

func (s *source) WriteTo(w io.Writer) (int64, error) {
	var total int64
	buf := make([]byte, chunkSize)
	for s.n > 0 {
		k, _ := s.Read(buf)
		wrote, err := w.Write(buf[:k])
		total += int64(wrote)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// receiver is a started client process whose stdout is counted (and checked with -verify).
type receiver struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan struct{}
	n      int64
	end    time.Time // when it had exited
	err    error
}

// startReceiver starts cmd and counts its stdout until it exits.
func startReceiver(cmd *exec.Cmd, p pattern, verify bool) (*receiver, error) {
	r := &receiver{cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = &r.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", strings.Join(cmd.Args, " "), err)
	}
	go func() {
		defer close(r.done)
		r.n, r.err = drain(out, p, verify)
		if err := cmd.Wait(); err != nil && r.err == nil {
			r.err = err
		}
		r.end = time.Now()
	}()
	return r, nil
}

// drain reads r to its end and returns the byte count; with verify, the bytes must be the
// pattern's.
func drain(r io.Reader, p pattern, verify bool) (int64, error) {
	buf := make([]byte, chunkSize)
	var n int64
	for {
		k, err := r.Read(buf)
		if k > 0 {
			if verify && !p.matches(n, buf[:k]) {
				return n, fmt.Errorf("received bytes differ from those sent, within bytes %d-%d", n, n+int64(k))
			}
			n += int64(k)
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// check returns an error unless the receiver exited 0 after exactly want bytes.
func (r *receiver) check(name string, want int64) error {
	if r.err != nil {
		return fmt.Errorf("%s: %w (received %d of %d bytes)\n%s", name, r.err, r.n, want, lastLines(r.stderr.Bytes(), 10))
	}
	if r.n != want {
		return fmt.Errorf("%s: received %d bytes, want %d\n%s", name, r.n, want, lastLines(r.stderr.Bytes(), 10))
	}
	return nil
}

// waitClosed waits for ch to close, at most limit (a safety net: every process is also
// killed by its context).
func waitClosed(ch <-chan struct{}, limit time.Duration) error {
	select {
	case <-ch:
		return nil
	case <-time.After(limit):
		return fmt.Errorf("still running after %v", limit)
	}
}

// clientCPU is the user + system time of an exited process.
func clientCPU(cmd *exec.Cmd) time.Duration {
	if cmd.ProcessState == nil {
		return 0
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// tput is one timed throughput run.
type tput struct {
	wall      time.Duration
	size      int64 // bytes each receiver got
	receivers int
	busy      float64       // share of the machine's CPU time that was busy
	server    time.Duration // CPU time of the server (sshd: including cat)
	clients   time.Duration // CPU time of all ssh client processes
}

// perReceiver and aggregate are rates in MiB/s.
func (t tput) perReceiver() float64 { return float64(t.size) / (1 << 20) / t.wall.Seconds() }
func (t tput) aggregate() float64   { return t.perReceiver() * float64(t.receivers) }

// ceiling measures `ssh root@sshd cat` fed size bytes: the transport ceiling.
func (b *bench) ceiling(ctx context.Context, size int64) (tput, error) {
	ctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	cmd := b.e.sshCommand(ctx, b.e.sshd, b.o.cipher, "root", "cat")
	cmd.Stdin = newSource(b.p, size)
	meter := benchenv.StartCPUMeter(b.e.sshd)
	start := time.Now()
	r, err := startReceiver(cmd, b.p, b.o.verify)
	if err != nil {
		return tput{}, err
	}
	if err := waitClosed(r.done, b.o.timeout+time.Minute); err != nil {
		return tput{}, fmt.Errorf("ssh cat: %w", err)
	}
	busy, server := meter.Stop()
	if err := r.check("ssh root@sshd cat", size); err != nil {
		return tput{}, err
	}
	return tput{wall: r.end.Sub(start), size: size, receivers: 1, busy: busy, server: server,
		clients: clientCPU(cmd)}, nil
}

// fanout measures one publisher sending size bytes to k subscribers on topic, all of them
// OpenSSH client processes: from the publisher's start until every subscriber has received
// everything and exited.
func (b *bench) fanout(ctx context.Context, k int, size int64, topic string) (_ tput, err error) {
	ctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	subs := make([]*receiver, 0, k)
	defer func() {
		if err != nil {
			cancel() // kills what is still running
			for _, r := range subs {
				<-r.done
			}
		}
	}()
	for range k {
		r, err := startReceiver(b.e.sshCommand(ctx, b.e.portico, b.o.cipher, "pipe", "sub", "-c", topic), b.p, b.o.verify)
		if err != nil {
			return tput{}, err
		}
		subs = append(subs, r)
	}
	if err := b.waitSubscribers(ctx, topic, k, subs); err != nil {
		return tput{}, err
	}
	pub := b.e.sshCommand(ctx, b.e.portico, b.o.cipher, "pipe", "pub", "-c", topic)
	pub.Stdin = newSource(b.p, size)
	var pubErr bytes.Buffer
	pub.Stderr = &pubErr
	meter := benchenv.StartCPUMeter(b.e.portico)
	start := time.Now()
	if err := pub.Start(); err != nil {
		return tput{}, fmt.Errorf("start pub: %w", err)
	}
	pubDone := make(chan error, 1)
	go func() { pubDone <- pub.Wait() }()
	end, err := waitReceivers(subs, b.o.timeout+time.Minute)
	if err != nil {
		return tput{}, err
	}
	busy, server := meter.Stop()
	select {
	case err := <-pubDone:
		if err != nil {
			return tput{}, fmt.Errorf("pub: %w\n%s", err, lastLines(pubErr.Bytes(), 10))
		}
	case <-time.After(30 * time.Second):
		return tput{}, errors.New("pub still running 30s after every subscriber had ended")
	}
	t := tput{wall: end.Sub(start), size: size, receivers: k, busy: busy, server: server, clients: clientCPU(pub)}
	for i, r := range subs {
		if err := r.check(fmt.Sprintf("subscriber %d of %d", i+1, k), size); err != nil {
			return tput{}, err
		}
		t.clients += clientCPU(r.cmd)
	}
	return t, nil
}

// waitReceivers waits for all receivers to exit and returns the time the last one did.
func waitReceivers(rs []*receiver, limit time.Duration) (time.Time, error) {
	deadline := time.After(limit)
	var last time.Time
	for i, r := range rs {
		select {
		case <-r.done:
		case <-deadline:
			return time.Time{}, fmt.Errorf("subscriber %d of %d still running after %v", i+1, len(rs), limit)
		}
		if r.end.After(last) {
			last = r.end
		}
	}
	return last, nil
}

// topicInfo is the part of an `ls --json` element the benchmark reads.
type topicInfo struct {
	Topic       string `json:"topic"`
	Subscribers int    `json:"subscribers"`
}

// waitSubscribers waits until portico's `ls --json` shows k subscribers on topic (pub's -b
// only waits for the first). If ls does not answer in JSON, it waits a fixed, bounded time
// instead. A subscriber that exits meanwhile is an error.
func (b *bench) waitSubscribers(ctx context.Context, topic string, k int, subs []*receiver) error {
	deadline := time.Now().Add(subscribeTimeout)
	if b.lsBroken {
		deadline = time.Now().Add(min(time.Second+time.Duration(k)*20*time.Millisecond, 10*time.Second))
	}
	seen := -1
	for time.Now().Before(deadline) {
		for i, r := range subs {
			select {
			case <-r.done:
				return fmt.Errorf("subscriber %d of %d ended before the publisher started: %v\n%s", i+1, k, r.err, lastLines(r.stderr.Bytes(), 10))
			default:
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !b.lsBroken {
			n, err := b.subscribers(topic)
			if err != nil {
				slog.Warn("pipe ls --json does not work; waiting a fixed time for the subscribers instead", "err", err)
				b.lsBroken = true
				deadline = time.Now().Add(min(time.Second+time.Duration(k)*20*time.Millisecond, 10*time.Second))
				continue
			}
			if n >= k {
				return nil
			}
			seen = n
		}
		time.Sleep(pollInterval)
	}
	if b.lsBroken {
		return nil
	}
	return fmt.Errorf("only %d of %d subscribers connected to %s after %v", seen, k, topic, subscribeTimeout)
}

// subscribers returns the subscriber count of topic from `ls --json` (0 if it is not listed).
func (b *bench) subscribers(topic string) (int, error) {
	sess, err := b.ctl.NewSession()
	if err != nil {
		return 0, fmt.Errorf("ls session: %w", err)
	}
	defer sess.Close()
	var stderr bytes.Buffer
	sess.Stderr = &stderr
	out, err := sess.Output("ls --json")
	if err != nil {
		return 0, fmt.Errorf("ls --json: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var topics []topicInfo
	if err := json.Unmarshal(out, &topics); err != nil {
		return 0, fmt.Errorf("ls --json output %q: %w", lastLines(out, 3), err)
	}
	for _, t := range topics {
		if t.Topic == topic || strings.HasSuffix(t.Topic, "/"+topic) {
			return t.Subscribers, nil
		}
	}
	return 0, nil
}
