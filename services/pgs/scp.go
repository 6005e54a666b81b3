package pgs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/portico-sh/portico/services"
	"github.com/portico-sh/portico/services/pgs/sitepath"
)

// Legacy scp (`scp -O`): the remote side of the old rcp protocol, written here rather than
// taken from wish/scp, which cleans names with filepath.Join (so ".." collapses before it can
// be refused), reads header lines without a bound, takes an end of input inside an unclosed
// directory as success, and reports failures only by exiting, so a deploy could not tell a
// transfer that ended cleanly from one that was cut.

// maxSCPLine bounds a protocol line (a header with a name of at most 255 bytes fits easily).
const maxSCPLine = 2048

// scpOptions are the flags of `scp -t` and `scp -f`.
type scpOptions struct {
	sink, source bool // -t (upload), -f (download)
	recursive    bool // -r
	targetDir    bool // -d: the target must be a directory
	preserve     bool // -p
	paths        []string
}

func parseSCP(args []string) (scpOptions, error) {
	var o scpOptions
	if len(args) == 0 {
		return o, errors.New("scp: no command")
	}
	i := 1
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		for _, c := range a[1:] {
			switch c {
			case 't':
				o.sink = true
			case 'f':
				o.source = true
			case 'r':
				o.recursive = true
			case 'd':
				o.targetDir = true
			case 'p':
				o.preserve = true
			case 'v', 'q':
			default:
				return o, fmt.Errorf("scp: option %q is not supported", "-"+string(c))
			}
		}
	}
	o.paths = args[i:]
	switch {
	case o.sink == o.source:
		return o, errors.New("scp: want -t (upload) or -f (download)")
	case o.sink && len(o.paths) != 1:
		return o, errors.New("scp -t takes one target")
	case o.source && len(o.paths) == 0:
		return o, errors.New("scp -f takes at least one source")
	}
	return o, nil
}

// serveSCP runs the remote side of `scp -O`.
func (s *Service) serveSCP(sess *services.Session) int {
	o, err := parseSCP(sess.Command)
	if err != nil {
		fmt.Fprintf(sess, "\x02portico: %v\n", err)
		fmt.Fprintf(sess.Stderr(), "portico: %v\n", err)
		return exitFailed
	}
	ss := s.newSession(sess.Context(), sess.Grant, "scp", true, sess.Stderr())
	defer ss.close()
	if o.source {
		code := (&scpSource{s: ss, in: bufio.NewReader(sess), out: sess, o: o}).run()
		ss.finish(false)
		return code
	}
	k := &scpSink{s: ss, in: bufio.NewReader(sess), out: sess, o: o}
	clean := k.run()
	pubs, ferr := ss.finish(clean)
	if ferr != nil {
		if !k.told {
			fmt.Fprintf(sess.Stderr(), "portico: %s\n", ferr.Message)
		}
		return exitFailed
	}
	if !clean {
		return exitFailed
	}
	s.reportPublished(sess.Stderr(), sess.Grant.Account, pubs)
	return exitOK
}

// scpSink receives files (`scp -t TARGET`).
type scpSink struct {
	s    *session
	in   *bufio.Reader
	out  io.Writer
	o    scpOptions
	told bool // the failure went to the client in the protocol
}

// fatal tells the client why the transfer stops; it prints the message and exits 1.
func (k *scpSink) fatal(err error) bool {
	e := k.s.fail(err)
	fmt.Fprintf(k.out, "\x02portico: %s\n", e.Message)
	k.told = true
	return false
}

func (k *scpSink) ack() { k.out.Write([]byte{0}) }

// readLine reads one protocol line without its newline. io.EOF means the input ended before
// any byte of it.
func readSCPLine(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		c, err := r.ReadByte()
		if err != nil {
			if err == io.EOF && b.Len() > 0 {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		if c == '\n' {
			return b.String(), nil
		}
		if b.Len() >= maxSCPLine {
			return "", fmt.Errorf("scp: a protocol line is longer than %d bytes", maxSCPLine)
		}
		b.WriteByte(c)
	}
}

// run receives until the client ends its input; it reports whether the protocol ended
// cleanly: every file complete and every directory closed.
func (k *scpSink) run() bool {
	target, err := sitepath.Parse(k.o.paths[0])
	if err != nil {
		return k.fatal(err)
	}
	if target.IsRoot() {
		return k.fatal(errorf(Invalid, "scp to / is refused: the target's first segment names the project, e.g. pgs@HOST:/blog/"))
	}
	if _, err := k.s.begin(target.Project); err != nil {
		return k.fatal(err)
	}
	targetIsDir := false
	if fi, err := k.s.stat(target); err == nil && fi.IsDir() {
		targetIsDir = true
	} else if k.o.targetDir {
		return k.fatal(errorf(Invalid, "%s: not a directory", shown(k.o.paths[0])))
	}
	k.ack()
	var (
		dirs       []sitepath.Path // open directories; the innermost last
		mtime      int64           // from a T line, for the next entry
		haveTime   bool
		firstEntry = true
	)
	cwd := func() sitepath.Path {
		if len(dirs) > 0 {
			return dirs[len(dirs)-1]
		}
		return target
	}
	// place is where an entry called name goes: into the current directory, or, for the
	// first entry when the target is not a directory, the target itself.
	place := func(name string) (sitepath.Path, error) {
		if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
			return sitepath.Path{}, errorf(Invalid, "scp: unexpected file name %q", name)
		}
		defer func() { firstEntry = false }()
		if len(dirs) == 0 && !targetIsDir {
			if !firstEntry {
				return sitepath.Path{}, errorf(Invalid, "%s: not a directory, and more than one file was sent", shown(k.o.paths[0]))
			}
			return target, nil
		}
		return cwd().Join(name)
	}
	for {
		line, err := readSCPLine(k.in)
		if err == io.EOF {
			if len(dirs) > 0 {
				k.s.fail(errorf(Invalid, "the transfer ended inside an open directory; nothing was published"))
				return false
			}
			return true
		}
		if err != nil {
			return k.fatal(errorf(Invalid, "%v; nothing was published", err))
		}
		if line == "" {
			return k.fatal(errorf(Invalid, "scp: empty protocol line"))
		}
		switch line[0] {
		case 1: // a warning from the client: it skipped something
			fmt.Fprintf(k.s.notice, "portico: the client reported: %s\n", shown(line[1:]))
		case 2: // the client gives up
			k.s.fail(errorf(Invalid, "the client stopped (%s); nothing was published", shown(line[1:])))
			return false
		case 'T':
			var mu, a, au int64
			if _, err := fmt.Sscanf(line, "T%d %d %d %d", &mtime, &mu, &a, &au); err != nil || mtime < 0 {
				return k.fatal(errorf(Invalid, "scp: bad time line %q", line))
			}
			haveTime = true
			k.ack()
		case 'D':
			mode, _, name, err := parseSCPHeader(line)
			if err != nil {
				return k.fatal(err)
			}
			if !k.o.recursive {
				return k.fatal(errorf(Invalid, "scp: a directory was sent without -r"))
			}
			p, err := place(name)
			if err != nil {
				return k.fatal(err)
			}
			if len(dirs) >= sitepath.MaxDepth {
				return k.fatal(errorf(Invalid, "scp: directories nested deeper than %d", sitepath.MaxDepth))
			}
			if err := k.mkdir(p); err != nil {
				return k.fatal(err)
			}
			_ = mode // directories keep no attributes
			dirs = append(dirs, p)
			haveTime = false
			k.ack()
		case 'E':
			if len(dirs) == 0 || line != "E" {
				return k.fatal(errorf(Invalid, "scp: unbalanced end of directory"))
			}
			dirs = dirs[:len(dirs)-1]
			k.ack()
		case 'C':
			mode, size, name, err := parseSCPHeader(line)
			if err != nil {
				return k.fatal(err)
			}
			p, err := place(name)
			if err != nil {
				return k.fatal(err)
			}
			t := time.Now().Unix()
			if haveTime {
				t = mtime
			}
			haveTime = false
			if ok := k.file(p, mode, size, t); !ok {
				return false
			}
		default:
			return k.fatal(errorf(Invalid, "scp: unexpected protocol line %q", line))
		}
	}
}

// parseSCPHeader reads "C0644 SIZE NAME" or "D0755 0 NAME".
func parseSCPHeader(line string) (fs.FileMode, int64, string, error) {
	fields := strings.SplitN(line[1:], " ", 3)
	if len(fields) != 3 {
		return 0, 0, "", errorf(Invalid, "scp: bad header %q", line)
	}
	mode, err := strconv.ParseUint(fields[0], 8, 32)
	if err != nil || len(fields[0]) != 4 {
		return 0, 0, "", errorf(Invalid, "scp: bad mode in %q", line)
	}
	size, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil || size < 0 {
		return 0, 0, "", errorf(Invalid, "scp: bad size in %q", line)
	}
	return fs.FileMode(mode).Perm(), size, fields[2], nil
}

func (k *scpSink) mkdir(p sitepath.Path) error {
	if p.Rel == "" {
		return nil
	}
	d, err := k.s.writable(p)
	if err != nil {
		return err
	}
	k.s.mu.Lock()
	defer k.s.mu.Unlock()
	if n := d.work.lookup(p.Rel); n != nil && !n.isDir() {
		return errorf(Invalid, "%s: a file stands where a directory was sent", shown(p.String()))
	}
	return d.work.mkdir(p.Rel, true)
}

// file receives one file's data and the client's status byte after it.
func (k *scpSink) file(p sitepath.Path, mode fs.FileMode, size int64, mtime int64) bool {
	if max := k.s.svc.limits.maxFile(); max > 0 && size > max {
		limit := "PORTICO_PGS_MAX_FILE"
		if k.s.svc.limits.MaxFile <= 0 {
			limit = "PORTICO_PGS_QUOTA"
		}
		return k.fatal(errorf(Refused, "%s is larger than the %s limit on one file (%s); nothing was published", shown(p.String()), humanBytes(max), limit))
	}
	u, err := k.s.create(p)
	if err != nil {
		return k.fatal(err)
	}
	k.ack()
	n, err := io.Copy(u, io.LimitReader(k.in, size))
	if err == nil && n < size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		u.Abort()
		if errors.Is(err, io.ErrUnexpectedEOF) {
			k.s.fail(errorf(Invalid, "the transfer ended inside %s; nothing was published", shown(p.String())))
			return false
		}
		return k.fatal(err)
	}
	status, err := k.in.ReadByte()
	if err != nil {
		u.Abort()
		k.s.fail(errorf(Invalid, "the transfer ended inside %s; nothing was published", shown(p.String())))
		return false
	}
	if status != 0 {
		msg, _ := readSCPLine(k.in)
		u.Abort()
		return k.fatal(errorf(Failed, "the client could not send %s: %s", shown(p.String()), shown(strings.TrimSpace(msg))))
	}
	if err := u.commit(mode, mtime); err != nil {
		return k.fatal(err)
	}
	k.ack()
	return true
}

// scpSource sends files (`scp -f SOURCE...`).
type scpSource struct {
	s   *session
	in  *bufio.Reader
	out io.Writer
	o   scpOptions
	err bool // a source could not be sent
}

// response reads the client's answer: 0 goes on; 1 is a message (an error for that file);
// 2 (or anything else) stops.
func (c *scpSource) response() error {
	b, err := c.in.ReadByte()
	if err != nil {
		return err
	}
	if b == 0 {
		return nil
	}
	msg, _ := readSCPLine(c.in)
	if b == 1 {
		c.err = true
		return nil
	}
	return fmt.Errorf("scp: the client stopped: %s", msg)
}

// warn reports a source that cannot be sent and goes on with the next.
func (c *scpSource) warn(format string, args ...any) {
	c.err = true
	fmt.Fprintf(c.out, "\x01portico: %s\n", fmt.Sprintf(format, args...))
}

func (c *scpSource) run() int {
	if err := c.response(); err != nil {
		return exitFailed
	}
	for _, arg := range c.o.paths {
		p, err := sitepath.Parse(arg)
		if err != nil {
			c.warn("%s", asError(err).Message)
			continue
		}
		if err := c.send(p, p.Base(), 0); err != nil {
			return exitFailed
		}
	}
	if c.err {
		return exitFailed
	}
	return exitOK
}

// send sends p under name; errors end the run, per-file problems only warn.
func (c *scpSource) send(p sitepath.Path, name string, depth int) error {
	if strings.ContainsAny(name, "\n\r") {
		// A header line ends at the newline: the rest of the name would be read as the next
		// line, a file or directory of the server's choosing on the client.
		c.warn("/%s: the name holds a newline, which scp -O cannot send; use sftp or rsync", shown(p.String()))
		return nil
	}
	fi, err := c.s.stat(p)
	if err != nil {
		c.warn("%s: %s", "/"+p.String(), asError(notExistWords(err)).Message)
		return nil
	}
	if fi.IsDir() {
		if !c.o.recursive {
			c.warn("/%s: is a directory (use -r)", p)
			return nil
		}
		if depth >= sitepath.MaxDepth {
			c.warn("/%s: too deep", p)
			return nil
		}
		if p.IsRoot() {
			name = "sites"
		}
		if c.o.preserve {
			t := fi.ModTime().Unix()
			fmt.Fprintf(c.out, "T%d 0 %d 0\n", t, t)
			if err := c.response(); err != nil {
				return err
			}
		}
		fmt.Fprintf(c.out, "D0755 0 %s\n", name)
		if err := c.response(); err != nil {
			return err
		}
		list, err := c.s.readDir(p)
		if err != nil {
			c.warn("/%s: %s", p, asError(err).Message)
		}
		for _, e := range list {
			child, err := p.Join(e.Name())
			if err != nil {
				continue
			}
			if err := c.send(child, e.Name(), depth+1); err != nil {
				return err
			}
		}
		fmt.Fprint(c.out, "E\n")
		return c.response()
	}
	r, f, err := c.s.open(p)
	if err != nil {
		c.warn("/%s: %s", p, asError(err).Message)
		return nil
	}
	defer r.Close()
	if c.o.preserve {
		fmt.Fprintf(c.out, "T%d 0 %d 0\n", f.MTime, f.MTime)
		if err := c.response(); err != nil {
			return err
		}
	}
	fmt.Fprintf(c.out, "C%04o %d %s\n", uint32(f.Mode.Perm()), f.Size, name)
	if err := c.response(); err != nil {
		return err
	}
	if _, err := io.Copy(c.out, io.NewSectionReader(r, 0, f.Size)); err != nil {
		return err
	}
	c.out.Write([]byte{0})
	return c.response()
}

// notExistWords makes a missing file's error read as such.
func notExistWords(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errorf(NotFound, "no such file or directory")
	}
	return err
}
