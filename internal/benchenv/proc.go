package benchenv

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

// MachineCPU is a reading of /proc/stat's first line: busy and total time of all CPUs.
type MachineCPU struct {
	Busy, Total time.Duration
}

// ReadMachineCPU reads /proc/stat.
func ReadMachineCPU() (MachineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineCPU{}, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	fields := strings.Fields(string(line))
	if len(fields) < 5 || fields[0] != "cpu" {
		return MachineCPU{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var m MachineCPU
	for i, f := range fields[1:] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return MachineCPU{}, fmt.Errorf("/proc/stat: %w", err)
		}
		d := time.Duration(v) * clockTick
		// Fields: user nice system idle iowait irq softirq steal guest guest_nice; guest
		// time is already counted in user.
		switch {
		case i >= 8:
		case i == 3 || i == 4:
			m.Total += d
		default:
			m.Busy += d
			m.Total += d
		}
	}
	return m, nil
}

// BusyFraction is the share of all CPUs' time that was busy between two readings.
func BusyFraction(before, after MachineCPU) float64 {
	total := after.Total - before.Total
	if total <= 0 {
		return 0
	}
	return float64(after.Busy-before.Busy) / float64(total)
}

// ProcessCPU reads a process's own CPU time (user + system) and that of its waited-for
// children from /proc/PID/stat.
func ProcessCPU(pid int) (own, children time.Duration, err error) {
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

// CPU is the CPU time spent by the server: its own, plus that of the child processes it has
// reaped (sshd's per-connection processes and what they ran).
func (s *Server) CPU() time.Duration {
	own, children, err := ProcessCPU(s.PID())
	if err != nil {
		return 0
	}
	return own + children
}

// RSS is the resident memory of process pid (/proc/PID/status VmRSS), in bytes.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status: VmRSS %q", pid, v)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// WaitNoChildren waits (at most timeout) until process pid has no child processes left, so
// that their CPU time has been added to its children's time.
func WaitNoChildren(pid int, timeout time.Duration) {
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

// CPUMeter measures one timed case: the machine's busy share and a server's CPU time.
type CPUMeter struct {
	s       *Server
	machine MachineCPU
	server  time.Duration
}

// StartCPUMeter starts measuring s.
func StartCPUMeter(s *Server) CPUMeter {
	m, _ := ReadMachineCPU()
	return CPUMeter{s: s, machine: m, server: s.CPU()}
}

// Stop returns the machine's busy share and the server's CPU time since the start. For sshd it
// first waits for its per-connection processes to be reaped.
func (c CPUMeter) Stop() (busy float64, server time.Duration) {
	m, _ := ReadMachineCPU()
	if c.s.Name == "sshd" {
		WaitNoChildren(c.s.PID(), 5*time.Second)
	}
	return BusyFraction(c.machine, m), c.s.CPU() - c.server
}
