package tasks_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/ent/tasksdb/account"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/ids"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/page"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
	"github.com/uberpopug/ates/services/tasks"
)

// benchPopugs is how many assignable popugs the benchmarks' replica holds.
const benchPopugs = 100

// BenchmarkShuffle measures one shuffle (R-TASK-4) of 10 000 and 100 000 open tasks: the
// Shuffle call, i.e. one transaction reassigning every open task and storing a task.assigned
// outbox row for each. Inserting the tasks, and on PostgreSQL vacuuming the tasks table
// between shuffles, happen while the timer is stopped. Besides time and allocations it reports the peak Go heap in use (sampled through runtime/metrics) and the
// process's peak resident set (VmHWM, reset before each shuffle) during the shuffle.
//
//	go test -run '^$' -bench BenchmarkShuffle -benchtime 5x -benchmem ./services/tasks/
func BenchmarkShuffle(b *testing.B) {
	for _, d := range storagetest.Dialects {
		for _, c := range []struct{ tasks, open int }{{10_000, 10_000}, {100_000, 100_000}, {100_000, 55_000}} {
			b.Run(fmt.Sprintf("%s/tasks=%d/open=%d", d, c.tasks, c.open), func(b *testing.B) {
				benchShuffle(b, d, c.tasks, c.open)
			})
		}
	}
}

func benchShuffle(b *testing.B, d string, n, open int) {
	ctx := context.Background()
	svc, db, admin := benchService(b, d)
	benchInsertTasks(b, db, n, open)
	b.ReportAllocs()
	var peakHeap, peakRSS uint64
	var goCPU, pgCPU time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if db.Dialect == dialect.Postgres {
			// What autovacuum (off on the benchmark server) does between two shuffles: clear
			// the previous shuffle's dead row versions, so every iteration starts alike.
			if _, err := db.SQL.ExecContext(ctx, "VACUUM ANALYZE tasks"); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		mem := benchStartMemSampler()
		goCPU0, pgCPU0 := storagetest.ProcessCPU(b), storagetest.BackendCPU(b, db)
		b.StartTimer()
		got, err := svc.Shuffle(ctx, admin)
		b.StopTimer()
		goCPU += storagetest.ProcessCPU(b) - goCPU0
		pgCPU += storagetest.BackendCPU(b, db).Since(pgCPU0)
		heap, rss := mem.stop()
		if err != nil {
			b.Fatal(err)
		}
		if got != open {
			b.Fatalf("reassigned %d tasks, want %d", got, open)
		}
		peakHeap, peakRSS = max(peakHeap, heap), max(peakRSS, rss)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/shuffle")
	b.ReportMetric(float64(open*b.N)/b.Elapsed().Seconds(), "tasks/s")
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
	if peakRSS > 0 {
		b.ReportMetric(float64(peakRSS)/(1<<20), "peak-rss-MiB")
	}
	// CPU seconds, steadier than wall time on a shared machine: this process (the benchmark's
	// own samplers included), and the PostgreSQL backends of the test database (0 on SQLite,
	// which runs inside this process).
	b.ReportMetric(goCPU.Seconds()/float64(b.N), "go-cpu-s/shuffle")
	b.ReportMetric(pgCPU.Seconds()/float64(b.N), "pg-cpu-s/shuffle")
}

// BenchmarkSearch is searchTasks over 100 000 tasks (ATES_BENCH_SEARCH_TASKS), on SQLite and
// PostgreSQL: a search matching one task, one matching eleven, and one matching every task,
// each as the board asks it (a page of 20 with its total count). docs/benchmarks.md.
func BenchmarkSearch(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("ATES_BENCH_SEARCH_TASKS")); err == nil && v > 0 {
		n = v
	}
	for _, d := range []string{dialect.SQLite, dialect.Postgres} {
		b.Run(d, func(b *testing.B) {
			svc, db, admin := benchService(b, d)
			benchInsertTasks(b, db, n, n)
			for _, c := range []struct{ name, search string }{
				{"one match", "batch " + strconv.Itoa(n/2+1)},
				{"eleven matches", "task 4242"},
				{"every task", "popugs"},
			} {
				b.Run(c.name, func(b *testing.B) {
					for b.Loop() {
						if _, err := svc.Search(context.Background(), admin, c.search, nil, page.Request{First: page.DefaultFirst}); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}

// benchService returns a task tracker on a fresh database of the dialect whose replica holds
// benchPopugs assignable workers besides an admin and a manager, and the admin as an actor.
func benchService(b *testing.B, d string) (*tasks.Service, *storage.DB, identity.Actor) {
	b.Helper()
	ctx := context.Background()
	db := storagetest.MustOpen(b, d)
	client := tasksdb.NewClient(tasksdb.Driver(db.Driver()))
	if err := db.Migrate(ctx, func(ctx context.Context) error { return tasks.Migrate(ctx, db) }); err != nil {
		b.Fatalf("creating the tasks schema: %v", err)
	}
	w, err := outbox.NewWriter(db.Dialect, event.MustDefaultRegistry())
	if err != nil {
		b.Fatal(err)
	}
	pool := db.SQL // as cmd/ates wires it; ATES_BENCH_TASKS_NO_POOL=1 measures the Ent-only paths
	if os.Getenv("ATES_BENCH_TASKS_NO_POOL") != "" {
		pool = nil
	}
	svc, err := tasks.New(tasks.Config{
		Client: client, DB: pool, Dialect: db.Dialect, Outbox: w, Clock: time.Now,
		Rand: tasks.NewLockedRand(nil), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	admin := identity.Actor{AccountID: uuid.New(), Role: identity.Admin}
	accounts := []*tasksdb.AccountCreate{
		client.Account.Create().SetPublicID(admin.AccountID).SetRole(account.RoleADMIN).SetActive(true).SetVersion(1),
		client.Account.Create().SetPublicID(uuid.New()).SetRole(account.RoleMANAGER).SetActive(true).SetVersion(1),
	}
	for range benchPopugs {
		accounts = append(accounts, client.Account.Create().SetPublicID(uuid.New()).SetRole(account.RoleWORKER).SetActive(true).SetVersion(1))
	}
	if err := client.Account.CreateBulk(accounts...).Exec(ctx); err != nil {
		b.Fatal(err)
	}
	return svc, db, admin
}

// benchInsertTasks stores n tasks assigned round robin to the replica's assignable popugs, open
// of them open (spread evenly in id order) and the others done: COPY on PostgreSQL, multi-row
// INSERTs on SQLite, in one transaction. The counters are then recounted.
func benchInsertTasks(b *testing.B, db *storage.DB, n, open int) {
	b.Helper()
	ctx := context.Background()
	var popugs []string
	rows, err := db.SQL.QueryContext(ctx, "SELECT public_id FROM accounts WHERE role = 'WORKER' ORDER BY id")
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		popugs = append(popugs, id)
	}
	if err := rows.Close(); err != nil {
		b.Fatal(err)
	}
	created := time.Now().UTC()
	tx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	cols := []string{"public_id", "title", "description", "status", "assignee_id", "created_at", "completed_at"}
	// Public ids are UUIDv7, as createTask makes them.
	row := func(i int) []any {
		title, desc := "Bench task "+strconv.Itoa(i), "Feed the popugs, batch "+strconv.Itoa(i)
		status, completed := "DONE", any(created)
		if i*open/n < (i+1)*open/n {
			status, completed = "OPEN", nil
		}
		return []any{ids.NewString(), title, desc, status, popugs[i%len(popugs)], created, completed}
	}
	if db.Dialect == dialect.Postgres {
		stmt, err := tx.PrepareContext(ctx, pq.CopyIn("tasks", cols...))
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			if _, err := stmt.ExecContext(ctx, row(i)...); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := stmt.ExecContext(ctx); err != nil {
			b.Fatal(err)
		}
		if err := stmt.Close(); err != nil {
			b.Fatal(err)
		}
	} else {
		const per = 1000
		for start := 0; start < n; start += per {
			end := min(start+per, n)
			var q strings.Builder
			q.WriteString("INSERT INTO tasks (" + strings.Join(cols, ", ") + ") VALUES ")
			args := make([]any, 0, (end-start)*len(cols))
			for i := start; i < end; i++ {
				if i > start {
					q.WriteString(", ")
				}
				q.WriteString("(?, ?, ?, ?, ?, ?, ?)")
				args = append(args, row(i)...)
			}
			if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
				b.Fatal(err)
			}
		}
	}
	benchFillSearch(b, tx, db.Dialect)
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if err := tasks.Recount(ctx, db); err != nil {
		b.Fatal(err)
	}
	if db.Dialect == dialect.Postgres { // statistics, as autovacuum would gather after a bulk load
		if _, err := db.SQL.ExecContext(ctx, "ANALYZE tasks, task_search"); err != nil {
			b.Fatal(err)
		}
	}
}

// benchFillSearch stores the search text of every task the benchmark inserted, as createTask
// does: the benchmarks' tasks have ASCII texts and no Jira id, so SQL's lower() folds them as
// tasks.SearchText would.
func benchFillSearch(b *testing.B, tx *sql.Tx, d string) {
	b.Helper()
	sep := "char(31)"
	if d == dialect.Postgres {
		sep = "chr(31)"
	}
	q := "INSERT INTO task_search (task_id, search_text) SELECT id, lower(title || " + sep + " || " + sep + " || description) FROM tasks"
	if _, err := tx.ExecContext(context.Background(), q); err != nil {
		b.Fatal(err)
	}
}

// benchMemSampler records the peak Go heap in use while it runs, and resets the kernel's peak
// resident set of the process so stop can read the peak of the sampled period.
type benchMemSampler struct {
	done     chan struct{}
	wg       sync.WaitGroup
	peakHeap uint64
	rssReset bool
}

// heapInUse samples: live and not yet swept objects plus the unused parts of in-use spans
// (runtime.MemStats.HeapInuse).
var benchHeapMetrics = []string{"/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes"}

func benchStartMemSampler() *benchMemSampler {
	m := &benchMemSampler{done: make(chan struct{})}
	// Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0).
	m.rssReset = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	samples := make([]metrics.Sample, len(benchHeapMetrics))
	for i, name := range benchHeapMetrics {
		samples[i].Name = name
	}
	read := func() {
		metrics.Read(samples)
		var sum uint64
		for _, s := range samples {
			sum += s.Value.Uint64()
		}
		m.peakHeap = max(m.peakHeap, sum)
	}
	read()
	m.wg.Go(func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-m.done:
				read()
				return
			case <-t.C:
				read()
			}
		}
	})
	return m
}

// stop returns the peak heap in use and the peak resident set (0 when unknown) in bytes.
func (m *benchMemSampler) stop() (heap, rss uint64) {
	close(m.done)
	m.wg.Wait()
	if m.rssReset {
		rss = benchVmHWM()
	}
	return m.peakHeap, rss
}

// benchVmHWM reads the process's peak resident set from /proc/self/status.
func benchVmHWM() uint64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
