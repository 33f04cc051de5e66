package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
)

// What the machine and its processes used: CPU time by group of processes, memory, load.
// Linux only: where /proc is missing the figures are empty or zero.

// percentile is the nearest-rank percentile p (0–100) of sorted durations (0 for none).
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(0, min(len(sorted)-1, i-1))]
}

// hostCPU is the CPU time (user and system) the processes of this machine have used so far, by
// group: "ates <command>" (the processes under measurement, by their pid), "atesbench" (this
// load generator and its subscribers), "rabbitmq" (the broker's Erlang VM), "postgres <context>"
// (the backends serving a context's database, named by its suffix), "postgres" (PostgreSQL's own
// processes: WAL writer, checkpointer, …) and "other". A process that ended between two readings
// takes its time with it, so the connection pools, which keep their backends, are read exactly
// and the rest nearly.
func hostCPU(ates map[int]string) map[string]time.Duration {
	out := map[string]time.Duration{}
	dirs, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name is in parentheses and may hold spaces: fields start after ") ".
		end := strings.LastIndexByte(string(stat), ')')
		if end < 0 {
			continue
		}
		f := strings.Fields(string(stat[end+2:]))
		if len(f) < 13 {
			continue
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		cpu := time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
		comm := string(stat[strings.IndexByte(string(stat), '(')+1 : end])
		group := "other"
		switch {
		case ates[pid] != "":
			group = "ates " + ates[pid]
		case pid == self:
			group = "atesbench"
		case comm == "beam.smp":
			group = "rabbitmq"
		case strings.HasPrefix(comm, "postgres"):
			group = "postgres"
			// A backend's title: "postgres: 15/main: user database host(port) state".
			cmdline, _ := os.ReadFile("/proc/" + d.Name() + "/cmdline")
			if t := strings.Fields(strings.ReplaceAll(string(cmdline), "\x00", " ")); len(t) >= 4 && strings.HasSuffix(t[1], ":") && !strings.HasSuffix(t[2], ":") {
				if i := strings.LastIndexByte(t[3], '_'); i >= 0 {
					group = "postgres " + t[3][i+1:]
				}
			}
		}
		out[group] += cpu
	}
	return out
}

// cpuSplit formats the CPU each group of hostCPU used between two readings, per completion.
func cpuSplit(before, after map[string]time.Duration, n int) string {
	type part struct {
		name string
		d    time.Duration
	}
	var parts []part
	var total time.Duration
	for name, d := range after {
		if d -= before[name]; d > 0 {
			parts = append(parts, part{name, d})
			total += d
		}
	}
	slices.SortFunc(parts, func(a, b part) int { return int(b.d - a.d) })
	var b strings.Builder
	fmt.Fprintf(&b, "%v per completion in all", (total / time.Duration(n)).Round(time.Microsecond))
	for _, p := range parts {
		fmt.Fprintf(&b, "; %s %v", p.name, (p.d / time.Duration(n)).Round(time.Microsecond))
	}
	return b.String()
}

// loadAverage is the 1-, 5- and 15-minute load average ("?" where /proc is missing).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// vmRSS reads a process's resident set size from /proc/<pid>/status (0 where there is none).
func vmRSS(pid string) uint64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// memSample is a Go process's memory: VmRSS as found, then the rest after a full collection.
type memSample struct {
	RSSAsFound            uint64 // VmRSS before the collection, bytes
	HeapInuse, StackInuse uint64 // runtime.MemStats
	Sys                   uint64 // runtime.MemStats: everything the Go runtime mapped, resident or not
	RSS                   uint64 // VmRSS after the collection, bytes
	Goroutines            int
}

// sampleSelf samples this process after full collections that return the free heap pages to
// the OS.
func sampleSelf() memSample {
	asFound := vmRSS("self")
	for range 3 {
		runtime.GC()
	}
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSample{
		RSSAsFound: asFound, HeapInuse: m.HeapInuse, StackInuse: m.StackInuse, Sys: m.Sys,
		RSS: vmRSS("self"), Goroutines: runtime.NumGoroutine(),
	}
}

// perSocket formats the difference from a to b per socket.
func (a memSample) perSocket(b memSample, n int, collected string) string {
	kib := func(x, y uint64) float64 { return (float64(x) - float64(y)) / 1024 / float64(n) }
	return fmt.Sprintf("VmRSS %.1f KiB after %s (%.1f KiB as found before it); heap in use %.1f KiB, goroutine stacks %.1f KiB, goroutines %.2f; Go runtime Sys %.1f KiB (mapped, not all resident)",
		kib(b.RSS, a.RSS), collected, kib(b.RSSAsFound, a.RSSAsFound), kib(b.HeapInuse, a.HeapInuse), kib(b.StackInuse, a.StackInuse),
		float64(b.Goroutines-a.Goroutines)/float64(n), kib(b.Sys, a.Sys))
}
