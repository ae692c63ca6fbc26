package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ProcUsage is what a process has used so far: CPU time (user + system)
// and context switches, voluntary (it blocked) and involuntary (it was
// preempted), summed over all its threads.
type ProcUsage struct {
	CPU         time.Duration `json:"cpu_ns"`
	Voluntary   uint64        `json:"voluntary_csw"`
	Involuntary uint64        `json:"involuntary_csw"`
}

// Sub is u - o, for the usage between two readings.
func (u ProcUsage) Sub(o ProcUsage) ProcUsage {
	return ProcUsage{CPU: u.CPU - o.CPU, Voluntary: u.Voluntary - o.Voluntary, Involuntary: u.Involuntary - o.Involuntary}
}

// SelfUsage is this process's usage from getrusage(RUSAGE_SELF), which
// counts every thread, exited ones included.
func SelfUsage() ProcUsage {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return ProcUsage{}
	}
	return fromRusage(ru.Utime.Nano()+ru.Stime.Nano(), ru.Nvcsw, ru.Nivcsw)
}

// ChildUsage is the usage of a child that has exited, from the rusage
// wait4 returned (os.ProcessState.SysUsage).
func ChildUsage(sys any) (ProcUsage, bool) {
	ru, ok := sys.(*syscall.Rusage)
	if !ok || ru == nil {
		return ProcUsage{}, false
	}
	return fromRusage(ru.Utime.Nano()+ru.Stime.Nano(), ru.Nvcsw, ru.Nivcsw), true
}

func fromRusage(cpuNs, nvcsw, nivcsw int64) ProcUsage {
	return ProcUsage{CPU: time.Duration(cpuNs), Voluntary: uint64(max(nvcsw, 0)), Involuntary: uint64(max(nivcsw, 0))}
}

// ErrNoProcess is returned by ReadUsage when the process is gone.
var ErrNoProcess = errors.New("bench: no such process")

// ReadUsage reads a running process's usage from /proc: CPU from
// /proc/PID/stat (whole process, USER_HZ ticks), context switches summed
// over /proc/PID/task/*/status, because /proc/PID/status counts only the
// main thread. Threads that have exited are not counted; Go rarely ends
// its threads.
func ReadUsage(pid int) (ProcUsage, error) {
	var u ProcUsage
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, fmt.Errorf("%v: %w", err, ErrNoProcess)
	}
	if u.CPU, err = statCPU(stat); err != nil {
		return u, err
	}
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		return u, fmt.Errorf("/proc/%d/task: %w", pid, ErrNoProcess)
	}
	for _, t := range tasks {
		v, iv := taskSwitches(t)
		u.Voluntary += v
		u.Involuntary += iv
	}
	return u, nil
}

// statCPU parses utime and stime (fields 14 and 15, proc(5)) out of a
// /proc/PID/stat line; the command name in parentheses may hold spaces,
// so fields are counted after its closing parenthesis.
func statCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: malformed /proc stat %q", stat)
	}
	f := strings.Fields(string(stat[i+1:]))
	// After the name: state is field 3, so utime (14) is index 11.
	const utimeIdx, stimeIdx = 14 - 3, 15 - 3
	if len(f) <= stimeIdx {
		return 0, fmt.Errorf("bench: short /proc stat %q", stat)
	}
	ut, err1 := strconv.ParseUint(f[utimeIdx], 10, 64)
	st, err2 := strconv.ParseUint(f[stimeIdx], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: /proc stat times %q %q", f[utimeIdx], f[stimeIdx])
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// taskSwitches reads one thread's context-switch counters; a thread that
// exited meanwhile counts as zero.
func taskSwitches(path string) (vol, invol uint64) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		switch k {
		case "voluntary_ctxt_switches":
			vol = n
		case "nonvoluntary_ctxt_switches":
			invol = n
		}
	}
	return vol, invol
}
