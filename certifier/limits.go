package certifier

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Limits bound what clients can make the certifier hold or do. Zero fields take the defaults.
type Limits struct {
	MaxBody        int64 // bytes of a /sign request body (default 64 KiB)
	MaxHeader      int   // bytes of a request's header, Authorization included (default 64 KiB)
	MaxConnections int   // open connections (default 256); more wait to be accepted
	// PerSourceConnections are the open connections of one address (an IPv6 /64; default 16,
	// trusted proxies exempt); more are closed at once.
	PerSourceConnections int
	MaxSigning           int // /sign requests worked on at once (default 32); more get 503
	RefusalsPerSource    int // refused /sign requests per address and minute before 429 (default 20)
	AuditRefusals        int // refusals written one by one per minute, all addresses (default 600)
	// MaxSources are the addresses counted per minute (default 10000); refusals of more are
	// counted together for the audit log, and those addresses are not limited one by one (a
	// shared budget would let whoever fills the table turn everyone else away).
	MaxSources int
}

// Default limits.
const (
	DefaultMaxBody           = 64 << 10
	DefaultMaxHeader         = 64 << 10
	DefaultMaxConnections    = 256
	DefaultPerSourceConns    = 16
	DefaultMaxSigning        = 32
	DefaultRefusalsPerSource = 20
	DefaultAuditRefusals     = 600
	DefaultMaxSources        = 10_000
)

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.MaxBody <= 0 {
		l.MaxBody = DefaultMaxBody
	}
	def(&l.MaxHeader, DefaultMaxHeader)
	def(&l.MaxConnections, DefaultMaxConnections)
	def(&l.PerSourceConnections, DefaultPerSourceConns)
	def(&l.MaxSigning, DefaultMaxSigning)
	def(&l.RefusalsPerSource, DefaultRefusalsPerSource)
	def(&l.AuditRefusals, DefaultAuditRefusals)
	def(&l.MaxSources, DefaultMaxSources)
	return l
}

// otherSources is the shared count of the refusals of addresses beyond MaxSources (never
// turned away for it), in suppressed lines.
const otherSources = "*"

// refusalCounter counts refused requests per source address and one-minute window, so that
// an address that keeps being refused is turned away (429) before its requests cost anything,
// and so that a flood of refusals becomes a few audit lines with counts instead of filling
// the disk.
type refusalCounter struct {
	mu         sync.Mutex
	limits     Limits
	window     time.Time      // start of the current minute
	refusals   map[string]int // refused requests this minute, by source
	logged     int            // refusals written one by one this minute
	suppressed map[string]int // refusals not written one by one, by source
}

func newRefusalCounter(l Limits) *refusalCounter {
	return &refusalCounter{limits: l, refusals: map[string]int{}, suppressed: map[string]int{}}
}

// roll starts a new window if now is past the current one, and returns the suppressed
// counts of the window that ended.
func (c *refusalCounter) roll(now time.Time) map[string]int {
	w := now.Truncate(time.Minute)
	if w.Equal(c.window) {
		return nil
	}
	ended := c.suppressed
	c.window, c.refusals, c.logged, c.suppressed = w, map[string]int{}, 0, map[string]int{}
	if len(ended) == 0 {
		return nil
	}
	return ended
}

// key is the bucket of a source: itself while there is room, else the shared one.
func (c *refusalCounter) key(src string) string {
	if _, ok := c.refusals[src]; ok || len(c.refusals) < c.limits.MaxSources {
		return src
	}
	return otherSources
}

// admit reports whether src may make a request now; a request turned away counts as a
// suppressed refusal. ended is the previous window's suppressed counts, to be written.
func (c *refusalCounter) admit(src string, now time.Time) (ok bool, ended map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ended = c.roll(now)
	k := c.key(src)
	if k != otherSources && c.refusals[k] >= c.limits.RefusalsPerSource {
		c.suppressed[k]++
		return false, ended
	}
	return true, ended
}

// refused counts a refusal of src and reports whether to write it to the audit log.
func (c *refusalCounter) refused(src string, now time.Time) (write bool, ended map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ended = c.roll(now)
	k := c.key(src)
	c.refusals[k]++
	if c.logged >= c.limits.AuditRefusals {
		c.suppressed[k]++
		return false, ended
	}
	c.logged++
	return true, ended
}

// flush returns the current window's suppressed counts and forgets them (at shutdown).
func (c *refusalCounter) flush() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.suppressed
	c.suppressed = map[string]int{}
	return s
}

// sourceOf is the client address a request is counted and audited under: the peer, or with
// the peer among trusted proxies, the last X-Forwarded-For hop that is not one. An IPv6
// address counts as its /64, as one client usually holds a whole /64.
func sourceOf(remoteAddr string, forwardedFor []string, trusted []netip.Prefix) (addr string, bucket string) {
	ip := parseIP(remoteAddr)
	if ip.IsValid() && inPrefixes(trusted, ip) {
		hops := strings.Split(strings.Join(forwardedFor, ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop := parseIP(strings.TrimSpace(hops[i]))
			if !hop.IsValid() {
				break
			}
			ip = hop
			if !inPrefixes(trusted, hop) {
				break
			}
		}
	}
	if !ip.IsValid() {
		return remoteAddr, remoteAddr
	}
	if ip.Is6() && !ip.Is4In6() {
		p, _ := ip.Prefix(64)
		return ip.String(), p.String()
	}
	return ip.Unmap().String(), ip.Unmap().String()
}

func parseIP(s string) netip.Addr {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return ip.WithZone("")
}

func inPrefixes(ps []netip.Prefix, ip netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
}

// ParseTrustedProxies reads a comma list of addresses and CIDR blocks.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			ip, err := netip.ParseAddr(part)
			if err != nil {
				return nil, err
			}
			out = append(out, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, err
		}
		if p.Masked() != p {
			return nil, &net.ParseError{Type: "CIDR block (host bits set)", Text: part}
		}
		out = append(out, p)
	}
	return out, nil
}

// sourceLimitListener closes a new connection at once when its address (an IPv6 /64) already
// has max open, so that one client cannot take every connection (slow requests) from the rest.
type sourceLimitListener struct {
	net.Listener
	max     int
	trusted []netip.Prefix
	mu      sync.Mutex
	open    map[string]int
}

func newSourceLimitListener(l net.Listener, max int, trusted []netip.Prefix) net.Listener {
	return &sourceLimitListener{Listener: l, max: max, trusted: trusted, open: map[string]int{}}
}

func (l *sourceLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := parseIP(c.RemoteAddr().String())
		if ip.IsValid() && inPrefixes(l.trusted, ip) {
			return c, nil
		}
		_, key := sourceOf(c.RemoteAddr().String(), nil, nil)
		l.mu.Lock()
		if l.open[key] >= l.max {
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.open[key]++
		l.mu.Unlock()
		return &sourceConn{Conn: c, release: func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.open[key]--; l.open[key] <= 0 {
				delete(l.open, key)
			}
		}}, nil
	}
}

type sourceConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *sourceConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
