package tuns

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/services"
)

// Exit statuses, as the other services.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// maxHostHeader bounds host-header=VALUE.
const maxHostHeader = 255

// sessionGrace is how long a session waits for its connection's first forward request.
const sessionGrace = 500 * time.Millisecond

// Serve runs a session: ls, help, or the session of the connection's tunnels, which shows
// them and their request log until it is closed (closing it ends them).
func (s *Service) Serve(sess *services.Session) int {
	stderr := sess.Stderr()
	if sess.Subsystem != "" {
		fmt.Fprintf(stderr, "portico: the tuns service has no subsystem %q\n", printable(sess.Subsystem))
		return exitFailed
	}
	args := sess.Command
	if len(args) > 0 {
		switch args[0] {
		case "ls":
			return s.ls(sess, args[1:])
		case "help", "-h", "--help":
			io.WriteString(sess, s.usage())
			return exitOK
		}
	}
	sc, _ := sess.Context().Value(ssh.ContextKeyConn).(*gossh.ServerConn)
	if sc == nil {
		fmt.Fprint(stderr, "portico: no connection\n")
		return exitFailed
	}
	cs := s.connOf(sc, sess.Grant)
	if cs == nil {
		return exitFailed
	}
	o, err := parseOptions(args)
	if err != nil {
		cs.endAll()
		fmt.Fprintf(stderr, "portico: %v\n\n%s", err, s.usage())
		return exitUsage
	}
	if !sess.Grant.Permits.PortForwarding {
		cs.endAll()
		fmt.Fprint(stderr, "portico: this certificate does not permit port forwarding (it lacks permit-port-forwarding): it can run ls and help only\n")
		return exitFailed
	}
	return s.watch(sess, cs, o)
}

// watch shows the connection's tunnels and their requests on the session until it ends.
func (s *Service) watch(sess *services.Session, cs *conn, o options) int {
	_, _, isPTY := sess.Pty()
	nl := "\n"
	if isPTY {
		nl = "\r\n"
	}
	sk := newSink()
	cs.attach(sk, o)
	defer func() {
		cs.detach(sk)
		cs.endAll()
	}()
	stdout, stderr := sess, sess.Stderr()
	flush := func() {
		out, errs, dropped := sk.take()
		for _, e := range errs {
			io.WriteString(stderr, e+nl)
		}
		if len(errs) > 0 {
			sk.written(len(errs))
		}
		if dropped > 0 {
			fmt.Fprintf(stderr, "portico: %d request lines were not shown (the session read too slowly)%s", dropped, nl)
		}
		if len(out) > 0 {
			io.WriteString(stdout, strings.Join(out, nl)+nl)
		}
	}
	// OpenSSH sends its forward requests before it opens the session, so that by now they
	// have arrived: a moment is enough to see whether there are any.
	interrupted := make(chan struct{})
	go readInput(sess, isPTY, interrupted)
	grace := time.NewTimer(sessionGrace)
	defer grace.Stop()
	graceOver := false
	ctx := sess.Context()
	for {
		select {
		case <-sk.wake:
		case <-grace.C:
			graceOver = true
		case <-ctx.Done():
			flush()
			return exitOK
		case <-cs.done:
			flush()
			return exitFailed
		case <-interrupted:
			flush()
			return exitOK
		}
		flush()
		live, had, refused, pending := cs.counts()
		switch {
		case live > 0 || pending > 0:
		case had:
			fmt.Fprintf(stderr, "portico: no tunnel is left on this connection%s", nl)
			return exitFailed
		case graceOver && refused > 0:
			return exitFailed
		case graceOver:
			fmt.Fprintf(stderr, "portico: this connection has no tunnels: ask for one with -R%s%s", nl,
				strings.ReplaceAll(s.usage(), "\n", nl))
			return exitUsage
		}
	}
}

// readInput reads the session's stdin until it ends, so that a client's input never waits. On a
// terminal, Ctrl-C or Ctrl-D (which the terminal sends as bytes) closes interrupted: the user
// wants the tunnels to end. Without one, input means nothing (it may be /dev/null).
func readInput(sess *services.Session, isPTY bool, interrupted chan<- struct{}) {
	buf := make([]byte, 1024)
	for {
		n, err := sess.Read(buf)
		if isPTY && slices.ContainsFunc(buf[:n], func(b byte) bool { return b == 0x03 || b == 0x04 }) {
			close(interrupted)
			return
		}
		if err != nil {
			return
		}
	}
}

// parseOptions reads the session's key=value words.
func parseOptions(args []string) (options, error) {
	var o options
	for _, w := range args {
		key, value, hasValue := strings.Cut(w, "=")
		switch {
		case key == "quiet" && !hasValue:
			o.quiet = true
		case key == "allow" && hasValue:
			l, err := auth.ParseShareList(value)
			if err != nil {
				return options{}, fmt.Errorf("allow=: %v", err)
			}
			o.allow = l
		case key == "host-header" && hasValue:
			if value == "" || len(value) > maxHostHeader || strings.ContainsFunc(value, func(r rune) bool { return r <= ' ' || r > '~' }) {
				return options{}, fmt.Errorf("host-header=%q is not a host name", printable(value))
			}
			o.hostHeader = value
		default:
			return options{}, fmt.Errorf("unknown option %q", printable(w))
		}
	}
	return o, nil
}

func (s *Service) usage() string {
	var b strings.Builder
	c := s.o.SSHCommand
	fmt.Fprintf(&b, "portico tuns: tunnels to your machine over ssh -R.\n\n")
	fmt.Fprintf(&b, "  %s -R NAME:80:localhost:3000 %s     HTTP at %s\n", strings.Fields(c)[0], strings.Join(strings.Fields(c)[1:], " "),
		s.o.Public.SiteURL("ACCOUNT", "NAME"))
	fmt.Fprintf(&b, "  ssh ... -R NAME:PORT:localhost:PORT ... [allow=bob,carol]   a private TCP tunnel, reached with\n")
	fmt.Fprintf(&b, "      ssh -N -L PORT:ACCOUNT-NAME:PORT %s (or ssh -J %s ACCOUNT-NAME for port 22)\n", s.sshDest(), s.jumpHost())
	if r := s.o.TCPPorts; r.First > 0 {
		fmt.Fprintf(&b, "  ssh ... -R 0:localhost:PORT ...                 a public TCP port of %d-%d\n", r.First, r.Last)
	}
	fmt.Fprintf(&b, "  %s ls [--json]                         your tunnels\n\n", c)
	b.WriteString("Options are words after the host: quiet (no request log), allow=ACCOUNT,... (who may reach a\n")
	b.WriteString("private tunnel), host-header=VALUE (the Host your local server gets). Use -o ExitOnForwardFailure=yes.\n")
	return b.String()
}

// TunnelView is one tunnel as ls and the TUI show it.
type TunnelView struct {
	Name        string    `json:"name"`
	Host        string    `json:"host,omitempty"`
	Kind        Kind      `json:"kind"`
	URL         *string   `json:"url"`
	Port        uint32    `json:"port"`
	Allow       []string  `json:"allow"`
	Identity    string    `json:"identity"`
	ConnectedAt time.Time `json:"connected_at"`
	Requests    int64     `json:"requests"`
	BytesIn     int64     `json:"bytes_in"`
	BytesOut    int64     `json:"bytes_out"`
	// Where is how the tunnel is reached: its URL, private host:port, or public address.
	Where string `json:"-"`
}

// Tunnels lists the account's tunnels.
func (s *Service) Tunnels(account string) []TunnelView {
	ts := s.reg.Tunnels(account)
	views := make([]TunnelView, 0, len(ts))
	for _, t := range ts {
		st := t.Stats()
		v := TunnelView{Name: t.Name, Host: t.Host(), Kind: t.Kind, Port: t.Port, Allow: t.Allow(), Identity: t.Identity,
			ConnectedAt: t.ConnectedAt, Requests: st.Requests, BytesIn: st.BytesIn, BytesOut: st.BytesOut}
		if u := t.URL(); u != "" {
			v.URL = &u
		}
		v.Where = s.where(v)
		views = append(views, v)
	}
	return views
}

// where is how a tunnel is reached: its URL, private host:port, or public address.
func (s *Service) where(v TunnelView) string {
	switch {
	case v.URL != nil:
		return *v.URL
	case v.Kind == KindTCPPrivate:
		return v.Host + ":" + strconv.Itoa(int(v.Port)) + " (private)"
	}
	return "tcp://" + net.JoinHostPort(s.publicHost(), strconv.Itoa(int(v.Port)))
}

func (s *Service) ls(sess *services.Session, args []string) int {
	asJSON := false
	for _, a := range args {
		if a != "--json" {
			fmt.Fprintf(sess.Stderr(), "portico: ls: unexpected argument %q\nusage: %s ls [--json]\n", printable(a), s.o.SSHCommand)
			return exitUsage
		}
		asJSON = true
	}
	views := s.Tunnels(sess.Grant.Account)
	if asJSON {
		enc := json.NewEncoder(sess)
		enc.SetIndent("", "  ")
		if err := enc.Encode(views); err != nil {
			return exitFailed
		}
		return exitOK
	}
	if len(views) == 0 {
		io.WriteString(sess, "no tunnels\n")
		return exitOK
	}
	tw := tabwriter.NewWriter(sess, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tWHERE\tCONNECTED\tIDENTITY\tREQUESTS\tIN\tOUT")
	for _, v := range views {
		name := v.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", name, v.Kind, v.Where,
			v.ConnectedAt.Format(time.RFC3339), printable(v.Identity), v.Requests, v.BytesIn, v.BytesOut)
	}
	tw.Flush()
	return exitOK
}
