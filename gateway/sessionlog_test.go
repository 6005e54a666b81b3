package gateway_test

import (
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// TestSessionLogsOneLineAtItsEnd: a session leaves one info line in the gateway's log, written
// when it ends, that says who (account, method, key), what (service, command) and how it ended
// (status); its start is a debug line only.
func TestSessionLogsOneLineAtItsEnd(t *testing.T) {
	f := start(t)
	c := f.connect(f.ssh, "pgs", f.alice.login)
	defer c.Close()
	exec(t, c, "ls marker-command")

	key := gossh.FingerprintSHA256(f.alice.login.PublicKey())
	var end string
	for deadline := time.Now().Add(5 * time.Second); end == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for line := range strings.Lines(f.logs.String()) {
			if strings.Contains(line, `msg="session end"`) && strings.Contains(line, "marker-command") {
				end = line
			}
		}
	}
	if end == "" {
		t.Fatalf("no session end line in the log:\n%s", f.logs.String())
	}
	for _, want := range []string{"level=INFO", "account=alice", "service=pgs", "method=key", "key=" + key, `command="ls marker-command"`, "status=0", "duration="} {
		if !strings.Contains(end, want) {
			t.Errorf("session end line lacks %s: %s", want, end)
		}
	}
	for line := range strings.Lines(f.logs.String()) {
		if strings.Contains(line, "marker-command") && !strings.Contains(line, `msg="session end"`) && !strings.Contains(line, "level=DEBUG") {
			t.Errorf("another line above debug for the session: %s", line)
		}
	}
}
