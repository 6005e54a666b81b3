package rsync

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// frame is one multiplexed frame as a client writes it.
func frame(tag int, payload []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(7+tag)<<24|uint32(len(payload)))
	return append(b, payload...)
}

// rawFrame is a frame with a header byte of its own (tags below 0).
func rawFrame(hdr byte, payload []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(hdr)<<24|uint32(len(payload)))
	return append(b, payload...)
}

// TestServeClientMessages sends each kind of message a protocol-32 client could put in its
// multiplexed stream in the middle of an upload: those rsync's server accepts from a client are
// taken, the rest (an unknown tag, one rsync's processes send only to each other or a server only
// to its client, a wrong length) end the session with a clear error and nothing written.
func TestServeClientMessages(t *testing.T) {
	const (
		ok = iota
		refused
		clientExit
	)
	four := []byte{0, 0, 0, 0}
	cases := []struct {
		name string
		msg  []byte
		want int
	}{
		{"noop", frame(msgNoop, nil), ok},
		{"io error", frame(msgIOError, []byte{1, 0, 0, 0}), ok},
		{"info", frame(msgInfo, []byte("hello\n")), ok},
		{"warning", frame(msgWarning, []byte("careful\n")), ok},
		{"error", frame(msgError, []byte("oops\n")), ok},
		{"error xfer", frame(msgErrorXfer, []byte("file failed\n")), ok},
		{"deleted", frame(msgDeleted, []byte("old.txt")), ok},
		{"success", frame(msgSuccess, four), ok},
		{"no send", frame(msgNoSend, []byte{9, 0, 0, 0}), ok},
		{"empty data", frame(msgData, nil), ok},
		{"error exit", frame(msgErrorExit, []byte{23, 0, 0, 0}), clientExit},
		{"error exit without code", frame(msgErrorExit, nil), clientExit},
		{"unknown tag", frame(50, four), refused},
		{"unknown high tag", frame(200, nil), refused},
		{"tag below data", rawFrame(6, four), refused},
		{"error socket", frame(msgErrorSocket, []byte("x\n")), refused},
		{"log", frame(msgLog, []byte("x\n")), refused},
		{"client", frame(msgClient, []byte("x\n")), refused},
		{"error utf8", frame(msgErrorUTF8, []byte("x\n")), refused},
		{"redo", frame(msgRedo, four), refused},
		{"stats", frame(msgStats, make([]byte, 8)), refused},
		{"io timeout", frame(msgIOTimeout, four), refused},
		{"noop with data", frame(msgNoop, four), refused},
		{"short io error", frame(msgIOError, []byte{1, 0}), refused},
		{"long success", frame(msgSuccess, make([]byte, 8)), refused},
		{"empty no send", frame(msgNoSend, nil), refused},
		{"error exit of 2 bytes", frame(msgErrorExit, []byte{1, 0}), refused},
		{"overlong info", frame(msgInfo, bytes.Repeat([]byte("x"), maxClientMessage)), refused},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient32()
			c.entry(".", sIFDIR|0o755, 0)
			c.entry("f.txt", sIFREG|0o644, 5)
			c.data = c.enc.appendEndOfList(c.data, 0)
			list := c.bytes()
			c.data = c.data[:0]
			c.file(1, []byte("hello"))
			c.data = append(c.data, 0, 0, 0, 0) // three phases and the goodbye
			rest := frame(msgData, c.data)
			in := append(append(list, tc.msg...), rest...)
			root := t.TempDir()
			code, out, stderr := serveBytes(t, root, "rsync --server -re.iLsfxCIvu --checksum-seed=4242 . dest/", in)
			_, err := os.Stat(filepath.Join(root, "dest/f.txt"))
			switch tc.want {
			case ok:
				if code != 0 || err != nil {
					t.Fatalf("exit %d, f.txt: %v; stderr %s; out %q", code, err, stderr, out)
				}
			case refused:
				if code != exitStream {
					t.Errorf("exit %d, want %d", code, exitStream)
				}
				if !strings.Contains(out, "message") || !strings.Contains(out, "from the client") {
					t.Errorf("no error naming the message in %q", out)
				}
				if err == nil {
					t.Error("f.txt was written after the refused message")
				}
			case clientExit:
				if code == 0 {
					t.Errorf("exit %d after the client's error exit", code)
				}
				if err == nil {
					t.Error("f.txt was written after the client's error exit")
				}
			}
		})
	}
}

// download32 is what a protocol-32 client sends to a sending server up to its requests: version,
// checksum list, and the (empty) filter list multiplexed.
func download32() []byte {
	b := appendInt32(nil, 32)
	b = appendVstring(b, "xxh128 xxh3 md5 md4")
	return append(b, frame(msgData, appendInt32(nil, 0))...)
}

// TestServeSenderRefusesUnexpectedMessages: the same check on a download.
func TestServeSenderRefusesUnexpectedMessages(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"src/f.txt": "hello"})
	for _, tc := range []struct {
		msg    []byte
		wantOK bool
	}{
		{frame(msgNoop, nil), true},
		{frame(msgIOError, []byte{1, 0, 0, 0}), true},
		{frame(msgStats, make([]byte, 8)), false},
		{frame(77, nil), false},
	} {
		in := download32()
		in = append(in, tc.msg...)
		in = append(in, frame(msgData, []byte{0, 0, 0, 0, 0})...) // three phases, the goodbye and its last word
		var o, e bytes.Buffer
		code := Serve(context.Background(), "rsync --server --sender -re.iLsfxCIvu . src/", bytes.NewReader(in), &o, &e, DirFS(root))
		if tc.wantOK && code != 0 {
			t.Errorf("message % x: exit %d, %s %q", tc.msg[:4], code, e.String(), o.String())
		}
		if !tc.wantOK && (code != exitStream || !strings.Contains(o.String(), "from the client")) {
			t.Errorf("message % x: exit %d (want %d), output %q", tc.msg[:4], code, exitStream, o.String())
		}
	}
}
