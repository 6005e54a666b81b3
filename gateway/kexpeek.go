package gateway

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// A client takes the first cipher of its own list that the server offers, and OpenSSH lists
// chacha20-poly1305 first, which golang.org/x/crypto runs at a third of AES-GCM's speed on
// amd64. So the gateway reads the client's KEXINIT before the SSH library starts and offers
// only AES-GCM to clients that offer it, and the full list to the others.

// gcmCiphers are offered alone to a client that offers one of them.
var gcmCiphers = []string{gossh.CipherAES128GCM, gossh.CipherAES256GCM}

// allCiphers is what a client without AES-GCM is offered: x/crypto's supported list.
var allCiphers = []string{
	gossh.CipherAES128GCM, gossh.CipherAES256GCM, gossh.CipherChaCha20Poly1305,
	gossh.CipherAES128CTR, gossh.CipherAES192CTR, gossh.CipherAES256CTR,
}

// Bounds on what the gateway reads before the SSH library starts.
const (
	// kexPeekTimeout is how long the gateway waits for the client's version line and KEXINIT.
	// OpenSSH and x/crypto send their KEXINIT as soon as they have the server's version line,
	// so this passes only for clients that wait for the server's KEXINIT first, and for
	// distant ones, which then get the full list.
	kexPeekTimeout = time.Second
	// maxKEXInitPacket bounds the client's first packet; x/crypto and OpenSSH take packets of
	// up to 256 KiB, but a KEXINIT's name lists are a few KiB.
	maxKEXInitPacket = 64 << 10
	// maxVersionLines bounds the lines before the client's version line (RFC 4253 lets a
	// server send such lines; a client must not, but the library skips them too).
	maxVersionLines = 16
	maxVersionLine  = 255
)

// ParseCiphers reads PORTICO_SSH_CIPHERS: a comma list of ciphers to offer every client
// instead of choosing per connection; empty means choose per connection (nil).
func ParseCiphers(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	for c := range strings.SplitSeq(s, ",") {
		c = strings.TrimSpace(c)
		if !slices.Contains(allCiphers, c) {
			return nil, fmt.Errorf("ssh cipher %q: want a comma list of %s", c, strings.Join(allCiphers, ", "))
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// clientKEXInit is the start of SSH_MSG_KEXINIT (RFC 4253 §7.1) as far as the gateway needs it
// (parseKEXInit fills in the cipher lists only).
type clientKEXInit struct {
	Cookie              [16]byte `sshtype:"20"`
	KexAlgos            []string
	ServerHostKeyAlgos  []string
	CiphersClientServer []string
	CiphersServerClient []string
	Rest                []byte `ssh:"rest"`
}

// ciphersFor returns the ciphers to offer a client whose KEXINIT offered these, in each
// direction: AES-GCM alone when the client offers it both ways, else every cipher.
func ciphersFor(k *clientKEXInit) []string {
	if k == nil {
		return allCiphers
	}
	has := func(list []string) bool {
		return slices.ContainsFunc(list, func(c string) bool { return slices.Contains(gcmCiphers, c) })
	}
	if has(k.CiphersClientServer) && has(k.CiphersServerClient) {
		return gcmCiphers
	}
	return allCiphers
}

// parseKEXInitPacket parses an unencrypted SSH binary packet (RFC 4253 §6) holding a
// KEXINIT. It returns the packet's length in b, or 0 when b does not yet hold it all.
func parseKEXInitPacket(b []byte) (*clientKEXInit, int, error) {
	if len(b) < 5 {
		return nil, 0, nil
	}
	length := binary.BigEndian.Uint32(b)
	if length > maxKEXInitPacket-4 {
		return nil, 0, fmt.Errorf("first packet of %d bytes", length)
	}
	total := 4 + int(length)
	if len(b) < total {
		return nil, 0, nil
	}
	padding := int(b[4])
	if padding+1 > int(length) {
		return nil, 0, errors.New("first packet's padding overruns it")
	}
	k, err := parseKEXInit(b[5 : total-padding])
	if err != nil {
		return nil, 0, fmt.Errorf("first packet is not a KEXINIT: %w", err)
	}
	return k, total, nil
}

// msgKexInit is SSH_MSG_KEXINIT.
const msgKexInit = 20

// parseKEXInit parses a KEXINIT payload as far as the gateway needs it: its message number,
// cookie and first four name-lists, of which it keeps the two cipher lists (the rest of the
// message is left to the SSH library). It parses in place, where the SSH library's Unmarshal
// made a string of every name of every list: 50 allocations for a default client's KEXINIT.
func parseKEXInit(p []byte) (*clientKEXInit, error) {
	if len(p) < 1+16 || p[0] != msgKexInit {
		return nil, errors.New("not a KEXINIT message")
	}
	p = p[1+16:]
	var lists [4][]byte
	for i := range lists {
		if len(p) < 4 {
			return nil, errors.New("name-list cut short")
		}
		n := binary.BigEndian.Uint32(p)
		if uint64(n) > uint64(len(p)-4) {
			return nil, errors.New("name-list longer than the message")
		}
		lists[i], p = p[4:4+n], p[4+n:]
	}
	return &clientKEXInit{CiphersClientServer: nameList(lists[2]), CiphersServerClient: nameList(lists[3])}, nil
}

// nameList splits an SSH name-list (RFC 4251 §5); empty is no names.
func nameList(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), ",")
}

// peekedConn is a connection whose first bytes from the client were already read: it replays
// them, and it drops the server's version line, which the gateway already sent, when the SSH
// library writes it again.
type peekedConn struct {
	net.Conn
	replay []byte

	mu   sync.Mutex
	skip []byte // the version line the library will write first, not yet dropped

	// deadlineMu guards readDeadline and writeDeadline: whether a deadline other than none is
	// set on Conn. charmbracelet/ssh sets the deadline before every read and every write, to
	// none when no idle or max timeout is configured (portico sets neither); asking the
	// runtime to clear a deadline that is not set cost about 1% of the server's CPU in the
	// session-rate bench, so it is skipped.
	deadlineMu                  sync.Mutex
	readDeadline, writeDeadline bool
}

func (c *peekedConn) SetDeadline(t time.Time) error {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	if t.IsZero() && !c.readDeadline && !c.writeDeadline {
		return nil
	}
	err := c.Conn.SetDeadline(t)
	if err == nil {
		c.readDeadline, c.writeDeadline = !t.IsZero(), !t.IsZero()
	}
	return err
}

func (c *peekedConn) SetReadDeadline(t time.Time) error {
	return c.setDeadline(t, &c.readDeadline, c.Conn.SetReadDeadline)
}

func (c *peekedConn) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(t, &c.writeDeadline, c.Conn.SetWriteDeadline)
}

// setDeadline sets one direction's deadline with set, whose state is *isSet, unless it clears
// a deadline that is not set.
func (c *peekedConn) setDeadline(t time.Time, isSet *bool, set func(time.Time) error) error {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	if t.IsZero() && !*isSet {
		return nil
	}
	err := set(t)
	if err == nil {
		*isSet = !t.IsZero()
	}
	return err
}

func (c *peekedConn) Read(p []byte) (int, error) {
	if len(c.replay) > 0 {
		n := copy(p, c.replay)
		c.replay = c.replay[n:]
		if len(c.replay) == 0 {
			c.replay = nil // the connection lives on; what was peeked need not
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *peekedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if len(c.skip) > 0 {
		n := min(len(c.skip), len(p))
		if !bytes.Equal(p[:n], c.skip[:n]) {
			c.mu.Unlock()
			return 0, errors.New("gateway: the SSH library's version line differs from the one sent")
		}
		c.skip = c.skip[n:]
		if len(c.skip) == 0 {
			c.skip = nil
		}
		c.mu.Unlock()
		if n == len(p) {
			return n, nil
		}
		m, err := c.Conn.Write(p[n:])
		return n + m, err
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// peekKEXInit sends the server's version line on conn, then reads the client's version line
// and KEXINIT, for at most timeout. It returns a connection for the SSH library that replays
// what was read and does not repeat the version line (and has no deadline set), and the
// client's KEXINIT, or nil when it did not come in time or did not parse (the library then
// meets whatever it was).
func peekKEXInit(conn net.Conn, serverVersion string, timeout time.Duration) (net.Conn, *clientKEXInit, error) {
	line := []byte(serverVersion + "\r\n")
	if _, err := conn.Write(line); err != nil {
		return nil, nil, err
	}
	pc := &peekedConn{Conn: conn, skip: line}
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, nil, err
	}
	kex, read := readClientKEXInit(conn)
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		return nil, nil, err
	}
	pc.replay = read
	return pc, kex, nil
}

// peekBuffer is the size of the first buffer the client's version line and KEXINIT are read
// into: OpenSSH's and x/crypto's fit (about 1.5 KiB). A bigger one doubles it, up to what
// the bounds above allow.
const peekBuffer = 2 << 10

// readClientKEXInit reads the client's version line and its first packet from r into one
// buffer, and returns them parsed, or nil when they do not come or do not parse, with every
// byte it read. (It once read through a bufio.Reader and a recorder that kept a second copy,
// and parsed a growing copy of the packet: its allocations were an eighth of the server's in
// the session-rate bench.)
func readClientKEXInit(r io.Reader) (*clientKEXInit, []byte) {
	buf := make([]byte, 0, peekBuffer)
	lines := 0   // lines before the version line
	next := 0    // where the next unread line starts, before the version line is found
	packet := -1 // where the first packet starts, once the version line was found
	for {
		for packet < 0 {
			i := bytes.IndexByte(buf[next:], '\n')
			if i < 0 {
				if len(buf)-next > maxVersionLine {
					return nil, buf
				}
				break
			}
			if i > maxVersionLine {
				return nil, buf
			}
			line := buf[next : next+i]
			next += i + 1
			if bytes.HasPrefix(line, []byte("SSH-")) {
				packet = next
				break
			}
			if lines++; lines > maxVersionLines {
				return nil, buf
			}
		}
		if packet >= 0 {
			k, n, err := parseKEXInitPacket(buf[packet:])
			if err != nil {
				return nil, buf
			}
			if n > 0 {
				return k, buf
			}
		}
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, cap(buf))
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil && m == 0 {
			return nil, buf
		}
	}
}
