package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/portico-sh/portico/services/pipe"
)

// The commands for scripts that run several OpenSSH clients at once, such as the pipe
// service's publishers and subscribers:
//
//	bg-ssh [OPTIONS] NAME SSH-ARGS...
//	                     start ssh -F $SSH_CONFIG SSH-ARGS in the background as NAME. Its stdin
//	                     is a pipe the script writes with bg-write and closes with bg-close,
//	                     unless an option says otherwise:
//	                       -stdin FILE  stdin is FILE
//	                       -gen SIZE    stdin is the first SIZE bytes (100, 64KiB, 1GiB) of a
//	                                    fixed pseudo-random stream (see stream-sum), then EOF
//	                       -lines N     stdin is "line 1\n" ... "line N\n", written one at a
//	                                    time 10ms apart (so each is its own SSH packet), then EOF
//	                     Its stdout is kept for bg-expect and bg-wait, unless:
//	                       -sha256      only its length and SHA-256 are kept: "bytes=N sha256=HEX"
//	                       -prefix      only its length and whether it is the start of the -gen
//	                                    stream are kept: "bytes=N stream-prefix=true"
//	                       -stall       nothing is ever read from it
//	                     and with -pause D nothing is read from it for D, then it is read
//	                     Its stderr is kept. A client still running at the end of the script is
//	                     killed (and logged); scripts end theirs with bg-wait or bg-kill. NAME
//	                     may be used again once its client has exited.
//	bg-write NAME TEXT...
//	                     write TEXT (the arguments joined by spaces) and a newline to NAME's stdin
//	bg-close NAME        close NAME's stdin (EOF)
//	bg-expect [-stderr] [-timeout D] NAME REGEXP
//	                     wait until what NAME wrote to stdout (stderr) so far matches REGEXP;
//	                     fails at once when NAME exits without it; at most D (30s)
//	bg-wait [-timeout D] NAME
//	                     wait until NAME exits, at most D (60s). Its stdout and stderr become this
//	                     command's, status N checks its exit status, ! bg-wait expects a failure
//	bg-kill NAME         end NAME as a user would (SIGTERM, SIGKILL 5s later) and wait for it
//	bg-running NAME      NAME has not exited
//	ssh-within D SSH-ARGS...
//	                     run ssh SSH-ARGS like the ssh command (recorded for status, ! for a
//	                     failure), with an empty stdin; fail if it has not exited within D
//	ssh-until [-timeout D] [-len N] PATH=VALUE... -- SSH-ARGS...
//	                     run ssh SSH-ARGS every 100ms until its stdout is JSON that has the values
//	                     (as json-has: PATH=VALUE or PATH~REGEXP) and, with -len, is an array of
//	                     N elements; at most D (20s); its last stdout becomes this command's
//	stream-sum VAR SIZE  set VAR to "bytes=SIZE sha256=HEX" of the first SIZE bytes of the -gen
//	                     stream, as bg-wait prints it for a -sha256 client
//	lines-split N NAME...
//	                     the stdouts of NAME... hold lines "line I", each in increasing order,
//	                     none empty, and together every I from 1 to N exactly once (how
//	                     round-robin spreads bg-ssh -lines N)

// Default timeouts of the commands above.
const (
	bgExpectTimeout = 30 * time.Second
	bgWaitTimeout   = 60 * time.Second
	bgDrainTimeout  = 10 * time.Second // for a client's output to drain once it has exited
	bgKillGrace     = 5 * time.Second  // from SIGTERM to SIGKILL
	sshUntilTimeout = 20 * time.Second
	sshUntilEach    = 15 * time.Second // one ssh run of ssh-until
	linesInterval   = 10 * time.Millisecond
)

// bgClients are a script's background clients by name.
type bgClients map[string]*bgClient

// bgClient is one background ssh.
type bgClient struct {
	name   string
	cmd    *exec.Cmd
	start  time.Time
	stdin  io.WriteCloser // the pipe to its stdin; nil unless the script writes it
	out    *capture       // its stdout (nil with -stall)
	errOut *capture       // its stderr
	unread *os.File       // -stall: the read end of its stdout, never read
	quit   chan struct{}  // closed when the script ends the client (stops feeding and pausing)
	exited chan struct{}  // closed once the process has exited
	state  *os.ProcessState
}

// capture collects what a client writes to one stream.
type capture struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	sum     hash.Hash    // -sha256: the stream's hash instead of buf
	prefix  *prefixCheck // -prefix: whether it is a prefix of the -gen stream, instead of buf
	n       int64
	changed chan struct{} // closed and replaced on every write
	done    chan struct{} // closed at EOF
}

func newCapture(hashOnly, prefixOnly bool) *capture {
	c := &capture{changed: make(chan struct{}), done: make(chan struct{})}
	switch {
	case hashOnly:
		c.sum = sha256.New()
	case prefixOnly:
		c.prefix = newPrefixCheck()
	}
	return c
}

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += int64(len(p))
	switch {
	case c.sum != nil:
		c.sum.Write(p)
	case c.prefix != nil:
		c.prefix.Write(p)
	default:
		c.buf.Write(p)
	}
	close(c.changed)
	c.changed = make(chan struct{})
	return len(p), nil
}

// readFrom copies r into c until EOF, then closes r. With a delay it first waits that long,
// or until quit or exited is closed.
func (c *capture) readFrom(r *os.File, delay time.Duration, quit, exited <-chan struct{}) {
	defer close(c.done)
	defer r.Close()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-quit:
		case <-exited:
		}
	}
	_, _ = io.Copy(c, r)
}

// text is what was captured so far ("bytes=N sha256=HEX" for a hash-only capture), and a
// channel closed at the next write.
func (c *capture) text() (string, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.sum != nil:
		return sumLine(c.n, c.sum), c.changed
	case c.prefix != nil:
		return fmt.Sprintf("bytes=%d stream-prefix=%t\n", c.n, c.prefix.ok), c.changed
	}
	return c.buf.String(), c.changed
}

func sumLine(n int64, h hash.Hash) string {
	return fmt.Sprintf("bytes=%d sha256=%s\n", n, hex.EncodeToString(h.Sum(nil)))
}

func (c *capture) finished() bool { return closed(c.done) }

func (b *bgClient) running() bool { return !closed(b.exited) }

// stop ends a client that is still running: SIGTERM, then SIGKILL after bgKillGrace.
func (b *bgClient) stop() {
	if !closed(b.quit) {
		close(b.quit)
	}
	if !b.running() {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(bgKillGrace):
		_ = b.cmd.Process.Kill()
		<-b.exited
	}
}

// release lets go of the -stall client's unread stdout.
func (b *bgClient) release() {
	if b.unread != nil {
		b.unread.Close()
	}
}

// bg returns the script's background clients, arranging that they are ended at its end
// (before the server is stopped, since deferred functions run in reverse order).
func bg(ts *testscript.TestScript) bgClients {
	st := state(ts)
	if st.bg == nil {
		st.bg = bgClients{}
		clients := st.bg
		ts.Defer(func() {
			for _, name := range slices.Sorted(maps.Keys(clients)) {
				c := clients[name]
				if c.running() {
					ts.Logf("bg-ssh %s was still running at the end of the script: killed", name)
				}
				c.stop()
				c.release()
			}
		})
	}
	return st.bg
}

func bgClientNamed(ts *testscript.TestScript, name string) *bgClient {
	c := bg(ts)[name]
	if c == nil {
		ts.Fatalf("no background client %q (start it with bg-ssh)", name)
	}
	return c
}

// sshEnv is the environment of the ssh clients the pipe commands start.
func sshEnv(ts *testscript.TestScript) []string {
	var env []string
	for _, name := range []string{"PATH", "HOME", "TMPDIR"} {
		if v := ts.Getenv(name); v != "" {
			env = append(env, name+"="+v)
		}
	}
	return env
}

// sshCommand is OpenSSH's ssh with the script's ssh_config, killed when ctx is done.
func sshCommand(ctx context.Context, ts *testscript.TestScript, args []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ssh", append([]string{"-F", ts.Getenv("SSH_CONFIG")}, args...)...)
	cmd.Dir = ts.MkAbs(".")
	cmd.Env = sshEnv(ts)
	return cmd
}

// bgOptions are bg-ssh's options.
type bgOptions struct {
	stdinFile string        // -stdin
	genSize   int64         // -gen; -1 for none
	lines     int           // -lines; -1 for none
	hashOnly  bool          // -sha256
	prefix    bool          // -prefix
	stall     bool          // -stall
	pause     time.Duration // -pause
	noStdin   bool          // stdin is empty (ssh-within)
}

const bgUsage = "usage: bg-ssh [-stdin FILE | -gen SIZE | -lines N] [-sha256 | -prefix | -stall] [-pause D] NAME SSH-ARGS..."

// parseBgOptions takes bg-ssh's options off args.
func parseBgOptions(ts *testscript.TestScript, args []string) (bgOptions, []string) {
	o := bgOptions{genSize: -1, lines: -1}
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		opt := args[0]
		args = args[1:]
		switch opt {
		case "-sha256":
			o.hashOnly = true
			continue
		case "-prefix":
			o.prefix = true
			continue
		case "-stall":
			o.stall = true
			continue
		}
		if len(args) == 0 {
			ts.Fatalf("%s", bgUsage)
		}
		value := args[0]
		args = args[1:]
		var err error
		switch opt {
		case "-stdin":
			o.stdinFile = value
		case "-gen":
			o.genSize, err = parseSize(value)
		case "-lines":
			o.lines, err = strconv.Atoi(value)
		case "-pause":
			o.pause, err = time.ParseDuration(value)
		default:
			ts.Fatalf("bg-ssh: unknown option %s\n%s", opt, bgUsage)
		}
		ts.Check(err)
	}
	count := func(set ...bool) (n int) {
		for _, s := range set {
			if s {
				n++
			}
		}
		return n
	}
	if count(o.stdinFile != "", o.genSize >= 0, o.lines >= 0) > 1 || count(o.hashOnly, o.prefix, o.stall) > 1 || o.stall && o.pause > 0 {
		ts.Fatalf("%s", bgUsage)
	}
	return o, args
}

func cmdBgSSH(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "bg-ssh")
	o, args := parseBgOptions(ts, args)
	if len(args) < 2 {
		ts.Fatalf("%s", bgUsage)
	}
	name := args[0]
	clients := bg(ts)
	if old := clients[name]; old != nil {
		if old.running() {
			ts.Fatalf("bg-ssh: the client %q is still running", name)
		}
		old.release()
	}
	clients[name] = startBgClient(ts, name, o, sshCommand(context.Background(), ts, args[1:]))
}

// startBgClient starts cmd (ssh -F $SSH_CONFIG ..., or another client) in the background. The
// caller files it in bg(ts) at once, so that it is ended at the end of the script.
func startBgClient(ts *testscript.TestScript, name string, o bgOptions, cmd *exec.Cmd) *bgClient {
	c := &bgClient{name: name, cmd: cmd, quit: make(chan struct{}), exited: make(chan struct{})}
	var feed func(w io.WriteCloser)
	switch {
	case o.noStdin:
		cmd.Stdin = strings.NewReader("")
	case o.stdinFile != "":
		f, err := os.Open(ts.MkAbs(o.stdinFile))
		ts.Check(err)
		defer f.Close()
		cmd.Stdin = f
	case o.genSize >= 0:
		feed = func(w io.WriteCloser) {
			defer w.Close()
			_ = writeStream(w, o.genSize)
		}
	case o.lines >= 0:
		feed = func(w io.WriteCloser) {
			defer w.Close()
			for i := 1; i <= o.lines; i++ {
				if _, err := fmt.Fprintf(w, "line %d\n", i); err != nil {
					return
				}
				select {
				case <-time.After(linesInterval):
				case <-c.quit:
					return
				}
			}
		}
	}
	var stdin io.WriteCloser
	if cmd.Stdin == nil {
		var err error
		stdin, err = cmd.StdinPipe()
		ts.Check(err)
	}
	outR, outW, err := os.Pipe()
	ts.Check(err)
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		ts.Fatalf("%v", err)
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		ts.Fatalf("bg-ssh %s: %v", name, err)
	}
	c.start = time.Now()
	go func() {
		_ = cmd.Wait()
		c.state = cmd.ProcessState
		close(c.exited)
	}()
	c.errOut = newCapture(false, false)
	go c.errOut.readFrom(errR, 0, c.quit, c.exited)
	if o.stall {
		c.unread = outR
	} else {
		c.out = newCapture(o.hashOnly, o.prefix)
		go c.out.readFrom(outR, o.pause, c.quit, c.exited)
	}
	switch {
	case feed != nil:
		go feed(stdin)
	case stdin != nil:
		c.stdin = stdin
	}
	ts.Logf("bg-ssh %s: pid %d", name, cmd.Process.Pid)
	return c
}

// cmdSSHWithin runs ssh like the ssh command, with an empty stdin, and fails when it has not
// exited within the given time.
func cmdSSHWithin(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: ssh-within D SSH-ARGS...")
	}
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	c := startBgClient(ts, "ssh-within", bgOptions{genSize: -1, lines: -1, noStdin: true}, sshCommand(context.Background(), ts, args[1:]))
	defer func() {
		c.stop()
		c.release()
	}()
	select {
	case <-c.exited:
	case <-time.After(d):
		text, _ := c.out.text()
		errText, _ := c.errOut.text()
		ts.Fatalf("ssh %s did not exit within %v\n[stdout so far]\n%s[stderr so far]\n%s", strings.Join(args[1:], " "), d, text, errText)
	}
	c.finish(ts)
	finishRecorded(ts, neg)
}

func cmdBgWrite(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "bg-write")
	if len(args) < 1 {
		ts.Fatalf("usage: bg-write NAME TEXT...")
	}
	c := bgClientNamed(ts, args[0])
	if c.stdin == nil {
		ts.Fatalf("bg-write: the stdin of %s is not the script's to write (or is closed)", c.name)
	}
	_, err := io.WriteString(c.stdin, strings.Join(args[1:], " ")+"\n")
	ts.Check(err)
}

func cmdBgClose(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "bg-close NAME")
	c := bgClientNamed(ts, args[0])
	if c.stdin == nil {
		ts.Fatalf("bg-close: the stdin of %s is not the script's to close (or is closed)", c.name)
	}
	ts.Check(c.stdin.Close())
	c.stdin = nil
}

// timeoutFlag takes a leading "-timeout D" off args.
func timeoutFlag(ts *testscript.TestScript, args []string, def time.Duration) (time.Duration, []string) {
	if len(args) >= 2 && args[0] == "-timeout" {
		d, err := time.ParseDuration(args[1])
		ts.Check(err)
		return d, args[2:]
	}
	return def, args
}

func cmdBgExpect(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "bg-expect")
	useStderr := false
	if len(args) > 0 && args[0] == "-stderr" {
		useStderr, args = true, args[1:]
	}
	timeout, args := timeoutFlag(ts, args, bgExpectTimeout)
	if len(args) > 0 && args[0] == "-stderr" {
		useStderr, args = true, args[1:]
	}
	if len(args) != 2 {
		ts.Fatalf("usage: bg-expect [-stderr] [-timeout D] NAME REGEXP")
	}
	c := bgClientNamed(ts, args[0])
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	capt, stream := c.out, "stdout"
	if useStderr {
		capt, stream = c.errOut, "stderr"
	}
	if capt == nil {
		ts.Fatalf("bg-expect: the stdout of %s is not read (-stall)", c.name)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		finished := capt.finished() // before text, so that no write is missed
		text, changed := capt.text()
		if re.MatchString(text) {
			return
		}
		if finished {
			ts.Fatalf("%s ended (%s) without writing %q to %s; it wrote:\n%s%s",
				c.name, c.exitText(), args[1], stream, text, c.otherStream(useStderr))
		}
		select {
		case <-changed:
		case <-capt.done:
		case <-deadline.C:
			ts.Fatalf("%s did not write %q to %s within %v; it wrote:\n%s%s",
				c.name, args[1], stream, timeout, text, c.otherStream(useStderr))
		}
	}
}

// otherStream shows the stream bg-expect did not look at, for failure messages.
func (b *bgClient) otherStream(lookedAtStderr bool) string {
	capt, name := b.errOut, "stderr"
	if lookedAtStderr {
		capt, name = b.out, "stdout"
	}
	if capt == nil {
		return ""
	}
	text, _ := capt.text()
	return fmt.Sprintf("\n[its %s]\n%s", name, text)
}

func (b *bgClient) exitText() string {
	select {
	case <-b.exited:
		return b.state.String()
	case <-time.After(bgDrainTimeout):
		return "still running"
	}
}

func cmdBgWait(ts *testscript.TestScript, neg bool, args []string) {
	timeout, args := timeoutFlag(ts, args, bgWaitTimeout)
	if len(args) != 1 {
		ts.Fatalf("usage: bg-wait [-timeout D] NAME")
	}
	c := bgClientNamed(ts, args[0])
	select {
	case <-c.exited:
	case <-time.After(timeout):
		var partial string
		if c.out != nil {
			text, _ := c.out.text()
			partial = "\n[stdout so far]\n" + text
		}
		errText, _ := c.errOut.text()
		ts.Fatalf("%s did not exit within %v%s\n[stderr so far]\n%s", c.name, timeout, partial, errText)
	}
	c.finish(ts)
	finishRecorded(ts, neg)
}

// finish reports an exited client: its output becomes the command's and its exit status
// the recorded one.
func (b *bgClient) finish(ts *testscript.TestScript) {
	ts.Logf("%s: %s after %.1fs", b.name, b.state, time.Since(b.start).Seconds())
	b.release()
	for _, capt := range []*capture{b.out, b.errOut} {
		if capt == nil {
			continue
		}
		select {
		case <-capt.done:
		case <-time.After(bgDrainTimeout):
			ts.Fatalf("%s exited but its output did not end within %v", b.name, bgDrainTimeout)
		}
	}
	if b.out != nil {
		text, _ := b.out.text()
		fmt.Fprint(ts.Stdout(), text)
	}
	text, _ := b.errOut.text()
	fmt.Fprint(ts.Stderr(), text)
	state(ts).lastStatus = b.state.ExitCode() // -1 when killed by a signal
}

func cmdBgKill(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "bg-kill NAME")
	c := bgClientNamed(ts, args[0])
	if !c.running() {
		ts.Fatalf("%s had already exited: %s", c.name, c.state)
	}
	c.stop()
	c.finish(ts)
}

func cmdBgRunning(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "bg-running NAME")
	if c := bgClientNamed(ts, args[0]); !c.running() {
		errText, _ := c.errOut.text()
		ts.Fatalf("%s has exited: %s\n[stderr]\n%s", c.name, c.state, errText)
	}
}

func cmdSSHUntil(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "ssh-until")
	usage := "usage: ssh-until [-timeout D] [-len N] PATH=VALUE... -- SSH-ARGS..."
	timeout, args := timeoutFlag(ts, args, sshUntilTimeout)
	wantLen := -1
	if len(args) >= 2 && args[0] == "-len" {
		var err error
		wantLen, err = strconv.Atoi(args[1])
		ts.Check(err)
		args = args[2:]
	}
	sep := slices.Index(args, "--")
	if sep < 0 || sep == 0 && wantLen < 0 || sep == len(args)-1 {
		ts.Fatalf("%s", usage)
	}
	var exps []expectation
	if sep > 0 {
		exps = parseExpectations(ts, args[:sep])
	}
	sshArgs := args[sep+1:]
	want := strings.Join(args[:sep], " ")
	if wantLen >= 0 {
		want = strings.TrimSpace(fmt.Sprintf("%d elements %s", wantLen, want))
	}
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), sshUntilEach)
		cmd := sshCommand(ctx, ts, sshArgs)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		if err == nil && jsonHas(stdout.String(), wantLen, exps) {
			fmt.Fprint(ts.Stdout(), stdout.String())
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("ssh %s: no JSON with %s within %v; last: %v\n[stdout]\n%s[stderr]\n%s",
				strings.Join(sshArgs, " "), want, timeout, err, stdout.String(), stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// jsonHas reports whether text is JSON that has every expectation, as json-has decides, and
// when wantLen is not negative, is an array of wantLen elements.
func jsonHas(text string, wantLen int, exps []expectation) bool {
	v, err := decodeJSON(text)
	if err != nil {
		return false
	}
	if a, ok := v.([]any); wantLen >= 0 && (!ok || len(a) != wantLen) {
		return false
	}
	return len(exps) == 0 || slices.ContainsFunc(candidates(v), func(c any) bool {
		return !slices.ContainsFunc(exps, func(e expectation) bool { return !e.holds(c) })
	})
}

// streamSeed seeds the -gen stream; any fixed value does.
var streamSeed = [32]byte([]byte("portico e2e: the pipe test data!"))

// streamChunk is how much of the stream is generated per write.
const streamChunk = 256 << 10

// writeStream writes the first size bytes of the -gen stream to w.
func writeStream(w io.Writer, size int64) error {
	gen := rand.NewChaCha8(streamSeed)
	buf := make([]byte, streamChunk)
	for size > 0 {
		n := int64(len(buf))
		if size < n {
			n = size
		}
		_, _ = gen.Read(buf[:n]) // always fills it
		if _, err := w.Write(buf[:n]); err != nil {
			return err
		}
		size -= n
	}
	return nil
}

// prefixCheck checks that what is written to it is the start of the -gen stream.
type prefixCheck struct {
	gen  *rand.ChaCha8
	want []byte // the part of the stream generated but not compared yet
	ok   bool
}

func newPrefixCheck() *prefixCheck {
	return &prefixCheck{gen: rand.NewChaCha8(streamSeed), ok: true}
}

// Write compares p with the stream, generated in streamChunk pieces as writeStream does.
func (pc *prefixCheck) Write(p []byte) (int, error) {
	n := len(p)
	for pc.ok && len(p) > 0 {
		if len(pc.want) == 0 {
			pc.want = make([]byte, streamChunk)
			_, _ = pc.gen.Read(pc.want)
		}
		k := min(len(p), len(pc.want))
		pc.ok = bytes.Equal(p[:k], pc.want[:k])
		p, pc.want = p[k:], pc.want[k:]
	}
	return n, nil
}

// parseSize reads a byte count such as 100, 64KiB or 1GiB, as the pipe buffer setting does.
func parseSize(s string) (int64, error) {
	n, err := pipe.ParseSize(s)
	return int64(n), err
}

func cmdStreamSum(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "stream-sum VAR SIZE")
	size, err := parseSize(args[1])
	ts.Check(err)
	h := sha256.New()
	ts.Check(writeStream(h, size))
	line := strings.TrimSuffix(sumLine(size, h), "\n")
	ts.Setenv(args[0], line)
	ts.Logf("%s=%s", args[0], line)
}

var lineRE = regexp.MustCompile(`^line (\d+)$`)

func cmdLinesSplit(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "lines-split")
	if len(args) < 2 {
		ts.Fatalf("usage: lines-split N NAME...")
	}
	n, err := strconv.Atoi(args[0])
	ts.Check(err)
	seen := make([]string, n+1) // who got line i
	for _, name := range args[1:] {
		c := bgClientNamed(ts, name)
		if c.out == nil || c.out.sum != nil || c.out.prefix != nil {
			ts.Fatalf("lines-split: the stdout of %s is not kept", name)
		}
		text, _ := c.out.text()
		if text == "" {
			ts.Fatalf("%s got no line", name)
		}
		if !strings.HasSuffix(text, "\n") {
			ts.Fatalf("%s's output does not end with a whole line: %q", name, text)
		}
		last := 0
		count := 0
		for line := range strings.Lines(text) {
			m := lineRE.FindStringSubmatch(strings.TrimSuffix(line, "\n"))
			if m == nil {
				ts.Fatalf("%s got %q, not a line of the input", name, line)
			}
			i, _ := strconv.Atoi(m[1])
			switch {
			case i < 1 || i > n:
				ts.Fatalf("%s got %q: there are only %d lines", name, line, n)
			case i <= last:
				ts.Fatalf("%s got line %d after line %d", name, i, last)
			case seen[i] != "":
				ts.Fatalf("line %d went to both %s and %s", i, seen[i], name)
			}
			seen[i], last = name, i
			count++
		}
		ts.Logf("%s got %d lines", name, count)
	}
	for i := 1; i <= n; i++ {
		if seen[i] == "" {
			ts.Fatalf("line %d reached none of %s", i, strings.Join(args[1:], ", "))
		}
	}
}
