package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"golang.org/x/crypto/ssh"
)

// serveBare runs the ceiling: a bare golang.org/x/crypto/ssh server that accepts one public key
// and user certificates of one CA, answers every exec with exit status 0 and runs nothing. It
// serves on addr until SIGTERM. Its host key, key and CA are files written by the bench.
func serveBare(addr, hostKeyPath, keyPath, caPath string) error {
	hostKey, err := readSignerFile(hostKeyPath)
	if err != nil {
		return err
	}
	key, err := readPublicKey(keyPath)
	if err != nil {
		return err
	}
	ca, err := readPublicKey(caPath)
	if err != nil {
		return err
	}
	checker := &ssh.CertChecker{
		IsUserAuthority: func(auth ssh.PublicKey) bool { return bytes.Equal(auth.Marshal(), ca.Marshal()) },
		UserKeyFallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(k.Marshal(), key.Marshal()) {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	config := &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if cert, ok := k.(*ssh.Certificate); ok {
				// The certificate names the principal the bench uses with every server.
				return checker.Authenticate(connAs{c, benchPrincipal}, cert)
			}
			return checker.Authenticate(c, k)
		},
	}
	config.AddHostKey(hostKey)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go reportMemory(hostKeyPath + ".memstats")
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go bareConn(conn, config)
	}
}

// reportMemory writes, on each SIGUSR1, the server's live heap and goroutine stacks after a
// collection that also returns freed memory to the system, and its goroutines, to file, as
// "HEAP STACK GOROUTINES" (see bareCollected).
func reportMemory(file string) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	for range sig {
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		tmp := file + ".tmp"
		if os.WriteFile(tmp, fmt.Appendf(nil, "%d %d %d\n", ms.HeapAlloc, ms.StackInuse, runtime.NumGoroutine()), 0o644) == nil {
			os.Rename(tmp, file)
		}
	}
}

// connAs is a connection's metadata with another user name.
type connAs struct {
	ssh.ConnMetadata
	user string
}

func (c connAs) User() string { return c.user }

// bareConn serves one connection: sessions whose exec or shell ends at once with status 0.
func bareConn(conn net.Conn, config *ssh.ServerConfig) {
	defer conn.Close()
	sc, chans, reqs, err := ssh.NewServerConn(conn, config)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer ch.Close()
			for req := range creqs {
				switch req.Type {
				case "exec", "shell":
					req.Reply(true, nil)
					ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
					return
				default:
					req.Reply(false, nil)
				}
			}
		}()
	}
}

func readSignerFile(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ssh.ParsePrivateKey(b)
}

func readPublicKey(path string) (ssh.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}
