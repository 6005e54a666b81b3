package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"golang.org/x/crypto/ssh"
)

// warmup is the number of messages sent before the recorded ones.
const warmup = 100

// latencySSHD measures round trips through `cat` on sshd: each message goes client → sshd →
// cat → sshd → client on one session.
func (b *bench) latencySSHD(ctx context.Context) ([]time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	c, err := b.e.dial(b.e.sshd, b.o.cipher, "root")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	s, err := startSession(c, "cat")
	if err != nil {
		return nil, err
	}
	samples, err := pingPong(s.stdin, s.stdout, b.o.latencyN, b.o.latencySize)
	if err != nil {
		return nil, fmt.Errorf("sshd cat: %w", contextErr(ctx, err))
	}
	return samples, s.finish("sshd cat")
}

// latencyPortico measures publish-to-receive times on portico: a subscriber on one connection,
// a publisher on another; each message goes client → portico (pub) → portico (sub) → client.
func (b *bench) latencyPortico(ctx context.Context, topic string) ([]time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	subConn, err := b.e.dial(b.e.portico, b.o.cipher, "pipe")
	if err != nil {
		return nil, err
	}
	defer subConn.Close()
	pubConn, err := b.e.dial(b.e.portico, b.o.cipher, "pipe")
	if err != nil {
		return nil, err
	}
	defer pubConn.Close()
	stop := context.AfterFunc(ctx, func() { subConn.Close(); pubConn.Close() })
	defer stop()
	sub, err := startSession(subConn, "sub -c "+topic)
	if err != nil {
		return nil, err
	}
	if err := b.waitSubscribers(ctx, topic, 1, nil); err != nil {
		return nil, err
	}
	// pub's -b (default true) waits for the first subscriber, which is already there.
	pub, err := startSession(pubConn, "pub -c "+topic)
	if err != nil {
		return nil, err
	}
	samples, err := pingPong(pub.stdin, sub.stdout, b.o.latencyN, b.o.latencySize)
	if err != nil {
		return nil, fmt.Errorf("portico pub → sub: %w\npub: %s\nsub: %s", contextErr(ctx, err),
			lastLines(pub.stderr.Bytes(), 5), lastLines(sub.stderr.Bytes(), 5))
	}
	// The publisher's end of input ends it, and its leaving ends the subscriber.
	if err := pub.finish("portico pub"); err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.Discard, sub.stdout); err != nil {
		return nil, fmt.Errorf("portico sub after the publisher left: %w", err)
	}
	if err := sub.wait("portico sub"); err != nil {
		return nil, err
	}
	return samples, nil
}

// contextErr prefers the context's error (a timeout closes the connections) to the I/O error
// it caused.
func contextErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// session is a started x/crypto session with its pipes.
type session struct {
	s      *ssh.Session
	stdin  io.WriteCloser
	stdout io.Reader
	stderr bytes.Buffer
}

func startSession(c *ssh.Client, command string) (*session, error) {
	s, err := c.NewSession()
	if err != nil {
		return nil, fmt.Errorf("new session for %q: %w", command, err)
	}
	sess := &session{s: s}
	s.Stderr = &sess.stderr
	if sess.stdin, err = s.StdinPipe(); err != nil {
		return nil, err
	}
	if sess.stdout, err = s.StdoutPipe(); err != nil {
		return nil, err
	}
	if err := s.Start(command); err != nil {
		return nil, fmt.Errorf("start %q: %w", command, err)
	}
	return sess, nil
}

// finish closes the session's stdin and waits for it to exit 0, reading what is left of
// its stdout.
func (s *session) finish(name string) error {
	if err := s.stdin.Close(); err != nil {
		return fmt.Errorf("%s: close stdin: %w", name, err)
	}
	if _, err := io.Copy(io.Discard, s.stdout); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return s.wait(name)
}

func (s *session) wait(name string) error {
	if err := s.s.Wait(); err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, lastLines(s.stderr.Bytes(), 5))
	}
	return nil
}

// pingPong writes n+warmup messages of size bytes to w one at a time, waits until each has
// come out of r whole, and returns the times of the last n. Every message is distinct, and
// what comes out must be what went in.
func pingPong(w io.Writer, r io.Reader, n, size int) ([]time.Duration, error) {
	if size < 8 {
		return nil, errors.New("latency messages must be at least 8 bytes")
	}
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = byte(i)
	}
	got := make([]byte, size)
	samples := make([]time.Duration, 0, n)
	for i := range n + warmup {
		binary.LittleEndian.PutUint64(msg, uint64(i))
		start := time.Now()
		if _, err := w.Write(msg); err != nil {
			return nil, fmt.Errorf("write message %d: %w", i, err)
		}
		if _, err := io.ReadFull(r, got); err != nil {
			return nil, fmt.Errorf("read message %d: %w", i, err)
		}
		d := time.Since(start)
		if !bytes.Equal(got, msg) {
			return nil, fmt.Errorf("message %d came back different", i)
		}
		if i >= warmup {
			samples = append(samples, d)
		}
	}
	return samples, nil
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of samples.
func percentile(samples []time.Duration, p float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}
