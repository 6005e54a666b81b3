package tuns

import (
	gossh "golang.org/x/crypto/ssh"

	"bufio"
	"strings"
	"testing"
	"time"
)

// TestRefusalWaitOutlastsTheIdleClose: a refused forward waits up to refusalWait for the
// connection's session to show the reason before the refusal is sent. Meanwhile the connection,
// which has no session yet, must not be closed as idle after Grace: a session that OpenSSH opens
// late (on a busy server) would find it gone, and ssh would end without the reason, the very
// case the wait is for.
func TestRefusalWaitOutlastsTheIdleClose(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.svc.refusalWait = 10 * time.Second // far past Grace (500 ms)
	c := h.dial(h.alice)
	replied := make(chan bool, 1)
	go func() {
		ok, _ := c.bind("Not_A_Name", 80)
		replied <- ok
	}()
	time.Sleep(3 * h.svc.o.Grace) // the session comes late, but well within refusalWait
	sess := awaitReason(t, c, "the connection was closed while its refused forward waited for a session")
	defer sess.Close()
	awaitRefusal(t, replied, 10*time.Second, "no reply to the forward request")
}

// TestRefusalWaitsForItsReasonsWrite: a refusal is replied to only once its reason is written
// to the session, however long the write takes (it once stopped waiting 50 ms after the session
// had taken the reason, and under load ssh -o ExitOnForwardFailure=yes exited without it), and
// at once when the reason is written already.
func TestRefusalWaitsForItsReasonsWrite(t *testing.T) {
	newConn := func() (*conn, *sink) {
		c := &conn{attached: make(chan struct{}), done: make(chan struct{})}
		close(c.attached)
		c.sink = newSink()
		c.sink.note("portico: -R Bad:80 refused", true)
		return c, c.sink
	}
	tell := func(c *conn) <-chan struct{} {
		replied := make(chan struct{})
		go func() {
			c.tellBeforeReply(10 * time.Second)
			close(replied)
		}()
		return replied
	}

	c, sk := newConn()
	sk.take() // the session took the reason and is writing it, slowly
	replied := tell(c)
	select {
	case <-replied:
		t.Fatal("the refusal was replied to before its reason was written")
	case <-time.After(300 * time.Millisecond):
	}
	sk.written(1)
	select {
	case <-replied:
	case <-time.After(5 * time.Second):
		t.Fatal("the refusal still waited after its reason was written")
	}

	c, sk = newConn()
	sk.take()
	sk.written(1)
	select {
	case <-tell(c):
	case <-time.After(time.Second):
		t.Fatal("the refusal waited although its reason was written")
	}
}

// TestRefusalWaitsForTheClientToReadItsReason: written is not yet shown. OpenSSH reads the
// reason and the refusal together when they arrive together, and with ExitOnForwardFailure=yes
// exits on the refusal without writing out the reason (e2e tuns_http failed so, under load). So
// the refusal waits until the client answers a request sent after the reason, and, for a client
// that never answers, no longer than refusalWait.
func TestRefusalWaitsForTheClientToReadItsReason(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.svc.refusalWait = 10 * time.Second
	held := make(chan *gossh.Request, 8)
	c := h.dialHolding(h.alice, held)
	replied := make(chan bool, 1)
	go func() {
		ok, _ := c.bind("Not_A_Name", 80)
		replied <- ok
	}()
	sess := awaitReason(t, c, "")
	defer sess.Close()
	var probe *gossh.Request
	select {
	case probe = <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the server sent no request after the reason to learn that the client has read it")
	}
	select {
	case <-replied:
		t.Fatal("the refusal was replied to before the client answered the request sent after the reason")
	case <-time.After(300 * time.Millisecond):
	}
	probe.Reply(false, nil) // as OpenSSH answers keepalive@openssh.com
	awaitRefusal(t, replied, 5*time.Second, "the refusal still waited after the client answered")

	// A client that answers nothing gets its refusals after refusalWait, and however many
	// refusals it collects, the server has one request in flight to it.
	h.svc.refusalWait = time.Second
	held = make(chan *gossh.Request, 8)
	c = h.dialHolding(h.alice, held)
	const n = 5
	replies := make(chan bool, n)
	for i := range n {
		go func() {
			ok, _ := c.bind("Not_A_Name", uint32(81+i))
			replies <- ok
		}()
	}
	sess2, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess2.Close()
	if err := sess2.Start(""); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range n {
		awaitRefusal(t, replies, 10*time.Second, "a refusal never came to a client that answers nothing")
	}
	t.Logf("%d refusals to a client that answers nothing took %v", n, time.Since(start))
	if got := len(held); got != 1 {
		t.Fatalf("the server sent %d requests to a client that answered none; want 1 in flight", got)
	}
}

// awaitReason opens a session on c and waits until its stderr shows a refusal's reason. A
// failure to open the session is reported with failOpen when set.
func awaitReason(t *testing.T, c *client, failOpen string) *gossh.Session {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		if failOpen != "" {
			t.Fatalf("%s: %v", failOpen, err)
		}
		t.Fatal(err)
	}
	stderr, err := sess.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Start(""); err != nil {
		t.Fatal(err)
	}
	told := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "refused") {
				told <- true
				return
			}
		}
		told <- false
	}()
	select {
	case ok := <-told:
		if !ok {
			t.Fatal("the session ended without the reason of the refusal")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the session never showed the reason of the refusal")
	}
	return sess
}

// awaitRefusal waits, at most within, for a forward's reply, and fails unless it is a refusal;
// late says what no reply means.
func awaitRefusal(t *testing.T, replied <-chan bool, within time.Duration, late string) {
	t.Helper()
	select {
	case ok := <-replied:
		if ok {
			t.Fatal("a forward with a bad name was accepted")
		}
	case <-time.After(within):
		t.Fatal(late)
	}
}
