package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/services"
	"github.com/portico-sh/portico/services/admin/ops"
	"github.com/portico-sh/portico/services/pgs"
)

const accountUsage = "portico account create NAME --key FILE | portico account ls | portico account rm NAME"

func account(ctx context.Context, env *environment, args []string) error {
	if len(args) == 0 {
		fmt.Fprintf(env.stderr, "usage: %s\n", accountUsage)
		return errUsage
	}
	switch args[0] {
	case "create":
		return accountCreate(ctx, env, args[1:])
	case "ls":
		return accountList(ctx, env, args[1:])
	case "rm":
		return accountRemove(ctx, env, args[1:])
	default:
		fmt.Fprintf(env.stderr, "portico account: unknown command %q\nusage: %s\n", args[0], accountUsage)
		return errUsage
	}
}

// accountCreate creates an account offline, whatever the signups setting.
func accountCreate(ctx context.Context, env *environment, args []string) error {
	var s settings
	var keyFile string
	fs := newFlagSet("account create", "portico account create NAME --key FILE [flags]", env, &s, storeSettings)
	fs.StringVar(&keyFile, "key", "", "file holding the account's first login key, one authorized_keys line (- for stdin)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(rest) != 1:
		return usageError(fs, "want exactly one account NAME")
	case keyFile == "":
		return usageError(fs, "--key FILE is required")
	}
	line, err := readKeyLine(env.stdin, keyFile)
	if err != nil {
		return err
	}
	store, err := db.Open(ctx, s.databaseURL, s.dataDir)
	if err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	defer store.Close()
	acct, err := ops.New(store, ops.Config{}).CreateAccount(ctx, rest[0], line)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "created account %s\n", acct.Name)
	return nil
}

// readKeyLine returns the first line of the file that is neither blank nor a comment.
func readKeyLine(stdin io.Reader, path string) (string, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("key file: %w", err)
		}
		defer f.Close()
		r = f
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			return line, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("key file %s: %w", path, err)
	}
	return "", errors.New("key file " + path + " holds no public key")
}

func accountList(ctx context.Context, env *environment, args []string) error {
	var s settings
	fs := newFlagSet("account ls", "portico account ls [flags]", env, &s, storeSettings)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return usageError(fs, "unexpected argument %q", rest[0])
	}
	store, err := db.Open(ctx, s.databaseURL, s.dataDir)
	if err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	defer store.Close()
	accounts, err := store.ListAccounts(ctx)
	if err != nil {
		return fmt.Errorf("listing accounts: %w", err)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCREATED")
	for _, a := range accounts {
		fmt.Fprintf(tw, "%s\t%s\n", a.Name, a.CreatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// accountRemove deletes an account offline, as `account delete` does: its keys, CAs,
// revocations and the data of every service go; the access log keeps its entries; its name is
// held for 90 days.
func accountRemove(ctx context.Context, env *environment, args []string) error {
	var s settings
	fs := newFlagSet("account rm", "portico account rm NAME [flags]", env, &s, storeSettings)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError(fs, "want exactly one account NAME")
	}
	log, err := s.logger(env.stderr)
	if err != nil {
		return usageError(fs, "%v", err)
	}
	store, err := db.Open(ctx, s.databaseURL, s.dataDir)
	if err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	defer store.Close()
	sites, err := newSites(&s, store, services.Public{}, pgs.Limits{}, nil, log)
	if err != nil {
		return err
	}
	until, err := ops.New(store, ops.Config{AccountHooks: accountHooks(sites), Log: log}).DeleteAccountByName(ctx, rest[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "deleted account %s; its name is held until %s\n", rest[0], until.UTC().Format(time.RFC3339))
	return nil
}

// accountHooks are what the services keep outside the database tables that cascade with an
// account (a site's files, say): `serve` and `account rm` delete an account's data with them.
// A service with such data adds its ops.AccountHook here.
func accountHooks(sites *pgs.Service) []ops.AccountHook {
	return []ops.AccountHook{sites}
}
