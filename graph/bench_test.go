package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/graph"
	"github.com/uberpopug/ates/services/auth"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
	"github.com/uberpopug/ates/services/tasks"
)

// benchCreateTask is the mutation BenchmarkCreateTaskHTTP sends: the fields of the stored task
// (the assignee's account, resolved from auth, is left out: it is not the task tracker's cost).
const benchCreateTask = `mutation($input: CreateTaskInput!) {
  createTask(input: $input) { id title jiraId description status createdAt }
}`

// benchWorkers is how many assignable popugs (each also a client identity) the replica holds.
const benchWorkers = 20

// BenchmarkCreateTaskHTTP measures the createTask mutation (R-TASK-2) end to end: HTTP POST to
// graph.NewHandler on an httptest server, bearer token verified by the real auth verifier, the
// task tracker storing the task and its task.created and task.assigned outbox rows in one
// transaction, on PostgreSQL and SQLite, with 16 to 64 concurrent clients. It reports tasks/s
// and the p50 and p99 latency seen by the clients.
//
//	go test -run '^$' -bench BenchmarkCreateTaskHTTP -benchtime 20000x ./graph/
func BenchmarkCreateTaskHTTP(b *testing.B) {
	for _, d := range storagetest.Dialects {
		for _, clients := range []int{16, 32, 64} {
			b.Run(fmt.Sprintf("%s/clients=%d", d, clients), func(b *testing.B) {
				benchCreateTaskHTTP(b, d, clients)
			})
		}
	}
}

func benchCreateTaskHTTP(b *testing.B, d string, clients int) {
	g := benchTaskGateway(b, d)
	procs := runtime.GOMAXPROCS(0)
	par := max(1, clients/procs)
	clients = par * procs // what b.RunParallel starts
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: clients, MaxIdleConnsPerHost: clients, IdleConnTimeout: time.Minute,
	}}
	defer client.CloseIdleConnections()

	// Warm up: connections of the HTTP client and of the database pool, gqlgen's query cache.
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			for j := range 3 {
				if err := benchPostCreateTask(client, g.url, g.tokens[i%len(g.tokens)], i*1000+j); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	before := g.count(b)

	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, b.N)
		next      atomic.Int64
	)
	cpu := &benchCPU{db: g.tasks}
	self0, pg0 := cpu.read(b)
	b.SetParallelism(par)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			n := int(next.Add(1))
			t0 := time.Now()
			err := benchPostCreateTask(client, g.url, g.tokens[n%len(g.tokens)], n)
			local = append(local, time.Since(t0))
			if err != nil {
				b.Error(err)
				return
			}
		}
		mu.Lock()
		latencies = append(latencies, local...)
		mu.Unlock()
	})
	b.StopTimer()
	self1, pg1 := cpu.read(b)
	if b.Failed() {
		return
	}
	// Every request stored one task and its two events.
	after := g.count(b)
	if got := after.tasks - before.tasks; got != b.N {
		b.Fatalf("stored %d tasks for %d requests", got, b.N)
	}
	if got := after.events - before.events; got != 2*b.N {
		b.Fatalf("stored %d outbox rows for %d tasks, want 2 per task", got, b.N)
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		i := min(len(latencies)-1, int(p*float64(len(latencies))))
		return float64(latencies[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(clients), "clients")
	// CPU per task, of the test process (HTTP clients and server, gateway, task tracker,
	// SQLite) and of the PostgreSQL backends.
	b.ReportMetric(float64((self1-self0).Microseconds())/float64(b.N), "go-cpu-µs/task")
	if pg0 >= 0 && pg1 >= 0 {
		b.ReportMetric(float64((pg1-pg0).Microseconds())/float64(b.N), "pg-cpu-µs/task")
	}
}

// benchGateway is graph.NewHandler serving the auth service of the shared harness and a task
// tracker on its own database whose account replica was fed the auth account events.
type benchGateway struct {
	url    string
	tasks  *storage.DB
	tokens []string
}

type benchCounts struct{ tasks, events int }

func (g *benchGateway) count(b *testing.B) benchCounts {
	b.Helper()
	var c benchCounts
	err := g.tasks.SQL.QueryRow(`SELECT (SELECT count(*) FROM tasks), (SELECT count(*) FROM outbox_events)`).Scan(&c.tasks, &c.events)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// benchTaskGateway wires what cmd/ates wires for createTask: the harness's auth service and
// verifier, a tasks database of the dialect (migrated by Ent) with its own outbox, the task
// tracker, and the resolver over both; the replica holds benchWorkers workers besides the
// admin, and tokens are the workers' access tokens.
func benchTaskGateway(b *testing.B, d string) *benchGateway {
	b.Helper()
	ctx := context.Background()
	g := MustGateway(b, OnDialect(d))
	tokens := make([]string, 0, benchWorkers)
	for i := range benchWorkers {
		tokens = append(tokens, g.MustUser(b, "bench"+strconv.Itoa(i), identity.Worker).Token)
	}

	var tdb *storage.DB
	if v := os.Getenv("ATES_BENCH_TASKS_DSN_PARAMS"); v != "" && d == dialect.Postgres {
		// e.g. binary_parameters=no: storage turns lib/pq's binary_parameters on by default
		// (one round trip per statement with parameters instead of two); this measures
		// without it (see docs/benchmarks.md).
		tdb = storagetest.MustOpenPostgres(b, storagetest.MustCreatePostgresDatabase(b)+"&"+v)
	} else {
		tdb = storagetest.MustOpen(b, d)
	}
	client := tasksdb.NewClient(tasksdb.Driver(tdb.Driver()))
	if err := client.Schema.Create(ctx); err != nil {
		b.Fatalf("creating the tasks schema: %v", err)
	}
	reg := event.MustDefaultRegistry()
	w, err := outbox.NewWriter(tdb.Dialect, reg)
	if err != nil {
		b.Fatal(err)
	}
	// Only errors are logged: a failed request's cause then shows in the output.
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	svc, err := tasks.New(tasks.Config{
		Client: client, DB: tdb.SQL, Dialect: tdb.Dialect, Outbox: w, Clock: time.Now,
		Rand: tasks.NewLockedRand(nil), Logger: quiet,
	})
	if err != nil {
		b.Fatal(err)
	}
	// The replica learns the accounts from auth's events, as the tasks consumer applies them.
	rows, err := g.DB.SQL.Query(`SELECT payload FROM outbox_events ORDER BY id`)
	if err != nil {
		b.Fatal(err)
	}
	var envs []event.Envelope
	for rows.Next() {
		var payload string
		if err := rows.Scan(&payload); err != nil {
			b.Fatal(err)
		}
		e, err := reg.Parse([]byte(payload))
		if err != nil {
			b.Fatal(err)
		}
		envs = append(envs, e)
	}
	if err := rows.Close(); err != nil {
		b.Fatal(err)
	}
	err = storage.InTx(ctx, client.Tx, func(tx *tasksdb.Tx) error {
		for _, e := range envs {
			if err := svc.Apply(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	var assignable int
	if err := tdb.SQL.QueryRow(`SELECT count(*) FROM accounts WHERE role = 'WORKER' AND active`).Scan(&assignable); err != nil {
		b.Fatal(err)
	}
	if assignable != benchWorkers {
		b.Fatalf("the replica holds %d assignable workers, want %d", assignable, benchWorkers)
	}

	keys, err := g.Auth.PublicKeys(ctx)
	if err != nil {
		b.Fatal(err)
	}
	verifier, err := auth.NewVerifier(auth.VerifierConfig{Keys: keys, Revocations: g.Revocations, Clock: g.Clock.Now, Lookup: g.Auth.LookupAccount})
	if err != nil {
		b.Fatal(err)
	}
	jwks, err := auth.JWKS(keys)
	if err != nil {
		b.Fatal(err)
	}
	h, err := graph.NewHandler(graph.Config{
		Resolver: &graph.Resolver{Auth: g.Auth, TaskTracker: svc, Log: quiet},
		Verifier: verifier,
		JWKS:     func(context.Context) ([]byte, error) { return jwks, nil },
		Logger:   quiet,
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return &benchGateway{url: srv.URL, tasks: tdb, tokens: tokens}
}

// benchPostCreateTask sends createTask as the token's bearer and checks the answer.
func benchPostCreateTask(c *http.Client, url, token string, n int) error {
	body, err := json.Marshal(map[string]any{"query": benchCreateTask, "variables": map[string]any{"input": map[string]any{
		"title":       "Feed the popugs, round " + strconv.Itoa(n),
		"jiraId":      "UBERPOP-" + strconv.Itoa(n),
		"description": "Every popug gets a seed; count them twice.",
	}}})
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, url+"/graphql", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var out struct {
		Data struct {
			CreateTask struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"createTask"`
		} `json:"data"`
		Errors []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("HTTP %d, not JSON: %v: %s", resp.StatusCode, err, raw)
	}
	if resp.StatusCode != http.StatusOK || len(out.Errors) > 0 || out.Data.CreateTask.ID == "" || out.Data.CreateTask.Status != "OPEN" {
		return fmt.Errorf("createTask failed: HTTP %d: %s", resp.StatusCode, raw)
	}
	return nil
}

// benchCPU reads the CPU time used so far by this process and by the PostgreSQL backends
// serving db (none on SQLite): on a shared machine CPU per task says more than wall time.
type benchCPU struct {
	db *storage.DB
	// backends are the server processes of db's connections, by pid (filled on first read).
	backends map[int]bool
}

// read returns this process's and db's backends' CPU time; pg is -1 when it cannot be read
// (not PostgreSQL, or a server on another machine).
func (c *benchCPU) read(b *testing.B) (self, pg time.Duration) {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if c.db == nil || c.db.Dialect != dialect.Postgres {
		return self, -1
	}
	if c.backends == nil {
		c.backends = map[int]bool{}
	}
	rows, err := c.db.SQL.Query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			b.Fatal(err)
		}
		c.backends[pid] = true
	}
	if err := rows.Close(); err != nil {
		b.Fatal(err)
	}
	for pid := range c.backends {
		t, ok := benchProcCPU(pid)
		if !ok {
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
				return self, -1 // there, but not readable
			}
			continue // exited: its time is lost, a small undercount
		}
		pg += t
	}
	return self, pg
}

// benchProcCPU returns utime+stime of a process from /proc/PID/stat (Linux, USER_HZ = 100).
func benchProcCPU(pid int) (time.Duration, bool) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')') // the command may hold spaces
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state): utime is field 14, stime 15
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, true
}
