package pipe

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/charmbracelet/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/internal/cliargs"
	"github.com/portico-sh/portico/services"
)

// Exit statuses (SPEC §8.1).
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// readSize is how much of a client's stdin one read takes: at least two SSH packets, so the
// channel window, not the service, limits the rate.
const readSize = 64 << 10

// defaultDropNotice bounds how long a dropped reader's message may wait for room in its SSH
// window; after it the connection is closed, since a client that reads nothing will never
// make room.
const defaultDropNotice = 5 * time.Second

// defaultWaitTimeout is pub -t's default.
const defaultWaitTimeout = 24 * time.Hour

// Options configure the service.
type Options struct {
	Broker Broker
	// SSHCommand is how users reach the service, for the usage text: "ssh -p 2222
	// pipe@example.com".
	SSHCommand string
	// DropNotice bounds how long the message to a dropped reader may wait for room in its
	// SSH window before its connection is closed (5s when zero).
	DropNotice time.Duration
	Logger     *slog.Logger
}

// Service is the pipe service.
type Service struct {
	broker     Broker
	sshCmd     string
	dropNotice time.Duration
	log        *slog.Logger
}

// New returns the pipe service on o.Broker.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SSHCommand == "" {
		o.SSHCommand = "ssh pipe@HOST"
	}
	if o.DropNotice <= 0 {
		o.DropNotice = defaultDropNotice
	}
	return &Service{broker: o.Broker, sshCmd: o.SSHCommand, dropNotice: o.DropNotice, log: o.Logger}
}

// Name is the service's name and principal.
func (s *Service) Name() auth.Service { return auth.Pipe }

// Serve runs one pipe command.
func (s *Service) Serve(sess *services.Session) int {
	r := &run{svc: s, sess: sess, ctx: sess.Context(), stdout: sess, stderr: sess.Stderr()}
	if sess.Subsystem != "" {
		fmt.Fprintf(r.stderr, "portico: the pipe service has no subsystem %q\n", sess.Subsystem)
		return exitFailed
	}
	args := sess.Command
	if len(args) == 0 {
		fmt.Fprint(r.stderr, s.usage())
		return exitUsage
	}
	switch args[0] {
	case "sub":
		return r.sub(args[1:])
	case "pub":
		return r.pub(args[1:])
	case "pipe":
		return r.pipe(args[1:])
	case "ls":
		return r.ls(args[1:])
	case "help", "-h", "--help":
		fmt.Fprint(r.stdout, s.usage())
		return exitOK
	}
	return r.usagef("unknown command %q", args[0])
}

func (s *Service) usage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "portico pipe: publish and subscribe byte streams over SSH.\n\nusage: %s COMMAND [flags] [TOPIC]\n\n", s.sshCmd)
	for _, line := range [][2]string{
		{"sub TOPIC [-k] [-p] [-a LIST] [-c]", "writes what is published on TOPIC to stdout; ends when the last publisher leaves, unless -k"},
		{"pub TOPIC [-b=BOOL] [-t DURATION] [-p] [-a LIST] [-e] [-c] [-d multicast|round-robin]", "publishes stdin; -b (default true) waits for a subscriber, at most -t (default 24h);\n-e sends nothing; -d round-robin gives each chunk to one subscriber in turn"},
		{"pipe TOPIC [-r] [-p] [-a LIST] [-c]", "both ways: what any pipe client writes goes to the others; -r echoes it back too"},
		{"ls [--json]", "your topics with publisher, subscriber and pipe counts"},
		{"help", "this text"},
	} {
		fmt.Fprintf(&b, "  %s\n      %s\n", line[0], strings.ReplaceAll(line[1], "\n", "\n      "))
	}
	b.WriteString(`
TOPIC is yours (ACCOUNT/TOPIC); -p makes it public (public/TOPIC), usable by every account.
-a bob,SHA256:... shares your topic with accounts or keys while you have it open; they name it
ACCOUNT/TOPIC. Status lines go to stderr; -c silences them.
`)
	return b.String()
}

// run is one pipe command on one session.
type run struct {
	svc    *Service
	sess   *services.Session
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
	quiet  bool // -c
}

// usagef reports a usage error: exit status 2.
func (r *run) usagef(format string, args ...any) int {
	fmt.Fprintf(r.stderr, "portico: %s\nrun: %s help\n", fmt.Sprintf(format, args...), r.svc.sshCmd)
	return exitUsage
}

// failf reports a refusal or failure: exit status 1.
func (r *run) failf(format string, args ...any) int {
	fmt.Fprintf(r.stderr, "portico: %s\n", fmt.Sprintf(format, args...))
	return exitFailed
}

// statusf writes a status line unless -c.
func (r *run) statusf(format string, args ...any) {
	if !r.quiet {
		fmt.Fprintf(r.stderr, "portico: %s\n", fmt.Sprintf(format, args...))
	}
}

// topicFlags are the flags every topic command has.
type topicFlags struct {
	public bool
	share  string
	quiet  bool
}

func (f *topicFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.public, "p", false, "public topic")
	fs.StringVar(&f.share, "a", "", "share with accounts or key fingerprints")
	fs.BoolVar(&f.quiet, "c", false, "no status lines")
}

// join parses a topic command's flags and its one TOPIC, builds the request from the parsed
// flags with build, and joins the topic. A nil Client comes with the exit status to return.
func (r *run) join(name string, fs *flag.FlagSet, f *topicFlags, args []string, build func() (JoinRequest, int)) (Client, Topic, int) {
	pos, err := cliargs.Parse(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(r.stdout, r.svc.usage())
		return nil, Topic{}, exitOK
	case err != nil:
		return nil, Topic{}, r.usagef("%s: %v", name, err)
	case len(pos) == 0:
		return nil, Topic{}, r.usagef("%s needs a TOPIC", name)
	case len(pos) > 1:
		return nil, Topic{}, r.usagef("%s: unexpected argument %q", name, pos[1])
	}
	r.quiet = f.quiet
	grant := r.sess.Grant
	t, err := ResolveTopic(grant.Account, pos[0], f.public)
	if err != nil {
		return nil, Topic{}, r.usagef("%s: %v", name, err)
	}
	share, err := auth.ParseShareList(f.share)
	if err != nil {
		return nil, Topic{}, r.usagef("%s -a: %v", name, err)
	}
	req, code := build()
	if code != exitOK {
		return nil, Topic{}, code
	}
	req.Topic, req.Grant, req.Share = t, grant, share
	c, err := r.svc.broker.Join(r.ctx, req)
	switch {
	case errors.Is(err, ErrNoAccess):
		return nil, t, r.failf("no access to topic %s", t)
	case errors.Is(err, ErrPublicShared):
		return nil, t, r.usagef("%s -a: %v", name, err)
	case errors.Is(err, ErrNotOwner):
		return nil, t, r.failf("%s -a: %s belongs to %s; only its owner may share it", name, t, t.Owner)
	case errors.Is(err, ErrTooManyReaders):
		return nil, t, r.failf("%s: %v; try again when one has left", name, err)
	case err != nil:
		return nil, t, r.failf("%s: %v", t, err)
	}
	return c, t, exitOK
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

func (r *run) sub(args []string) int {
	var f topicFlags
	fs := newFlagSet("sub")
	f.register(fs)
	keep := fs.Bool("k", false, "keep listening after the last publisher leaves")
	c, t, code := r.join("sub", fs, &f, args, func() (JoinRequest, int) {
		return JoinRequest{Role: Subscriber, Keep: *keep}, exitOK
	})
	if c == nil {
		return code
	}
	defer c.Leave()
	return r.deliver(c, t, false)
}

func (r *run) pub(args []string) int {
	var f topicFlags
	fs := newFlagSet("pub")
	f.register(fs)
	block := fs.Bool("b", true, "wait for a subscriber before reading stdin")
	timeout := fs.Duration("t", defaultWaitTimeout, "how long -b waits")
	empty := fs.Bool("e", false, "send nothing, just wake the subscribers")
	dispatch := fs.String("d", "multicast", "multicast or round-robin")
	c, t, code := r.join("pub", fs, &f, args, func() (JoinRequest, int) {
		req := JoinRequest{Role: Publisher}
		switch *dispatch {
		case "multicast":
			req.Dispatch = Multicast
		case "round-robin":
			req.Dispatch = RoundRobin
		default:
			return req, r.usagef("pub -d %q: want multicast or round-robin", *dispatch)
		}
		if *timeout <= 0 {
			return req, r.usagef("pub -t %s: want a positive duration such as 30s", *timeout)
		}
		return req, exitOK
	})
	if c == nil {
		return code
	}
	defer c.Leave()
	stop := r.reportJoins(c, t)
	defer stop()
	if *block {
		if code := r.waitReader(c, t, *timeout); code != exitOK {
			return code
		}
	}
	if *empty {
		return exitOK
	}
	// copyIn may sit in a read of a quiet stdin: the publisher stops as soon as it may write
	// no more (the owner stopped sharing), not at its next write.
	copied := make(chan error, 1)
	go func() { copied <- r.copyIn(c) }()
	var err error
	select {
	case err = <-copied:
	case <-c.Stopped():
		err = c.Err()
	}
	if err != nil {
		return r.writeFailure(t, err)
	}
	return exitOK
}

func (r *run) pipe(args []string) int {
	var f topicFlags
	fs := newFlagSet("pipe")
	f.register(fs)
	echo := fs.Bool("r", false, "also echo what this client writes back to it")
	c, t, code := r.join("pipe", fs, &f, args, func() (JoinRequest, int) {
		return JoinRequest{Role: Peer, Echo: *echo}, exitOK
	})
	if c == nil {
		return code
	}
	defer c.Leave()
	stop := r.reportJoins(c, t)
	defer stop()
	// A pipe client's write failures show on its reading side (dropped, access ended).
	go r.copyIn(c) //nolint:errcheck
	return r.deliver(c, t, true)
}

func (r *run) ls(args []string) int {
	fs := newFlagSet("ls")
	asJSON := fs.Bool("json", false, "JSON output")
	pos, err := cliargs.Parse(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(r.stdout, r.svc.usage())
		return exitOK
	case err != nil:
		return r.usagef("ls: %v", err)
	case len(pos) > 0:
		return r.usagef("ls: unexpected argument %q", pos[0])
	}
	stats := r.svc.broker.Topics(r.sess.Grant.Account)
	if stats == nil {
		stats = []TopicStats{}
	}
	if *asJSON {
		enc := json.NewEncoder(r.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(stats); err != nil {
			return exitFailed
		}
		return exitOK
	}
	if len(stats) == 0 {
		fmt.Fprintln(r.stdout, "no open topics")
		return exitOK
	}
	w := tabwriter.NewWriter(r.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "TOPIC\tPUBLISHERS\tSUBSCRIBERS\tPIPES\tSHARED WITH")
	for _, st := range stats {
		shared := strings.Join(st.Shared, ",")
		if shared == "" {
			shared = "-"
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\n", st.Topic, st.Publishers, st.Subscribers, st.Pipes, shared)
	}
	if err := w.Flush(); err != nil {
		return exitFailed
	}
	return exitOK
}

// waitReader blocks until the topic has a reader, at most timeout.
func (r *run) waitReader(c Client, t Topic, timeout time.Duration) int {
	ctx, cancel := context.WithTimeout(r.ctx, timeout)
	defer cancel()
	if !c.HasReader() {
		r.statusf("waiting for a subscriber on %s", t)
	}
	err := c.WaitReader(ctx)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, context.DeadlineExceeded) && r.ctx.Err() == nil:
		return r.failf("no subscriber on %s within %s", t, timeout)
	}
	return r.writeFailure(t, err)
}

// copyIn publishes the session's stdin on the topic until it ends; the client then writes
// no more.
func (r *run) copyIn(c Client) error {
	defer c.CloseWrite()
	buf := make([]byte, readSize)
	for {
		n, err := r.sess.Read(buf)
		if n > 0 {
			chunk := make([]byte, n)
			copy(chunk, buf[:n])
			if perr := c.Publish(r.ctx, chunk); perr != nil {
				return perr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// writeFailure reports why a writer had to stop.
func (r *run) writeFailure(t Topic, err error) int {
	switch {
	case errors.Is(err, ErrAccessEnded):
		return r.failf("%s stopped sharing %s", t.Owner, t)
	case errors.Is(err, ErrDropped), r.ctx.Err() != nil:
		return exitFailed // the reader side reports a drop; a gone client hears nothing
	}
	return r.failf("%s: %v", t, err)
}

// deliver copies the topic's stream to the session's stdout until it ends.
// A writing reader (a pipe client) whose access ends fails like a publisher would.
func (r *run) deliver(c Client, t Topic, writes bool) int {
	done := make(chan struct{})
	noticed := make(chan struct{})
	go func() {
		defer close(noticed)
		select {
		case <-done:
		case <-c.Dropped():
			r.noticeDrop(t)
		}
	}()
	defer close(done)
	for {
		p, err := c.Next(r.ctx)
		switch {
		case err == nil:
		case err == io.EOF:
			return exitOK
		case errors.Is(err, ErrAccessEnded) && writes:
			return r.failf("%s stopped sharing %s", t.Owner, t)
		case errors.Is(err, ErrAccessEnded):
			r.statusf("%s stopped sharing %s", t.Owner, t)
			return exitOK
		case errors.Is(err, ErrDropped):
			<-noticed
			return exitFailed
		default:
			return exitFailed
		}
		if _, err := r.stdout.Write(p); err != nil {
			return exitFailed
		}
	}
}

// noticeDrop tells a dropped reader why it was dropped. When its SSH window has no room
// for the message in time, the client has stopped reading altogether, and its connection
// is closed so that nothing of it stays behind.
func (r *run) noticeDrop(t Topic) {
	written := make(chan struct{})
	go func() {
		defer close(written)
		fmt.Fprintf(r.stderr, "portico: dropped from %s: you stopped reading and your buffer stayed full\n", t)
	}()
	select {
	case <-written:
		return
	case <-time.After(r.svc.dropNotice):
	case <-r.ctx.Done():
	}
	if conn, ok := r.sess.Context().Value(ssh.ContextKeyConn).(io.Closer); ok {
		conn.Close()
	}
	<-written
}

// reportJoins writes a status line whenever a reader joins, until the returned stop is
// called; stop first writes the lines of joins that happened before it.
func (r *run) reportJoins(c Client, t Topic) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	report := func(e Event) {
		if e == ReaderJoined {
			r.statusf("subscriber joined %s", t)
		}
	}
	go func() {
		defer close(finished)
		for {
			select {
			case e := <-c.Events():
				report(e)
			case <-done:
				for {
					select {
					case e := <-c.Events():
						report(e)
					default:
						return
					}
				}
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// ParseSize reads a byte count such as 1048576, 512KiB or 1MiB (the pipe buffer setting).
func ParseSize(s string) (int, error) {
	num, mult := s, 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("size %q: want a positive number of bytes such as 1048576, 512KiB or 1MiB", s)
	}
	return n * mult, nil
}
