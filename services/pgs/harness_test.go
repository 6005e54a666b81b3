package pgs

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/db/dbtest"
	"github.com/portico-sh/portico/gateway"
	"github.com/portico-sh/portico/internal/gatewaytest"
	"github.com/portico-sh/portico/internal/sshtest"
	"github.com/portico-sh/portico/services"
	"github.com/portico-sh/portico/services/pgs/blob"
)

// harness is a gateway on loopback with the pgs service, an account alice with a login key,
// and the real OpenSSH and rsync clients pointed at it.
type harness struct {
	t       *testing.T
	dir     string
	store   db.Store
	blobs   blob.Store
	encoded blob.Encoded
	svc     *Service
	gw      *gateway.Gateway
	sshPort string
	http    string // base URL of the HTTP listener
	key     string // alice's private key file
	account db.Account
	log     *sshtest.SyncBuffer
}

// harnessOptions change the harness's service.
type harnessOptions struct {
	limits  Limits
	blobs   func(blob.Store) blob.Store // wraps the blob store (fault injection)
	tunnels Tunnels
	lockTTL time.Duration
	// share makes a second gateway on the first one's database, blob store and account.
	share *harness
}

func requireTool(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := osexec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required (CI=true)", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	requireTool(t, "ssh", "rsync")
	h := &harness{t: t, dir: t.TempDir(), log: &sshtest.SyncBuffer{}}
	if o.share != nil {
		h.store, h.blobs, h.key, h.account = o.share.store, o.share.blobs, o.share.key, o.share.account
		h.encoded = o.share.encoded
	} else {
		h.store = dbtest.Open(t)
		fsb, err := blob.NewFS(filepath.Join(h.dir, "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		h.blobs = fsb
		if h.encoded, err = blob.NewEncodedFS(filepath.Join(h.dir, "blobs-encoded")); err != nil {
			t.Fatal(err)
		}
		if o.blobs != nil {
			h.blobs = o.blobs(fsb)
		}
	}
	if o.limits == (Limits{}) {
		o.limits = DefaultLimits()
	}
	logger := slog.New(slog.NewTextHandler(h.log, nil))
	if o.share == nil {
		h.createAlice()
	}
	h.start(o, logger)
	return h
}

// createAlice makes alice's key, in OpenSSH's private key format for ssh -i, and her account.
func (h *harness) createAlice() {
	t := h.t
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := gossh.MarshalPrivateKey(priv, "alice")
	if err != nil {
		t.Fatal(err)
	}
	h.key = filepath.Join(h.dir, "alice")
	if err := os.WriteFile(h.key, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, _ := gossh.NewSignerFromKey(priv)
	kl, err := auth.ParseKeyLine(sshtest.AuthorizedKey(signer.PublicKey()) + " alice")
	if err != nil {
		t.Fatal(err)
	}
	if h.account, _, err = h.store.CreateAccount(context.Background(), "alice", kl.NewKey("alice")); err != nil {
		t.Fatal(err)
	}
}

// start runs a gateway with the pgs service.
func (h *harness) start(o harnessOptions, logger *slog.Logger) {
	t := h.t
	hostKey := sshtest.NewSigner(t)
	pub, _ := services.ParsePublic("http://localhost:8080", "localhost:2222")
	h.svc = New(Options{Store: h.store, Blobs: h.blobs, Encoded: h.encoded, Public: pub, Limits: o.limits, Tunnels: o.tunnels,
		// A deploy waits long for another: on a loaded CI machine a throttled upload can take
		// several times its nominal length (TestTwoGateways).
		Logger: logger, LockWait: 30 * time.Second, LockTTL: o.lockTTL})
	router, err := services.NewRouter(h.svc)
	if err != nil {
		t.Fatal(err)
	}
	h.gw = gatewaytest.Start(t, gateway.Options{
		Store: h.store, Auth: auth.New(h.store, auth.Options{}), Router: router, HostKey: hostKey,
		SSH: []gateway.Listener{{Addr: "127.0.0.1:0"}}, HTTPAddr: "127.0.0.1:0", Logger: logger,
		DrainTimeout: time.Second,
	}, h.log)
	_, h.sshPort, _ = strings.Cut(h.gw.SSHAddrs()[0].String(), "127.0.0.1:")
	h.http = "http://" + h.gw.HTTPAddr().String()
}

// sshArgs are the options every client gets: this server, alice's key, nothing else.
func (h *harness) sshArgs() []string {
	return []string{"-F", "/dev/null", "-p", h.sshPort, "-i", h.key, "-o", "IdentitiesOnly=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
		"-o", "BatchMode=yes"}
}

// run runs a client program and returns its stdout, stderr and exit status.
func (h *harness) run(stdin io.Reader, name string, args ...string) (string, string, int) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := osexec.CommandContext(ctx, name, args...)
	cmd.Stdin = stdin
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *osexec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &exit):
		return stdout.String(), stderr.String(), exit.ExitCode()
	}
	h.t.Fatalf("%s: %v", name, err)
	return "", "", 0
}

// rsync runs the real rsync client with ssh to the harness ("pgs@HOST:" is the remote).
func (h *harness) rsync(args ...string) (string, string, int) {
	h.t.Helper()
	e := "ssh " + strings.Join(h.sshArgs(), " ")
	return h.run(nil, "rsync", append([]string{"-e", e}, args...)...)
}

// mustRsync is rsync for runs that must succeed.
func (h *harness) mustRsync(args ...string) string {
	h.t.Helper()
	out, errOut, code := h.rsync(args...)
	if code != 0 {
		h.t.Fatalf("rsync %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out + errOut
}

// ssh runs a pgs command.
func (h *harness) ssh(args ...string) (string, string, int) {
	h.t.Helper()
	return h.run(nil, "ssh", append(append(h.sshArgs(), "pgs@127.0.0.1"), args...)...)
}

const remote = "pgs@127.0.0.1:"

// get fetches a path of a site over HTTP and returns the status and body.
func (h *harness) get(project, path string, header ...string) (int, string, http.Header) {
	h.t.Helper()
	req, err := http.NewRequest("GET", h.http+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Host = siteHost(h.account.Name, project)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func siteHost(account, project string) string {
	if account == project {
		return account + ".localhost"
	}
	return account + "-" + project + ".localhost"
}

// writeTree writes files (path → content) under dir.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readTree reads every regular file under dir (path → content).
func readTree(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// liveFiles is the live deploy of a project, read from the store (path → content).
func (h *harness) liveFiles(project string) map[string]string {
	h.t.Helper()
	ctx := context.Background()
	live, err := h.store.PGSLive(ctx, h.account.Name, project)
	if errors.Is(err, db.ErrNotFound) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	files, err := h.store.PGSFiles(ctx, live.DeployID)
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range files {
		hash, _ := blob.ParseHash(f.Hash)
		r, err := h.blobs.Open(ctx, blob.Ref{Account: h.account.ID, Hash: hash})
		if err != nil {
			h.t.Fatalf("blob of %s: %v", f.Path, err)
		}
		b, _ := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
		r.Close()
		out[f.Path] = string(b)
	}
	return out
}

func (h *harness) urlOf(project string) string {
	u := url.URL{Scheme: "http", Host: siteHost(h.account.Name, project) + ":8080", Path: "/"}
	return u.String()
}

func mustEqualTree(t testing.TB, what string, got, want map[string]string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s:\n got %v\nwant %v", what, got, want)
	}
}

// sftp runs the real sftp client in batch mode with the given commands.
func (h *harness) sftp(commands string) (string, string, int) {
	h.t.Helper()
	args := append(h.sshArgs()[2:], "-P", h.sshPort, "-b", "-", "pgs@127.0.0.1")
	// sftp takes -P for the port; drop ssh's -p.
	clean := []string{"-F", "/dev/null"}
	for i := 0; i < len(args); i++ {
		if args[i] == "-p" {
			i++
			continue
		}
		clean = append(clean, args[i])
	}
	return h.run(strings.NewReader(commands), "sftp", clean...)
}

// scp runs the real scp client (SFTP mode unless -O is among args).
func (h *harness) scp(args ...string) (string, string, int) {
	h.t.Helper()
	base := []string{"-F", "/dev/null", "-P", h.sshPort, "-i", h.key, "-o", "IdentitiesOnly=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
		"-o", "BatchMode=yes"}
	return h.run(nil, "scp", append(base, args...)...)
}

// goSSH opens a session with golang.org/x/crypto/ssh as alice (it sends what OpenSSH will
// not) and returns the client and a session.
func (h *harness) goSSH(user string) (*gossh.Client, *gossh.Session) {
	h.t.Helper()
	pemBytes, err := os.ReadFile(h.key)
	if err != nil {
		h.t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(pemBytes)
	if err != nil {
		h.t.Fatal(err)
	}
	client, err := gossh.Dial("tcp", "127.0.0.1:"+h.sshPort, &gossh.ClientConfig{
		User: user, Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { client.Close() })
	sess, err := client.NewSession()
	if err != nil {
		h.t.Fatal(err)
	}
	return client, sess
}

// exec is exec.LookPath.
func exec(tool string) (string, error) { return osexec.LookPath(tool) }

// newFuzzKey is a login key for an account made without SSH.
func newFuzzKey() db.NewKey {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := gossh.NewSignerFromKey(priv)
	kl, _ := auth.ParseKeyLine(sshtest.AuthorizedKey(signer.PublicKey()) + " fuzz")
	return kl.NewKey("fuzz")
}
