package rsync

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// options is the parsed server command line.
type options struct {
	maxEntries   int  // file-list entries accepted from the client (0: maxFiles); set by a ListLimiter FS
	sender       bool // --sender: the server sends (download)
	verbose      int
	recursive    bool
	dirs         bool // -d: directories are sent without their contents
	listOnly     bool // --list-only: the client only lists what a sender sends
	links        bool
	owner, group bool
	devices      bool
	specials     bool
	times        bool
	omitDirTimes bool // -O
	perms        bool
	checksum     bool
	dryRun       bool
	compress     bool
	compressLvl  int
	compressOff  bool // --compress-level=0: zlib and zlibx at level 0 mean no compression
	ignoreTimes  bool
	wholeFile    bool
	update       bool
	protectArgs  bool
	sizeOnly     bool
	checksumSeed int32
	// clientInfo is the capability string after -e (protocol 30+: which compat flags the
	// client understands).
	clientInfo string
	// checksumChoice and compressChoice are --checksum-choice and --compress-choice as given
	// (with --old-compress "zlib", --new-compress "zlibx"); empty means negotiated.
	checksumChoice string
	compressChoice string
	modifyWindow   int64 // --modify-window: seconds; negative asks for nanoseconds
	modifyWindowOn bool  // --modify-window was given (the client sends it only then)
	force          bool
	existing       bool
	ignoreExist    bool
	numericIDs     bool
	ignoreErrors   bool
	maxDelete      int // 0: unlimited, -1: none, else the most entries deleted

	deleteMode     bool
	deleteWhen     deleteWhen
	deleteExcluded bool

	args []string // positional arguments: "." then the paths
}

// deleteWhen says when the receiver removes extraneous files.
type deleteWhen int

const (
	deleteBefore deleteWhen = iota // --delete at protocol 27, --delete-before
	deleteDuring                   // --delete-during
	deleteAfter                    // --delete-after, --delete-delay
)

// usageError is a command line the server refuses; code is the exit status.
type usageError struct {
	code int
	msg  string
}

func (e *usageError) Error() string { return e.msg }

func syntaxError(format string, args ...any) error {
	return &usageError{code: exitSyntax, msg: fmt.Sprintf(format, args...)}
}

func unsupported(opt string) error {
	return &usageError{code: exitUnsupported, msg: fmt.Sprintf("option %s is not supported by this server", opt)}
}

// splitCommand splits an exec request with POSIX shell quoting rules: blanks separate words,
// single quotes keep everything literally, double quotes keep everything but \" \\ \$ \` and a
// backslash outside quotes escapes the next character.
func splitCommand(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			inWord = true
			i++
			if i == len(s) {
				return nil, errors.New("trailing backslash")
			}
			if s[i] != '\n' {
				cur.WriteByte(s[i])
			}
		case c == '\'':
			inWord = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			inWord = true
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`\n", s[i+1]) >= 0 {
					i++
					if s[i] == '\n' {
						continue
					}
				}
				cur.WriteByte(s[i])
			}
			if i == len(s) {
				return nil, errors.New("unterminated double quote")
			}
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// parseCommand checks argv[0] and --server and parses the options after them.
func parseCommand(argv []string) (*options, error) {
	if len(argv) == 0 || (argv[0] != "rsync" && !strings.HasSuffix(argv[0], "/rsync")) {
		return nil, syntaxError("not an rsync command")
	}
	if len(argv) < 2 || argv[1] != "--server" {
		return nil, syntaxError("only rsync --server is supported")
	}
	o := &options{}
	if err := o.parse(argv[2:]); err != nil {
		return nil, err
	}
	return o, nil
}

// parse reads options and positional arguments; it may be called again with the arguments that
// -s sends on stdin.
func (o *options) parse(args []string) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(o.args) > 0 || a == "" || a[0] != '-' || a == "-" {
			o.args = append(o.args, a)
			continue
		}
		if a == "--" {
			o.args = append(o.args, args[i+1:]...)
			return nil
		}
		if strings.HasPrefix(a, "--") {
			name, value, hasValue := strings.Cut(a[2:], "=")
			if !hasValue && takesSeparateValue[name] {
				if i+1 == len(args) {
					return syntaxError("option --%s needs a value", name)
				}
				i++
				value, hasValue = args[i], true
			}
			if err := o.long(name, value, hasValue); err != nil {
				return err
			}
			continue
		}
		if err := o.short(a[1:]); err != nil {
			return err
		}
	}
	return nil
}

// takesSeparateValue lists the long options whose value the client sends as the next argument.
var takesSeparateValue = map[string]bool{
	"backup-dir": true, "partial-dir": true, "temp-dir": true, "files-from": true,
	"compare-dest": true, "copy-dest": true, "link-dest": true,
}

// short parses a bundle of short options (without the dash).
func (o *options) short(b string) error {
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch c {
		case 'v':
			o.verbose++
		case 'r':
			o.recursive = true
		case 'd':
			o.dirs = true
		case 'l':
			o.links = true
		case 'o':
			o.owner = true
		case 'g':
			o.group = true
		case 'D':
			o.devices, o.specials = true, true
		case 't':
			o.times = true
		case 'p':
			o.perms = true
		case 'c':
			o.checksum = true
		case 'n':
			o.dryRun = true
		case 'z':
			o.compress = true
		case 'I':
			o.ignoreTimes = true
		case 'W':
			o.wholeFile = true
		case 'u':
			o.update = true
		case 's':
			o.protectArgs = true
		case 'O':
			o.omitDirTimes = true
		case 'J', 'x', 'q', 'L', 'k', 'S', 'E':
		case 'e':
			// The capability string takes the rest of the bundle.
			o.clientInfo = b[i+1:]
			return nil
		case 'B', '@':
			v := b[i+1:]
			if c == 'B' {
				return o.long("block-size", v, true)
			}
			return o.long("modify-window", v, true)
		case 'b', 'H', 'A', 'X', 'U', 'N', 'R', 'K', 'm', 'y', 'C', 'T':
			return unsupported("-" + string(c))
		default:
			return syntaxError("unknown option -%c", c)
		}
	}
	return nil
}

// long parses one long option.
func (o *options) long(name, value string, hasValue bool) error {
	needValue := func() error {
		if !hasValue {
			return syntaxError("option --%s needs a value", name)
		}
		return nil
	}
	number := func() (int64, error) {
		if err := needValue(); err != nil {
			return 0, err
		}
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return 0, syntaxError("option --%s: invalid number %q", name, value)
		}
		return n, nil
	}
	switch name {
	case "sender":
		o.sender = true
	case "delete", "del", "delete-before":
		o.deleteMode = true
	case "delete-during":
		o.deleteMode, o.deleteWhen = true, deleteDuring
	case "delete-delay", "delete-after":
		o.deleteMode, o.deleteWhen = true, deleteAfter
	case "delete-excluded":
		o.deleteMode, o.deleteExcluded = true, true
	case "max-delete":
		n, err := number()
		if err != nil {
			return err
		}
		switch {
		case n == 0:
			o.maxDelete = -1 // as in rsync: report extraneous files without deleting any
		case n > 0:
			o.maxDelete = int(min(n, 1<<31-1))
		}
	case "list-only":
		o.listOnly = true
	case "force":
		o.force = true
	case "existing", "ignore-non-existing":
		o.existing = true
	case "ignore-existing":
		o.ignoreExist = true
	case "size-only":
		o.sizeOnly = true
	case "numeric-ids":
		o.numericIDs = true
	case "ignore-errors":
		o.ignoreErrors = true
	case "checksum-seed":
		n, err := number()
		if err != nil {
			return err
		}
		o.checksumSeed = int32(n)
	case "modify-window":
		n, err := number()
		if err != nil {
			return err
		}
		// A negative window asks for equal nanoseconds (see mtimeRule.useNsec), 0 for equal seconds.
		o.modifyWindow = max(n, -1)
		o.modifyWindowOn = true
	case "compress-level":
		n, err := number()
		if err != nil {
			return err
		}
		if n < -131072 || n > 22 {
			return syntaxError("option --compress-level: %d is out of range", n)
		}
		o.compressLvl = int(n)
		// As rsync: level 0 turns zlib and zlibx compression off on both sides (the choice is
		// still negotiated); a 3.x client compresses when given another level, even without -z.
		o.compressOff = n == 0
		if n != 0 {
			o.compress = true
		}
	case "compress":
		o.compress = true
	case "old-compress":
		o.compress, o.compressChoice = true, "zlib"
	case "new-compress":
		// zlibx: the zlib token format without the matched-block history.
		o.compress, o.compressChoice = true, "zlibx"
	case "compress-choice", "zc":
		if err := needValue(); err != nil {
			return err
		}
		if _, ok := lookupCompression(value); !ok && !strings.EqualFold(value, "auto") {
			return unsupported("--" + name + "=" + value)
		}
		if strings.EqualFold(value, "none") {
			o.compress, o.compressChoice = false, ""
			break
		}
		o.compress = true
		if !strings.EqualFold(value, "auto") {
			o.compressChoice = value
		}
	case "checksum-choice", "cc":
		if err := needValue(); err != nil {
			return err
		}
		if _, _, _, err := parseChecksumChoice(value); err != nil {
			return err
		}
		o.checksumChoice = value
	case "specials":
		o.specials = true
	case "no-specials":
		o.specials = false
	case "no-devices":
		o.devices = false
	case "fsync", "mkpath", "open-noatime", "copy-unsafe-links":
	case "log-format", "out-format", "stats", "partial", "timeout", "contimeout", "info",
		"debug", "msgs2stderr", "no-msgs2stderr", "no-W", "no-whole-file", "bwlimit",
		"block-size", "protocol", "no-i-r", "no-inc-recursive", "safe-links", "preallocate",
		"ignore-missing-args", "max-alloc", "skip-compress":
	case "inplace", "append", "append-verify", "backup", "backup-dir", "suffix", "temp-dir",
		"partial-dir", "delay-updates", "files-from", "from0", "iconv", "remove-source-files",
		"remove-sent-files", "compare-dest", "copy-dest", "link-dest", "chmod", "chown",
		"usermap", "groupmap", "min-size", "max-size", "delete-missing-args", "write-devices",
		"fake-super", "copy-devices", "hard-links", "acls", "xattrs", "relative", "fuzzy",
		"cvs-exclude", "prune-empty-dirs", "keep-dirlinks", "atimes", "crtimes", "super",
		"only-write-batch", "read-batch":
		return unsupported("--" + name)
	default:
		return syntaxError("unknown option --%s", name)
	}
	return nil
}
