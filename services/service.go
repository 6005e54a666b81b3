package services

import (
	"net/http"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
)

// Session is one SSH session channel (shell, exec or subsystem) routed to a service.
// The embedded ssh.Session is the channel: Read is stdin, Write is stdout, Stderr() is stderr,
// Pty() says whether a terminal was granted (the gateway already applied permit-pty).
type Session struct {
	ssh.Session
	Grant auth.Grant
	// Command is what to run, split with shell rules: the certificate's force-command when it
	// has one, else the client's exec command. Empty for a shell or a subsystem.
	Command []string
	// RawCommand is Command as one string, as the client (or force-command) sent it.
	RawCommand string
	// Subsystem is the requested subsystem ("sftp"); empty unless the client asked for one and
	// no force-command replaced it.
	Subsystem string
	// Regrant, when set, tells the gateway that the session now acts with grant g, which auth
	// gave the session's own key during the session (the TUI's sign-up or claim): the
	// connection is then ended when g's grounds end, as one that logged in with g would be.
	Regrant func(g auth.Grant)
}

// Service serves the sessions routed to it.
type Service interface {
	// Name is the service's name, which is also its certificate principal.
	Name() auth.Service
	// Serve runs one session to its end and returns the exit status sent to the client.
	Serve(s *Session) int
}

// Conn is one authenticated SSH connection, for services that handle more than sessions.
type Conn struct {
	Ctx   ssh.Context
	Grant auth.Grant
	SSH   *gossh.ServerConn
	// ReserveChannel counts a channel the service opens to the client (forwarded-tcpip) against
	// the gateway's limit of open channels; release gives it back once the channel is closed.
	// nil: no limit.
	ReserveChannel func() (release func(), err error)
}

// GlobalRequestHandler is implemented by services that take global requests, such as
// tcpip-forward and cancel-tcpip-forward. The gateway has checked the grant's service and
// permit-port-forwarding before calling it.
type GlobalRequestHandler interface {
	RequestTypes() []string
	HandleRequest(c *Conn, req *gossh.Request) (ok bool, payload []byte)
}

// ForwardRefusalHandler is implemented by GlobalRequestHandlers that tell the client why the
// gateway refused one of their requests (the grant lacks permit-port-forwarding): SSH's
// refusal carries no reason.
type ForwardRefusalHandler interface {
	ForwardRefused(c *Conn, req *gossh.Request, reason string)
}

// ChannelHandler is implemented by services that accept channel types other than "session",
// such as direct-tcpip. The gateway has checked the grant's service and
// permit-port-forwarding before calling it.
type ChannelHandler interface {
	ChannelTypes() []string
	HandleChannel(c *Conn, ch gossh.NewChannel)
}

// SiteServer is implemented by services that answer HTTP for host names of the form
// {account}-{name}.{domain} on the gateway's HTTP listener.
type SiteServer interface {
	// Site returns the handler for the account's site called name, or false if it has none.
	Site(account, name string) (http.Handler, bool)
}

// StaticSiteServer is a SiteServer that can also answer the plainest requests for a site's
// files without net/http: a GET or HEAD with no body, range or credentials, and no condition
// but If-None-Match. The gateway parses such requests itself and asks StaticFile first;
// whatever the server declines goes to the handler Site returns, as every other request does.
type StaticSiteServer interface {
	SiteServer
	// StaticFile answers such a GET or HEAD of urlPath (a path of unreserved characters,
	// nothing percent-encoded; the query left out) on the account's site called name, whose
	// request carries acceptEncoding as its Accept-Encoding and ifNoneMatch as its one
	// If-None-Match ("" when it has none). found is false when the server has no such site,
	// as Site's false. Otherwise, when ok, the answer is a response (200, or 304 to a
	// revalidation) that Site's handler would send byte for byte: head has its status line
	// and header lines appended to dst (each ending in CRLF, without Date and the blank line
	// that ends them) and body is its body for a GET, shared and never to be changed. When
	// not ok, the request is for Site's handler.
	StaticFile(dst []byte, account, name, urlPath, acceptEncoding, ifNoneMatch string) (head, body []byte, found, ok bool)
}
