package gateway

import "bytes"

// The fast path's request-head parser. It recognises only the plainest HTTP/1.1 requests,
// those net/http would read as the same GET or HEAD without body, range or credentials, and
// with no condition but one If-None-Match (a browser's revalidation, whose value the site
// server reads); for anything else it says decline, and net/http reads the same bytes. It
// never accepts what net/http would read differently, so it is stricter than HTTP: lines end
// in CR LF, no folded lines, no percent-encoding, header values of printable ASCII only.

// fastRequest is what the fast path needs of a request head. Its slices point into the
// buffer parsed.
type fastRequest struct {
	head           bool   // HEAD; else GET
	path           []byte // the request target before any '?'
	host           []byte
	acceptEncoding []byte // empty when absent
	ifNoneMatch    []byte // empty when absent; never sent empty
}

type headResult int

const (
	headIncomplete headResult = iota // more bytes are needed
	headDecline                      // for net/http
	headOK                           // a plain GET or HEAD, of used bytes
)

// parseHead parses the request head at the start of b, all at once.
func parseHead(b []byte) (req fastRequest, used int, res headResult) {
	var p headParser
	return p.parse(b)
}

// headParser parses one request head as its bytes arrive. Each call to parse reads only what
// arrived since the last one: the lines parsed before are not read again, nor the start of an
// incomplete line searched again for its end. Parsing again from the start on each read cost
// a client sending its head a byte at a time (4 KiB: 4096 reads) up to 4096 times the work of
// its bytes, about a sixth of a second of CPU time per connection.
type headParser struct {
	next     int  // where the first line not parsed yet starts
	searched int  // bytes from next known to hold no LF
	started  bool // the request line is parsed

	head                                    bool
	path, host, acceptEncoding, ifNoneMatch span // offsets from the head's start
	hosts, encodings, ifNoneMatches         int
}

// span is where a part of a request head lies in it.
type span struct{ from, to int }

func (s span) of(b []byte) []byte { return b[s.from:s.to] }

// parse parses the head at the start of b, of which earlier calls saw a prefix (the same
// bytes, though they may have moved). After headOK or headDecline the parser is reset.
func (p *headParser) parse(b []byte) (req fastRequest, used int, res headResult) {
	for {
		from := p.next
		line, res := p.nextLine(b)
		if res == headIncomplete {
			return req, 0, res
		}
		if res == headDecline || !p.take(line, from) {
			*p = headParser{}
			return req, 0, headDecline
		}
		if len(line) == 0 {
			// The blank line that ends the head (an empty first line is declined).
			// If-None-Match once at most, and not empty (net/http reads an empty one as none,
			// but nobody sends it): the site server reads its value.
			ok := p.hosts == 1 && p.encodings <= 1 && plainHost(p.host.of(b)) &&
				(p.ifNoneMatches == 0 || (p.ifNoneMatches == 1 && p.ifNoneMatch.to > p.ifNoneMatch.from))
			req = fastRequest{head: p.head, path: p.path.of(b), host: p.host.of(b), acceptEncoding: p.acceptEncoding.of(b),
				ifNoneMatch: p.ifNoneMatch.of(b)}
			used = p.next
			*p = headParser{}
			if !ok {
				return fastRequest{}, 0, headDecline
			}
			return req, used, headOK
		}
	}
}

// take reads one complete line of the head, which starts at from; false: decline.
func (p *headParser) take(line []byte, from int) bool {
	if !p.started {
		p.started = true
		k := 0
		switch {
		case bytes.HasPrefix(line, []byte("GET ")):
			k = 4
		case bytes.HasPrefix(line, []byte("HEAD ")):
			p.head = true
			k = 5
		default:
			return false
		}
		target, proto, found := bytes.Cut(line[k:], []byte(" "))
		if !found || string(proto) != "HTTP/1.1" || !plainTarget(target) {
			return false
		}
		path, _, _ := bytes.Cut(target, []byte("?"))
		p.path = span{from + k, from + k + len(path)}
		return true
	}
	if len(line) == 0 {
		return true
	}
	c := bytes.IndexByte(line, ':')
	if c < 0 || !token(line[:c]) {
		return false // a folded line, a space before the colon, a bad name
	}
	name, raw := line[:c], line[c+1:]
	value := bytes.TrimLeft(raw, " \t")
	vfrom := from + c + 1 + len(raw) - len(value)
	value = bytes.TrimRight(value, " \t")
	if !printable(value) {
		return false
	}
	v := span{vfrom, vfrom + len(value)}
	switch {
	case equalFold(name, "host"):
		p.hosts++
		p.host = v
	case equalFold(name, "accept-encoding"):
		p.encodings++
		p.acceptEncoding = v
	case equalFold(name, "if-none-match"):
		p.ifNoneMatches++
		p.ifNoneMatch = v
	case equalFold(name, "connection"):
		if !equalFold(value, "keep-alive") {
			return false // close, upgrade, or a list of options
		}
	case declined(name):
		return false
	}
	return true
}

// nextLine splits off the line at p.next, without its CR LF, and moves p.next past it:
// headIncomplete when b holds no LF there, headDecline when the LF has no CR before it.
func (p *headParser) nextLine(b []byte) (line []byte, res headResult) {
	rest := b[p.next:]
	i := bytes.IndexByte(rest[p.searched:], '\n')
	if i < 0 {
		p.searched = len(rest)
		return nil, headIncomplete
	}
	i += p.searched
	if i == 0 || rest[i-1] != '\r' {
		return nil, headDecline
	}
	p.next += i + 1
	p.searched = 0
	return rest[:i-1], headOK
}

// declined reports whether a request with a header called name is for net/http: it may
// carry a body, ask for conditions (but If-None-Match, which take reads), a range or a
// protocol switch, or carry credentials.
func declined(name []byte) bool {
	for _, d := range declinedHeaders {
		if equalFold(name, d) {
			return true
		}
	}
	return false
}

var declinedHeaders = []string{
	"content-length", "transfer-encoding", "expect", "upgrade", "te", "trailer",
	"range", "if-range", "if-match", "if-modified-since", "if-unmodified-since",
	"authorization", "proxy-authorization", "proxy-connection", "keep-alive",
}

// equalFold reports whether b is s, ASCII case folded (s is lower case).
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// Character classes, as bit sets over the bytes.
var (
	tokenChars  = charSet("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
	targetChars = charSet("-._~!$&'()*+,;=:@/?0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
	hostChars   = charSet("-.:0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
)

type byteSet [256]bool

func charSet(s string) *byteSet {
	var set byteSet
	for i := range len(s) {
		set[s[i]] = true
	}
	return &set
}

func (set *byteSet) all(b []byte) bool {
	for _, c := range b {
		if !set[c] {
			return false
		}
	}
	return true
}

func token(b []byte) bool { return len(b) > 0 && tokenChars.all(b) }

// plainTarget reports whether a request target is in origin form and means the same to
// everyone: a path from '/' and an optional query, of characters that are never decoded.
func plainTarget(b []byte) bool {
	return len(b) > 0 && b[0] == '/' && targetChars.all(b)
}

func plainHost(b []byte) bool { return len(b) > 0 && hostChars.all(b) }

// printable reports whether a header value is visible ASCII, spaces and tabs.
func printable(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c > '~' {
			return false
		}
	}
	return true
}
