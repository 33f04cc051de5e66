package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/uberpopug/ates/services/bus/rabbitmq"
	"github.com/uberpopug/ates/services/testenv"
)

// Measurements of the live balance feed (R-ACC-10). They assert nothing about speed or size:
// they log figures, and run only with ATES_MEASURE=1 so that `make test` stays fast. Run them
// without the race detector:
//
//	ATES_MEASURE=1 go test -run 'TestMeasure' -v -count=1 -timeout 30m ./cmd/ates/
//
// ATES_MEASURE_COMPLETIONS (default 500) and ATES_MEASURE_SOCKETS (default 2000) size them,
// ATES_MEASURE_WARMUP the unmeasured completions run at the same rate before the measured ones
// (default two seconds' worth; 0 measures from the process's first completion);
// ATES_MEASURE_PROTOCOL picks the subscriber sockets' subprotocol (graphql-transport-ws, the
// default, or graphql-ws); ATES_MEASURE_HEAP_PROFILE=file writes the gateway process's heap
// profile with the sockets open, ATES_MEASURE_CPU_PROFILE=file the push latency measurement's
// CPU profile from its first measured completion to its last push, ATES_MEASURE_SERIES=file
// each measured completion's send time, response time and push latency.
// ATES_MEASURE_STAGES=1 splits the push latency into its stages on RabbitMQ: a tap queue bound
// to every event notes when each passes the broker. The tap is a consumer aTES does not have —
// as many deliveries again as analytics gets, each decoded in this process — so the headline
// figures are measured without it.

func requireMeasure(t *testing.T) {
	t.Helper()
	if os.Getenv("ATES_MEASURE") == "" {
		t.Skip("a measurement: set ATES_MEASURE=1 to run it")
	}
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q is not a positive number", name, v)
	}
	return n
}

// envCount is envInt for a count that may be zero.
func envCount(t *testing.T, name string, def int) int {
	t.Helper()
	if os.Getenv(name) == "0" {
		return 0
	}
	return envInt(t, name, def)
}

// measureProto is the subprotocol ATES_MEASURE_PROTOCOL names.
func measureProto(t *testing.T) wsProto {
	t.Helper()
	switch v := os.Getenv("ATES_MEASURE_PROTOCOL"); v {
	case "", transportWS.Name:
		return transportWS
	case legacyWS.Name:
		return legacyWS
	default:
		t.Fatalf("ATES_MEASURE_PROTOCOL=%q: want %s or %s", v, transportWS.Name, legacyWS.Name)
		return wsProto{}
	}
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, len(sorted)*p/100)]
}

// TestMeasurePushLatency measures how long after completeTask returns the completing popug's
// subscriber receives the REWARD push: p50 and p99 over ATES_MEASURE_COMPLETIONS completions
// started at a steady rate (ATES_MEASURE_RATE per second, default 50; up to 256 in flight), on
// the embedded default and on PostgreSQL + RabbitMQ (gateway + worker; ATES_MEASURE_MODE=embedded
// or postgres picks one). The path: tasks commit → tasks relay → bus → accounting consumer
// commit → accounting relay → bus → the gateway's private feed → hub → WebSocket (R-ACC-10).
func TestMeasurePushLatency(t *testing.T) {
	requireMeasure(t)
	n := envInt(t, "ATES_MEASURE_COMPLETIONS", 500)
	rate := envInt(t, "ATES_MEASURE_RATE", 50)
	mode := os.Getenv("ATES_MEASURE_MODE")
	if mode != "postgres" {
		t.Run("embedded", func(t *testing.T) {
			_, base := MustStart(t, []string{
				"ATES_HTTP_ADDR=127.0.0.1:0", "ATES_DATA_DIR=" + t.TempDir(), "ATES_LOG_LEVEL=warn",
				"ATES_ADMIN_USERNAME=boss", "ATES_ADMIN_PASSWORD=boss-beak-print",
			})
			measurePushLatency(t, base, n, rate, nil, nil)
		})
	}
	if mode != "embedded" {
		t.Run("postgres+rabbitmq", func(t *testing.T) {
			env := mustProduction(t, "ATES_LOG_LEVEL=warn")
			_, base := MustStart(t, env.Environ, "gateway")
			MustStart(t, env.Environ, "worker")
			var tap *brokerTap
			if os.Getenv("ATES_MEASURE_STAGES") == "1" {
				tap = mustTapBroker(t, env.Name)
			}
			measurePushLatency(t, base, n, rate, tap, statementStatsOf(t, env.Name))
		})
	}
}

// statementStats reads pg_stat_statements for the databases of one run (named prefix_*): with
// ATES_MEASURE_STATEMENTS=1, on a PostgreSQL server that loads the module
// (shared_preload_libraries = 'pg_stat_statements'), the push latency measurement logs the
// statements that took the most time between its first completion and its last push. Nil (and
// every method a no-op) otherwise.
type statementStats struct {
	db     *sql.DB
	prefix string
}

func statementStatsOf(t *testing.T, prefix string) *statementStats {
	t.Helper()
	if os.Getenv("ATES_MEASURE_STATEMENTS") != "1" {
		return nil
	}
	db, err := sql.Open("postgres", testenv.PostgresURL())
	if err == nil {
		_, err = db.Exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
	}
	if err == nil {
		_, err = db.Exec("SELECT count(*) FROM pg_stat_statements")
	}
	if err != nil {
		t.Logf("no statement statistics: %v", err)
		return nil
	}
	t.Cleanup(func() { db.Close() })
	return &statementStats{db: db, prefix: prefix}
}

func (s *statementStats) reset(t *testing.T) {
	if s == nil {
		return
	}
	if _, err := s.db.Exec("SELECT pg_stat_statements_reset()"); err != nil {
		t.Fatal(err)
	}
}

// log logs the 20 statements of the run's databases that took the most time, per completion.
func (s *statementStats) log(t *testing.T, n int) {
	if s == nil {
		return
	}
	rows, err := s.db.Query(`SELECT substr(d.datname, length($1) + 2), calls, total_exec_time, rows, wal_records,
	left(regexp_replace(query, '\s+', ' ', 'g'), 100)
FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
WHERE d.datname LIKE $1 || '\_%'
ORDER BY total_exec_time DESC LIMIT 20`, s.prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "statements by time spent executing, per completion (%d completions):\n  %-10s %8s %10s %8s %8s  %s", n, "database", "calls", "time", "rows", "WAL rec", "statement")
	for rows.Next() {
		var (
			db, query             string
			calls, count, walRecs int64
			ms                    float64
		)
		if err := rows.Scan(&db, &calls, &ms, &count, &walRecs, &query); err != nil {
			t.Fatal(err)
		}
		per := float64(n)
		fmt.Fprintf(&b, "\n  %-10s %8.3f %8.0fµs %8.2f %8.2f  %s", db, float64(calls)/per, ms*1000/per, float64(count)/per, float64(walRecs)/per, query)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	t.Log(b.String())
}

// startCPUProfile writes this process's CPU profile to the file ATES_MEASURE_CPU_PROFILE names,
// if any, until the function it returns is called.
func startCPUProfile(t *testing.T) (stop func()) {
	path := os.Getenv("ATES_MEASURE_CPU_PROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// hostCPU is the CPU time (user and system) the processes of this machine have used so far, by
// group: "this process", "rabbitmq" (the broker's Erlang VM), "postgres <context>" (the
// backends serving a context's database, named by its suffix), "postgres" (PostgreSQL's own
// processes: WAL writer, checkpointer, …) and "other". Linux only; empty where /proc is missing.
// A process that ended between two readings takes its time with it, so the connection pools,
// which keep their backends, are read exactly and the rest nearly.
func hostCPU() map[string]time.Duration {
	out := map[string]time.Duration{}
	dirs, _ := os.ReadDir("/proc")
	self := strconv.Itoa(os.Getpid())
	for _, d := range dirs {
		pid := d.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
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
		case pid == self:
			group = "this process"
		case comm == "beam.smp":
			group = "rabbitmq"
		case comm == "postgres" || strings.HasPrefix(comm, "postgres"):
			group = "postgres"
			// A backend's title: "postgres: 15/main: user database host(port) state".
			cmdline, _ := os.ReadFile("/proc/" + pid + "/cmdline")
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

// loadAverage is the 1-minute load average from /proc/loadavg ("?" where there is none).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// brokerTap notes when each task's task.completed and REWARD balance.changed events pass
// through the exchange, to split the push latency into its stages.
type brokerTap struct {
	mu                 sync.Mutex
	completed, rewards map[string]time.Time
}

func mustTapBroker(t *testing.T, exchange string) *brokerTap {
	t.Helper()
	conn, err := amqp.Dial(testenv.AMQPURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err == nil {
		err = ch.QueueBind(q.Name, "#", exchange, false, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	tap := &brokerTap{completed: map[string]time.Time{}, rewards: map[string]time.Time{}}
	go func() {
		for d := range deliveries {
			at := time.Now()
			msgs, err := rabbitmq.Messages(d) // a CloudEvents batch carries several events
			if err != nil {
				continue
			}
			for _, m := range msgs {
				var e struct {
					Data struct{ TaskID, Type string }
				}
				if json.Unmarshal(m.Body, &e) != nil {
					continue
				}
				tap.mu.Lock()
				switch {
				case m.Topic == "task.completed":
					tap.completed[e.Data.TaskID] = at
				case m.Topic == "balance.changed" && e.Data.Type == "REWARD":
					tap.rewards[e.Data.TaskID] = at
				}
				tap.mu.Unlock()
			}
		}
	}()
	return tap
}

func measurePushLatency(t *testing.T, base string, n, rate int, tap *brokerTap, stats *statementStats) {
	bossToken, _ := mustLogin(t, base, "boss", "boss-beak-print")
	mgr := mustCreatePopug(t, base, bossToken, "max", "MANAGER")
	// ATES_MEASURE_POPUGS workers (default 1: every task is kiwi's), each following their own
	// balance on a socket of their own.
	tokens := map[string]string{}       // by account id
	pending := map[string]*balanceSub{} // by account id: no push seen yet
	var subs []*balanceSub
	for i := range envInt(t, "ATES_MEASURE_POPUGS", 1) {
		name := "kiwi"
		if i > 0 {
			name = fmt.Sprintf("kiwi%d", i)
		}
		p := mustSignUp(t, base, name)
		tokens[p.ID] = p.Token
		sub := mustSubscribeBalance(t, name, mustDialWS(t, base, transportWS, p.Token), "")
		pending[p.ID] = sub
		subs = append(subs, sub)
	}
	// Each subscription is live once it has had a push: tasks are created until each popug has
	// been assigned one and seen its FEE, so that no push of the measured tasks is missed.
	for created := 1; len(pending) > 0; created++ {
		if created > 50+20*len(subs) {
			t.Fatalf("%d of %d subscriptions never got a push", len(pending), len(subs))
		}
		task := mustCreateTask(t, base, mgr.Token, created)
		for _, sub := range subs {
			sub.mu.Lock()
			sub.skip[task.ID] = true
			sub.mu.Unlock()
		}
		sub, ok := pending[task.Assignee.ID]
		if !ok {
			continue
		}
		for wait := time.Now().Add(5 * time.Second); ; {
			if _, err := sub.next(20 * time.Millisecond); !errors.Is(err, errTimeout) {
				t.Fatalf("%s: %v", sub.name, err)
			}
			sub.mu.Lock()
			live := len(sub.all) > 0
			sub.mu.Unlock()
			if live {
				break
			}
			if time.Now().After(wait) {
				t.Fatalf("%s got no push of task %s", sub.name, task.ID)
			}
		}
		delete(pending, task.Assignee.ID)
	}

	// Each subscriber's reader notes when each push arrives.
	var mu sync.Mutex
	fees, rewards := map[string]time.Time{}, map[string]time.Time{}
	done := make(chan struct{})
	readerDone := make(chan error, len(subs))
	for _, sub := range subs {
		go func() {
			for {
				p, err := sub.next(time.Second)
				select {
				case <-done:
					readerDone <- nil
					return
				default:
				}
				if err != nil {
					if err == errTimeout {
						continue
					}
					readerDone <- err
					return
				}
				if p.Entry.Task != nil {
					mu.Lock()
					map[string]map[string]time.Time{"FEE": fees, "REWARD": rewards}[p.Entry.Type][p.Entry.Task.ID] = p.received
					mu.Unlock()
				}
			}
		}()
	}
	// The first warm completions run at the same rate right before the measured n, unmeasured:
	// the measurement is of a running system, its connection pools open and its statements
	// prepared, not of a process's first second.
	warm := envCount(t, "ATES_MEASURE_WARMUP", 2*rate)
	allIDs, allAssignees := make([]string, warm+n), make([]string, warm+n)
	ids := allIDs[warm:]
	// waitPushes waits for a push of each task (the sync tasks' pushes do not count).
	waitPushes := func(what string, m map[string]time.Time) {
		deadline := time.Now().Add(5 * time.Minute)
		for {
			got := 0
			mu.Lock()
			for _, id := range allIDs {
				if _, ok := m[id]; ok {
					got++
				}
			}
			mu.Unlock()
			if got >= len(allIDs) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d %s pushes arrived", got, len(allIDs), what)
			}
			select {
			case err := <-readerDone:
				t.Fatalf("%d of %d %s pushes arrived, then the subscription failed: %v", got, len(allIDs), what, err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}

	// The tasks to complete, created by 8 clients at once; the completions start once the
	// ledger has caught up with them, so they queue behind nothing.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(allIDs) {
					return
				}
				task := mustCreateTask(t, base, mgr.Token, 1000+i)
				allIDs[i], allAssignees[i] = task.ID, task.Assignee.ID
			}
		})
	}
	wg.Wait()
	waitPushes("fee", fees)
	time.Sleep(time.Second)

	// Completion i starts at begin + i/rate (later when 256 are in flight already); the
	// measurement starts with the first measured one.
	allReturned, allSent := make([]time.Time, len(allIDs)), make([]time.Time, len(allIDs))
	returned, sent := allReturned[warm:], allSent[warm:]
	inFlight := make(chan struct{}, 256)
	var (
		stopProfile func()
		load0       string
		cpu0        time.Duration
		host0       map[string]time.Duration
		start       time.Time
	)
	begin := time.Now()
	for i, id := range allIDs {
		at := begin.Add(time.Duration(i) * time.Second / time.Duration(rate))
		time.Sleep(time.Until(at))
		if i == warm {
			stats.reset(t)
			stopProfile = startCPUProfile(t)
			load0, cpu0, host0 = loadAverage(), processCPU(t), hostCPU()
			start = time.Now()
		}
		inFlight <- struct{}{}
		wg.Go(func() {
			defer func() { <-inFlight }()
			allSent[i] = time.Now()
			mustComplete(t, base, tokens[allAssignees[i]], id)
			allReturned[i] = time.Now()
		})
	}
	wg.Wait()
	completing := time.Since(start)
	waitPushes("reward", rewards)
	draining := time.Since(start)
	cpu, host := processCPU(t)-cpu0, hostCPU()
	stopProfile()
	t.Logf("%d popugs, %d completions offered at %d/s after %d unmeasured: all returned after %v (%.0f/s), all REWARD pushes after %v (%.0f/s); this process (gateway and worker) used %v of CPU, %v per completion; load average %s → %s",
		len(subs), n, rate, warm, completing.Round(time.Millisecond), float64(n)/completing.Seconds(), draining.Round(time.Millisecond), float64(n)/draining.Seconds(),
		cpu.Round(time.Millisecond), (cpu / time.Duration(n)).Round(time.Microsecond), load0, loadAverage())
	if len(host) > 0 {
		t.Logf("CPU of this machine from the first completion to the last push: %s", cpuSplit(host0, host, n))
	}
	stats.log(t, n)
	close(done)
	for range subs {
		if err := <-readerDone; err != nil {
			t.Fatal(err)
		}
	}
	var fromReturn, fromSend []time.Duration
	early := 0
	for i, id := range ids {
		at := rewards[id]
		d := at.Sub(returned[i])
		if d < 0 {
			early++
			d = 0
		}
		fromReturn = append(fromReturn, d)
		fromSend = append(fromSend, at.Sub(sent[i]))
	}
	if path := os.Getenv("ATES_MEASURE_SERIES"); path != "" {
		// One line per completion: when it was sent (ms since the first), how long completeTask
		// took and how long its push took after it returned (ms).
		var b strings.Builder
		for i := range ids {
			fmt.Fprintf(&b, "%.3f %.3f %.3f\n", sent[i].Sub(start).Seconds()*1000, returned[i].Sub(sent[i]).Seconds()*1000, fromReturn[i].Seconds()*1000)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(fromReturn)
	slices.Sort(fromSend)
	t.Logf("push latency over %d completions at %d/s: completeTask returned → REWARD push received: p50 %v, p99 %v, max %v (%d pushes arrived before the HTTP response, counted as 0)",
		n, rate, percentile(fromReturn, 50).Round(10*time.Microsecond), percentile(fromReturn, 99).Round(10*time.Microsecond), fromReturn[len(fromReturn)-1].Round(10*time.Microsecond), early)
	t.Logf("push latency over %d completions at %d/s: completeTask sent → REWARD push received: p50 %v, p99 %v, max %v",
		n, rate, percentile(fromSend, 50).Round(10*time.Microsecond), percentile(fromSend, 99).Round(10*time.Microsecond), fromSend[len(fromSend)-1].Round(10*time.Microsecond))
	if tap == nil {
		return
	}
	var relay, accounting, gateway []time.Duration
	tap.mu.Lock()
	for i, id := range ids {
		c, r := tap.completed[id], tap.rewards[id]
		if c.IsZero() || r.IsZero() {
			continue
		}
		relay = append(relay, c.Sub(returned[i]))
		accounting = append(accounting, r.Sub(c))
		gateway = append(gateway, rewards[id].Sub(r))
	}
	tap.mu.Unlock()
	for _, stage := range []struct {
		name string
		d    []time.Duration
	}{
		{"completeTask returned → task.completed on the broker (the worker's tasks relay)", relay},
		{"task.completed → balance.changed on the broker (accounting consumer and relay)", accounting},
		{"balance.changed → push received (gateway feed, hub, WebSocket)", gateway},
	} {
		slices.Sort(stage.d)
		t.Logf("  stage %s: p50 %v, p99 %v (%d samples)", stage.name,
			percentile(stage.d, 50).Round(10*time.Microsecond), percentile(stage.d, 99).Round(10*time.Microsecond), len(stage.d))
	}
}

// memSample is a process's memory: VmRSS as found, then the rest after a full collection that
// returns the free heap pages to the OS.
type memSample struct {
	RSSAsFound            uint64 // VmRSS before the collection, bytes
	HeapInuse, StackInuse uint64 // runtime.MemStats
	Sys                   uint64 // runtime.MemStats: everything the Go runtime mapped, resident or not
	RSS                   uint64 // VmRSS after the collection, bytes
	Goroutines            int
}

func sampleMemory(tb testing.TB) memSample {
	tb.Helper()
	asFound := vmRSS(tb)
	for range 3 {
		runtime.GC()
	}
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSample{
		RSSAsFound: asFound, HeapInuse: m.HeapInuse, StackInuse: m.StackInuse, Sys: m.Sys,
		RSS: vmRSS(tb), Goroutines: runtime.NumGoroutine(),
	}
}

// vmRSS reads the process's resident set size from /proc/self/status (0 where there is none).
func vmRSS(tb testing.TB) uint64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/status")
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

func (a memSample) perSocket(b memSample, n int) string {
	kib := func(x, y uint64) float64 { return (float64(x) - float64(y)) / 1024 / float64(n) }
	return fmt.Sprintf("VmRSS %.1f KiB after a full GC and FreeOSMemory (%.1f KiB as found before it); heap in use %.1f KiB, goroutine stacks %.1f KiB, goroutines %.2f; Go runtime Sys %.1f KiB (mapped, not all resident)",
		kib(b.RSS, a.RSS), kib(b.RSSAsFound, a.RSSAsFound), kib(b.HeapInuse, a.HeapInuse), kib(b.StackInuse, a.StackInuse),
		float64(b.Goroutines-a.Goroutines)/float64(n), kib(b.Sys, a.Sys))
}

// raiseFileLimit lifts the soft limit of open files to the hard one.
func raiseFileLimit(tb testing.TB, need int) {
	tb.Helper()
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		tb.Fatal(err)
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			tb.Fatal(err)
		}
	}
	if l.Cur < uint64(need) {
		tb.Skipf("needs %d open files, the limit is %d", need, l.Cur)
	}
}

// TestMeasureSubscriberMemory measures what an idle WebSocket subscribed to balanceChanged
// costs the gateway: ATES_MEASURE_SOCKETS sockets (default 2000) are opened by a separate
// client process (this test binary re-run as TestMeasureSubscriberClient), so the gateway
// process's heap and RSS deltas hold only the server side; the client reports its own.
func TestMeasureSubscriberMemory(t *testing.T) {
	requireMeasure(t)
	n := envInt(t, "ATES_MEASURE_SOCKETS", 2000)
	proto := measureProto(t)
	raiseFileLimit(t, n+1000)
	_, base := MustStart(t, []string{
		"ATES_HTTP_ADDR=127.0.0.1:0", "ATES_DATA_DIR=" + t.TempDir(), "ATES_LOG_LEVEL=warn",
		"ATES_ADMIN_USERNAME=boss", "ATES_ADMIN_PASSWORD=boss-beak-print",
	})
	bossToken, _ := mustLogin(t, base, "boss", "boss-beak-print")
	mgr := mustCreatePopug(t, base, bossToken, "max", "MANAGER")
	kiwi := mustSignUp(t, base, "kiwi")
	created := 0
	createTask := func() { created++; mustCreateTask(t, base, mgr.Token, created) }
	// Warm the gateway up (one socket, one push) so that one-off allocations are not counted.
	warm := mustSubscribeBalance(t, "warm-up", mustDialWS(t, base, transportWS, kiwi.Token), "")
	mustSync(t, func() string { created++; return mustCreateTask(t, base, mgr.Token, created).ID }, warm)
	warm.c.close()
	time.Sleep(500 * time.Millisecond)

	before := sampleMemory(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestMeasureSubscriberClient$", "-test.v", "-test.timeout=20m")
	cmd.Env = append(os.Environ(), "ATES_MEASURE_CLIENT="+base, "ATES_MEASURE_CLIENT_TOKEN="+kiwi.Token, fmt.Sprintf("ATES_MEASURE_SOCKETS=%d", n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = stdin.Close() // the client closes its sockets and exits
		_ = cmd.Wait()
	}()
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	await := func(prefix string, timeout time.Duration) (string, bool) {
		deadline := time.After(timeout)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the client process ended before %s", prefix)
				}
				if strings.HasPrefix(l, prefix) {
					return l, true
				}
			case <-deadline:
				return "", false
			}
		}
	}
	start := time.Now()
	if _, ok := await("SUBSCRIBED", 10*time.Minute); !ok {
		t.Fatal("the client did not open its sockets")
	}
	opened := time.Since(start)
	// Every socket is subscribed once every socket has had a push.
	ready := false
	for range 30 {
		createTask()
		if _, ready = await("READY", 5*time.Second); ready {
			break
		}
	}
	if !ready {
		t.Fatal("the client's sockets never all got a push")
	}
	time.Sleep(2 * time.Second) // idle
	after := sampleMemory(t)
	if path := os.Getenv("ATES_MEASURE_HEAP_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			t.Fatal(err)
		}
		f.Close()
		t.Logf("heap profile written to %s (go tool pprof -top -inuse_space %s)", path, path)
	}
	client, _ := await("CLIENT", time.Minute)
	t.Logf("%d idle subscribed WebSockets over %s (opened and subscribed in %v)", n, proto.Name, opened.Round(time.Millisecond))
	t.Logf("gateway process (server side only), per socket: %s", before.perSocket(after, n))
	t.Logf("gateway process totals: heap in use %d → %d MiB, VmRSS %d → %d MiB", before.HeapInuse>>20, after.HeapInuse>>20, before.RSS>>20, after.RSS>>20)
	t.Logf("client process, per socket: %s", strings.TrimPrefix(client, "CLIENT "))
}

// TestMeasureSubscriberClient is the client side of TestMeasureSubscriberMemory, run in a
// process of its own: it opens the sockets, subscribes each and reports on stdout.
func TestMeasureSubscriberClient(t *testing.T) {
	base := os.Getenv("ATES_MEASURE_CLIENT")
	if base == "" {
		t.Skip("run by TestMeasureSubscriberMemory")
	}
	token := os.Getenv("ATES_MEASURE_CLIENT_TOKEN")
	n := envInt(t, "ATES_MEASURE_SOCKETS", 2000)
	proto := measureProto(t)
	raiseFileLimit(t, n+100)
	before := sampleMemory(t)
	subs := make([]*balanceSub, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, err := dialWSBuffered(base, proto, token, 4)
				if err != nil {
					errc <- err
					return
				}
				s := &balanceSub{name: strconv.Itoa(i), c: c, id: "b", skip: map[string]bool{}}
				if err := c.send(map[string]any{"id": s.id, "type": proto.Subscribe, "payload": map[string]any{"query": balanceSubscription}}); err != nil {
					errc <- err
					return
				}
				subs[i] = s
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	fmt.Println("SUBSCRIBED")
	// Wait until every socket has had a push: then every subscription is in the hub.
	got := make([]atomic.Bool, n)
	var pushed atomic.Int64
	for i, s := range subs {
		go func() {
			for {
				if _, err := s.next(time.Hour); err != nil {
					return
				}
				if !got[i].Swap(true) {
					pushed.Add(1)
				}
			}
		}()
	}
	for pushed.Load() < int64(n) {
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Println("READY")
	time.Sleep(2 * time.Second)
	after := sampleMemory(t)
	fmt.Println("CLIENT " + before.perSocket(after, n))
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
	for _, s := range subs {
		s.c.close()
	}
}
