package admin

import "io"

// Bounds on TUI input, applied before bubbletea parses it. A sign-up form needs a few hundred
// bytes and a pasted key or certificate a few KiB; these leave room for both.
const (
	// maxKeyRun is the longest run of printable bytes (no space, no control character) passed
	// on; the rest of a longer run is dropped.
	maxKeyRun = 8 << 10
	// maxPaste is the most a bracketed paste may hold; the rest of a longer one is dropped,
	// though its end marker is still passed on.
	maxPaste = 64 << 10
)

// The markers around a bracketed paste.
const (
	pasteStart = "\x1b[200~"
	pasteEnd   = "\x1b[201~"
)

// tuiInput bounds what a terminal session's input can cost bubbletea's parser. That parser (v1)
// rescans its unparsed input from the start on every read while a run of printable bytes or a
// bracketed paste is unfinished, so n such bytes cost time in n², and a paste that never ends
// is kept whole: 500 KB typed in one run cost 10 s of CPU. tuiInput passes everything through
// except the part of a run beyond maxKeyRun and of a paste beyond maxPaste, which no form of
// the TUI could use.
type tuiInput struct {
	r   io.Reader
	buf [256]byte
	out []byte // filtered bytes not yet read
	err error  // the reader's error, returned once out is drained

	run     int  // printable bytes in a row, outside a paste
	inPaste bool // between the paste markers
	paste   int  // bytes of the current paste so far
	marker  int  // bytes of the next paste marker matched so far
}

func newTUIInput(r io.Reader) *tuiInput { return &tuiInput{r: r} }

// Read returns filtered input; it reads on until it has something to return or an error.
func (in *tuiInput) Read(p []byte) (int, error) {
	for len(in.out) == 0 && in.err == nil {
		n, err := in.r.Read(in.buf[:])
		in.out = in.filter(in.out[:0], in.buf[:n])
		in.err = err
	}
	if len(in.out) == 0 {
		return 0, in.err
	}
	n := copy(p, in.out)
	in.out = in.out[n:]
	return n, nil
}

// filter appends to out what of b passes the bounds.
func (in *tuiInput) filter(out, b []byte) []byte {
	for _, c := range b {
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
	return out
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
