package tuns

import (
	"context"
	"fmt"
	"net"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/services"
)

// directTCPIP is the payload of a direct-tcpip channel open (RFC 4254 7.2).
type directTCPIP struct {
	Host       string
	Port       uint32
	OriginAddr string
	OriginPort uint32
}

// ChannelTypes are the channels the service takes besides sessions.
func (s *Service) ChannelTypes() []string { return []string{"direct-tcpip"} }

// HandleChannel connects a direct-tcpip channel (ssh -L, ssh -J) to a private tunnel that the
// connection's account may reach. Anyone else gets the same refusal whether or not the tunnel
// exists.
func (s *Service) HandleChannel(c *services.Conn, nc gossh.NewChannel) {
	var d directTCPIP
	if err := gossh.Unmarshal(nc.ExtraData(), &d); err != nil {
		nc.Reject(gossh.ConnectionFailed, "malformed direct-tcpip request")
		return
	}
	t, ok := s.reachable(c.Grant, d.Host, d.Port)
	if !ok {
		s.log.Info("tuns: direct-tcpip refused", "account", c.Grant.Account, "identity", c.Grant.Identity,
			"target", printable(d.Host), "port", d.Port, "remote", c.SSH.RemoteAddr().String())
		nc.Reject(gossh.Prohibited, fmt.Sprintf("no tunnel %s:%d that you may reach", printable(d.Host), d.Port))
		return
	}
	// The visitor's real address: the originator in its request is its client's claim.
	origin := c.SSH.RemoteAddr().String()
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	up, err := t.dial(ctx, origin, false)
	cancel()
	if err != nil {
		nc.Reject(gossh.ConnectionFailed, "the tunnel's local server refused the connection")
		return
	}
	down, reqs, err := nc.Accept()
	if err != nil {
		up.Close()
		return
	}
	go gossh.DiscardRequests(reqs)
	go t.carry(up, down, "ssh "+c.Grant.Account)
}

// reachable returns the private tunnel host:port names when g may reach it.
func (s *Service) reachable(g auth.Grant, host string, port uint32) (*Tunnel, bool) {
	account, name, ok := parseTarget(host)
	if !ok {
		return nil, false
	}
	t, ok := s.reg.Lookup(account, name)
	if !ok || t.Kind != KindTCPPrivate || t.Port != port {
		return nil, false
	}
	if !auth.MayUse(g, t.Account, false, t.owner.options().allow) {
		return nil, false
	}
	return t, true
}

// carry splices a visitor's connection to the tunnel and logs it on the owner's session.
func (t *Tunnel) carry(up *chanConn, down halfCloser, who string) {
	start := time.Now()
	t.requests.Add(1)
	// The visitor's side too: once the channel is cut, a direction waiting on the visitor
	// would otherwise linger.
	tr, ok := t.track(down)
	if !ok {
		up.Close()
		return
	}
	defer t.untrack(tr)
	in, out := splice(down, up)
	t.owner.logLine(fmt.Sprintf("%s TCP %s %s in %d out %d", start.Format("15:04:05"), printable(who),
		time.Since(start).Round(time.Millisecond), in, out))
}

// acceptPublic serves a public TCP port until the tunnel ends.
func (t *Tunnel) acceptPublic() {
	for {
		nc, err := t.listener.Accept()
		if err != nil {
			select {
			case <-t.ended:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go t.servePublic(nc.(*net.TCPConn))
	}
}

func (t *Tunnel) servePublic(nc *net.TCPConn) {
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	go func() {
		select {
		case <-t.ended:
			cancel()
		case <-ctx.Done():
		}
	}()
	up, err := t.dial(ctx, nc.RemoteAddr().String(), false)
	if err != nil {
		nc.Close()
		return
	}
	t.carry(up, nc, nc.RemoteAddr().String())
}
