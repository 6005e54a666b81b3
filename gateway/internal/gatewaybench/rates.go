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

// measureRates runs the session-rate rounds. Within a round the bare server and portico take
// turns in slices of o.slice (bare, portico, bare, portico, ...) until each has had o.round, and
// each one's figure for the round is over all its slices: load from elsewhere on the machine
// (a build, another benchmark) then falls on both alike instead of on whichever server had the
// round it came in. sshd, far slower, runs once per round after them.
func measureRates(ctx context.Context, o options, e *env) (map[rateCase][]rateRound, error) {
	out := map[rateCase][]rateRound{}
	for r := range o.rounds {
		for _, method := range o.methods {
			signer := e.key
			if method == "cert" {
				signer = e.cert
			}
			ts := e.targets()
			sums := make([]rateRound, len(ts))
			for done := time.Duration(0); done < o.round; done += o.slice {
				d := min(o.slice, o.round-done)
				for i, t := range ts[:2] {
					res, err := rateRoundOf(ctx, t, signer, o.workers, d)
					if err != nil {
						return nil, fmt.Errorf("%s with a %s, round %d: %w", t.name, method, r+1, err)
					}
					sums[i] = sums[i].add(res)
				}
			}
			for i, t := range ts[2:] {
				res, err := rateRoundOf(ctx, t, signer, o.workers, o.sshdRound)
				if err != nil {
					return nil, fmt.Errorf("%s with a %s, round %d: %w", t.name, method, r+1, err)
				}
				sums[2+i] = res
			}
			for i, t := range ts {
				c := rateCase{t.name, method}
				out[c] = append(out[c], sums[i])
				slog.Info("measured", "round", r+1, "server", t.name, "method", method,
					"sessions/s", int(sums[i].perSecond()), "failures", sums[i].failures, "server CPU", sums[i].cpu)
			}
		}
	}
	return out, nil
}

// add sums two slices of one round.
func (r rateRound) add(s rateRound) rateRound {
	return rateRound{sessions: r.sessions + s.sessions, failures: r.failures + s.failures, wall: r.wall + s.wall, cpu: r.cpu + s.cpu}
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
