package gateway

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/internal/sshtest"
)

const testServerVersion = "SSH-2.0-portico_test"

// handshake runs one SSH handshake between an x/crypto client with cfg and a server that
// peeks at the client's KEXINIT first, and returns the cipher the server reads with.
func handshake(t *testing.T, cfg *gossh.ClientConfig, wait time.Duration) (string, *clientKEXInit) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hostKey := sshtest.NewSigner(t)
	type result struct {
		cipher string
		kex    *clientKEXInit
		err    error
	}
	done := make(chan result, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer conn.Close()
		peeked, kex, err := peekKEXInit(conn, testServerVersion, wait)
		if err != nil {
			done <- result{err: err}
			return
		}
		srv := &gossh.ServerConfig{NoClientAuth: true, ServerVersion: testServerVersion}
		srv.Ciphers = ciphersFor(kex)
		srv.AddHostKey(hostKey)
		sc, chans, reqs, err := gossh.NewServerConn(peeked, srv)
		if err != nil {
			done <- result{err: err}
			return
		}
		go gossh.DiscardRequests(reqs)
		go func() {
			for ch := range chans {
				ch.Reject(gossh.Prohibited, "no")
			}
		}()
		done <- result{cipher: sc.Conn.(gossh.AlgorithmsConnMetadata).Algorithms().Read.Cipher, kex: kex}
		sc.Wait()
	}()
	cfg.HostKeyCallback = gossh.InsecureIgnoreHostKey()
	cfg.User = "test"
	client, err := gossh.Dial("tcp", ln.Addr().String(), cfg)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	if _, _, err := client.SendRequest("ping", true, nil); err != nil {
		t.Fatalf("request after handshake: %v", err)
	}
	client.Close()
	r := <-done
	if r.err != nil {
		t.Fatalf("server: %v", r.err)
	}
	return r.cipher, r.kex
}

func TestCiphersChosenPerClient(t *testing.T) {
	tests := []struct {
		name    string
		ciphers []string // nil: x/crypto's defaults
		want    string
	}{
		{"default client", nil, gossh.CipherAES128GCM},
		{"chacha20 first, then AES-GCM", []string{gossh.CipherChaCha20Poly1305, gossh.CipherAES256GCM, gossh.CipherAES128CTR}, gossh.CipherAES256GCM},
		{"only chacha20", []string{gossh.CipherChaCha20Poly1305}, gossh.CipherChaCha20Poly1305},
		{"only aes128-ctr", []string{gossh.CipherAES128CTR}, gossh.CipherAES128CTR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &gossh.ClientConfig{}
			cfg.Ciphers = tt.ciphers
			got, kex := handshake(t, cfg, 5*time.Second)
			if kex == nil {
				t.Error("the client's KEXINIT was not read")
			}
			if got != tt.want {
				t.Errorf("negotiated %s, want %s", got, tt.want)
			}
		})
	}
}

// TestSilentClientConnectsAfterTheTimeout: a client that waits for the server's KEXINIT
// before sending its own, or stops halfway through its own until the server's comes, still
// connects: what the peek read before the timeout is replayed, and the rest follows.
func TestSilentClientConnectsAfterTheTimeout(t *testing.T) {
	for _, split := range []bool{false, true} {
		t.Run(map[bool]string{false: "waits before its KEXINIT", true: "waits halfway through its KEXINIT"}[split], func(t *testing.T) {
			silentClientConnects(t, split)
		})
	}
}

func silentClientConnects(t *testing.T, split bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hostKey := sshtest.NewSigner(t)
	served := make(chan error, 1)
	go func() {
		served <- func() error {
			conn, err := ln.Accept()
			if err != nil {
				return err
			}
			defer conn.Close()
			peeked, kex, err := peekKEXInit(conn, testServerVersion, 200*time.Millisecond)
			if err != nil || kex != nil {
				return fmt.Errorf("peek: kex %v, err %v; want none and no error", kex, err)
			}
			srv := &gossh.ServerConfig{NoClientAuth: true, ServerVersion: testServerVersion}
			srv.Ciphers = ciphersFor(kex)
			srv.AddHostKey(hostKey)
			sc, chans, reqs, err := gossh.NewServerConn(peeked, srv)
			if err != nil {
				return fmt.Errorf("server: %w", err)
			}
			go gossh.DiscardRequests(reqs)
			go func() {
				for range chans {
				}
			}()
			sc.Wait()
			return nil
		}()
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(time.Now().Add(10 * time.Second)) // a bound, so that a broken replay fails the test
	// Like a client that waits: nothing (or half its KEXINIT) is sent until the server's
	// KEXINIT has arrived.
	waiting := &waitForServerKEXInit{Conn: raw, started: make(chan struct{}), split: split}
	cfg := &gossh.ClientConfig{User: "test", HostKeyCallback: gossh.InsecureIgnoreHostKey()}
	c, chans, reqs, err := gossh.NewClientConn(waiting, ln.Addr().String(), cfg)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	gossh.NewClient(c, chans, reqs).Close()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// waitForServerKEXInit holds back the client's writes after its version line until the
// server has sent something more than its own version line; with split, it sends the first
// half of its KEXINIT before it waits.
type waitForServerKEXInit struct {
	net.Conn
	writes  int
	read    int
	started chan struct{}
	split   bool
}

func (w *waitForServerKEXInit) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	w.read += n
	if w.read > len(testServerVersion)+2 {
		select {
		case <-w.started:
		default:
			close(w.started)
		}
	}
	return n, err
}

func (w *waitForServerKEXInit) Write(p []byte) (int, error) {
	w.writes++
	half := 0
	if w.split && w.writes == 2 {
		half = len(p) / 2
		if _, err := w.Conn.Write(p[:half]); err != nil {
			return 0, err
		}
	}
	if w.writes > 1 {
		<-w.started
	}
	n, err := w.Conn.Write(p[half:])
	return half + n, err
}

func TestPeekedConnDropsTheRepeatedVersionLine(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	line := []byte(testServerVersion + "\r\n")
	pc := &peekedConn{Conn: a, skip: append([]byte(nil), line...), replay: []byte("abc")}
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 64)
		n, _ := b.Read(buf)
		got <- buf[:n]
	}()
	// The library writes its version line in pieces, then a packet in the same write.
	if n, err := pc.Write(line[:5]); n != 5 || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	if n, err := pc.Write(append(line[5:], "packet"...)); n != len(line)-5+6 || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	if g := <-got; string(g) != "packet" {
		t.Errorf("the client got %q, want only the packet", g)
	}
	buf := make([]byte, 2)
	if n, _ := pc.Read(buf); string(buf[:n]) != "ab" {
		t.Errorf("replay read %q", buf[:n])
	}
	if n, _ := pc.Read(buf); string(buf[:n]) != "c" {
		t.Errorf("replay read %q", buf[:n])
	}
	other := &peekedConn{Conn: a, skip: []byte("SSH-2.0-x\r\n")}
	if _, err := other.Write([]byte("SSH-2.0-y\r\n")); err == nil {
		t.Error("a different version line went through")
	}
}

// kexInitPacket frames a KEXINIT as an unencrypted binary packet.
func kexInitPacket(k clientKEXInit) []byte {
	payload := gossh.Marshal(&k)
	padding := 8 - (len(payload)+5)%8
	if padding < 4 {
		padding += 8
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(len(payload)+padding+1))
	b = append(b, byte(padding))
	b = append(b, payload...)
	return append(b, make([]byte, padding)...)
}

func TestParseKEXInitPacket(t *testing.T) {
	good := kexInitPacket(clientKEXInit{KexAlgos: []string{"curve25519-sha256"}, CiphersClientServer: []string{"aes128-gcm@openssh.com"}, CiphersServerClient: []string{"aes128-gcm@openssh.com"}, Rest: make([]byte, 40)})
	k, n, err := parseKEXInitPacket(good)
	if err != nil || n != len(good) || k == nil || ciphersFor(k)[0] != gossh.CipherAES128GCM || len(ciphersFor(k)) != 2 {
		t.Fatalf("good packet: %v, %d, %v", k, n, err)
	}
	for i := range len(good) - 1 {
		if _, n, err := parseKEXInitPacket(good[:i]); n != 0 || err != nil {
			t.Errorf("a packet cut at %d: %d, %v; want to wait for more", i, n, err)
		}
	}
	huge := binary.BigEndian.AppendUint32(nil, 1<<20)
	if _, _, err := parseKEXInitPacket(append(huge, make([]byte, 8)...)); err == nil {
		t.Error("a 1 MiB first packet was accepted")
	}
	badPadding := bytes.Clone(good)
	badPadding[4] = 255
	if _, _, err := parseKEXInitPacket(badPadding); err == nil {
		t.Error("padding longer than the packet was accepted")
	}
	notKEX := bytes.Clone(good)
	notKEX[5] = 21
	if _, _, err := parseKEXInitPacket(notKEX); err == nil {
		t.Error("a packet of another type was accepted")
	}
	oneWay := kexInitPacket(clientKEXInit{CiphersClientServer: []string{"aes128-gcm@openssh.com"}, CiphersServerClient: []string{"aes128-ctr"}})
	if k, _, _ := parseKEXInitPacket(oneWay); len(ciphersFor(k)) != len(allCiphers) {
		t.Error("AES-GCM in one direction only got AES-GCM alone")
	}
}

func FuzzParseKEXInitPacket(f *testing.F) {
	f.Add(kexInitPacket(clientKEXInit{CiphersClientServer: []string{"aes128-gcm@openssh.com"}}))
	f.Add([]byte{0, 0, 0, 12, 4, 20})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, n, err := parseKEXInitPacket(b)
		if err == nil && n > 0 && (k == nil || n > len(b)) {
			t.Fatalf("parsed %d of %d bytes, kex %v", n, len(b), k)
		}
		_ = ciphersFor(k)
	})
}

// FuzzPeekKEXInit: whatever a client sends before and after its version line (other lines,
// long lines, a cut, huge or malformed first packet), the connection handed to the SSH library
// gives back exactly the client's bytes, in order, and the peek returns.
func FuzzPeekKEXInit(f *testing.F) {
	f.Add([]byte("SSH-2.0-OpenSSH_9.6\r\n"), kexInitPacket(clientKEXInit{CiphersClientServer: []string{"aes128-gcm@openssh.com"}, CiphersServerClient: []string{"aes128-gcm@openssh.com"}}))
	f.Add([]byte("hello\r\nSSH-2.0-x\n"), []byte{0, 0, 0, 12, 4, 20})
	f.Add([]byte("SSH-2.0-x\r\n"), []byte{0xff, 0xff, 0xff, 0xff, 0})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	f.Fuzz(func(t *testing.T, version, rest []byte) {
		data := append(append([]byte(nil), version...), rest...)
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		server, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer server.Close()
		go func() {
			line := make([]byte, len(testServerVersion)+2)
			if _, err := io.ReadFull(client, line); err != nil {
				return
			}
			client.Write(data)
			client.(*net.TCPConn).CloseWrite() // the client sends no more
		}()
		pc, kex, err := peekKEXInit(server, testServerVersion, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		_ = ciphersFor(kex)
		got, _ := io.ReadAll(pc)
		if !bytes.Equal(got, data) {
			t.Fatalf("the library would read %q, the client sent %q", got, data)
		}
	})
}

// deadlineCalls counts the deadlines asked of the connection under it.
type deadlineCalls struct {
	net.Conn
	calls int
}

func (d *deadlineCalls) SetDeadline(t time.Time) error {
	d.calls++
	return d.Conn.SetDeadline(t)
}

func (d *deadlineCalls) SetReadDeadline(t time.Time) error {
	d.calls++
	return d.Conn.SetReadDeadline(t)
}

func (d *deadlineCalls) SetWriteDeadline(t time.Time) error {
	d.calls++
	return d.Conn.SetWriteDeadline(t)
}

// charmbracelet/ssh clears the deadline before every read and write; the peeked connection
// passes that on only when a deadline is set, and then the deadline is cleared for real.
func TestPeekedConnClearsOnlySetDeadlines(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	under := &deadlineCalls{Conn: a}
	pc := &peekedConn{Conn: under}
	for range 3 {
		pc.SetDeadline(time.Time{})
		pc.SetReadDeadline(time.Time{})
		pc.SetWriteDeadline(time.Time{})
	}
	if under.calls != 0 {
		t.Fatalf("clearing no deadline reached the connection %d times", under.calls)
	}
	tests := []struct {
		name      string
		set, kept func(time.Time) error
		op        func() error
	}{
		{"both", pc.SetDeadline, pc.SetDeadline, func() error { _, err := pc.Read(make([]byte, 1)); return err }},
		{"read", pc.SetReadDeadline, pc.SetReadDeadline, func() error { _, err := pc.Read(make([]byte, 1)); return err }},
		{"write", pc.SetWriteDeadline, pc.SetWriteDeadline, func() error { _, err := pc.Write([]byte("x")); return err }},
		{"read, cleared by both", pc.SetReadDeadline, pc.SetDeadline, func() error { _, err := pc.Read(make([]byte, 1)); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.set(time.Unix(1, 0)); err != nil {
				t.Fatal(err)
			}
			if err := tc.op(); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("with a past deadline: %v", err)
			}
			if err := tc.kept(time.Time{}); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- tc.op() }()
			// The other end serves one read or write: the operation completes only if the
			// deadline was cleared.
			go func() {
				buf := make([]byte, 1)
				if tc.name == "write" {
					b.Read(buf)
				} else {
					b.Write([]byte("y"))
				}
			}()
			if err := <-done; err != nil {
				t.Fatalf("after clearing the deadline: %v", err)
			}
		})
	}
}

// chunkReader reads what it holds in pieces of at most n bytes, as a socket may.
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[k:]
	return k, nil
}

// The peek reads a client's version line and KEXINIT into one buffer and parses them in
// place: its allocations were an eighth of the server's in the session-rate bench when it
// read through a bufio.Reader and a recorder and kept growing copies of the packet.
func TestReadClientKEXInitAllocations(t *testing.T) {
	algos := gossh.SupportedAlgorithms()
	data := append([]byte("SSH-2.0-OpenSSH_9.6\r\n"), kexInitPacket(clientKEXInit{
		KexAlgos: algos.KeyExchanges, ServerHostKeyAlgos: algos.HostKeys,
		CiphersClientServer: algos.Ciphers, CiphersServerClient: algos.Ciphers,
		Rest: bytes.Repeat([]byte("x"), 600),
	})...)
	var got *clientKEXInit
	var read []byte
	allocs := testing.AllocsPerRun(20, func() {
		got, read = readClientKEXInit(&chunkReader{b: data, n: 300})
	})
	if got == nil || !bytes.Equal(read, data) {
		t.Fatalf("read %d of %d bytes, kex %v", len(read), len(data), got)
	}
	if allocs > 10 {
		t.Errorf("%v allocations to read a %d-byte version line and KEXINIT; want at most 10 (50 with the SSH library's Unmarshal)", allocs, len(data))
	}
	t.Logf("%v allocations", allocs)
}

// FuzzParseKEXInit: the gateway's in-place KEXINIT parser agrees with the SSH library's
// Unmarshal on every payload: both refuse it, or both read the same cipher lists.
func FuzzParseKEXInit(f *testing.F) {
	f.Add(gossh.Marshal(&clientKEXInit{KexAlgos: []string{"a", "b"}, CiphersClientServer: []string{"aes128-gcm@openssh.com", "aes128-ctr"}, CiphersServerClient: []string{"x"}}))
	f.Add([]byte{20})
	f.Add(append([]byte{20}, make([]byte, 32)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := parseKEXInit(b)
		var want clientKEXInit
		wantErr := gossh.Unmarshal(b, &want)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("parseKEXInit: %v; Unmarshal: %v", err, wantErr)
		}
		if err != nil {
			return
		}
		if !slices.Equal(k.CiphersClientServer, want.CiphersClientServer) || !slices.Equal(k.CiphersServerClient, want.CiphersServerClient) {
			t.Fatalf("ciphers %q %q; Unmarshal %q %q", k.CiphersClientServer, k.CiphersServerClient, want.CiphersClientServer, want.CiphersServerClient)
		}
	})
}
