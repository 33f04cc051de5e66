package analytics_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/analytics"
	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// Size of the benchmarks' history: a year of 300 completed tasks a day among 200 popugs, each
// task charged a fee at creation, half of them a second fee by a shuffle, and rewarded at
// completion; every day closed with payouts.
const (
	benchDays        = 365
	benchTasksPerDay = 300
	benchPopugs      = 200
)

// benchHistory is the seeded year and what the benchmarks check their answers against.
type benchHistory struct {
	today, pastDay calendar.Date
	now            time.Time
	best           benchTop // the year's most expensive task
	tasks, entries int
}

type benchTop struct {
	id     uuid.UUID
	reward int64
	at     time.Time
}

func (a benchTop) better(b benchTop) bool {
	if a.reward != b.reward {
		return a.reward > b.reward
	}
	if !a.at.Equal(b.at) {
		return a.at.Before(b.at)
	}
	return bytes.Compare(a.id[:], b.id[:]) < 0
}

// BenchmarkQueries measures analytics' queries over a year of history (R-AN-2, R-AN-3) on
// SQLite and PostgreSQL: the summary of today and of a past day, the most expensive task of
// the year, and the year as a series by day, week and month. The history is written straight
// into the read models (the tables Apply keeps) before the timer starts; BenchmarkApply
// measures Apply itself.
//
//	go test -run '^$' -bench BenchmarkQueries -benchtime 2s ./services/analytics/
func BenchmarkQueries(b *testing.B) {
	for _, d := range storagetest.Dialects {
		b.Run(d, func(b *testing.B) {
			h, hist := benchSeed(b, d)
			ctx := context.Background()
			first := hist.today.AddDays(-(benchDays - 1))
			run := func(name string, check func() error) {
				b.Run(name, func(b *testing.B) {
					for b.Loop() {
						if err := check(); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/query")
				})
			}
			run("Summary/today", func() error {
				s, err := h.svc.Summary(ctx, admin, nil)
				if err == nil && (s.NegativeBalanceCount == 0 || s.ManagementEarnings == 0) {
					err = fmt.Errorf("implausible summary %+v", s)
				}
				return err
			})
			run("Summary/past-day", func() error {
				s, err := h.svc.Summary(ctx, admin, &hist.pastDay)
				if err == nil && (s.NegativeBalanceCount == 0 || s.ManagementEarnings == 0) {
					err = fmt.Errorf("implausible summary %+v", s)
				}
				return err
			})
			run("MostExpensive/year", func() error {
				got, err := h.svc.MostExpensive(ctx, admin, first, hist.today)
				if err == nil && (got.Top == nil || got.Top.TaskID != hist.best.id) {
					err = fmt.Errorf("most expensive %s, want %s", show(got), hist.best.id)
				}
				return err
			})
			for _, p := range []analytics.Period{analytics.Day, analytics.Week, analytics.Month} {
				run("MostExpensiveSeries/"+string(p)+"/year", func() error {
					got, err := h.svc.MostExpensiveSeries(ctx, admin, first, hist.today, p)
					if err == nil && (len(got) < 12 || got[len(got)-1].Top == nil) {
						err = fmt.Errorf("implausible series of %d buckets", len(got))
					}
					return err
				})
			}
		})
	}
}

// BenchmarkApply measures how fast analytics consumes events on top of a year of history: as
// the live consumer does, one transaction per event (with its inbox record, after validating
// it) and in batches of 200 (its batch handler, as it takes a busy queue), and as a rebuild
// replays them (Replay, 500 events per transaction). The events are a
// day's worth of traffic: tasks created, priced, completed, their fees and rewards.
//
//	go test -run '^$' -bench BenchmarkApply ./services/analytics/
func BenchmarkApply(b *testing.B) {
	for _, d := range storagetest.Dialects {
		b.Run(d, func(b *testing.B) {
			h, hist := benchSeed(b, d)
			b.Run("consumer", func(b *testing.B) {
				events := benchEvents(b, hist.today, b.N)
				consumer := h.MustConsumer(b)
				b.ResetTimer()
				MustDeliver(b, consumer, events[:b.N]...)
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
			b.Run("consumer-batches", func(b *testing.B) {
				events := benchEvents(b, hist.today, b.N)
				handle := h.MustConsumer(b).BatchHandler()
				b.ResetTimer()
				for start := 0; start < b.N; start += 200 {
					batch := events[start:min(start+200, b.N)]
					ds := make([]bus.Delivery, len(batch))
					for i, e := range batch {
						body, err := json.Marshal(e)
						if err != nil {
							b.Fatal(err)
						}
						ds[i] = bus.Delivery{Message: bus.Message{ID: e.ID, Topic: e.Name, Body: body}}
					}
					if err := handle(context.Background(), ds); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
			b.Run("replay", func(b *testing.B) {
				events := benchEvents(b, hist.today, b.N)
				b.ResetTimer()
				if _, err := h.svc.Replay(context.Background(), each(events[:b.N])); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
		})
	}
}

// benchEvents returns at least n events of a day's traffic: per task created, priced,
// completed, updated, and its fee and reward entries.
func benchEvents(tb testing.TB, day calendar.Date, n int) []event.Envelope {
	var out []event.Envelope
	l := newLedger(tb)
	l.seq = 1 << 40 // after every seeded entry
	for len(out) < n {
		id, who := uuid.New(), uuid.New()
		created, done := at(day, 9, 0), at(day, 15, 0)
		out = append(out, taskCreatedV2(tb, id, "A task", nil, "Something to do", created),
			taskPriced(tb, id, 1500, 3000, created), l.post(who, contract.EntryFee, -1500, created),
			taskCompleted(tb, id, who, done), taskUpdated(tb, id, "A task", nil, "Something to do", created, &done),
			l.post(who, contract.EntryReward, 3000, done))
	}
	return out
}

// benchSeed returns a service over a fresh database of the dialect holding a year of history.
func benchSeed(b *testing.B, d string) (*harness, benchHistory) {
	b.Helper()
	ctx := context.Background()
	started := time.Now()
	today := date(b, "2026-06-30")
	hist := benchHistory{today: today, pastDay: today.AddDays(-100), now: at(today, 12, 0)}
	h := MustService(b, storagetest.MustOpen(b, d), hist.now)
	r := rand.New(rand.NewPCG(2026, 6))
	popugs := make([]uuid.UUID, benchPopugs)
	for i := range popugs {
		popugs[i] = uuid.New()
	}
	balance := make(map[uuid.UUID]int64, benchPopugs)
	seq := map[uuid.UUID]int64{}
	var next int64
	type dayKey struct {
		a uuid.UUID
		d string
	}
	accountDays := map[dayKey][2]int64{} // sequence, balance
	tx, err := h.db.SQL.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	tasks := newBulk(h.db, tx, "tasks", "task_id", "title", "jira_id", "description", "described_at", "reward", "completed_at", "completed_day", "assignee_id")
	entries := newBulk(h.db, tx, "ledger_entries", "entry_id", "account_id", "type", "amount", "balance_after", "sequence", "day", "occurred_at")
	tops := newBulk(h.db, tx, "daily_tops", "day", "task_id", "reward", "completed_at")
	post := func(a uuid.UUID, typ string, amount int64, t time.Time, day calendar.Date) {
		next++
		balance[a] += amount
		seq[a] = next
		accountDays[dayKey{a, day.String()}] = [2]int64{next, balance[a]}
		entries.add(b, ctx, uuid.New(), a, typ, amount, balance[a], next, day.String(), t)
		hist.entries++
	}
	first := today.AddDays(-(benchDays - 1))
	for day := first; !today.Before(day); day = day.AddDays(1) {
		var best benchTop
		for i := range benchTasksPerDay {
			id := uuid.New()
			created := at(day, 0, 0).Add(time.Duration(r.IntN(12*3600)) * time.Second)
			done := created.Add(time.Duration(r.IntN(11*3600))*time.Second + time.Duration(r.IntN(1e6))*time.Microsecond)
			fee, reward := int64(10+r.IntN(11))*100, int64(20+r.IntN(21))*100
			who := popugs[r.IntN(benchPopugs)]
			post(popugs[r.IntN(benchPopugs)], contract.EntryFee, -fee, created, day)
			if i%2 == 0 { // a shuffle's fee
				post(who, contract.EntryFee, -fee, created.Add(time.Minute), day)
			}
			post(who, contract.EntryReward, reward, done, day)
			var jira any
			if i%3 == 0 {
				jira = fmt.Sprintf("UBERPOP-%d", i)
			}
			tasks.add(b, ctx, id, fmt.Sprintf("Task %d of %s", i, day), jira,
				strings.Repeat("Fix the beak scanner, again. ", 4), created, reward, done, day.String(), who)
			hist.tasks++
			if t := (benchTop{id, reward, done}); best.id == uuid.Nil || t.better(best) {
				best = t
			}
		}
		tops.add(b, ctx, day.String(), best.id, best.reward, best.at)
		if hist.best.id == uuid.Nil || best.better(hist.best) {
			hist.best = best
		}
		if day == today {
			break
		}
		closeAt := at(day.AddDays(1), 0, 0).Add(10 * time.Second)
		for _, a := range popugs {
			if balance[a] > 0 {
				post(a, contract.EntryPayout, -balance[a], closeAt, day)
			}
		}
	}
	tasks.flush(b, ctx)
	entries.flush(b, ctx)
	tops.flush(b, ctx)
	accounts := newBulk(h.db, tx, "accounts", "account_id", "sequence", "balance")
	for _, a := range popugs {
		accounts.add(b, ctx, a, seq[a], balance[a])
	}
	accounts.flush(b, ctx)
	days := newBulk(h.db, tx, "account_days", "account_id", "day", "sequence", "balance")
	for k, v := range accountDays {
		days.add(b, ctx, k.a, k.d, v[0], v[1])
	}
	days.flush(b, ctx)
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if d == dialect.Postgres { // as autovacuum would by now
		if _, err := h.db.SQL.ExecContext(ctx, "ANALYZE"); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%s: seeded %d tasks, %d ledger entries, %d account-days in %s", d, hist.tasks, hist.entries, len(accountDays), time.Since(started).Round(time.Millisecond))
	return h, hist
}

// bulk inserts rows into a table with multi-row INSERTs.
type bulk struct {
	db    *storage.DB
	tx    *sql.Tx
	table string
	cols  []string
	args  []any
}

func newBulk(db *storage.DB, tx *sql.Tx, table string, cols ...string) *bulk {
	return &bulk{db: db, tx: tx, table: table, cols: cols}
}

func (k *bulk) add(tb testing.TB, ctx context.Context, values ...any) {
	for i, v := range values {
		switch v := v.(type) {
		case time.Time:
			values[i] = v.UTC()
		case uuid.UUID:
			values[i] = v.String()
		}
	}
	k.args = append(k.args, values...)
	if len(k.args) >= 30000-len(k.cols) {
		k.flush(tb, ctx)
	}
}

func (k *bulk) flush(tb testing.TB, ctx context.Context) {
	if len(k.args) == 0 {
		return
	}
	var q strings.Builder
	fmt.Fprintf(&q, "INSERT INTO %s (%s) VALUES ", k.table, strings.Join(k.cols, ", "))
	for row := 0; row < len(k.args)/len(k.cols); row++ {
		if row > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(")
		for c := range k.cols {
			if c > 0 {
				q.WriteString(", ")
			}
			n := row*len(k.cols) + c + 1
			if k.db.Dialect == dialect.SQLite {
				q.WriteString("?") // numbered ?N parameters bind in quadratic time in modernc's SQLite
			} else {
				fmt.Fprintf(&q, "$%d", n)
			}
		}
		q.WriteString(")")
	}
	if _, err := k.tx.ExecContext(ctx, q.String(), k.args...); err != nil {
		tb.Fatalf("seeding %s: %v", k.table, err)
	}
	k.args = k.args[:0]
}
