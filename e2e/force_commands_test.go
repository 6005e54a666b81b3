package e2e

import (
	"bytes"
	"crypto/rand"
	"os"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/crypto/ssh"
)

// The command of the force-command scripts:
//
//	cert-blank-force CA PUB KEYID PRINCIPALS  sign PUB with the CA private key CA as ssh-keygen -s
//	                 would, valid for an hour with every permit, but with an empty critical option
//	                 force-command, which ssh-keygen refuses to write ("Empty force-command
//	                 option"); writes PUB's -cert.pub beside it
func init() {
	scriptCommands["cert-blank-force"] = cmdCertBlankForce
}

func cmdCertBlankForce(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "cert-blank-force")
	if len(args) != 4 {
		ts.Fatalf("usage: cert-blank-force CA PUB KEYID PRINCIPALS")
	}
	ca, err := ssh.ParsePrivateKey([]byte(ts.ReadFile(args[0])))
	ts.Check(err)
	pub, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(ts.ReadFile(args[1])))
	ts.Check(err)
	now := time.Now()
	cert := &ssh.Certificate{
		Key:             pub,
		CertType:        ssh.UserCert,
		KeyId:           args[2],
		ValidPrincipals: strings.Split(args[3], ","),
		ValidAfter:      uint64(now.Add(-time.Minute).Unix()),
		ValidBefore:     uint64(now.Add(time.Hour).Unix()),
		Permissions: ssh.Permissions{
			CriticalOptions: map[string]string{"force-command": ""},
			Extensions: map[string]string{
				"permit-port-forwarding": "", "permit-pty": "", "permit-user-rc": "",
			},
		},
	}
	ts.Check(cert.SignCert(rand.Reader, ca))
	line := bytes.TrimSpace(ssh.MarshalAuthorizedKey(cert))
	line = append(line, " "+comment+"\n"...)
	out := strings.TrimSuffix(args[1], ".pub") + "-cert.pub"
	ts.Check(os.WriteFile(ts.MkAbs(out), line, 0o644))
}
