package pgs

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/internal/cliargs"
	"github.com/portico-sh/portico/services"
)

// cli runs one pgs command.
type cli struct {
	svc    *Service
	ctx    context.Context
	grant  auth.Grant
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// command is one pgs command.
type command struct {
	name  string
	usage string
	does  string
	run   func(c *cli, args []string) error
}

var commands []command

func init() {
	commands = []command{
		{"help", "help", "this text, with upload recipes for this server", (*cli).help},
		{"ls", "ls [PROJECT[/PATH]] [--json]", "your projects; with PROJECT, the live deploy's files under PATH", (*cli).ls},
		{"deploys", "deploys PROJECT [--json]", "the kept deploys, newest first, the live one marked", (*cli).deploys},
		{"rollback", "rollback PROJECT [DEPLOY]", "makes a kept deploy live at once (default: the one before the live one)", (*cli).rollback},
		{"link", "link PROJECT --to TARGET", "PROJECT serves whatever TARGET's live deploy is", (*cli).link},
		{"unlink", "unlink PROJECT", "PROJECT serves its own deploys again", (*cli).unlink},
		{"rm", "rm PROJECT --yes", "deletes the project, its deploys and the files only it used", (*cli).rm},
		{"stats", "stats [--json]", "stored bytes against the quota, files, projects", (*cli).stats},
		{"acl", "acl PROJECT public|accounts LIST|password", "who may see the site: anyone; you and the listed accounts, over ssh -L; or anyone with the password (read from stdin)", (*cli).acl},
	}
}

// usageError is a command line that does not parse: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func (s *Service) runCommand(sess *services.Session) int {
	c := &cli{svc: s, ctx: sess.Context(), grant: sess.Grant, stdin: sess, stdout: sess, stderr: sess.Stderr()}
	return c.run(sess.Command)
}

func (c *cli) run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, c.svc.usage())
		return exitUsage
	}
	name := args[0]
	if name == "-h" || name == "--help" {
		name = "help"
	}
	var err error
	found := false
	for _, cmd := range commands {
		if cmd.name == name {
			found = true
			err = cmd.run(c, args[1:])
			break
		}
	}
	if !found {
		err = usagef("unknown command %q", name)
	}
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(c.stdout, c.svc.usage())
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "portico: %s\nrun: %s\n", ue.msg, c.svc.public.SSHCommand("pgs", "help"))
		return exitUsage
	default:
		e := asError(err)
		if e.Kind == Failed && e.Err != nil {
			c.svc.log.Warn("pgs: a command failed", "account", c.grant.Account, "identity", c.grant.Identity, "command", name, "err", e.Err)
		}
		fmt.Fprintf(c.stderr, "portico: %s\n", e.Message)
		return exitFailed
	}
}

// usage is the help text, with this server's recipes.
func (s *Service) usage() string {
	var b strings.Builder
	ssh := s.public.SSHCommand("pgs")
	host := s.public.SSHHost
	port := ""
	if s.public.SSHPort != 22 && s.public.SSHPort != 0 {
		port = fmt.Sprintf(" -P %d", s.public.SSHPort)
	}
	rsyncSSH := "ssh"
	if port != "" {
		rsyncSSH = fmt.Sprintf("'ssh -p %d'", s.public.SSHPort)
	}
	fmt.Fprintf(&b, "portico pgs: static sites deployed over SSH.\n\nusage: %s COMMAND\n\n", ssh)
	for _, cmd := range commands {
		fmt.Fprintf(&b, "  %s\n      %s\n", cmd.usage, cmd.does)
	}
	fmt.Fprintf(&b, `
Upload a folder as project blog (it is served at %s):
  rsync -rv --delete -e %s ./public/ pgs@%s:/blog/
  scp%s -r ./public/* pgs@%s:/blog/
  sftp%s pgs@%s
Download with the same tools: rsync -rv -e %s pgs@%s:/blog/ ./copy/
An upload is one deploy: visitors see the previous deploy until it ends well, then the new one.
`, s.public.SiteURL("ACCOUNT", "blog"), rsyncSSH, host, port, host, port, host, rsyncSSH, host)
	return b.String()
}

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses a command's flags and checks the number of positional arguments.
func parse(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	pos, err := cliargs.Parse(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return nil, err
	case err != nil:
		return nil, usagef("%s: %v", fs.Name(), err)
	case len(pos) < min:
		return nil, usagef("%s: missing argument", fs.Name())
	case len(pos) > max:
		return nil, usagef("%s: unexpected argument %q", fs.Name(), pos[max])
	}
	return pos, nil
}

func (c *cli) json(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (c *cli) table(header string, rows [][]string) error {
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func (c *cli) help(args []string) error {
	if _, err := parse(newFlags("help"), args, 0, 0); err != nil {
		return err
	}
	fmt.Fprint(c.stdout, c.svc.usage())
	return nil
}

func (c *cli) ls(args []string) error {
	fs := newFlags("ls")
	asJSON := fs.Bool("json", false, "JSON output")
	pos, err := parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	if len(pos) == 1 {
		project, path, _ := strings.Cut(strings.TrimPrefix(pos[0], "/"), "/")
		files, err := c.svc.Files(c.ctx, c.grant, project, path)
		if err != nil {
			return err
		}
		if *asJSON {
			return c.json(files)
		}
		rows := make([][]string, len(files))
		for i, f := range files {
			rows[i] = []string{fmt.Sprint(f.Size), f.Mode, timeText(f.Modified), shown(f.Path)}
		}
		return c.table("SIZE\tMODE\tMODIFIED\tPATH", rows)
	}
	list, err := c.svc.Projects(c.ctx, c.grant)
	if err != nil {
		return err
	}
	if *asJSON {
		return c.json(list)
	}
	if len(list) == 0 {
		fmt.Fprintf(c.stdout, "no projects yet; upload one with: rsync -rv ./public/ pgs@%s:/blog/\n", c.svc.public.SSHHost)
		return nil
	}
	rows := make([][]string, len(list))
	for i, p := range list {
		live := "-"
		if p.LiveDeploy != nil {
			live = *p.LiveDeploy
		}
		if p.LinkTo != nil {
			live = "→ " + *p.LinkTo + " " + live
		}
		rows[i] = []string{p.Project, live, fmt.Sprint(p.Files), humanBytes(p.Bytes), timeText(p.UpdatedAt), orDash(p.UpdatedBy), p.URL, p.ACL}
	}
	return c.table("PROJECT\tLIVE\tFILES\tBYTES\tUPDATED\tBY\tURL\tACL", rows)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (c *cli) deploys(args []string) error {
	fs := newFlags("deploys")
	asJSON := fs.Bool("json", false, "JSON output")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	list, err := c.svc.Deploys(c.ctx, c.grant, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return c.json(list)
	}
	rows := make([][]string, len(list))
	for i, d := range list {
		live := ""
		if d.Live {
			live = "live"
		}
		who := d.Identity
		if d.Serial != nil {
			who = fmt.Sprintf("%s (serial %d)", d.Identity, *d.Serial)
		}
		rows[i] = []string{d.ID, live, timeText(d.CreatedAt), who, d.Tool,
			fmt.Sprintf("+%d ~%d -%d", d.Added, d.Changed, d.Removed), fmt.Sprint(d.Files), humanBytes(d.Bytes)}
	}
	return c.table("DEPLOY\tLIVE\tCREATED\tBY\tTOOL\tCHANGES\tFILES\tBYTES", rows)
}

func (c *cli) rollback(args []string) error {
	pos, err := parse(newFlags("rollback"), args, 1, 2)
	if err != nil {
		return err
	}
	to := ""
	if len(pos) == 2 {
		to = pos[1]
	}
	id, err := c.svc.Rollback(c.ctx, c.grant, pos[0], to, c.stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s: %s is live: %s\n", pos[0], id, c.svc.public.SiteURL(c.grant.Account, pos[0]))
	return nil
}

func (c *cli) link(args []string) error {
	fs := newFlags("link")
	to := fs.String("to", "", "the project to serve")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *to == "" {
		return usagef("link: --to TARGET is required")
	}
	if err := c.svc.Link(c.ctx, c.grant, pos[0], *to, c.stderr); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s serves %s's live deploy: %s\n", pos[0], *to, c.svc.public.SiteURL(c.grant.Account, pos[0]))
	return nil
}

func (c *cli) unlink(args []string) error {
	pos, err := parse(newFlags("unlink"), args, 1, 1)
	if err != nil {
		return err
	}
	if err := c.svc.Unlink(c.ctx, c.grant, pos[0], c.stderr); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s serves its own deploys again\n", pos[0])
	return nil
}

func (c *cli) rm(args []string) error {
	fs := newFlags("rm")
	yes := fs.Bool("yes", false, "really delete")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if !*yes {
		return usagef("rm %s deletes the project and every deploy of it; add --yes to do it", pos[0])
	}
	if err := c.svc.Remove(c.ctx, c.grant, pos[0], c.stderr); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "removed %s\n", pos[0])
	return nil
}

func (c *cli) stats(args []string) error {
	fs := newFlags("stats")
	asJSON := fs.Bool("json", false, "JSON output")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	st, err := c.svc.Stats(c.ctx, c.grant)
	if err != nil {
		return err
	}
	if *asJSON {
		return c.json(st)
	}
	quota := "no quota"
	if st.QuotaBytes != nil {
		quota = "of " + humanBytes(*st.QuotaBytes)
	}
	fmt.Fprintf(c.stdout, "%s stored %s, %d files, %d projects\n", humanBytes(st.Bytes), quota, st.Files, st.Projects)
	return nil
}

func (c *cli) acl(args []string) error {
	pos, err := parse(newFlags("acl"), args, 2, 2+maxACLAccounts)
	if err != nil {
		return err
	}
	project, kind := pos[0], pos[1]
	if kind != db.PGSAccounts && len(pos) > 2 {
		return usagef("acl %s %s: unexpected argument %q", project, kind, pos[2])
	}
	if kind == db.PGSAccounts && len(pos) == 2 {
		return usagef("acl %s accounts LIST: list the accounts, e.g. bob,carol", project)
	}
	acl, names, err := c.svc.SetACL(c.ctx, c.grant, project, kind, pos[2:], c.stdin)
	if err != nil {
		return err
	}
	url := c.svc.public.SiteURL(c.grant.Account, project)
	switch acl.Kind {
	case db.PGSAccounts:
		fmt.Fprintf(c.stdout, "%s is private: you and %s see it with\n  %s\n  then http://localhost:8000/\n",
			project, strings.Join(names, ", "), c.svc.forwardCommand(c.grant.Account, project))
	case db.PGSPassword:
		fmt.Fprintf(c.stdout, "%s asks for its password (any user name): %s\n", project, url)
	default:
		fmt.Fprintf(c.stdout, "%s is public: %s\n", project, url)
	}
	return nil
}
