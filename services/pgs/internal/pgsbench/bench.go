package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/portico-sh/portico/internal/benchenv"
)

// bench is one benchmark run's environment.
type bench struct {
	o          options
	dir        string
	key        string // the client's private key
	knownHosts string
	sshd       *benchenv.Server
	portico    *benchenv.Server
	src        string // the tree of many files
	bigA, bigB string // directories holding big.bin, differing in one byte
}

// target is where an upload goes: portico, or sshd (at its own protocol or at 27).
type target struct {
	name   string
	server *benchenv.Server
	user   string
	extra  []string // more rsync client options
	dest   func(run int, what string) string
	clean  func(ctx context.Context, run int) error
}

// result is one timed upload.
type result struct {
	wall     time.Duration
	cpu      time.Duration
	sent     int64
	received int64
	literal  int64
}

func run(ctx context.Context, o options) error {
	if o.portico == "" {
		bin, cleanup, err := benchenv.BuildPortico(ctx)
		if err != nil {
			return err
		}
		defer cleanup()
		o.portico = bin
	}
	base := o.dir
	if base == "" {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, "portico-pgsbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b := &bench{o: o, dir: dir, key: filepath.Join(dir, "client_ed25519"), knownHosts: filepath.Join(dir, "known_hosts")}
	if _, err := benchenv.MakeKey(ctx, b.key, "pgsbench"); err != nil {
		return err
	}
	pub, err := os.ReadFile(b.key + ".pub")
	if err != nil {
		return err
	}
	if b.sshd, err = benchenv.StartSSHD(ctx, benchenv.SSHD{Path: o.sshd, Dir: dir, AuthorizedKeys: string(pub)}); err != nil {
		return err
	}
	defer b.sshd.Stop()
	if b.portico, err = benchenv.StartPortico(ctx, benchenv.Portico{Bin: o.portico, Dir: dir, Account: "alice",
		PubKey: b.key + ".pub", Args: []string{"--pgs-quota", "off", "--pgs-max-file", "off", "--pgs-max-files", "off"}}); err != nil {
		return err
	}
	defer b.portico.Stop()
	var kh strings.Builder
	for _, s := range []*benchenv.Server{b.sshd, b.portico} {
		kh.WriteString(knownhosts.Line([]string{s.Addr}, s.HostKey) + "\n")
	}
	if err := os.WriteFile(b.knownHosts, []byte(kh.String()), 0o600); err != nil {
		return err
	}
	slog.Info("making the trees", "files", o.files, "MiB", o.mb, "big MiB", o.bigMB)
	if err := b.makeTrees(); err != nil {
		return err
	}
	targets := b.targets()
	type key struct{ target, scenario string }
	results := map[key][]result{}
	scenarios := []string{"initial upload", "unchanged re-upload", "1-byte change in one file"}
	for r := 0; r < o.runs; r++ {
		order := slices.Clone(targets)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, t := range order {
			slog.Info("run", "n", r+1, "target", t.name)
			res, err := b.uploads(ctx, t, r)
			if err != nil {
				return fmt.Errorf("%s, run %d: %w", t.name, r+1, err)
			}
			for i, s := range scenarios {
				results[key{t.name, s}] = append(results[key{t.name, s}], res[i])
			}
			if err := t.clean(ctx, r); err != nil {
				return err
			}
		}
	}
	fmt.Printf("\n## rsync uploads (median of %d runs; %d files / %d MiB, then a %d MiB file)\n\n", o.runs, o.files, o.mb, o.bigMB)
	fmt.Println("| scenario | server | wall | portico / this | server CPU | bytes sent | bytes received | literal data |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, s := range scenarios {
		ref := median(results[key{targets[0].name, s}])
		for _, t := range targets {
			m := median(results[key{t.name, s}])
			ratio := "—"
			if t.name != targets[0].name {
				ratio = fmt.Sprintf("%.2f×", ref.wall.Seconds()/m.wall.Seconds())
			}
			fmt.Printf("| %s | %s | %.3f s | %s | %.2f s | %d | %d | %d |\n", s, t.name, m.wall.Seconds(), ratio,
				m.cpu.Seconds(), m.sent, m.received, m.literal)
		}
	}
	fmt.Println("\nAll runs (wall seconds):")
	for _, s := range scenarios {
		for _, t := range targets {
			var ws []string
			for _, res := range results[key{t.name, s}] {
				ws = append(ws, fmt.Sprintf("%.3f", res.wall.Seconds()))
			}
			fmt.Printf("- %s, %s: %s\n", s, t.name, strings.Join(ws, ", "))
		}
	}
	return b.httpBench(ctx)
}

// median returns the result with the median wall time.
func median(rs []result) result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b result) int { return int(a.wall - b.wall) })
	return s[len(s)/2]
}

func (b *bench) targets() []target {
	return []target{
		{
			name: "portico pgs", server: b.portico, user: "pgs",
			dest: func(run int, what string) string { return fmt.Sprintf("/%s-%d/", what, run) },
			clean: func(ctx context.Context, run int) error {
				for _, what := range []string{"tree", "big"} {
					if _, err := b.ssh(ctx, b.portico, "pgs", "rm", fmt.Sprintf("%s-%d", what, run), "--yes"); err != nil {
						return err
					}
				}
				return nil
			},
		},
		{
			name: "sshd + rsync (protocol 32)", server: b.sshd, user: "root",
			dest: func(run int, what string) string {
				return filepath.Join(b.dir, fmt.Sprintf("sshd-%s-%d", what, run)) + "/"
			},
			clean: func(ctx context.Context, run int) error { return b.removeDests("sshd", run) },
		},
		{
			name: "sshd + rsync --protocol=27", server: b.sshd, user: "root", extra: []string{"--protocol=27"},
			dest: func(run int, what string) string {
				return filepath.Join(b.dir, fmt.Sprintf("sshd27-%s-%d", what, run)) + "/"
			},
			clean: func(ctx context.Context, run int) error { return b.removeDests("sshd27", run) },
		},
	}
}

func (b *bench) removeDests(prefix string, run int) error {
	for _, what := range []string{"tree", "big"} {
		if err := os.RemoveAll(filepath.Join(b.dir, fmt.Sprintf("%s-%s-%d", prefix, what, run))); err != nil {
			return err
		}
	}
	return nil
}

// sshCommand is the ssh the rsync client runs for a server.
func (b *bench) sshCommand(s *benchenv.Server) string {
	_, port, _ := strings.Cut(s.Addr, ":")
	cmd := fmt.Sprintf("ssh -F /dev/null -p %s -i %s -o IdentitiesOnly=yes -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o BatchMode=yes",
		port, b.key, b.knownHosts)
	if b.o.cipher != "" {
		cmd += " -o Ciphers=" + b.o.cipher
	}
	return cmd
}

// ssh runs a command on a server.
func (b *bench) ssh(ctx context.Context, s *benchenv.Server, user string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	argv := append(strings.Fields(b.sshCommand(s))[1:], user+"@127.0.0.1")
	cmd := exec.CommandContext(ctx, "ssh", append(argv, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ssh %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

var statsRE = map[string]*regexp.Regexp{
	"sent":     regexp.MustCompile(`Total bytes sent: ([\d,]+)`),
	"received": regexp.MustCompile(`Total bytes received: ([\d,]+)`),
	"literal":  regexp.MustCompile(`Literal data: ([\d,]+)`),
}

func statNumber(out, name string) int64 {
	m := statsRE[name].FindStringSubmatch(out)
	if m == nil {
		return -1
	}
	n, _ := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
	return n
}

// rsync runs one upload of src to t's destination and measures it.
func (b *bench) rsync(ctx context.Context, t target, src, dest string) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	args := append([]string{"-e", b.sshCommand(t.server), "-a", "--stats"}, t.extra...)
	args = append(args, src+"/", t.user+"@127.0.0.1:"+dest)
	cmd := exec.CommandContext(ctx, "rsync", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	meter := benchenv.StartCPUMeter(t.server)
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	_, cpu := meter.Stop()
	if err != nil {
		return result{}, fmt.Errorf("rsync %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	s := out.String()
	return result{wall: wall, cpu: cpu, sent: statNumber(s, "sent"), received: statNumber(s, "received"), literal: statNumber(s, "literal")}, nil
}

// uploads runs the three timed cases against t: the tree into an empty destination, the same
// again, and (after an untimed upload of the big file) the big file with one byte changed.
func (b *bench) uploads(ctx context.Context, t target, run int) ([3]result, error) {
	var out [3]result
	var err error
	tree := t.dest(run, "tree")
	if out[0], err = b.rsync(ctx, t, b.src, tree); err != nil {
		return out, err
	}
	if out[1], err = b.rsync(ctx, t, b.src, tree); err != nil {
		return out, err
	}
	big := t.dest(run, "big")
	if _, err = b.rsync(ctx, t, b.bigA, big); err != nil {
		return out, err
	}
	out[2], err = b.rsync(ctx, t, b.bigB, big)
	return out, err
}

// makeTrees writes the tree (random, incompressible files of random sizes in 20 directories)
// and two versions of the big file that differ in the byte in the middle, the second one newer.
func (b *bench) makeTrees() error {
	b.src = filepath.Join(b.dir, "src")
	total := int64(b.o.mb) << 20
	sizes := make([]int64, b.o.files)
	var sum float64
	weights := make([]float64, b.o.files)
	rng := mrand.New(mrand.NewPCG(1, 2))
	for i := range weights {
		weights[i] = 0.2 + rng.Float64()
		sum += weights[i]
	}
	var used int64
	for i := range sizes {
		sizes[i] = int64(math.Floor(weights[i] / sum * float64(total)))
		used += sizes[i]
	}
	sizes[0] += total - used
	for i, size := range sizes {
		p := filepath.Join(b.src, fmt.Sprintf("d%02d", i%20), fmt.Sprintf("f%04d.bin", i))
		if err := writeRandom(p, size); err != nil {
			return err
		}
	}
	b.bigA, b.bigB = filepath.Join(b.dir, "bigA"), filepath.Join(b.dir, "bigB")
	if err := writeRandom(filepath.Join(b.bigA, "big.bin"), int64(b.o.bigMB)<<20); err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(b.bigA, "big.bin"))
	if err != nil {
		return err
	}
	data[len(data)/2] ^= 0xff
	if err := os.MkdirAll(b.bigB, 0o755); err != nil {
		return err
	}
	pb := filepath.Join(b.bigB, "big.bin")
	if err := os.WriteFile(pb, data, 0o644); err != nil {
		return err
	}
	later := time.Now().Add(time.Hour)
	return os.Chtimes(pb, later, later)
}

func writeRandom(path string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	buf := make([]byte, size)
	if _, err := rand.Read(buf); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		return errors.Join(fmt.Errorf("write %s", path), err)
	}
	return nil
}
