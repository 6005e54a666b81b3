package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/portico-sh/portico/internal/benchenv"
)

// The bare Go server is the third server of the HTTP table: the floor for any Go server on
// this machine. It holds the site's files in memory and answers each request head with a
// fixed header and the file in one writev, from one goroutine per connection: no HTTP parsing
// beyond the request line, no Date, no conditions, no site lookup. portico's distance from it
// is what portico adds; its distance from nginx is Go's. (For the 10 MB file too: on loopback
// a writev from memory outran sendfile, 240-270 requests/s against 155, wrk on CPU 0 busy
// either way.)

// bareHeadMax is the most a request head may take: a longer one ends the connection.
const bareHeadMax = 8192

type bareFile struct{ head, body []byte }

// bareServe serves the files of site (by name, flat) on addr until the process is killed.
func bareServe(addr, site string) error {
	files, err := bareFiles(site)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return serveBare(ln, files)
}

// bareFiles reads the files of site into memory, each with its response header.
func bareFiles(site string) (map[string]bareFile, error) {
	entries, err := os.ReadDir(site)
	if err != nil {
		return nil, err
	}
	files := map[string]bareFile{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		body, err := os.ReadFile(filepath.Join(site, e.Name()))
		if err != nil {
			return nil, err
		}
		head := fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", len(body))
		files["/"+e.Name()] = bareFile{head, body}
	}
	return files, nil
}

// serveBare accepts connections on ln until it fails.
func serveBare(ln net.Listener, files map[string]bareFile) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go bareConn(c, files)
	}
}

var bareNotFound = []byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

// bareConn answers the GETs of one connection, in order, pipelined or not.
func bareConn(c net.Conn, files map[string]bareFile) {
	defer c.Close()
	buf := make([]byte, bareHeadMax)
	n := 0
	for {
		m, err := c.Read(buf[n:])
		if err != nil {
			return
		}
		n += m
		for {
			end := bytes.Index(buf[:n], []byte("\r\n\r\n"))
			if end < 0 {
				if n == len(buf) {
					return // a head larger than the buffer: not a benchmark's
				}
				break
			}
			// "GET /name HTTP/1.1": the path is the second word of the first line.
			var path []byte
			if words := bytes.SplitN(buf[:bytes.IndexByte(buf[:end+2], '\n')], []byte(" "), 3); len(words) == 3 {
				path = words[1]
			}
			out := net.Buffers{bareNotFound}
			if f, ok := files[string(path)]; ok {
				out = net.Buffers{f.head, f.body}
			}
			if _, err := out.WriteTo(c); err != nil {
				return
			}
			n = copy(buf, buf[end+4:n])
		}
	}
}

// bareServer is a running bare Go server: this program started again with -bare-serve.
type bareServer struct {
	cmd  *exec.Cmd
	addr string
}

// startBare starts the bare Go server for site, on cpus if set (taskset -c cpus; its
// GOMAXPROCS follows).
func startBare(ctx context.Context, site, cpus string) (*bareServer, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	port, err := benchenv.FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := benchenv.OnCPUs(cpus, self, "-bare-serve", addr, "-bare-site", site)
	b := &bareServer{cmd: cmd, addr: addr}
	if err := startAnswering(ctx, "the bare Go server", cmd, addr, b.stop); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *bareServer) pids() []int { return []int{b.cmd.Process.Pid} }

func (b *bareServer) stop() {
	b.cmd.Process.Kill()
	b.cmd.Wait()
}
