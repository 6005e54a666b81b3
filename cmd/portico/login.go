package main

import (
	"context"
	"flag"
	"os"
	"strconv"
	"strings"

	"github.com/portico-sh/portico/certifier/login"
)

// clientFlags are the settings portico login and ssh-config share.
func clientFlags(fs *flag.FlagSet, env *environment, certifierURL, configDir *string) {
	certifierFlag(fs, env, certifierURL, "certifier", "PORTICO_CERTIFIER", "", "the certifier's URL")
	def := login.DefaultConfigDir()
	certifierFlag(fs, env, configDir, "config-dir", "PORTICO_CONFIG_DIR", def, "where the key, certificate and refresh token are kept")
}

func loginCmd(ctx context.Context, env *environment, args []string) error {
	var o login.Options
	fs := newFlagSet("login", "portico login --certifier URL [--browser] [--refresh] [--quiet] [--ttl D]", env, &settings{})
	clientFlags(fs, env, &o.Certifier, &o.ConfigDir)
	fs.BoolVar(&o.Browser, "browser", false, "log in in a browser on this machine (loopback redirect with PKCE) instead of with a code")
	fs.BoolVar(&o.Refresh, "refresh", false, "renew with the refresh token when a third of the certificate's life is left; else do nothing (never asks)")
	fs.BoolVar(&o.Quiet, "quiet", false, "print nothing unless something goes wrong")
	fs.StringVar(&o.TTL, "ttl", "", "how long the certificate should live (the certifier's maximum when empty or longer)")
	fs.StringVar(&o.Reason, "reason", "", "why, for the certifier's audit log")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(rest) != 0:
		return usageError(fs, "unexpected argument %q", rest[0])
	case o.Certifier == "":
		return usageError(fs, "--certifier URL is required")
	case o.Browser && o.Refresh:
		return usageError(fs, "--browser and --refresh do not go together")
	}
	o.Out, o.Result = env.stderr, env.stdout
	return login.Run(ctx, o)
}

func sshConfigCmd(_ context.Context, env *environment, args []string) error {
	var o login.SSHConfigOptions
	var port string
	fs := newFlagSet("ssh-config", "portico ssh-config --certifier URL --host HOST [--port PORT]", env, &settings{})
	clientFlags(fs, env, &o.Certifier, &o.ConfigDir)
	fs.StringVar(&o.Host, "host", "", "the gateway's host name")
	fs.StringVar(&port, "port", "", "the gateway's SSH port (default: ssh's)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(rest) != 0:
		return usageError(fs, "unexpected argument %q", rest[0])
	case o.Certifier == "":
		return usageError(fs, "--certifier URL is required")
	case o.Host == "":
		return usageError(fs, "--host HOST is required")
	}
	if port != "" {
		if o.Port, err = strconv.Atoi(port); err != nil || o.Port < 1 || o.Port > 65535 {
			return usageError(fs, "port %q: want 1 to 65535", port)
		}
	}
	o.Command = porticoCommand()
	return login.WriteSSHConfig(env.stdout, o)
}

// porticoCommand is how ssh should run this program: its absolute path, unless it is a
// temporary `go run` build, which will be gone.
func porticoCommand() string {
	exe, err := os.Executable()
	if err != nil || strings.Contains(exe, "/go-build") {
		return "portico"
	}
	return exe
}
