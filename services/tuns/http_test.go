package tuns

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestStreamedResponsesFlushAtOnce: a chunked response and Server-Sent Events reach the visitor
// as the local server flushes them, not when it finishes.
func TestStreamedResponsesFlushAtOnce(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	c := h.dial(h.alice)
	release := make(chan struct{})
	defer close(release)
	c.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/events" {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Content-Length", "1000")
		}
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-release
	}))
	c.mustBind("stream", 80)
	for _, path := range []string{"/chunked", "/events"} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+h.httpAddr+path, nil)
		req.Host = "alice-stream.localhost"
		got := make(chan string, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				got <- err.Error()
				return
			}
			defer resp.Body.Close()
			line, _ := bufio.NewReader(resp.Body).ReadString('\n')
			got <- line
		}()
		select {
		case line := <-got:
			if strings.TrimSpace(line) != "first" {
				t.Fatalf("%s: got %q", path, line)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the first line did not arrive while the server was still writing", path)
		}
	}
}
