package tasks_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
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
	"github.com/uberpopug/ates/services/storage/storagetest"
	"github.com/uberpopug/ates/services/tasks"
)

// BenchmarkBoardReads measures the dashboard's reads (R-TASK-1, R-TASK-6) over
// ATES_BENCH_READ_TASKS tasks (default 100 000) of 50 popugs, 5.5 % of them open (the share of
// 55 000 open among 1 000 000): a page of 20 without and with its total, filtered by status, by
// assignee and both; then the same after two shuffles with no VACUUM between (the dead row
// versions and cleared visibility map a busy day leaves), and the shuffle itself. Each read
// reports its median and 95th percentile. docs/benchmarks.md.
//
//	go test -run '^$' -bench BenchmarkBoardReads -benchtime 200x ./services/tasks/
func BenchmarkBoardReads(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("ATES_BENCH_READ_TASKS")); err == nil && v > 0 {
		n = v
	}
	for _, d := range storagetest.Dialects {
		b.Run(fmt.Sprintf("%s/tasks=%d", d, n), func(b *testing.B) {
			ctx := context.Background()
			svc, popugs, manager := benchBoard(b, d, n)
			reader := identity.Actor{AccountID: popugs[7], Role: identity.Worker}
			open := tasks.Open
			reads := []struct {
				name string
				read func(req page.Request) (page.Page[tasks.Task], error)
			}{
				{"tasks", func(r page.Request) (page.Page[tasks.Task], error) { return svc.List(ctx, reader, tasks.Filter{}, r) }},
				{"tasks-open", func(r page.Request) (page.Page[tasks.Task], error) {
					return svc.List(ctx, reader, tasks.Filter{Status: &open}, r)
				}},
				{"tasks-assignee", func(r page.Request) (page.Page[tasks.Task], error) {
					return svc.List(ctx, reader, tasks.Filter{AssigneeID: &popugs[3]}, r)
				}},
				{"myTasks", func(r page.Request) (page.Page[tasks.Task], error) { return svc.Mine(ctx, reader, nil, r) }},
				{"myTasks-open", func(r page.Request) (page.Page[tasks.Task], error) { return svc.Mine(ctx, reader, &open, r) }},
			}
			measure := func(phase string) {
				for _, r := range reads {
					for _, total := range []bool{false, true} {
						name := phase + "/" + r.name
						if total {
							name += "+total"
						}
						b.Run(name, func(b *testing.B) {
							req := page.Request{First: page.DefaultFirst}
							req.NoTotal = !total
							var took []time.Duration
							for b.Loop() {
								t0 := time.Now()
								if _, err := r.read(req); err != nil {
									b.Fatal(err)
								}
								took = append(took, time.Since(t0))
							}
							benchPercentiles(b, took)
						})
					}
				}
			}
			measure("fresh")
			// Two shuffles, each timed once: what a shuffle costs, and what it leaves the reads.
			for i := range 2 {
				t0 := time.Now()
				moved, err := svc.Shuffle(ctx, manager)
				if err != nil {
					b.Fatal(err)
				}
				fmt.Printf("%s/shuffle-%d\t%d open tasks\t%.0f ms\n", b.Name(), i+1, moved, float64(time.Since(t0).Microseconds())/1000)
			}
			measure("after-2-shuffles")
		})
	}
}

// benchPercentiles reports the median and the 95th percentile of the durations, in ms.
func benchPercentiles(b *testing.B, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	at := func(q float64) float64 {
		return float64(took[min(len(took)-1, int(q*float64(len(took))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.95), "p95-ms")
}

// benchBoard is a task tracker on a fresh database of the dialect with 50 assignable popugs and
// n tasks assigned round robin, every 18th open (5.5 %), loaded around the use cases and then
// counted (tasks.Recount), as a bulk load does.
func benchBoard(b *testing.B, d string, n int) (*tasks.Service, []uuid.UUID, identity.Actor) {
	b.Helper()
	ctx := context.Background()
	db := storagetest.MustOpen(b, d)
	client := tasksdb.NewClient(tasksdb.Driver(db.Driver()))
	if err := db.Migrate(ctx, func(ctx context.Context) error { return tasks.Migrate(ctx, db) }); err != nil {
		b.Fatal(err)
	}
	w, err := outbox.NewWriter(db.Dialect, event.MustDefaultRegistry())
	if err != nil {
		b.Fatal(err)
	}
	svc, err := tasks.New(tasks.Config{
		Client: client, DB: db.SQL, Dialect: db.Dialect, Outbox: w, Clock: time.Now,
		Rand: tasks.NewLockedRand(nil), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	manager := identity.Actor{AccountID: uuid.New(), Role: identity.Manager}
	accounts := []*tasksdb.AccountCreate{client.Account.Create().SetPublicID(manager.AccountID).SetRole(account.RoleMANAGER).SetActive(true).SetVersion(1)}
	popugs := make([]uuid.UUID, 50)
	for i := range popugs {
		popugs[i] = uuid.New()
		accounts = append(accounts, client.Account.Create().SetPublicID(popugs[i]).SetRole(account.RoleWORKER).SetActive(true).SetVersion(1))
	}
	if err := client.Account.CreateBulk(accounts...).Exec(ctx); err != nil {
		b.Fatal(err)
	}
	tx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	cols := []string{"public_id", "title", "description", "status", "assignee_id", "created_at", "completed_at"}
	created := time.Now().UTC()
	row := func(i int) []any {
		title, desc := "Board task "+strconv.Itoa(i), "Feed the popugs, batch "+strconv.Itoa(i)
		status, completed := "DONE", any(created)
		if (i/50)%18 == 0 { // every popug has every 18th of its tasks open
			status, completed = "OPEN", nil
		}
		return []any{ids.NewString(), title, desc, status, popugs[i%len(popugs)].String(), created, completed}
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
		for start := 0; start < n; start += 1000 {
			var q strings.Builder
			q.WriteString("INSERT INTO tasks (" + strings.Join(cols, ", ") + ") VALUES ")
			var args []any
			for i := start; i < min(start+1000, n); i++ {
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
	if err := tasks.Recount(ctx, db); err != nil { // counters
		b.Fatal(err)
	}
	if db.Dialect == dialect.Postgres { // what autovacuum does after a bulk load
		if _, err := db.SQL.ExecContext(ctx, "VACUUM ANALYZE tasks, task_search"); err != nil {
			b.Fatal(err)
		}
	} else if _, err := db.SQL.ExecContext(ctx, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	return svc, popugs, manager
}
