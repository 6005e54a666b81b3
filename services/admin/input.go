package admin

import (
	"io"
	"time"
)

// Bounds on TUI input, applied before bubbletea parses it. A sign-up form needs a few hundred
// bytes and a pasted key or certificate a few KiB; these leave room for both.
const (
	// maxKeyRun is the longest run of printable bytes (no space, no control character) passed
	// on; the rest of a longer run is dropped.
	maxKeyRun = 8 << 10
	// maxPaste is the most a bracketed paste may hold; the rest of a longer one is dropped,
	// though its end marker is still passed on.
	maxPaste = 64 << 10
	// keyRate and keyBurst bound the keys passed on: keyBurst at once, then keyRate a
	// second. A key here is a byte that bubbletea may turn into a message of its own: a
	// control character, a space, DEL or a byte outside ASCII. Each message costs an update
	// and a render of the whole screen (tens of microseconds, more on a long list), so
	// without a bound 500 KB of spaces cost 22 s of CPU. People type a dozen keys a second
	// and key repeat sends about 30; a paste is one message.
	keyRate  = 50
	keyBurst = 100
)

// The markers around a bracketed paste.
const (
	pasteStart = "\x1b[200~"
	pasteEnd   = "\x1b[201~"
)

// tuiInput bounds what a terminal session's input can cost bubbletea's parser and the TUI.
// That parser (v1) rescans its unparsed input from the start on every read while a run of
// printable bytes or a bracketed paste is unfinished, so n such bytes cost time in n², and a
// paste that never ends is kept whole: 500 KB typed in one run cost 10 s of CPU. tuiInput
// passes everything through except the part of a run beyond maxKeyRun and of a paste beyond
// maxPaste, which no form of the TUI could use. And it passes keys on at most at keyRate a
// second after a burst of keyBurst (see keyRate): past that, it waits, and so does the client,
// whose SSH window fills.
type tuiInput struct {
	r       io.Reader
	buf     [256]byte
	pending []byte // read from r, not yet filtered
	out     []byte // filtered bytes not yet read
	err     error  // the reader's error, returned once pending and out are drained

	run     int  // printable bytes in a row, outside a paste
	inPaste bool // between the paste markers
	paste   int  // bytes of the current paste so far
	marker  int  // bytes of the next paste marker matched so far

	tokens float64   // keys that may pass now
	filled time.Time // when tokens was last topped up
	now    func() time.Time
	sleep  func(time.Duration)
}

func newTUIInput(r io.Reader) *tuiInput {
	return &tuiInput{r: r, tokens: keyBurst, now: time.Now, sleep: time.Sleep}
}

// Read returns filtered input; it reads on until it has something to return or an error.
func (in *tuiInput) Read(p []byte) (int, error) {
	for len(in.out) == 0 {
		if len(in.pending) == 0 {
			if in.err != nil {
				return 0, in.err
			}
			n, err := in.r.Read(in.buf[:])
			in.pending, in.err = in.buf[:n], err
			continue
		}
		if in.refill() < 1 {
			// The next byte is a key and none may pass yet: wait for one. Nothing filtered
			// is held meanwhile.
			in.sleep(time.Duration((1 - in.tokens) / keyRate * float64(time.Second)))
			continue
		}
		in.out, in.pending = in.filter(in.out[:0], in.pending)
	}
	n := copy(p, in.out)
	in.out = in.out[n:]
	return n, nil
}

// refill tops the keys that may pass up for the time since it last did, and returns them.
func (in *tuiInput) refill() float64 {
	now := in.now()
	if !in.filled.IsZero() {
		in.tokens = min(keyBurst, in.tokens+now.Sub(in.filled).Seconds()*keyRate)
	}
	in.filled = now
	return in.tokens
}

// isKey reports whether bubbletea may make a message of c alone (see keyRate).
func isKey(c byte) bool { return c <= ' ' || c >= 0x7f }

// filter appends to out what of b passes the bounds, and returns the rest of b: what follows
// a key for which no token is left. Keys are counted inside pastes too: bubbletea may not
// see a paste where the filter does (an ESC just before the marker makes it a key of its own).
func (in *tuiInput) filter(out, b []byte) ([]byte, []byte) {
	for i, c := range b {
		if isKey(c) {
			if in.tokens < 1 {
				return out, b[i:]
			}
			in.tokens--
		}
		if !in.inPaste {
			if in.match(c, pasteStart) {
				in.inPaste, in.paste = true, 0
				out = append(out, c)
				continue
			}
			if c > ' ' && c != 0x7f {
				in.run++
			} else {
				in.run = 0
			}
			if in.run <= maxKeyRun {
				out = append(out, c)
			}
			continue
		}
		in.paste++
		if in.match(c, pasteEnd) {
			in.inPaste, in.run = false, 0
			if in.paste > maxPaste {
				// The marker's bytes fell past the bound and were dropped: pass it on whole,
				// so the parser sees the paste end.
				out = append(out, pasteEnd...)
				continue
			}
		}
		if in.paste <= maxPaste {
			out = append(out, c)
		}
	}
	return out, nil
}

// match advances the match of marker by c and reports whether it is complete. The markers
// start with ESC and hold no other, so a mismatch restarts at c.
func (in *tuiInput) match(c byte, marker string) bool {
	switch {
	case c == marker[in.marker]:
		in.marker++
	case c == marker[0]:
		in.marker = 1
	default:
		in.marker = 0
	}
	if in.marker == len(marker) {
		in.marker = 0
		return true
	}
	return false
}
