package gateway

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portico-sh/portico/auth"
)

// Limits bound what clients can make the gateway hold: connections, channels and the memory
// behind them, and how often one address may fail to log in. A zero field is off.
//
// What bounds memory: x/crypto/ssh grants every channel a fixed 2 MiB window, so each open
// channel may hold up to 2 MiB its client sent and nobody has read yet. A connection opens at
// most maxSessions sessions (maxSignupSessions on a sign-up grant) and maxForwardedChannels
// forwarded connections; MaxChannels bounds the channels of all connections together, and so
// the unread data to MaxChannels × 2 MiB; MaxConnections and MaxStartups bound the
// connections, each of which costs some tens of KiB besides.
type Limits struct {
	// MaxStartups limits unauthenticated connections, as sshd's MaxStartups.
	MaxStartups Startups
	// PerSourceMaxStartups is how many unauthenticated connections one source (auth.Source)
	// may have at once.
	PerSourceMaxStartups int
	// PerSourceMaxConnections is how many authenticated connections one source may have.
	PerSourceMaxConnections int
	// MaxConnections is how many authenticated connections the gateway holds at once.
	MaxConnections int
	// MaxChannels is how many channels clients may have open at once, over all connections;
	// one source (not exempt) may have a quarter of them (perSourceChannels).
	MaxChannels int
	// MaxHTTPConnections is how many connections each HTTP listener (the public one, the
	// metrics one) holds at once; past it, new ones are closed at once.
	MaxHTTPConnections int
	// Penalty refuses addresses that keep failing to log in, as sshd's PerSourcePenalties.
	Penalty Penalty
	// Exempt lists the addresses that the per-source limits and penalties never count.
	Exempt []netip.Prefix
	// SignupIdleTimeout closes a connection on a sign-up grant once its client has sent
	// nothing for this long.
	SignupIdleTimeout time.Duration
}

// Startups is sshd's MaxStartups start:rate:full: beyond Start unauthenticated connections, a
// new one is dropped with Rate percent chance, rising linearly to every one at Full.
type Startups struct{ Start, Rate, Full int }

// Penalty is sshd's PerSourcePenalties: how much each way of failing adds to an address's
// penalty, from which penalty on the address is refused (Min) and the most it can reach (Max).
type Penalty struct {
	AuthFail      time.Duration // a connection that ends after a refused authentication
	NoAuth        time.Duration // a connection that ends without trying to authenticate
	GraceExceeded time.Duration // a connection that overran the login grace time
	Min, Max      time.Duration
}

func (p Penalty) on() bool { return p.Max > 0 }

// Per-connection bounds. They are not settings: sshd's MaxSessions default, and what a
// sign-up needs.
const (
	maxSessions          = 10 // session channels of one connection
	maxSignupSessions    = 1  // session channels of a connection on a sign-up grant
	maxForwardedChannels = 32 // direct-tcpip channels of one connection
)

// perSourceChannels is how many of n channels in all one source may hold: a quarter, so that
// one address (one account's connections, or sign-up connections) cannot take them all, and at
// least a connection's sessions.
func perSourceChannels(n int) int { return min(n, max(n/4, maxSessions)) }

// maxPenalised bounds the addresses whose penalty the gateway remembers, as sshd's
// max-sources (65536); past it, an arbitrary one is forgotten.
const maxPenalised = 65536

// DefaultLimits are the limits of SPEC §7, plus the gateway's own global bounds.
func DefaultLimits() Limits {
	return Limits{
		MaxStartups:             Startups{Start: 100, Rate: 30, Full: 1000},
		PerSourceMaxStartups:    20,
		PerSourceMaxConnections: 200,
		MaxConnections:          DefaultMaxConnections,
		MaxChannels:             DefaultMaxChannels,
		MaxHTTPConnections:      DefaultMaxHTTPConnections,
		Penalty:                 DefaultPenalty(),
		SignupIdleTimeout:       DefaultSignupIdleTimeout,
	}
}

// Defaults of the gateway's own global bounds.
const (
	DefaultMaxConnections = 4096
	DefaultMaxChannels    = 512
	// DefaultMaxHTTPConnections is nginx's 1024 worker connections on 4 cores.
	DefaultMaxHTTPConnections = 4096
	DefaultSignupIdleTimeout  = 10 * time.Minute
)

// DefaultPenalty is sshd's PerSourcePenalties default.
func DefaultPenalty() Penalty {
	return Penalty{AuthFail: 5 * time.Second, NoAuth: time.Second, GraceExceeded: 20 * time.Second,
		Min: 15 * time.Second, Max: 10 * time.Minute}
}

// ParseStartups reads PORTICO_MAX_STARTUPS: "start:rate:full" as sshd's MaxStartups, a single
// number (every connection past it is dropped), or "off".
func ParseStartups(s string) (Startups, error) {
	if s == "off" {
		return Startups{}, nil
	}
	bad := fmt.Errorf("max startups %q: want start:rate:full such as 100:30:1000, a number, or off", s)
	parts := strings.Split(s, ":")
	var n []int
	for _, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 {
			return Startups{}, bad
		}
		n = append(n, v)
	}
	var st Startups
	switch len(n) {
	case 1:
		st = Startups{Start: n[0], Rate: 100, Full: n[0]}
	case 3:
		st = Startups{Start: n[0], Rate: n[1], Full: n[2]}
	default:
		return Startups{}, bad
	}
	if st.Start < 1 || st.Start > st.Full || st.Rate < 1 || st.Rate > 100 {
		return Startups{}, fmt.Errorf("max startups %q: want 0 < start <= full and a rate from 1 to 100 percent", s)
	}
	return st, nil
}

// ParseLimit reads a count limit: a positive number, or "off" (0).
func ParseLimit(name, s string) (int, error) {
	if s == "off" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s %q: want a positive number or off", name, s)
	}
	return n, nil
}

// ParsePenalty reads PORTICO_PER_SOURCE_PENALTY: "on" (sshd's defaults) or "off".
func ParsePenalty(s string) (Penalty, error) {
	switch s {
	case "on":
		return DefaultPenalty(), nil
	case "off":
		return Penalty{}, nil
	}
	return Penalty{}, fmt.Errorf("per-source penalty %q: want on or off", s)
}

// ParseExempt reads PORTICO_PER_SOURCE_EXEMPT: a comma list of addresses and CIDR blocks, or
// empty.
func ParseExempt(s string) ([]netip.Prefix, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	list, err := auth.ParseAddressList(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		return nil, fmt.Errorf("per-source exempt %q: %w", s, err)
	}
	return list, nil
}

// limitName is a limit as logs, metrics and messages name it.
type limitName string

// The limits that refuse connections or channels.
const (
	limitMaxStartups          limitName = "max_startups"
	limitPerSourceStartups    limitName = "per_source_max_startups"
	limitPenalty              limitName = "per_source_penalty"
	limitPerSourceConnections limitName = "per_source_max_connections"
	limitMaxConnections       limitName = "max_connections"
	limitMaxChannels          limitName = "max_channels"
	limitPerSourceChannels    limitName = "per_source_max_channels"
	limitSessions             limitName = "sessions_per_connection"
	limitForwarded            limitName = "forwarded_channels_per_connection"
	limitSignupIdle           limitName = "signup_idle_timeout"
	limitMaxHTTPConnections   limitName = "max_http_connections"
)

var limitNames = []limitName{limitMaxStartups, limitPerSourceStartups, limitPenalty, limitPerSourceConnections,
	limitMaxConnections, limitMaxChannels, limitPerSourceChannels, limitSessions, limitForwarded, limitSignupIdle, limitMaxHTTPConnections}

// errLimit is a refusal by a limit: what the client is told.
type errLimit struct {
	limit limitName
	msg   string
}

func (e *errLimit) Error() string { return e.msg }

// admission keeps the counts the limits are checked against.
type admission struct {
	l   Limits
	now func() time.Time

	mu         sync.Mutex
	startups   int
	startupsBy map[netip.Prefix]int
	conns      int
	connsBy    map[netip.Prefix]int
	channels   int
	channelsBy map[netip.Prefix]int
	outboundBy map[netip.Prefix]int // channels the tunnels of a source's connections opened
	penalties  map[netip.Prefix]*penalty
}

// penalty is one address's penalty: it is refused at connect until expiry once active.
type penalty struct {
	expiry time.Time
	active bool
	reason string
}

func newAdmission(l Limits, now func() time.Time) *admission {
	return &admission{l: l, now: now, startupsBy: map[netip.Prefix]int{}, connsBy: map[netip.Prefix]int{},
		channelsBy: map[netip.Prefix]int{}, outboundBy: map[netip.Prefix]int{}, penalties: map[netip.Prefix]*penalty{}}
}

// client is one connection as the limits see it.
type client struct {
	a      *admission
	src    netip.Prefix // zero when the address has none
	exempt bool         // from the per-source limits and penalties

	mu            sync.Mutex
	startup       bool // holds a startup slot
	conn          bool // holds a connection slot
	authenticated bool
	signup        bool
	failedAuth    bool // auth refused an attempt
	overranGrace  bool
	closed        bool
	sessions      int
	forwarded     int
}

// connect admits a new connection before its SSH handshake, or refuses it: an address under
// penalty, or too many unauthenticated connections in all or from its source.
func (a *admission) connect(src netip.Prefix, exempt bool) (*client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	perSource := src.IsValid() && !exempt
	if perSource && a.l.Penalty.on() {
		if p := a.penalties[src]; p != nil {
			now := a.now()
			switch {
			case !now.Before(p.expiry):
				delete(a.penalties, src)
			case p.active:
				return nil, &errLimit{limitPenalty, fmt.Sprintf("connections from your address are refused for %s more (%s)",
					p.expiry.Sub(now).Round(time.Second), p.reason)}
			}
		}
	}
	if st := a.l.MaxStartups; st.Full > 0 && a.dropStartup(st) {
		return nil, &errLimit{limitMaxStartups, "too many unauthenticated connections; try again later"}
	}
	if perSource && a.l.PerSourceMaxStartups > 0 && a.startupsBy[src] >= a.l.PerSourceMaxStartups {
		return nil, &errLimit{limitPerSourceStartups, fmt.Sprintf("too many unauthenticated connections from your address (at most %d at once)", a.l.PerSourceMaxStartups)}
	}
	a.startups++
	if src.IsValid() {
		a.startupsBy[src]++
	}
	return &client{a: a, src: src, exempt: exempt, startup: true}, nil
}

// dropStartup decides, as sshd does, whether one more unauthenticated connection is dropped.
// Caller holds a.mu.
func (a *admission) dropStartup(st Startups) bool {
	switch {
	case a.startups < st.Start:
		return false
	case a.startups >= st.Full || st.Rate >= 100:
		return true
	}
	p := st.Rate + (100-st.Rate)*(a.startups-st.Start)/(st.Full-st.Start)
	return rand.IntN(100) < p
}

// authenticating takes a connection slot for the attempt about to be decided, unless the
// connection already holds one. It refuses when the source or the gateway has too many.
func (c *client) authenticating() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn || c.closed {
		return nil
	}
	a := c.a
	a.mu.Lock()
	defer a.mu.Unlock()
	perSource := c.src.IsValid() && !c.exempt && a.l.PerSourceMaxConnections > 0
	switch {
	case perSource && a.connsBy[c.src] >= a.l.PerSourceMaxConnections:
		return &errLimit{limitPerSourceConnections, fmt.Sprintf("too many connections from your address (at most %d at once); close some and try again", a.l.PerSourceMaxConnections)}
	case a.l.MaxConnections > 0 && a.conns >= a.l.MaxConnections:
		return &errLimit{limitMaxConnections, "the server has too many connections; try again later"}
	}
	a.conns++
	if c.src.IsValid() {
		a.connsBy[c.src]++
	}
	c.conn = true
	return nil
}

// decided records how the attempt went: refused by auth (which counts toward the penalty),
// not decided (the store was down: not the client's doing), or allowed.
func (c *client) decided(allowed, refused, signup bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case allowed:
		c.authenticated, c.signup = true, signup
		c.releaseStartup()
		return
	case refused:
		c.failedAuth = true
	}
	c.releaseConn()
}

// failedAttempt records an authentication attempt that failed before any decision of auth.
func (c *client) failedAttempt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failedAuth = true
}

// graceOverrun records that the connection did not authenticate within the login grace time.
func (c *client) graceOverrun() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.overranGrace = true
}

// close gives back what the connection held and penalises its source for how it failed.
func (c *client) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	// The penalty is recorded before the slots are given back, so that whoever sees the
	// slots free sees the penalty too.
	if !c.authenticated && !c.exempt && c.src.IsValid() && c.a.l.Penalty.on() {
		p := c.a.l.Penalty
		switch {
		case c.overranGrace:
			c.a.penalise(c.src, p.GraceExceeded, "a connection overran the login grace time")
		case c.failedAuth:
			c.a.penalise(c.src, p.AuthFail, "failed logins")
		default:
			c.a.penalise(c.src, p.NoAuth, "connections that never tried to log in")
		}
	}
	c.releaseStartup()
	c.releaseConn()
}

// releaseStartup gives the startup slot back. Caller holds c.mu.
func (c *client) releaseStartup() {
	if !c.startup {
		return
	}
	c.startup = false
	a := c.a
	a.mu.Lock()
	defer a.mu.Unlock()
	a.startups--
	decrement(a.startupsBy, c.src)
}

// releaseConn gives the connection slot back. Caller holds c.mu.
func (c *client) releaseConn() {
	if !c.conn {
		return
	}
	c.conn = false
	a := c.a
	a.mu.Lock()
	defer a.mu.Unlock()
	a.conns--
	decrement(a.connsBy, c.src)
}

func decrement(m map[netip.Prefix]int, src netip.Prefix) {
	if !src.IsValid() {
		return
	}
	if m[src]--; m[src] <= 0 {
		delete(m, src)
	}
}

// penalise adds d to src's penalty, as sshd does: an address's penalty grows by each failure,
// up to Max; once what is left of it reaches Min, the address is refused until it runs out.
func (a *admission) penalise(src netip.Prefix, d time.Duration, reason string) {
	if d <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	p := a.penalties[src]
	if p == nil || !now.Before(p.expiry) {
		if p == nil && len(a.penalties) >= maxPenalised {
			for k := range a.penalties { // an arbitrary one: map order is random
				delete(a.penalties, k)
				break
			}
		}
		p = &penalty{expiry: now}
		a.penalties[src] = p
	}
	p.expiry = p.expiry.Add(d)
	if p.expiry.Sub(now) > a.l.Penalty.Max {
		p.expiry = now.Add(a.l.Penalty.Max)
	}
	p.reason = reason
	if p.expiry.Sub(now) >= a.l.Penalty.Min {
		p.active = true
	}
}

// openChannel takes a channel slot of the connection and of the gateway, for a session or a
// forwarded connection, or refuses. release gives it back; it may be called more than once.
func (c *client) openChannel(session bool) (release func(), err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	count, most := &c.forwarded, maxForwardedChannels
	var refusal *errLimit
	switch {
	case session && c.signup:
		count, most = &c.sessions, maxSignupSessions
		refusal = &errLimit{limitSessions, "a sign-up connection has one session at a time"}
	case session:
		count, most = &c.sessions, maxSessions
		refusal = &errLimit{limitSessions, fmt.Sprintf("at most %d sessions per connection", maxSessions)}
	default:
		refusal = &errLimit{limitForwarded, fmt.Sprintf("at most %d forwarded connections per SSH connection", maxForwardedChannels)}
	}
	if *count >= most {
		return nil, refusal
	}
	a := c.a
	a.mu.Lock()
	perSource := c.src.IsValid() && !c.exempt && a.l.MaxChannels > 0
	switch {
	case perSource && a.channelsBy[c.src] >= perSourceChannels(a.l.MaxChannels):
		a.mu.Unlock()
		return nil, &errLimit{limitPerSourceChannels, fmt.Sprintf("too many open sessions from your address (at most %d at once); close some and try again", perSourceChannels(a.l.MaxChannels))}
	case a.l.MaxChannels > 0 && a.channels >= a.l.MaxChannels:
		a.mu.Unlock()
		return nil, &errLimit{limitMaxChannels, "the server has too many open sessions; try again later"}
	}
	a.channels++
	if c.src.IsValid() {
		a.channelsBy[c.src]++
	}
	a.mu.Unlock()
	*count++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			*count--
			c.mu.Unlock()
			a.mu.Lock()
			a.channels--
			decrement(a.channelsBy, c.src)
			a.mu.Unlock()
		})
	}, nil
}

// openOutbound counts a channel the server opens to the client (a tunnel's forwarded-tcpip
// channel, for a visitor) against the gateway's limit of open channels: each may hold its window
// of unread data, as the client's own channels may. The per-connection and per-source limits do
// not apply: visitors, not the client, open these. They have a per-source share of their own,
// as large as the one of the source's own channels: without it, one account's tunnels (with
// visitors it sends itself, to a client that never answers) could hold every channel of the
// gateway, and every user's sessions would be refused.
func (c *client) openOutbound() (release func(), err error) {
	a := c.a
	a.mu.Lock()
	defer a.mu.Unlock()
	perSource := c.src.IsValid() && !c.exempt && a.l.MaxChannels > 0
	switch {
	case perSource && a.outboundBy[c.src] >= perSourceChannels(a.l.MaxChannels):
		return nil, &errLimit{limitPerSourceChannels, fmt.Sprintf("the tunnels of this address have %d connections open, as many as they may", perSourceChannels(a.l.MaxChannels))}
	case a.l.MaxChannels > 0 && a.channels >= a.l.MaxChannels:
		return nil, &errLimit{limitMaxChannels, "the server has too many open channels; try again later"}
	}
	a.channels++
	if c.src.IsValid() {
		a.outboundBy[c.src]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			a.channels--
			decrement(a.outboundBy, c.src)
			a.mu.Unlock()
		})
	}, nil
}

// counts are the admission's counts, for metrics and tests.
type counts struct{ startups, conns, channels, penalised int }

func (a *admission) counts() counts {
	a.mu.Lock()
	defer a.mu.Unlock()
	return counts{a.startups, a.conns, a.channels, len(a.penalties)}
}

// asLimit returns the limit refusal inside err, if any.
func asLimit(err error) (*errLimit, bool) {
	var l *errLimit
	ok := errors.As(err, &l)
	return l, ok
}
