package gateway

import "bytes"

// The fast path's request-head parser. It recognises only the plainest HTTP/1.1 requests,
// those net/http would read as the same GET or HEAD without body, conditions, range or
// credentials; for anything else it says decline, and net/http reads the same bytes. It
// never accepts what net/http would read differently, so it is stricter than HTTP: lines end
// in CR LF, no folded lines, no percent-encoding, header values of printable ASCII only.

// fastRequest is what the fast path needs of a request head. Its slices point into the
// buffer parsed.
type fastRequest struct {
	head           bool   // HEAD; else GET
	path           []byte // the request target before any '?'
	host           []byte
	acceptEncoding []byte // empty when absent
}

type headResult int

const (
	headIncomplete headResult = iota // more bytes are needed
	headDecline                      // for net/http
	headOK                           // a plain GET or HEAD, of used bytes
)

// parseHead parses the request head at the start of b.
func parseHead(b []byte) (req fastRequest, used int, res headResult) {
	line, rest, res := nextLine(b)
	if res != headOK {
		return req, 0, res
	}
	switch {
	case bytes.HasPrefix(line, []byte("GET ")):
		line = line[4:]
	case bytes.HasPrefix(line, []byte("HEAD ")):
		req.head = true
		line = line[5:]
	default:
		return req, 0, headDecline
	}
	target, proto, found := bytes.Cut(line, []byte(" "))
	if !found || string(proto) != "HTTP/1.1" || !plainTarget(target) {
		return req, 0, headDecline
	}
	req.path, _, _ = bytes.Cut(target, []byte("?"))
	hosts, encodings := 0, 0
	for {
		line, rest, res = nextLine(rest)
		if res != headOK {
			return req, 0, res
		}
		if len(line) == 0 {
			break
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found || !token(name) {
			return req, 0, headDecline // a folded line, a space before the colon, a bad name
		}
		value = bytes.Trim(value, " \t")
		if !printable(value) {
			return req, 0, headDecline
		}
		switch {
		case equalFold(name, "host"):
			hosts++
			req.host = value
		case equalFold(name, "accept-encoding"):
			encodings++
			req.acceptEncoding = value
		case equalFold(name, "connection"):
			if !equalFold(value, "keep-alive") {
				return req, 0, headDecline // close, upgrade, or a list of options
			}
		case declined(name):
			return req, 0, headDecline
		}
	}
	if hosts != 1 || encodings > 1 || !plainHost(req.host) {
		return req, 0, headDecline
	}
	return req, len(b) - len(rest), headOK
}

// nextLine splits off the line at the start of b, without its CR LF: headIncomplete when b
// holds no LF, headDecline when the LF has no CR before it.
func nextLine(b []byte) (line, rest []byte, res headResult) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, nil, headIncomplete
	}
	if i == 0 || b[i-1] != '\r' {
		return nil, nil, headDecline
	}
	return b[:i-1], b[i+1:], headOK
}

// declined reports whether a request with a header called name is for net/http: it may
// carry a body, ask for conditions, a range or a protocol switch, or carry credentials.
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
	"range", "if-range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since",
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
