package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3"; otherwise the module
// version from the build information is used.
var version = ""

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// errUsage marks a usage error: its message has been printed and the exit status is 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// command is one subcommand.
type command struct {
	name  string
	usage string
	run   func(ctx context.Context, env *environment, args []string) error
}

// environment is what a command may touch of the process.
type environment struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

var commands = []command{
	{"serve", "portico serve [flags]                   run the SSH and HTTP servers until SIGINT/SIGTERM", serve},
	{"migrate", "portico migrate [flags]                 apply database migrations and exit", migrate},
	{"account", "portico account create NAME --key FILE  create an account offline\n  portico account ls                      list accounts\n  portico account rm NAME                 delete an account, as its owner's account delete does", account},
	{"certifier", "portico certifier [flags]               run the certifier: certificates from single sign-on\n  portico certifier claim --ca CA CODE    print the certificate that proves possession of CA to keys add --ca\n  portico certifier revoke --key-id ID    revoke certificates (or --serial N); GET /krl lists them", certifierCmd},
	{"login", "portico login --certifier URL           get a certificate from the certifier (--browser, --refresh)", loginCmd},
	{"ssh-config", "portico ssh-config --certifier URL --host HOST [--port PORT]\n                                          print the ssh_config block that keeps it fresh", sshConfigCmd},
	{"version", "portico version                         print the version", printVersion},
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	env := &environment{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.Is(err, errUsage):
			return exitUsage
		default:
			fmt.Fprintf(stderr, "portico %s: %v\n", c.name, err)
			return exitFailure
		}
	}
	fmt.Fprintf(stderr, "portico: unknown command %q\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, "usage:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %s\n", c.usage)
	}
	fmt.Fprint(w, "\nRun 'portico COMMAND -h' for a command's flags. Every flag can also be set in the\nenvironment (PORTICO_...); the flag wins.\n")
}

func printVersion(_ context.Context, env *environment, args []string) error {
	if len(args) != 0 {
		fmt.Fprint(env.stderr, "usage: portico version\n")
		return errUsage
	}
	fmt.Fprintf(env.stdout, "portico %s\n", versionString())
	return nil
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
