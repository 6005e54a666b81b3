package rsync

import (
	"context"
	"os"
	"strings"
	"testing"
)

// uploadServeEnv, when set to a directory, makes the test binary run Serve over DirFS of that
// directory instead of running tests (see uploadWrapper; downloads use it too).
const uploadServeEnv = "PORTICO_RSYNC_TEST_SERVE_DIRFS"

func TestMain(m *testing.M) {
	if root := os.Getenv(uploadServeEnv); root != "" {
		// argv: rsync --server ... as the client passed it to the wrapper.
		cmd := strings.Join(os.Args[1:], " ")
		os.Exit(Serve(context.Background(), cmd, os.Stdin, os.Stdout, os.Stderr, testFS(DirFS(root))))
	}
	os.Exit(m.Run())
}
