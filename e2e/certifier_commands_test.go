package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/internal/oidctest"
)

// The commands for the certifier's scripts (single sign-on):
//
//	oidc-up              start a real OpenID Connect provider on loopback (zitadel/oidc's op) with
//	                     the public client "portico" and the users of oidcUsers; set $ISSUER
//	oidc-approve NAME USER
//	                     wait until the background portico login NAME prints the device flow's
//	                     URL and code, then approve it at the provider as USER would in a browser
//	                     (open the URL, type the code, log in, allow)
//	oidc-browse NAME USER
//	                     wait until the background portico login --browser NAME prints the
//	                     authorization URL, then open it as USER's browser would: log in at the
//	                     provider's page and follow the redirects to login's loopback port
//	certifier-up ARGS... start `portico certifier ARGS` in the background on a free loopback port
//	                     with its state in $WORK/certifier (log in $WORK/certifier.log); wait
//	                     until it listens; set $CERTIFIER (https:// with --tls-cert) and
//	                     $CERTIFIER_PORT; at the end of the script SIGTERM it, expecting exit 0
//	certifier-stop       SIGTERM the certifier and expect it to exit 0
//	bg-portico NAME ARGS...
//	                     run `portico ARGS` in the background as NAME (then bg-wait, bg-expect,
//	                     bg-kill as for bg-ssh), with the script's environment
//	agent-up             start a real ssh-agent on $WORK/agent.sock and set $SSH_AUTH_SOCK; it is
//	                     ended at the end of the script
//	tls-cert CERT KEY    write a self-signed TLS certificate for 127.0.0.1 and its key (PEM)
//	wait-expiry CERT     sleep until the OpenSSH certificate in CERT has expired (at most a minute)
//	cat-files OUT FILE...
//	                     write the concatenation of the FILEs to OUT

// oidcUsers are the provider's users: username → user.
var oidcUsers = map[string]oidctest.User{
	"alice": {Subject: "u-alice", Username: "alice", Password: "pw-alice", Email: "alice@example.com", Groups: []string{"web-team", "ops"}},
	"carol": {Subject: "u-carol", Username: "carol", Password: "pw-carol", Email: "carol@example.com", Groups: []string{"web-team"}},
	"bob":   {Subject: "u-bob", Username: "bob", Password: "pw-bob", Email: "bob@example.com", Groups: []string{"sales"}},
}

const certifierStartTimeout = 60 * time.Second

// certifierState is what the certifier commands of one script share.
type certifierState struct {
	provider  *oidctest.Provider
	certifier *exec.Cmd
	exited    chan struct{}
	waitErr   error
	logPath   string
}

func certState(ts *testscript.TestScript) *certifierState {
	st := state(ts)
	if st.certifier == nil {
		st.certifier = &certifierState{}
	}
	return st.certifier
}

func cmdOIDCUp(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "oidc-up")
	cs := certState(ts)
	if cs.provider != nil {
		ts.Fatalf("oidc-up: the provider is already running")
	}
	users := make([]oidctest.User, 0, len(oidcUsers))
	for _, u := range oidcUsers {
		users = append(users, u)
	}
	p, err := oidctest.New(oidctest.Options{Users: users, Clients: []string{"portico"}})
	ts.Check(err)
	cs.provider = p
	ts.Defer(p.Close)
	ts.Setenv("ISSUER", p.Issuer)
}

var (
	deviceCodeRe = regexp.MustCompile(`open (http\S+)\nand enter the code (\S+)\n`)
	authURLRe    = regexp.MustCompile(`\n(http\S+/authorize\?\S+)\n`)
)

// awaitLogin waits until the background login NAME's stderr matches re and returns the match
// and the user to log in as.
func awaitLogin(ts *testscript.TestScript, args []string, re *regexp.Regexp) ([]string, oidctest.User) {
	if len(args) != 2 {
		ts.Fatalf("usage: NAME USER")
	}
	c := bgClientNamed(ts, args[0])
	user, ok := oidcUsers[args[1]]
	if !ok {
		ts.Fatalf("no user %q at the provider", args[1])
	}
	deadline := time.NewTimer(bgExpectTimeout)
	defer deadline.Stop()
	for {
		finished := c.errOut.finished()
		text, changed := c.errOut.text()
		if m := re.FindStringSubmatch(text); m != nil {
			return m, user
		}
		if finished {
			ts.Fatalf("%s ended without printing where to log in:\n%s", c.name, text)
		}
		select {
		case <-changed:
		case <-c.errOut.done:
		case <-deadline.C:
			ts.Fatalf("%s printed nowhere to log in within %v:\n%s", c.name, bgExpectTimeout, text)
		}
	}
}

func cmdOIDCApprove(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "oidc-approve")
	m, user := awaitLogin(ts, args, deviceCodeRe)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ts.Check(oidctest.NewBrowser().ApproveDevice(ctx, m[1], m[2], user.Username, user.Password, true))
}

func cmdOIDCBrowse(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "oidc-browse")
	m, user := awaitLogin(ts, args, authURLRe)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	page, err := oidctest.NewBrowser().LogIn(ctx, m[1], user.Username, user.Password)
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "HTTP %d\n%s", page.Status, page.Body)
}

// certifierEnv is the environment portico certifier and bg-portico get from a script.
func certifierEnv(ts *testscript.TestScript) []string {
	var env []string
	for _, name := range []string{
		"PATH", "HOME", "TMPDIR", "GORACE", "GOCOVERDIR", "SSH_AUTH_SOCK", "SSL_CERT_FILE",
		"PORTICO_CONFIG_DIR", "PORTICO_CERTIFIER_STATE_DIR", "BROWSER",
	} {
		if v := ts.Getenv(name); v != "" {
			env = append(env, name+"="+v)
		}
	}
	return env
}

func cmdCertifierUp(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "certifier-up")
	cs := certState(ts)
	if cs.certifier != nil && cs.running() {
		ts.Fatalf("certifier-up: the certifier is already running")
	}
	port, err := freePort()
	ts.Check(err)
	addr := net.JoinHostPort(loopback, strconv.Itoa(port))
	flags := append([]string{"certifier"}, args...)
	flags = append(flags, "--listen", addr)
	if !hasFlag(args, "state-dir") {
		flags = append(flags, "--state-dir", ts.MkAbs("certifier"))
	}
	cs.logPath = ts.MkAbs("certifier.log")
	logFile, err := os.OpenFile(cs.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	ts.Check(err)
	defer logFile.Close()
	fmt.Fprintf(logFile, "### portico %s\n", strings.Join(flags, " "))
	cmd := exec.Command(porticoBin, flags...)
	cmd.Dir = ts.MkAbs(".")
	cmd.Env = certifierEnv(ts)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	ts.Check(cmd.Start())
	cs.certifier, cs.exited = cmd, make(chan struct{})
	go func() {
		cs.waitErr = cmd.Wait()
		close(cs.exited)
	}()
	st := state(ts)
	ts.Defer(func() {
		if cs.running() {
			if err := cs.stop(); err != nil {
				st.reportError(err)
			}
		}
	})
	deadline := time.Now().Add(certifierStartTimeout)
	for {
		if !cs.running() {
			ts.Fatalf("portico certifier exited: %v\n%s", cs.waitErr, readTail(cs.logPath))
		}
		if strings.Contains(readTail(cs.logPath), `msg="certifier listening" addr=`+addr) {
			break
		}
		if time.Now().After(deadline) {
			ts.Fatalf("portico certifier did not listen within %v\n%s", certifierStartTimeout, readTail(cs.logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
	scheme := "http"
	if hasFlag(args, "tls-cert") {
		scheme = "https"
	}
	ts.Setenv("CERTIFIER", scheme+"://"+addr)
	ts.Setenv("CERTIFIER_PORT", strconv.Itoa(port))
}

func (cs *certifierState) running() bool { return !closed(cs.exited) }

func (cs *certifierState) stop() error {
	if err := cs.certifier.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-cs.exited:
	case <-time.After(stopTimeout):
		cs.certifier.Process.Kill()
		<-cs.exited
		return fmt.Errorf("portico certifier did not exit within %v of SIGTERM\n%s", stopTimeout, readTail(cs.logPath))
	}
	if cs.waitErr != nil {
		return fmt.Errorf("portico certifier after SIGTERM: %v (want exit status 0)\n%s", cs.waitErr, readTail(cs.logPath))
	}
	return nil
}

func cmdCertifierStop(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "certifier-stop")
	cs := certState(ts)
	if cs.certifier == nil || !cs.running() {
		ts.Fatalf("certifier-stop: no certifier running")
	}
	ts.Check(cs.stop())
}

// readTail is the end of a log file, for failure messages.
func readTail(path string) string {
	b, _ := os.ReadFile(path)
	s := string(b)
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return s
}

func cmdBgPortico(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "bg-portico")
	if len(args) < 2 {
		ts.Fatalf("usage: bg-portico NAME ARGS...")
	}
	name := args[0]
	clients := bg(ts)
	if old := clients[name]; old != nil {
		if old.running() {
			ts.Fatalf("bg-portico: %q is still running", name)
		}
		old.release()
	}
	cmd := exec.Command(porticoBin, args[1:]...)
	cmd.Dir = ts.MkAbs(".")
	cmd.Env = certifierEnv(ts)
	clients[name] = startBgClient(ts, name, bgOptions{genSize: -1, lines: -1, noStdin: true}, cmd)
}

func cmdAgentUp(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "agent-up")
	sock := ts.MkAbs("agent.sock")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	ts.Check(cmd.Start())
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	ts.Defer(func() {
		cmd.Process.Kill()
		<-exited
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			ts.Fatalf("ssh-agent did not listen on %s", sock)
		}
	}
	ts.Setenv("SSH_AUTH_SOCK", sock)
}

func cmdTLSCert(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "tls-cert CERT KEY")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ts.Check(err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "portico e2e certifier"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP(loopback)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	ts.Check(err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	if _, err := tls.LoadX509KeyPair(ts.MkAbs(args[0]), ts.MkAbs(args[1])); err != nil {
		ts.Fatalf("tls-cert: %v", err)
	}
}

func cmdCatFiles(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "cat-files")
	if len(args) < 2 {
		ts.Fatalf("usage: cat-files OUT FILE...")
	}
	var b strings.Builder
	for _, f := range args[1:] {
		b.WriteString(ts.ReadFile(f))
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(b.String()), 0o644))
}

func cmdWaitExpiry(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "wait-expiry CERT")
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(ts.ReadFile(args[0])))
	ts.Check(err)
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		ts.Fatalf("%s is not a certificate", args[0])
	}
	// Certificate times are whole seconds: valid_before has passed once its second has.
	wait := time.Until(time.Unix(int64(cert.ValidBefore), 0)) + time.Second
	if wait > time.Minute {
		ts.Fatalf("%s expires in %v: too long to wait for", args[0], wait)
	}
	time.Sleep(wait)
}
