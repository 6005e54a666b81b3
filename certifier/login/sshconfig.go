package login

import (
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/portico-sh/portico/certifier"
)

// Aliases are the Host entries ssh-config writes besides the host, each with its SSH user, so
// that `ssh pgs`, `rsync ... pgs:/site/` and `ssh -R ... tuns` reach those services.
var Aliases = []string{"pgs", "tuns", "pipe"}

// SSHConfigOptions describe the block to write.
type SSHConfigOptions struct {
	Certifier string // the certifier's URL
	Host      string // the gateway's host name
	Port      int    // its SSH port; 0 leaves ssh's default
	ConfigDir string // where portico login keeps its files
	Command   string // how ssh runs portico (an absolute path, or "portico" on PATH)
}

var hostRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.:_-]{0,252}[A-Za-z0-9.])?$`)

// WriteSSHConfig writes the Platform.sh-style ssh_config block: a Match line whose exec keeps
// the certificate fresh (portico login --refresh --quiet does nothing while it is), then Host
// entries for the host and its aliases with the key, the certificate and IdentitiesOnly.
func WriteSSHConfig(w io.Writer, o SSHConfigOptions) error {
	if err := certifier.CheckServiceURL(o.Certifier); err != nil {
		return fmt.Errorf("certifier: %w", err)
	}
	if !hostRe.MatchString(o.Host) || strings.Contains(o.Host, "..") {
		return fmt.Errorf("host %q: want a host name or address", o.Host)
	}
	if o.Port < 0 || o.Port > 65535 {
		return fmt.Errorf("port %d: want 1 to 65535", o.Port)
	}
	// The exec names the config directory: ssh may run it with another PORTICO_CONFIG_DIR (or
	// another working directory) than this command had, and it must refresh the files the Host
	// entries name.
	configDir, err := filepath.Abs(o.ConfigDir)
	if err != nil {
		return err
	}
	files, err := FilesFor(configDir, o.Certifier)
	if err != nil {
		return err
	}
	exec, err := shellWords(o.Command, "login", "--certifier", o.Certifier, "--config-dir", configDir, "--refresh", "--quiet")
	if err != nil {
		return err
	}
	key, err := configValue(files.Key)
	if err != nil {
		return err
	}
	cert, err := configValue(files.Certificate)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# portico: certificates from %s, renewed before they expire.\n", o.Certifier)
	fmt.Fprintf(&b, "Match host %s exec \"%s\"\n", strings.Join(append([]string{o.Host}, Aliases...), ","), exec)
	entry := func(name, hostName, user string) {
		fmt.Fprintf(&b, "\nHost %s\n", name)
		if hostName != "" {
			fmt.Fprintf(&b, "  HostName %s\n", hostName)
		}
		if o.Port != 0 {
			fmt.Fprintf(&b, "  Port %d\n", o.Port)
		}
		if user != "" {
			fmt.Fprintf(&b, "  User %s\n", user)
		}
		fmt.Fprintf(&b, "  IdentityFile %s\n  CertificateFile %s\n  IdentitiesOnly yes\n", key, cert)
	}
	entry(o.Host, "", "")
	for _, alias := range Aliases {
		entry(alias, o.Host, alias)
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// safeWord is what a shell takes as one word without quotes.
var safeWord = regexp.MustCompile(`^[A-Za-z0-9@+=:,./_-]+$`)

// shellWords joins words for the shell that ssh runs Match exec with, quoting as needed, with
// % doubled for ssh's own token expansion. Quotes and backslashes are refused: ssh_config's
// double-quoted value cannot carry them reliably.
func shellWords(words ...string) (string, error) {
	out := make([]string, len(words))
	for i, w := range words {
		if w == "" || strings.ContainsAny(w, "\"'\\\n\r") {
			return "", fmt.Errorf("%q cannot be written into ssh_config's Match exec", w)
		}
		if !safeWord.MatchString(w) {
			w = "'" + w + "'"
		}
		out[i] = strings.ReplaceAll(w, "%", "%%")
	}
	return strings.Join(out, " "), nil
}

// configValue is a path as an ssh_config value: % doubled (ssh expands %-tokens), quoted
// when it has a space. Quotes, backslashes and $ (ssh expands ${VAR}) are refused.
func configValue(path string) (string, error) {
	if strings.ContainsAny(path, "\"\\$\n\r") {
		return "", fmt.Errorf("%q cannot be written into ssh_config", path)
	}
	path = strings.ReplaceAll(path, "%", "%%")
	if strings.ContainsAny(path, " \t") {
		return `"` + path + `"`, nil
	}
	return path, nil
}
