package e2e

import (
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// The command of the KRL scripts:
//
//	http-files DIR   serve the files of DIR (in $WORK) over plain HTTP on a free loopback port
//	                 until the script ends, and set $FILES_URL to its URL (http://127.0.0.1:PORT);
//	                 the files may change while it serves them (a KRL a certifier publishes)
//	file-var VAR FILE  set VAR to the content of FILE less its trailing newline (a public key
//	                 line, for the key: lines of an ssh-keygen -k specification)

func cmdFileVar(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "file-var VAR FILE")
	ts.Setenv(args[0], strings.TrimRight(ts.ReadFile(args[1]), "\n"))
}

func cmdHTTPFiles(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "http-files DIR")
	ln, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
	ts.Check(err)
	srv := &http.Server{Handler: http.FileServer(http.Dir(ts.MkAbs(args[0])))}
	st := state(ts)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			st.reportError(err)
		}
	}()
	ts.Defer(func() { srv.Close() })
	ts.Setenv("FILES_URL", "http://"+ln.Addr().String())
}
