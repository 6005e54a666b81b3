package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portico-sh/portico/services/pgs/rsync"
)

// serveEnv makes this binary the portico server over the named directory (the wrapper sets it).
const serveEnv = "PORTICO_RSYNC_BENCH_SERVE"

// profileEnv names the file the server writes its CPU profile to (only for timed runs).
const profileEnv = "PORTICO_RSYNC_BENCH_CPUPROFILE"

func main() {
	if root := os.Getenv(serveEnv); root != "" {
		os.Exit(serve(root))
	}
	runs := flag.Int("runs", 3, "runs per measurement (the median is reported)")
	files := flag.Int("files", 2000, "files in the tree of the initial upload")
	treeMB := flag.Int("tree-mb", 100, "total size of that tree in MB")
	bigMB := flag.Int("big-mb", 50, "size of the file that gets a 1-byte change, in MB")
	dir := flag.String("dir", os.TempDir(), "where the trees and destinations are written (e.g. a tmpfs)")
	profDir := flag.String("cpuprofile", "", "directory for CPU profiles of portico's server, one per timed run: cpu-SCENARIO-RUN.pprof, SCENARIO 0, 1, 2 in table order")
	with27 := flag.Bool("with27", false, "also compare both servers with the client at --protocol=27")
	only := flag.String("only", "", "run only the scenarios whose name contains this (e.g. \"1-byte\")")
	base := flag.String("base", "", "another build of this command (e.g. main's) whose portico server runs as a second pair with real rsync, alternating with the first: an A/B of two builds under the same load")
	flag.Parse()
	if err := run(*dir, *profDir, *only, *base, *with27, *runs, *files, *treeMB<<20, *bigMB<<20); err != nil {
		slog.Error("benchmark failed", "err", err)
		os.Exit(1)
	}
}

// serve runs portico's server for the wrapper, with a CPU profile if the benchmark asked for one.
func serve(root string) int {
	if p := os.Getenv(profileEnv); p != "" {
		if f, err := os.Create(p); err == nil {
			if err := pprof.StartCPUProfile(f); err == nil {
				defer func() {
					pprof.StopCPUProfile()
					f.Close()
				}()
			}
		}
	}
	cmd := strings.Join(os.Args[1:], " ")
	return rsync.Serve(context.Background(), cmd, os.Stdin, os.Stdout, os.Stderr, rsync.DirFS(root))
}

// server is one side of the comparison.
type server struct {
	name    string
	wrapper string
	// dest returns the client's destination argument for a destination directory.
	dest func(dir string) string
	// clientArgs are extra client options.
	clientArgs []string
}

type result struct {
	wall        time.Duration
	cpu         time.Duration // the server's user + system time
	sent, recvd int64
	literal     int64
}

func run(dir, profDir, only, base string, with27 bool, runs, files, treeBytes, bigBytes int) error {
	work, err := os.MkdirTemp(dir, "portico-rsync-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tree := filepath.Join(work, "tree")
	if err := makeTree(tree, files, treeBytes); err != nil {
		return err
	}
	big := filepath.Join(work, "big")
	if err := makeTree(big, 1, bigBytes); err != nil {
		return err
	}
	bigFile := filepath.Join(big, "f00000.bin")

	porticoWrapper := filepath.Join(work, "portico-wrapper")
	realWrapper := filepath.Join(work, "real-wrapper")
	// Both wrappers drop the host name like ssh (the real one runs the remote command locally)
	// and record the server's CPU time with /usr/bin/time.
	timing := filepath.Join(work, "server-time")
	timeCmd := fmt.Sprintf("/usr/bin/time -q -o %q -f '%%U %%S'", timing)
	os.WriteFile(porticoWrapper, fmt.Appendf(nil, "#!/bin/sh\nshift\nexec env %s=\"$PORTICO_DEST\" %s %q \"$@\"\n", serveEnv, timeCmd, self), 0o755)
	os.WriteFile(realWrapper, fmt.Appendf(nil, "#!/bin/sh\nshift\nexec %s \"$@\"\n", timeCmd), 0o755)
	// Each real server follows the portico server it is compared with (same client options).
	porticoDest := func(string) string { return "host:/" }
	realDest := func(d string) string { return "host:" + d + "/" }
	servers := []server{
		{name: "portico, protocol 32", wrapper: porticoWrapper, dest: porticoDest},
		{name: "rsync --server, protocol 32", wrapper: realWrapper, dest: realDest},
	}
	if base != "" {
		baseWrapper := filepath.Join(work, "base-wrapper")
		os.WriteFile(baseWrapper, fmt.Appendf(nil, "#!/bin/sh\nshift\nexec env %s=\"$PORTICO_DEST\" %s %q \"$@\"\n", serveEnv, timeCmd, base), 0o755)
		servers = append(servers,
			server{name: "portico (-base build), protocol 32", wrapper: baseWrapper, dest: porticoDest},
			server{name: "rsync --server, protocol 32", wrapper: realWrapper, dest: realDest})
	}
	if with27 {
		servers = append(servers,
			server{name: "portico, --protocol=27", wrapper: porticoWrapper, dest: porticoDest, clientArgs: []string{"--protocol=27"}},
			server{name: "rsync --server, --protocol=27", wrapper: realWrapper, dest: realDest, clientArgs: []string{"--protocol=27"}})
	}

	type scenario struct {
		name    string
		src     string
		prepare func(dest string) error // before each timed run
	}
	if profDir != "" {
		if err := os.MkdirAll(profDir, 0o755); err != nil {
			return err
		}
	}
	// profile is the profile file of a timed run of portico's server ("" for none).
	upload := func(s server, src, dest, profile string) (result, error) {
		args := append([]string{"-e", s.wrapper, "-a", "--stats"}, s.clientArgs...)
		args = append(args, src+"/", s.dest(dest))
		cmd := exec.Command("rsync", args...)
		cmd.Env = append(os.Environ(), "PORTICO_DEST="+dest, profileEnv+"="+profile)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		wall := time.Since(start)
		if err != nil {
			return result{}, fmt.Errorf("rsync %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		var user, sys float64
		if t, err := os.ReadFile(timing); err == nil {
			fmt.Sscan(string(t), &user, &sys)
		}
		return result{
			wall:    wall,
			cpu:     time.Duration((user + sys) * float64(time.Second)),
			sent:    statNumber(out, "Total bytes sent"),
			recvd:   statNumber(out, "Total bytes received"),
			literal: statNumber(out, "Literal data"),
		}, nil
	}
	scenarios := []scenario{
		{"initial upload", tree, func(dest string) error {
			if err := os.RemoveAll(dest); err != nil {
				return err
			}
			return os.MkdirAll(dest, 0o755)
		}},
		{"unchanged re-upload", tree, nil},
		{"1-byte change in one file", big, nil},
	}
	fmt.Printf("| scenario | server | wall (median of %d) | wall ratio portico / rsync | server CPU (median) | CPU ratio portico / rsync | bytes sent | bytes received | literal data |\n", runs)
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for si, sc := range scenarios {
		if !strings.Contains(sc.name, only) {
			continue
		}
		// Runs alternate between the servers, so that load from elsewhere on the machine
		// spreads over all of them.
		results := make([][]result, len(servers))
		for r := range runs {
			for i, s := range servers {
				d := i
				if sc.prepare != nil {
					// Destinations made afresh each run take turns between the servers: on
					// ext4 where a directory lands, and how many inodes were freed there in
					// the last half minute (which the kernel skips over, one by one, before
					// reusing one, on a file system without a journal), made one destination
					// three times as costly to fill as another for either server.
					d = (i + r) % len(servers)
				}
				dest := filepath.Join(work, fmt.Sprintf("dest-%d-%s", d, filepath.Base(sc.src)))
				if err := os.MkdirAll(dest, 0o755); err != nil {
					return err
				}
				switch {
				case sc.prepare != nil:
					if err := sc.prepare(dest); err != nil {
						return err
					}
				case sc.src == big:
					// Upload the old version, then change one byte in the middle.
					if err := setByte(bigFile, int64(bigBytes/2), byte(r)); err != nil {
						return err
					}
					if _, err := upload(s, sc.src, dest, ""); err != nil {
						return err
					}
					if err := setByte(bigFile, int64(bigBytes/2), byte(r+100)); err != nil {
						return err
					}
				case r == 0:
					// Unchanged re-upload: the destination must hold the tree first.
					if _, err := upload(s, sc.src, dest, ""); err != nil {
						return err
					}
				}
				profile := ""
				if profDir != "" && i == 0 {
					profile = filepath.Join(profDir, fmt.Sprintf("cpu-%d-%d.pprof", si, r))
				}
				res, err := upload(s, sc.src, dest, profile)
				if err != nil {
					return err
				}
				results[i] = append(results[i], res)
			}
		}
		var base, baseCPU time.Duration
		for i, s := range servers {
			rs := results[i]
			cpus := make([]time.Duration, len(rs))
			for j, r := range rs {
				cpus[j] = r.cpu
			}
			slices.Sort(cpus)
			slices.SortFunc(rs, func(a, b result) int { return int(a.wall - b.wall) })
			m := rs[len(rs)/2]
			cpu := cpus[len(cpus)/2]
			ratio, cpuRatio := "—", "—"
			if i%2 == 0 {
				base, baseCPU = m.wall, cpu
			} else {
				ratio = fmt.Sprintf("%.2f×", float64(base)/float64(m.wall))
				if cpu > 0 {
					cpuRatio = fmt.Sprintf("%.2f×", float64(baseCPU)/float64(cpu))
				}
			}
			fmt.Printf("| %s | %s | %.3f s | %s | %.2f s | %s | %d | %d | %d |\n", sc.name, s.name, m.wall.Seconds(), ratio,
				cpu.Seconds(), cpuRatio, m.sent, m.recvd, m.literal)
		}
	}
	return nil
}

// makeTree writes files of random (incompressible) content whose sizes add up to total bytes,
// spread over subdirectories, with mtimes in the past.
func makeTree(dir string, files, total int) error {
	rng := rand.New(rand.NewPCG(uint64(files), uint64(total)))
	sizes := make([]int, files)
	left := total
	for i := range sizes {
		if i == files-1 {
			sizes[i] = left
			break
		}
		// Sizes vary between 0 and twice the average.
		avg := left / (files - i)
		sizes[i] = min(left, rng.IntN(2*avg+1))
		left -= sizes[i]
	}
	old := time.Now().Add(-time.Hour)
	for i, n := range sizes {
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i%20), fmt.Sprintf("f%05d.bin", i))
		if files == 1 {
			p = filepath.Join(dir, "f00000.bin")
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		b := make([]byte, n)
		for j := 0; j+8 <= n; j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				b[j+k] = byte(v >> (8 * k))
			}
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
		if err := os.Chtimes(p, old, old); err != nil {
			return err
		}
	}
	return nil
}

// setByte changes one byte of a file and gives it a new mtime, as an edit would.
func setByte(p string, off int64, v byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte{v}, off); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	t := time.Now().Add(time.Duration(v) * time.Second)
	return os.Chtimes(p, t, t)
}

func statNumber(out []byte, name string) int64 {
	m := regexp.MustCompile(regexp.QuoteMeta(name) + `: ([\d,]+)`).FindSubmatch(out)
	if m == nil {
		return -1
	}
	n, _ := strconv.ParseInt(strings.ReplaceAll(string(m[1]), ",", ""), 10, 64)
	return n
}
