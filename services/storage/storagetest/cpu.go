package storagetest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/uberpopug/ates/services/storage"
)

// Benchmarks report CPU time next to wall time: on a machine shared with PostgreSQL, RabbitMQ
// and other work, CPU seconds per operation are far steadier than seconds.

// ProcessCPU is the CPU time (user + system) this process has used.
func ProcessCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Backends is the CPU time of each PostgreSQL backend process, by pid.
type Backends map[int]time.Duration

// Since sums the CPU time the backends used after earlier (a backend new since then counts whole).
func (t Backends) Since(earlier Backends) time.Duration {
	var d time.Duration
	for pid, v := range t {
		d += v - earlier[pid]
	}
	return d
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTicks = 100

// BackendCPU reads the CPU time of the PostgreSQL backends connected to db's database from
// /proc (the server runs on this machine in the test setup); empty on SQLite or when the
// server's processes are not visible.
func BackendCPU(tb testing.TB, db *storage.DB) Backends {
	tb.Helper()
	out := Backends{}
	if db.Dialect != dialect.Postgres {
		return out
	}
	rows, err := db.SQL.Query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		tb.Fatal(err)
	}
	var pids []int
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			tb.Fatal(err)
		}
		pids = append(pids, pid)
	}
	if err := rows.Close(); err != nil {
		tb.Fatal(err)
	}
	for _, pid := range pids {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // not on this machine, or gone
		}
		// Fields after the command (which may hold spaces) start after the last ')'.
		f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		out[pid] = time.Duration(utime+stime) * (time.Second / clockTicks)
	}
	return out
}
