package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/internal/benchenv"
)

// rateRound is one round of one session-rate case.
type rateRound struct {
	sessions int
	failures int
	wall     time.Duration
	cpu      time.Duration // the server's CPU time in the round
}

func (r rateRound) perSecond() float64 { return float64(r.sessions) / r.wall.Seconds() }

// rateCase names a server and an authentication method.
type rateCase struct {
	target string
	method string // "key" or "cert"
}

// measureRates runs the session-rate rounds, alternating the servers within each round so that
// load from elsewhere spreads over all of them.
func measureRates(ctx context.Context, o options, e *env) (map[rateCase][]rateRound, error) {
	out := map[rateCase][]rateRound{}
	for r := range o.rounds {
		for _, method := range o.methods {
			signer := e.key
			if method == "cert" {
				signer = e.cert
			}
			for _, t := range e.targets() {
				d := o.round
				if t.name == "sshd" {
					d = o.sshdRound
				}
				res, err := rateRoundOf(ctx, t, signer, o.workers, d)
				if err != nil {
					return nil, fmt.Errorf("%s with a %s, round %d: %w", t.name, method, r+1, err)
				}
				c := rateCase{t.name, method}
				out[c] = append(out[c], res)
				slog.Info("measured", "round", r+1, "server", t.name, "method", method,
					"sessions/s", int(res.perSecond()), "failures", res.failures, "server CPU", res.cpu)
			}
		}
	}
	return out, nil
}

// rateRoundOf runs workers clients against t for d, each opening one connection after another:
// connect, authenticate with signer, exec t.cmd, close.
func rateRoundOf(ctx context.Context, t target, signer ssh.Signer, workers int, d time.Duration) (rateRound, error) {
	config := &ssh.ClientConfig{
		User:            t.user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(t.s.HostKey),
		Timeout:         10 * time.Second,
	}
	// One session first, so that a server that refuses fails the run rather than the count.
	if err := oneSession(t, config); err != nil {
		return rateRound{}, err
	}
	var sessions, failures atomic.Int64
	var firstErr error
	var once sync.Once
	meter := benchenv.StartCPUMeter(t.s)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if err := oneSession(t, config); err != nil {
					failures.Add(1)
					once.Do(func() { firstErr = err })
					continue
				}
				sessions.Add(1)
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	_, cpu := meter.Stop()
	if ctx.Err() != nil {
		return rateRound{}, ctx.Err()
	}
	if err := t.s.Alive(); err != nil {
		return rateRound{}, err
	}
	if n := failures.Load(); n > 0 {
		slog.Warn("sessions failed", "server", t.name, "failures", n, "first", firstErr)
	}
	return rateRound{sessions: int(sessions.Load()), failures: int(failures.Load()), wall: wall, cpu: cpu}, nil
}

// oneSession connects, authenticates, runs t.cmd and closes.
func oneSession(t target, config *ssh.ClientConfig) error {
	conn, err := net.DialTimeout("tcp", t.s.Addr, config.Timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c, chans, reqs, err := ssh.NewClientConn(conn, t.s.Addr, config)
	if err != nil {
		return err
	}
	client := ssh.NewClient(c, chans, reqs)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return err
	}
	defer sess.Close()
	if err := sess.Run(t.cmd); err != nil {
		var exit *ssh.ExitError
		if errors.As(err, &exit) {
			return fmt.Errorf("%s exited %d", t.cmd, exit.ExitStatus())
		}
		return err
	}
	return nil
}
