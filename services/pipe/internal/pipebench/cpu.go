package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc's CPU times (USER_HZ, 100 on every Linux this runs on).
const clockTick = 10 * time.Millisecond

// machineCPU is a reading of /proc/stat's first line: busy and total time of all CPUs.
type machineCPU struct {
	busy, total time.Duration
}

func readMachineCPU() (machineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	fields := strings.Fields(string(line))
	if len(fields) < 5 || fields[0] != "cpu" {
		return machineCPU{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var m machineCPU
	for i, f := range fields[1:] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return machineCPU{}, fmt.Errorf("/proc/stat: %w", err)
		}
		d := time.Duration(v) * clockTick
		// Fields: user nice system idle iowait irq softirq steal guest guest_nice; guest
		// time is already counted in user.
		switch {
		case i >= 8:
		case i == 3 || i == 4:
			m.total += d
		default:
			m.busy += d
			m.total += d
		}
	}
	return m, nil
}

// busyFraction is the share of all CPUs' time that was busy between two readings.
func busyFraction(before, after machineCPU) float64 {
	total := after.total - before.total
	if total <= 0 {
		return 0
	}
	return float64(after.busy-before.busy) / float64(total)
}

// processCPU reads a process's own CPU time (user + system) and that of its waited-for
// children from /proc/PID/stat.
func processCPU(pid int) (own, children time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may hold spaces; the fields after it start at state (3).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 15 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	var t [4]int64 // utime stime cutime cstime: fields 14-17, here 11-14
	for j := range t {
		if t[j], err = strconv.ParseInt(fields[11+j], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	return time.Duration(t[0]+t[1]) * clockTick, time.Duration(t[2]+t[3]) * clockTick, nil
}

// serverCPU is the CPU time spent by a server: portico's own, and for sshd the listener's own
// plus that of the per-connection processes it has reaped (which include `cat`).
func serverCPU(s *server) time.Duration {
	own, children, err := processCPU(s.cmd.Process.Pid)
	if err != nil {
		return 0
	}
	return own + children
}

// waitNoChildren waits (at most timeout) until process pid has no child processes left, so
// that their CPU time has been added to its children's time.
func waitNoChildren(pid int, timeout time.Duration) {
	path := fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(path)
		if err != nil {
			// No children file in this kernel: give the server a moment instead.
			time.Sleep(200 * time.Millisecond)
			return
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cpuMeter measures one timed case: the machine's busy share and a server's CPU time.
type cpuMeter struct {
	s       *server
	machine machineCPU
	server  time.Duration
}

func startCPUMeter(s *server) cpuMeter {
	m, _ := readMachineCPU()
	return cpuMeter{s: s, machine: m, server: serverCPU(s)}
}

// stop returns the machine's busy share and the server's CPU time since the start.
func (c cpuMeter) stop() (busy float64, server time.Duration) {
	m, _ := readMachineCPU()
	if c.s.name == "sshd" {
		waitNoChildren(c.s.cmd.Process.Pid, 5*time.Second)
	}
	return busyFraction(c.machine, m), serverCPU(c.s) - c.server
}
