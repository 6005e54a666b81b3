package admin

import (
	"bytes"
	"context"
	"io"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/charmbracelet/ssh"

	"github.com/portico-sh/portico/services"
	"github.com/portico-sh/portico/services/admin/ops/opstest"
)

func TestTUIInputBounds(t *testing.T) {
	run := func(c byte, n int) string { return strings.Repeat(string(c), n) }
	tests := []struct {
		name    string
		in, out string
	}{
		{"keys pass", "abc \x1b[A\r\x7fq", "abc \x1b[A\r\x7fq"},
		{"a run at the bound passes", run('a', maxKeyRun), run('a', maxKeyRun)},
		{"a longer run is cut", run('a', maxKeyRun+10) + " b", run('a', maxKeyRun) + " b"},
		{"spaces end runs", run('a', maxKeyRun) + " " + run('b', maxKeyRun), run('a', maxKeyRun) + " " + run('b', maxKeyRun)},
		{"control characters end runs", run('a', maxKeyRun) + "\r" + run('b', 5), run('a', maxKeyRun) + "\r" + run('b', 5)},
		{"a paste passes whole", pasteStart + "ssh-ed25519 AAAA key\n" + pasteEnd + "x", pasteStart + "ssh-ed25519 AAAA key\n" + pasteEnd + "x"},
		{"a paste is not a run", pasteStart + run('a', maxKeyRun*2) + pasteEnd, pasteStart + run('a', maxKeyRun*2) + pasteEnd},
		{"a long paste is cut, its end kept", pasteStart + run('a', maxPaste+100) + pasteEnd + "x", pasteStart + run('a', maxPaste) + pasteEnd + "x"},
		{"a paste that never ends is cut", pasteStart + run('a', maxPaste*3), pasteStart + run('a', maxPaste)},
		{"typing goes on after a paste", pasteStart + "p" + pasteEnd + run('a', maxKeyRun+1), pasteStart + "p" + pasteEnd + run('a', maxKeyRun)},
		{"an escape restarts a marker", "\x1b[2\x1b[200~p\x1b[201~", "\x1b[2\x1b[200~p\x1b[201~"},
	}
	for _, tt := range tests {
		for _, name := range []string{"whole", "byte by byte"} {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				var r io.Reader = strings.NewReader(tt.in)
				if name == "byte by byte" {
					r = iotest.OneByteReader(r)
				}
				got, err := io.ReadAll(newFakeClockInput(r))
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != tt.out {
					t.Errorf("got %d bytes %.40q..., want %d bytes %.40q...", len(got), got, len(tt.out), tt.out)
				}
			})
		}
	}
}

// newFakeClockInput is a tuiInput on a clock that its waits move on.
func newFakeClockInput(r io.Reader) *tuiInput {
	in := newTUIInput(r)
	now := time.Unix(1e9, 0)
	in.now = func() time.Time { return now }
	in.sleep = func(d time.Duration) { now = now.Add(d) }
	return in
}

// TestTUIInputKeyRate: keys pass at once up to the burst, then at the rate, however fast they
// come; printable runs and the bytes of a paste other than keys are not held back.
func TestTUIInputKeyRate(t *testing.T) {
	for _, tt := range []struct {
		name  string
		input string
		keys  int
	}{
		{"spaces", strings.Repeat(" ", 1000), 1000},
		{"control characters", strings.Repeat("\x01", 1000), 1000},
		{"arrows", strings.Repeat("\x1b[D", 1000), 1000},
		{"bytes outside ASCII", strings.Repeat("\x80", 1000), 1000},
		{"words", strings.Repeat(strings.Repeat("a", 500)+" ", 10), 10},
		{"a paste", pasteStart + strings.Repeat("a", 60<<10) + pasteEnd, 2},
		{"spaces in what bubbletea does not take for a paste", "\x1b" + pasteStart + strings.Repeat(" ", 1000) + pasteEnd, 1003},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := newFakeClockInput(strings.NewReader(tt.input))
			start := in.now()
			got, err := io.ReadAll(in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.input {
				t.Errorf("%d bytes passed of %d", len(got), len(tt.input))
			}
			want := time.Duration(max(0, tt.keys-keyBurst)) * time.Second / keyRate
			if took := in.now().Sub(start); took < want-time.Second/keyRate || took > want+time.Second/keyRate {
				t.Errorf("%d keys took %v, want %v (%d at once, then %d a second)", tt.keys, took, want, keyBurst, keyRate)
			}
		})
	}
}

// inputSession is a terminal session whose input is in, after which it says so on drained and
// waits for its context to end.
type inputSession struct {
	ttySession
	ctx     context.Context
	in      io.Reader
	drained chan struct{}
}

func (f *inputSession) Read(p []byte) (int, error) {
	n, err := f.in.Read(p)
	if err == io.EOF {
		close(f.drained)
		<-f.ctx.Done()
	}
	return n, err
}

func (f *inputSession) Context() ssh.Context { return fakeContext{ctx: f.ctx} }

// cpuTime is the CPU time the process has used.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestTUIInputCost: long input into the sign-up form, typed in one run or as a paste that
// never ends, costs the server little CPU. Before tuiInput, bubbletea's parser rescanned such
// input on every read: 500 KB in one run cost about 10 s of CPU.
func TestTUIInputCost(t *testing.T) {
	o, _ := opstest.New(t)
	key := opstest.Key(t, 1)
	for _, tt := range []struct{ name, input string }{
		{"one run of 500 KB", strings.Repeat("a", 500<<10)},
		{"a paste of 3 MB that never ends", pasteStart + strings.Repeat("a", 3<<20)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f := &inputSession{
				ttySession: ttySession{fakeSession: fakeSession{key: key}, winch: make(chan ssh.Window)},
				ctx:        ctx,
				in:         bytes.NewReader([]byte(tt.input)),
				drained:    make(chan struct{}),
			}
			done := make(chan int, 1)
			before := cpuTime(t)
			go func() { done <- New(o).Serve(&services.Session{Session: f, Grant: opstest.SignupGrant(key)}) }()
			select {
			case <-f.drained:
			case <-time.After(60 * time.Second):
				t.Fatalf("the TUI read its input for over 60 s (CPU %v)", cpuTime(t)-before)
			}
			used := cpuTime(t) - before
			cancel()
			<-done
			t.Logf("%s: %v of CPU", tt.name, used)
			if used > 2*time.Second {
				t.Errorf("reading the input cost %v of CPU, want well under a second", used)
			}
		})
	}
}

// TestTUIKeysCost: keys sent as fast as a client can into the sign-up form, each of which
// bubbletea makes a message of its own (an update and a render of the screen), cost the
// server little CPU: they pass at a person's pace. Before the key rate, 500 KB of spaces cost
// 22 s of CPU.
func TestTUIKeysCost(t *testing.T) {
	o, _ := opstest.New(t)
	key := opstest.Key(t, 1)
	for _, tt := range []struct{ name, input string }{
		{"spaces", strings.Repeat(" ", 500<<10)},
		{"bytes that are not UTF-8", strings.Repeat(strings.Repeat("\x80", 8<<10)+"\x01", 60)},
		{"spaces in what bubbletea does not take for a paste", strings.Repeat("\x1b"+pasteStart+strings.Repeat(" ", 60<<10)+pasteEnd, 8)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f := &inputSession{
				ttySession: ttySession{fakeSession: fakeSession{key: key}, winch: make(chan ssh.Window)},
				ctx:        ctx,
				in:         bytes.NewReader([]byte(tt.input)),
				drained:    make(chan struct{}),
			}
			done := make(chan int, 1)
			before := cpuTime(t)
			go func() { done <- New(o).Serve(&services.Session{Session: f, Grant: opstest.SignupGrant(key)}) }()
			const window = 2 * time.Second
			time.Sleep(window)
			used := cpuTime(t) - before
			cancel()
			<-done
			t.Logf("%s: %v of CPU in %v", tt.name, used, window)
			if used > window/4 {
				t.Errorf("%d KB of input cost %v of CPU in %v, want a fraction of that", len(tt.input)>>10, used, window)
			}
		})
	}
}

// FuzzTUIInput: the filter's output does not depend on how the input is split into reads,
// and is never longer than the input plus the paste end markers it may add.
func FuzzTUIInput(f *testing.F) {
	f.Add([]byte("abc \x1b[A\r"))
	f.Add([]byte(pasteStart + "key" + pasteEnd))
	f.Add([]byte("\x1b[2\x1b[200~p\x1b[201~"))
	f.Fuzz(func(t *testing.T, in []byte) {
		whole, err := io.ReadAll(newFakeClockInput(bytes.NewReader(in)))
		if err != nil {
			t.Fatal(err)
		}
		split, err := io.ReadAll(newFakeClockInput(iotest.HalfReader(bytes.NewReader(in))))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(whole, split) {
			t.Fatalf("whole %q, split %q", whole, split)
		}
		if max := len(in) + len(pasteEnd)*(bytes.Count(in, []byte(pasteEnd))); len(whole) > max {
			t.Fatalf("%d bytes out of %d in", len(whole), len(in))
		}
	})
}

// TestResizes: window changes reach the TUI at most one per interval, the latest of those that
// came meanwhile, and the last one always.
func TestResizes(t *testing.T) {
	changes := make(chan ssh.Window)
	var got []ssh.Window
	done := make(chan struct{})
	const every = 20 * time.Millisecond
	go func() {
		defer close(done)
		resizes(context.Background(), changes, every, func(w ssh.Window) { got = append(got, w) })
	}()
	begin := time.Now()
	for i := 1; i <= 2000; i++ {
		changes <- ssh.Window{Width: i, Height: 24}
	}
	time.Sleep(2 * every) // the last one goes out once the interval has passed
	took := time.Since(begin)
	close(changes)
	<-done
	if most := 2 + int(took/every); len(got) > most {
		t.Errorf("2000 window changes in %v: %d sizes given, want at most %d", took, len(got), most)
	}
	if len(got) == 0 || got[len(got)-1].Width != 2000 {
		t.Errorf("the last size given is %v, want the last window change (width 2000)", got[len(got)-1:])
	}
}

// TestWindowChangeFloodCostsLittle: a client that sends window changes as fast as it can
// costs the TUI a render per interval, not per change: 45,000 in 2 s once kept a core busy.
// (The sender here costs CPU too: it is paced.)
func TestWindowChangeFloodCostsLittle(t *testing.T) {
	o, _ := opstest.New(t)
	key := opstest.Key(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &inputSession{
		ttySession: ttySession{fakeSession: fakeSession{key: key}, winch: make(chan ssh.Window)},
		ctx:        ctx,
		in:         bytes.NewReader(nil),
		drained:    make(chan struct{}),
	}
	done := make(chan int, 1)
	go func() { done <- New(o).Serve(&services.Session{Session: f, Grant: opstest.SignupGrant(key)}) }()
	<-f.drained
	const window = 2 * time.Second
	before := cpuTime(t)
	n := 0
	for stop := time.Now().Add(window); time.Now().Before(stop); n++ {
		f.winch <- ssh.Window{Width: 80 + n%2, Height: 24}
		if n%100 == 99 {
			time.Sleep(5 * time.Millisecond) // up to 20,000 a second, about what SSH carries
		}
	}
	used := cpuTime(t) - before
	cancel()
	<-done
	t.Logf("%d window changes in %v: %v of CPU", n, window, used)
	if used > window/4 {
		t.Errorf("%d window changes cost %v of CPU in %v, want a fraction of that", n, used, window)
	}
}
