package admin

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/internal/cliargs"
	"github.com/portico-sh/portico/services/admin/ops"
)

// Exit statuses (SPEC §4).
const (
	exitOK     = 0
	exitFailed = 1 // refused or failed
	exitUsage  = 2
)

// maxKeyInput bounds what `keys add` reads from stdin.
const maxKeyInput = 64 << 10

// cli runs one admin command.
type cli struct {
	ctx    context.Context
	ops    *ops.Ops
	grant  auth.Grant
	key    gossh.PublicKey // the key this connection authenticated with
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// usageError is a command line that does not parse: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// helpRequest is -h or --help after a command: its usage goes to stdout, exit status 0.
type helpRequest struct{ usage string }

func (e *helpRequest) Error() string { return e.usage }

// command is one admin command.
type command struct {
	name   string   // "whoami", "keys ls"
	args   []string // what may follow the name: one usage line each
	does   string
	signup bool // a grant without an account (signup or claim) may run it
	run    func(c *cli, fs *flag.FlagSet, args []string) error
}

// commands lists the admin commands in the order help shows them. It is set in init because
// help reads it.
var commands []command

func init() {
	commands = []command{
		{"help", nil, "lists commands", true, (*cli).help},
		{"register", []string{"NAME"}, "unregistered key only: creates account NAME with this key as its first login key", true, (*cli).register},
		{"whoami", []string{"[--json]"}, "who this connection is and what it may do", false, (*cli).whoami},
		{"keys ls", []string{"[--json]"}, "login keys and certificate authorities (CAs)", false, (*cli).keysList},
		{"keys add", []string{"[--name NAME] [--ca] [--json]"}, "reads one authorized_keys line from stdin; --ca or a cert-authority option makes it a CA. The key is pending until its holder claims it: it prints how. A CA's claim certificate, fed the same way, activates the CA", false, (*cli).keysAdd},
		{"keys claim", []string{"CODE"}, "run with the pending login key itself: makes it a login key of the account that added it", true, (*cli).keysClaim},
		{"keys rm", []string{"NAME-OR-FINGERPRINT"}, "removes a key, active or pending; the last login key cannot be removed", false, (*cli).keysRemove},
		{"logs", []string{"[--json] [--service S] [--limit N]"}, "access log, newest first (default limit 100)", false, (*cli).logs},
		{"revoke", []string{"--serial N [--ca NAME]", "--key-id ID", "--key FINGERPRINT"}, "revokes certificates by serial (of one CA, or of all), key ID, or key fingerprint", false, (*cli).revoke},
		{"revocations ls", []string{"[--json]"}, "lists revocations", false, (*cli).revocationsList},
		{"revocations rm", []string{"ID"}, "lifts a revocation", false, (*cli).revocationsRemove},
		{"revocations import", []string{"[--ca NAME] [--json] < FILE.krl", "[--ca NAME] --url URL [--every DURATION] [--json]"}, "imports an OpenSSH KRL (ssh-keygen -k) from stdin, or fetches it from URL (again every DURATION); nothing changes unless all of it can be imported", false, (*cli).revocationsImport},
		{"revocations export", []string{"> FILE.krl"}, "writes the revocations as an OpenSSH KRL, for sshd's RevokedKeys (ssh-keygen -Q reads it)", false, (*cli).revocationsExport},
		{"revocations sources", []string{"[--json]"}, "lists the URLs KRLs are imported from", false, (*cli).revocationsSources},
		{"revocations sources rm", []string{"ID-OR-URL"}, "stops importing from a URL and lifts its revocations", false, (*cli).revocationsSourcesRemove},
		{"principals ls", []string{"[--json]"}, "the principal map: certificate principals that grant services", false, (*cli).principalsList},
		{"principals set", []string{"NAME SERVICES [--from CIDR,...] [--ca CA] [--json]"}, "certificates listing principal NAME (from one of the account's CAs, or from CA) get SERVICES, from client addresses matching --from", false, (*cli).principalsSet},
		{"principals rm", []string{"NAME"}, "unmaps a principal", false, (*cli).principalsRemove},
		{"account delete", []string{"--yes"}, "deletes this account: its keys, CAs, revocations and data; its name is held for 90 days", false, (*cli).accountDelete},
	}
}

// run runs the command args and returns its exit status.
func (c *cli) run(args []string) int {
	if len(args) == 0 {
		args = []string{"help"}
	}
	cmd, rest, err := lookup(args)
	if err == nil {
		err = c.runCommand(cmd, rest)
	}
	var (
		ue *usageError
		hr *helpRequest
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &hr):
		fmt.Fprintf(c.stdout, "usage: %s\n", hr.usage)
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "portico: %s\nrun: %s\n", ue.msg, c.ops.SSHCommand("", "help"))
		return exitUsage
	default:
		fmt.Fprintf(c.stderr, "portico: %s\n", err)
		return exitFailed
	}
}

// lookup finds the command that args name and returns it with its arguments.
func lookup(args []string) (command, []string, error) {
	name := args[0]
	switch name {
	case "-h", "--help", "-help":
		name = "help"
	case "keys", "revocations", "account", "principals":
		if len(args) < 2 {
			return command{}, nil, usagef("%s needs a subcommand: %s", name, subcommands(name))
		}
		name += " " + args[1]
		args = args[1:]
		// A third word, as in revocations sources rm.
		if len(args) > 1 && slices.ContainsFunc(commands, func(c command) bool { return c.name == name+" "+args[1] }) {
			name += " " + args[1]
			args = args[1:]
		}
	}
	for _, cmd := range commands {
		if cmd.name == name {
			return cmd, args[1:], nil
		}
	}
	if group, _, ok := strings.Cut(name, " "); ok {
		return command{}, nil, usagef("unknown command %q; %s has: %s", name, group, subcommands(group))
	}
	return command{}, nil, usagef("unknown command %q", name)
}

func subcommands(group string) string {
	var subs []string
	for _, cmd := range commands {
		if sub, ok := strings.CutPrefix(cmd.name, group+" "); ok && !strings.Contains(sub, " ") {
			subs = append(subs, sub)
		}
	}
	return strings.Join(subs, ", ")
}

func (c *cli) runCommand(cmd command, args []string) error {
	if !cmd.signup {
		if err := c.ops.RequireAccount(c.grant); err != nil {
			return err
		}
	}
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return cmd.run(c, fs, args)
}

// parse parses flags and returns exactly want positional arguments, named in the usage line.
func parse(fs *flag.FlagSet, args []string, want ...string) ([]string, error) {
	err := fs.Parse(args)
	return positional(fs, fs.Args(), err, want)
}

// parseAnywhere is parse for commands whose flags may also follow their arguments
// (principals set NAME SERVICES --from CIDR).
func parseAnywhere(fs *flag.FlagSet, args []string, want ...string) ([]string, error) {
	rest, err := cliargs.Parse(fs, args)
	return positional(fs, rest, err, want)
}

func positional(fs *flag.FlagSet, rest []string, err error, want []string) ([]string, error) {
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, &helpRequest{usageLine(fs.Name())}
		}
		return nil, usagef("%s: %v", fs.Name(), err)
	}
	switch {
	case len(rest) < len(want):
		return nil, usagef("%s needs %s (usage: %s)", fs.Name(), strings.Join(want[len(rest):], " "), usageLine(fs.Name()))
	case len(rest) > len(want):
		return nil, usagef("%s: unexpected argument %q (usage: %s)", fs.Name(), rest[len(want)], usageLine(fs.Name()))
	default:
		return rest, nil
	}
}

// usageLine is the usage of command name on one line.
func usageLine(name string) string {
	for _, cmd := range commands {
		if cmd.name == name {
			return strings.Join(cmd.usages(), " | ")
		}
	}
	return name
}

// usages are the command's usage lines.
func (cmd command) usages() []string {
	if len(cmd.args) == 0 {
		return []string{cmd.name}
	}
	lines := make([]string, len(cmd.args))
	for i, a := range cmd.args {
		lines[i] = cmd.name + " " + a
	}
	return lines
}

func (c *cli) help(fs *flag.FlagSet, args []string) error {
	w := newTable(c.stdout)
	fmt.Fprintf(c.stdout, "portico admin: manage your account over SSH.\n\nusage: %s COMMAND\n\ncommands:\n", c.ops.SSHCommand(string(auth.Admin)))
	for _, cmd := range commands {
		for i, u := range cmd.usages() {
			if i == 0 {
				w.row("  "+u, cmd.does)
			} else {
				w.row("  "+u, "")
			}
		}
	}
	if err := w.flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "\nWith a terminal (ssh -t %s) the same things are in a TUI.\nExit status: 0 done, 1 refused or failed, 2 usage error.\n",
		strings.TrimPrefix(c.ops.SSHCommand(""), "ssh "))
	if c.grant.MayClaim {
		fmt.Fprintf(c.stdout, "\nThis key waits to be claimed: run %s with the code you were given.\n", c.ops.SSHCommand("", "keys", "claim", "CODE"))
	}
	if c.grant.IsSignup() && c.grant.MayRegister {
		fmt.Fprintf(c.stdout, "\nThis key is not registered yet: run %s\n", c.ops.SSHCommand("", "register", "NAME"))
	}
	return nil
}

func (c *cli) register(fs *flag.FlagSet, args []string) error {
	rest, err := parse(fs, args, "NAME")
	if err != nil {
		return err
	}
	g, err := c.ops.Register(c.ctx, c.grant, c.key, rest[0])
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "account %s created; this key is its first login key, named %q\nnext: %s\n",
		g.Account, g.Identity, c.ops.SSHCommand("", "help"))
	return err
}

func (c *cli) whoami(fs *flag.FlagSet, args []string) error {
	asJSON := fs.Bool("json", false, "")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	w, err := c.ops.Whoami(c.grant)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, w)
	}
	t := newTable(c.stdout)
	t.row("account", w.Account)
	t.row("method", w.Method)
	t.row("identity", w.Identity)
	t.row("services", strings.Join(w.Services, ", "))
	t.row("key", w.KeyFingerprint)
	if cert := w.Cert; cert != nil {
		t.row("key id", cert.KeyID)
		t.row("serial", strconv.FormatUint(cert.Serial, 10))
		t.row("ca", strings.TrimSpace(cert.CAName+" "+cert.CAFingerprint))
		t.row("principals", strings.Join(cert.Principals, ", "))
		t.row("valid until", validUntil(cert.ValidBefore))
	}
	if w.ForceCommand != nil {
		t.row("force command", shown(*w.ForceCommand))
	}
	return t.flush()
}

func (c *cli) keysList(fs *flag.FlagSet, args []string) error {
	asJSON := fs.Bool("json", false, "")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	keys, err := c.ops.ListKeys(c.ctx, c.grant)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, keys)
	}
	if len(keys) == 0 {
		_, err := fmt.Fprintln(c.stdout, "no keys")
		return err
	}
	t := newTable(c.stdout)
	t.row("NAME", "TYPE", "STATE", "ALGORITHM", "FINGERPRINT", "OPTIONS", "CREATED", "LAST USED")
	for _, k := range keys {
		last := "never"
		if k.LastUsedAt != nil {
			last = k.LastUsedAt.String()
		}
		t.row(k.Name, k.Type, k.State, k.Algorithm, k.Fingerprint, orDash(k.Options), k.CreatedAt.String(), last)
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, k := range keys {
		if k.Claim != nil {
			fmt.Fprintf(c.stdout, "\n%s %q waits to be claimed until %s:\n  %s\n", k.KindName(), k.Name, k.Claim.ExpiresAt, k.Claim.Command)
		}
	}
	return nil
}

func (c *cli) keysAdd(fs *flag.FlagSet, args []string) error {
	name := fs.String("name", "", "")
	ca := fs.Bool("ca", false, "")
	asJSON := fs.Bool("json", false, "")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	in, err := io.ReadAll(io.LimitReader(c.stdin, maxKeyInput+1))
	if err != nil {
		return fmt.Errorf("reading the key from stdin: %w", err)
	}
	if len(in) > maxKeyInput {
		return fmt.Errorf("stdin is longer than %d bytes; expected one authorized_keys line", maxKeyInput)
	}
	k, err := c.ops.AddKey(c.ctx, c.grant, string(in), *name, *ca)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, k.Added())
	}
	_, err = io.WriteString(c.stdout, addedText(k, c.ops))
	return err
}

// addedText says what keys add did and, for a pending key, how to claim it.
func addedText(k ops.Key, o *ops.Ops) string {
	var b strings.Builder
	switch {
	case !k.IsPending():
		fmt.Fprintf(&b, "%s %q (%s) is active: certificates it signs log in now\n", k.KindName(), k.Name, k.Fingerprint)
	case k.IsCA():
		fmt.Fprintf(&b, "added %s %q (%s), pending: it vouches for nothing until you prove you hold it.\n", k.KindName(), k.Name, k.Fingerprint)
		fmt.Fprintf(&b, "Before %s, sign a claim certificate with its private key (CA_KEY; SOME_KEY.pub is any\npublic key: ssh-keygen writes the certificate to SOME_KEY-cert.pub):\n\n", k.Claim.ExpiresAt)
		fmt.Fprintf(&b, "  %s\n\nthen feed it to keys add:\n\n  %s < SOME_KEY-cert.pub\n", k.Claim.Command, o.SSHCommand(string(auth.Admin), "keys", "add", "--ca"))
	default:
		fmt.Fprintf(&b, "added %s %q (%s), pending: it grants nothing until its holder claims it.\n", k.KindName(), k.Name, k.Fingerprint)
		fmt.Fprintf(&b, "Before %s, run this with the key's private half (-i: its file):\n\n  %s\n", k.Claim.ExpiresAt, k.Claim.Command)
	}
	return b.String()
}

func (c *cli) keysClaim(fs *flag.FlagSet, args []string) error {
	rest, err := parse(fs, args, "CODE")
	if err != nil {
		return err
	}
	g, k, err := c.ops.ClaimKey(c.ctx, c.grant, c.key, rest[0])
	if err != nil {
		return err
	}
	c.grant = g
	_, err = fmt.Fprintf(c.stdout, "key %q (%s) is now a login key of account %s\n", k.Name, k.Fingerprint, g.Account)
	return err
}

func (c *cli) accountDelete(fs *flag.FlagSet, args []string) error {
	yes := fs.Bool("yes", false, "")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if !*yes {
		return usagef("account delete deletes account %s for good: its keys, certificate authorities, revocations and data; its name cannot be registered again for 90 days. To do it, run: %s",
			c.grant.Account, c.ops.SSHCommand(string(auth.Admin), "account", "delete", "--yes"))
	}
	until, err := c.ops.DeleteAccount(c.ctx, c.grant)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "account %s deleted; its name is held until %s\n", c.grant.Account, ops.Time{Time: until})
	return err
}

func (c *cli) keysRemove(fs *flag.FlagSet, args []string) error {
	rest, err := parse(fs, args, "NAME-OR-FINGERPRINT")
	if err != nil {
		return err
	}
	k, err := c.ops.RemoveKey(c.ctx, c.grant, rest[0])
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "removed %s %q (%s)\n", k.KindName(), k.Name, k.Fingerprint)
	return err
}

func (c *cli) logs(fs *flag.FlagSet, args []string) error {
	asJSON := fs.Bool("json", false, "")
	service := fs.String("service", "", "")
	limit := fs.Int("limit", ops.DefaultLogLimit, "")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *limit < 1 || *limit > ops.MaxLogLimit {
		return usagef("logs: --limit %d is not between 1 and %d", *limit, ops.MaxLogLimit)
	}
	entries, err := c.ops.Logs(c.ctx, c.grant, *service, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, entries)
	}
	if len(entries) == 0 {
		_, err := fmt.Fprintln(c.stdout, "no access log entries")
		return err
	}
	t := newTable(c.stdout)
	t.row("TIME", "SERVICE", "OUTCOME", "METHOD", "IDENTITY", "SERIAL", "REMOTE", "REASON")
	for _, e := range entries {
		serial := "-"
		if e.Serial != nil {
			serial = strconv.FormatUint(*e.Serial, 10)
		}
		t.row(e.Time.String(), e.Service, e.Outcome, e.Method, orDash(e.Identity), serial, orDash(e.RemoteAddr), orDash(e.Reason))
	}
	return t.flush()
}

func (c *cli) revoke(fs *flag.FlagSet, args []string) error {
	var req ops.RevokeRequest
	fs.Func("serial", "", func(v string) error {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return errors.New("want a decimal serial such as 42")
		}
		req.Serial = &n
		return nil
	})
	fs.StringVar(&req.CA, "ca", "", "")
	fs.StringVar(&req.KeyID, "key-id", "", "")
	fs.StringVar(&req.Key, "key", "", "")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if n := btoi(set["serial"]) + btoi(set["key-id"]) + btoi(set["key"]); n != 1 {
		return usagef("revoke needs exactly one of --serial N, --key-id ID or --key FINGERPRINT (usage: %s)", usageLine("revoke"))
	}
	if set["ca"] && !set["serial"] {
		return usagef("revoke: --ca goes only with --serial (usage: %s)", usageLine("revoke"))
	}
	if set["key-id"] && req.KeyID == "" || set["key"] && req.Key == "" || set["ca"] && req.CA == "" {
		return usagef("revoke: a flag's value is empty (usage: %s)", usageLine("revoke"))
	}
	r, err := c.ops.Revoke(c.ctx, c.grant, req)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "revoked %s (revocation %d)\n", revocationWords(r), r.ID)
	return err
}

func (c *cli) revocationsList(fs *flag.FlagSet, args []string) error {
	asJSON := fs.Bool("json", false, "")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	// Page by page: an account may hold tens of thousands of revocations.
	var (
		list = newJSONList(c.stdout)
		t    *table
		seen bool
	)
	for after := int64(0); ; {
		page, _, err := c.ops.RevocationsPage(c.ctx, c.grant, after, 1000)
		if err != nil {
			return err
		}
		for _, r := range page {
			if *asJSON {
				if err := list.add(r); err != nil {
					return err
				}
				continue
			}
			if t == nil {
				t = newTable(c.stdout)
				t.row("ID", "KIND", "VALUE", "CA", "ORIGIN", "CREATED")
			}
			t.row(strconv.FormatInt(r.ID, 10), r.Kind, shown(r.Value), revocationCA(r), revocationOrigin(r), r.CreatedAt.String())
		}
		seen = seen || len(page) > 0
		if t != nil {
			if err := t.flush(); err != nil {
				return err
			}
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].ID
	}
	if *asJSON {
		return list.close()
	}
	if !seen {
		_, err := fmt.Fprintln(c.stdout, "no revocations")
		return err
	}
	return nil
}

// revocationCA names the CA a revocation is for, as the list shows it.
func revocationCA(r ops.Revocation) string {
	switch {
	case r.CAFingerprint == "" && (r.Kind == "key" || r.Kind == "key_hash"):
		return "-"
	case r.CAFingerprint == "":
		return "every CA"
	case r.CAName != "":
		return r.CAName
	}
	return r.CAFingerprint + " (removed)"
}

func revocationOrigin(r ops.Revocation) string {
	if r.Source != nil {
		return "krl " + shown(*r.Source)
	}
	return r.Origin
}

func (c *cli) revocationsImport(fs *flag.FlagSet, args []string) error {
	ca := fs.String("ca", "", "")
	url := fs.String("url", "", "")
	every := fs.Duration("every", 0, "")
	asJSON := fs.Bool("json", false, "")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["every"] && *url == "" {
		return usagef("revocations import: --every goes only with --url (usage: %s)", usageLine("revocations import"))
	}
	if set["ca"] && *ca == "" || set["url"] && *url == "" {
		return usagef("revocations import: a flag's value is empty (usage: %s)", usageLine("revocations import"))
	}
	var (
		res ops.KRLImport
		err error
	)
	if *url != "" {
		res, err = c.ops.ImportKRLFromURL(c.ctx, c.grant, *url, *ca, *every)
	} else {
		if err := c.ops.RequireAdmin(c.grant); err != nil {
			return err
		}
		in, rerr := io.ReadAll(io.LimitReader(c.stdin, auth.MaxKRLBytes+1))
		if rerr != nil {
			return fmt.Errorf("reading the KRL from stdin: %w", rerr)
		}
		if len(in) > auth.MaxKRLBytes {
			return fmt.Errorf("the KRL on stdin is larger than %d bytes; nothing was changed", auth.MaxKRLBytes)
		}
		res, err = c.ops.ImportKRL(c.ctx, c.grant, in, *ca)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, res)
	}
	if src := res.Source; src != nil {
		fmt.Fprintf(c.stdout, "imported %d revocations from %s (source %d)", src.Entries, shown(src.URL), src.ID)
		if src.Every != "" && src.NextFetchAt != nil {
			fmt.Fprintf(c.stdout, "; fetched again every %s, next at %s", src.Every, src.NextFetchAt)
		}
		_, err := fmt.Fprintln(c.stdout)
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "imported the KRL: %d entries, %d new revocations (%d the account had)\n", res.Entries, res.Added, res.Entries-res.Added)
	return err
}

func (c *cli) revocationsExport(fs *flag.FlagSet, args []string) error {
	if _, err := parse(fs, args); err != nil {
		return err
	}
	res, err := c.ops.ExportKRL(c.ctx, c.grant, c.stdout)
	if err != nil {
		return err
	}
	if res.Skipped > 0 {
		fmt.Fprintf(c.stderr, "portico: %d revocations left out of the KRL: serial 0 (which OpenSSH refuses in a KRL), or of a CA since removed\n", res.Skipped)
	}
	return nil
}

func (c *cli) revocationsSources(fs *flag.FlagSet, args []string) error {
	asJSON := fs.Bool("json", false, "")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	srcs, err := c.ops.ListKRLSources(c.ctx, c.grant)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, srcs)
	}
	if len(srcs) == 0 {
		_, err := fmt.Fprintln(c.stdout, "no KRL sources")
		return err
	}
	t := newTable(c.stdout)
	t.row("ID", "URL", "CA", "EVERY", "REVOCATIONS", "FETCHED", "NEXT", "LAST ERROR")
	for _, s := range srcs {
		next := "-"
		if s.NextFetchAt != nil {
			next = s.NextFetchAt.String()
		}
		ca := orDash(s.CAName)
		if s.CAName == "" && s.CAFingerprint != "" {
			ca = s.CAFingerprint + " (removed)"
		}
		t.row(strconv.FormatInt(s.ID, 10), shown(s.URL), ca, orDash(s.Every), strconv.Itoa(s.Entries), s.FetchedAt.String(), next, orDash(shown(s.LastError)))
	}
	return t.flush()
}

func (c *cli) revocationsSourcesRemove(fs *flag.FlagSet, args []string) error {
	rest, err := parse(fs, args, "ID-OR-URL")
	if err != nil {
		return err
	}
	s, err := c.ops.RemoveKRLSource(c.ctx, c.grant, rest[0])
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "KRL source %d (%s) removed, with its %d revocations\n", s.ID, shown(s.URL), s.Entries)
	return err
}

func (c *cli) principalsList(fs *flag.FlagSet, args []string) error {
	asJSON := fs.Bool("json", false, "")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	ms, err := c.ops.ListPrincipals(c.ctx, c.grant)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, ms)
	}
	if len(ms) == 0 {
		_, err := fmt.Fprintln(c.stdout, "no principals mapped")
		return err
	}
	t := newTable(c.stdout)
	t.row("PRINCIPAL", "SERVICES", "FROM", "CA", "UPDATED")
	for _, m := range ms {
		t.row(shown(m.Principal), strings.Join(m.Services, ","), principalFrom(m), principalCA(m), m.UpdatedAt.String())
	}
	return t.flush()
}

func principalFrom(m ops.PrincipalMapping) string {
	if m.From == nil {
		return "any address"
	}
	return strings.Join(m.From, ",")
}

func principalCA(m ops.PrincipalMapping) string {
	switch {
	case m.CAFingerprint == "":
		return "any CA"
	case m.CAName == "":
		return m.CAFingerprint + " (removed)"
	}
	return m.CAName
}

func (c *cli) principalsSet(fs *flag.FlagSet, args []string) error {
	var req ops.PrincipalRequest
	fs.StringVar(&req.From, "from", "", "")
	fs.StringVar(&req.CA, "ca", "", "")
	asJSON := fs.Bool("json", false, "")
	rest, err := parseAnywhere(fs, args, "NAME", "SERVICES")
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["from"] && req.From == "" || set["ca"] && req.CA == "" {
		return usagef("principals set: a flag's value is empty (usage: %s)", usageLine("principals set"))
	}
	req.Principal, req.Services = rest[0], rest[1]
	m, created, err := c.ops.SetPrincipal(c.ctx, c.grant, req)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, m)
	}
	verb := "changed"
	if created {
		verb = "mapped"
	}
	_, err = fmt.Fprintf(c.stdout, "%s principal %s: certificates of %s listing it get %s, from %s\n",
		verb, shown(m.Principal), principalCA(m), strings.Join(m.Services, ","), principalFrom(m))
	return err
}

func (c *cli) principalsRemove(fs *flag.FlagSet, args []string) error {
	rest, err := parse(fs, args, "NAME")
	if err != nil {
		return err
	}
	if err := c.ops.RemovePrincipal(c.ctx, c.grant, rest[0]); err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "principal %s unmapped\n", shown(rest[0]))
	return err
}

func (c *cli) revocationsRemove(fs *flag.FlagSet, args []string) error {
	rest, err := parse(fs, args, "ID")
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(rest[0], 10, 64)
	if err != nil || id <= 0 {
		return usagef("revocations rm: %q is not a revocation ID (see: revocations ls)", rest[0])
	}
	if err := c.ops.RemoveRevocation(c.ctx, c.grant, id); err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "revocation %d removed\n", id)
	return err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
