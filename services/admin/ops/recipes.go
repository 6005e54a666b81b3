package ops

import (
	"strconv"
	"strings"

	"github.com/portico-sh/portico/auth"
)

// Recipes is the help text for the account of g: ready-to-paste commands to make a CA, register
// it, sign certificates for chosen principals with ssh-keygen -s, and the ssh_config block that
// uses such a certificate, filled in with this server's host and port.
func (o *Ops) Recipes(g auth.Grant) string {
	account, ca := "NAME", "portico_ca"
	if g.Account != "" {
		account, ca = g.Account, g.Account+"_ca"
	}
	port := o.cfg.SSHPort
	if port == 0 {
		port = 22
	}
	var b strings.Builder
	line := func(s ...string) {
		b.WriteString(strings.Join(s, ""))
		b.WriteByte('\n')
	}
	if o.cfg.KnownHostsLine != "" {
		line("This server presents a host certificate. Trust its CA, and no host-key prompt comes,")
		line("with this line in ~/.ssh/known_hosts:")
		line()
		line("  ", o.cfg.KnownHostsLine)
		line()
	}
	line("Certificates: sign your teammates' keys with your own certificate authority (CA).")
	line()
	line("1. Make a CA key pair, add its public half to this account, and prove you hold it:")
	line("   keys add prints a one-time CODE; sign a claim certificate for it and feed it back:")
	line()
	line("  ssh-keygen -t ed25519 -f ~/.ssh/", ca, " -C ", ca)
	line("  ", o.SSHCommand(string(auth.Admin), "keys", "add", "--ca"), " < ~/.ssh/", ca, ".pub")
	line("  ssh-keygen -s ~/.ssh/", ca, " -I ", auth.ClaimKeyID, " -n CODE -V +", strconv.Itoa(int(ClaimTTL.Minutes())), "m ~/.ssh/", ca, ".pub")
	line("  ", o.SSHCommand(string(auth.Admin), "keys", "add", "--ca"), " < ~/.ssh/", ca, "-cert.pub")
	line()
	line("   (or on the Keys page: c add CA key, paste ~/.ssh/", ca, ".pub, then the certificate)")
	line()
	line("2. Sign a teammate's public key, bob.pub, for the services it may use")
	line("   (principals: ", serviceList(), "; admin grants all and this account):")
	line()
	line("  # sites and tunnels, for a year")
	line("  ssh-keygen -s ~/.ssh/", ca, " -I bob@laptop -n pgs,tuns -V +52w bob.pub")
	line("  # pipe only, for four weeks, with serial 2 to revoke it by")
	line("  ssh-keygen -s ~/.ssh/", ca, " -I bob@laptop -n pipe -V +4w -z 2 bob.pub")
	line("  # everything, including managing this account, for a day")
	line("  ssh-keygen -s ~/.ssh/", ca, " -I bob@laptop -n admin -V +1d bob.pub")
	line()
	line("   -I names the holder in the access log. ssh-keygen writes bob-cert.pub;")
	line("   bob keeps it next to his private key, as ~/.ssh/bob-cert.pub.")
	line()
	line("3. Bob's ~/.ssh/config for ", o.Host(), " (account ", account, "):")
	line()
	line("  Host pgs")
	line("    HostName ", o.Host())
	line("    Port ", strconv.Itoa(port))
	line("    User pgs")
	line("    IdentitiesOnly yes")
	line("    IdentityFile ~/.ssh/bob")
	line("    CertificateFile ~/.ssh/bob-cert.pub")
	line()
	line("   then: rsync -e ssh -rv ./public/ pgs:/site/")
	line()
	line("4. Revoke certificates:")
	line()
	line("  ", o.SSHCommand(string(auth.Admin), "revoke", "--serial", "2", "--ca", ca))
	line("  ", o.SSHCommand(string(auth.Admin), "revoke", "--key-id", "bob@laptop"))
	line("  # every certificate of a key: its fingerprint, as ssh-keygen -lf bob.pub prints it")
	line("  ", o.SSHCommand(string(auth.Admin), "revoke", "--key", "SHA256:..."))
	return b.String()
}
