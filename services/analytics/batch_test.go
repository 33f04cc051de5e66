package analytics_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/analyticsdb"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// TestConcurrentBatchesDoNotDeadlock: R-AN-4, R-EVT-5 — the consumer's workers apply batches at
// the same time. Batches naming the same accounts, tasks and day in different orders wait for
// each other and never deadlock (on PostgreSQL; SQLite has one writer), and the read models end
// as the events imply: each balance, now and at the end of the day, is its latest entry's, and
// the day's top task is the best one.
func TestConcurrentBatchesDoNotDeadlock(t *testing.T) {
	t.Parallel()
	day := date(t, "2026-03-02")
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		ctx := context.Background()
		h := MustService(t, db, at(day, 23, 0))
		accounts := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
		tasks := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New()}
		l := newLedger(t)
		const workers, rounds = 4, 25
		// Every batch posts an entry to every account and completes and prices one task again
		// (the same facts each time: idempotent), in an order of its own.
		batches := make([][][]event.Envelope, workers)
		for w := range workers {
			r := rand.New(rand.NewPCG(uint64(w), 11))
			for n := range rounds {
				when := at(day, 9, 0).Add(time.Duration(n) * time.Minute)
				var b []event.Envelope
				for _, a := range accounts {
					b = append(b, l.post(a, contract.EntryFee, -int64(1+r.IntN(50)), when))
				}
				i := (w + n) % len(tasks)
				done := at(day, 10, i)
				b = append(b,
					taskCompleted(t, tasks[i], accounts[i%len(accounts)], done),
					taskPriced(t, tasks[i], 1000, int64(2000+100*i), done),
					taskUpdated(t, tasks[i], fmt.Sprintf("Task %d", i), nil, "Seeds.", at(day, 8, 0), &done))
				r.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
				batches[w] = append(batches[w], b)
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, workers*rounds)
		for w := range workers {
			wg.Go(func() {
				for _, b := range batches[w] {
					if err := storage.InTx(ctx, h.client.Tx, func(tx *analyticsdb.Tx) error {
						return h.svc.ApplyBatch(ctx, tx, b)
					}); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("applying a batch: %v", err)
		}

		got, err := h.client.Account.Query().All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(accounts) {
			t.Fatalf("%d balances, want %d", len(got), len(accounts))
		}
		for _, a := range got {
			if a.Balance != l.balance[a.AccountID] {
				t.Errorf("balance of %s = %d, want %d (its latest entry's)", a.AccountID, a.Balance, l.balance[a.AccountID])
			}
		}
		days, err := h.client.AccountDay.Query().All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(days) != len(accounts) {
			t.Fatalf("%d day balances, want %d", len(days), len(accounts))
		}
		for _, d := range days {
			if d.Day != day.String() || d.Balance != l.balance[d.AccountID] {
				t.Errorf("balance of %s at the end of %s = %d, want %s: %d", d.AccountID, d.Day, d.Balance, day, l.balance[d.AccountID])
			}
		}
		top, err := h.svc.MostExpensive(ctx, admin, day, day)
		if err != nil {
			t.Fatal(err)
		}
		best := tasks[len(tasks)-1] // the highest reward: 2000 + 100 × its index
		if top.Top == nil || top.Top.TaskID != best || top.Top.Reward != 2300 || top.Top.Title != "Task 3" {
			t.Errorf("the day's top = %+v, want task %s with reward 2300", top.Top, best)
		}
		entries, err := h.client.LedgerEntry.Query().Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := workers * rounds * len(accounts); entries != want {
			t.Errorf("%d ledger entries, want %d", entries, want)
		}
	})
}

// TestApplyBatchIsApplyInTurn: R-AN-4 — a batch leaves every read model exactly as applying its
// events one by one, in the same order, does: descriptions newest first (the later of two
// equally new), the first completion and assignee, the first of two conflicting prices, each
// balance at its latest entry, the same event twice in a batch. Random orders and batch sizes,
// every table compared row by row.
func TestApplyBatchIsApplyInTurn(t *testing.T) {
	t.Parallel()
	day := date(t, "2026-03-02")
	next := day.AddDays(1)
	var events []event.Envelope
	accounts := []uuid.UUID{uuid.New(), uuid.New()}
	for i := range 3 {
		id := uuid.New()
		created, done := at(day, 8, i), at(day, 11, i)
		if i == 2 {
			done = at(next, 1, 0) // completed the next day
		}
		events = append(events,
			taskCreatedV2(t, id, fmt.Sprintf("created %d", i), strp("POP-1"), "first words", created),
			taskUpdated(t, id, fmt.Sprintf("renamed at once %d", i), nil, "as new", created, nil), // equally new
			taskCompleted(t, id, accounts[i%2], done),
			taskPriced(t, id, 1000, int64(2000+100*(i%2)), created),
			taskPriced(t, id, 1000, 3900, created), // conflicting: the first one applied stays
		)
		if i != 1 { // task 1's description stays the later of the two equally new ones
			// Task 0's update names a later completion than its task.completed: the first
			// one applied stays.
			updated := done.Add(time.Duration(1-i) * time.Minute)
			events = append(events, taskUpdated(t, id, fmt.Sprintf("done %d", i), strp("POP-2"), "last words", created, &updated))
		}
	}
	l := newLedger(t)
	for i := range 8 {
		when := at(day, 9, i)
		if i >= 5 {
			when = at(next, 9, i)
		}
		events = append(events, l.post(accounts[i%2], contract.EntryFee, -int64(100+i), when))
	}
	events = append(events, events[len(events)-1], dayClosed(t, day, true, 0, 0, at(next, 0, 5)))

	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		for seed := range uint64(4) {
			r := rand.New(rand.NewPCG(seed, 3))
			order := slices.Clone(events)
			r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })

			one := MustService(t, storagetest.MustOpen(t, db.Dialect), at(next, 12, 0))
			one.MustApply(t, order...)
			batched := MustService(t, storagetest.MustOpen(t, db.Dialect), at(next, 12, 0))
			for rest := order; len(rest) > 0; {
				n := min(1+r.IntN(12), len(rest))
				batched.MustApplyBatches(t, n, rest[:n]...)
				rest = rest[n:]
			}
			whole := MustService(t, storagetest.MustOpen(t, db.Dialect), at(next, 12, 0))
			whole.MustApplyBatches(t, len(order), order...)
			want := dumpTables(t, one.db)
			for what, h := range map[string]*harness{"batches": batched, "one batch": whole} {
				if got := dumpTables(t, h.db); !slices.Equal(got, want) {
					t.Errorf("seed %d, %s: ApplyBatch left\n%s\nwant (Apply in turn)\n%s", seed, what, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			}
		}
	})
}

// dumpTables is every row of analytics' read models, one line each, in a stable order.
func dumpTables(tb testing.TB, db *storage.DB) []string {
	tb.Helper()
	var out []string
	for _, q := range []string{
		"SELECT task_id, title, jira_id, description, described_at, reward, completed_at, completed_day, assignee_id FROM tasks ORDER BY task_id",
		"SELECT day, task_id, reward, completed_at FROM daily_tops ORDER BY day",
		"SELECT entry_id, account_id, type, amount, balance_after, sequence, day, occurred_at FROM ledger_entries ORDER BY entry_id",
		"SELECT account_id, sequence, balance FROM accounts ORDER BY account_id",
		"SELECT account_id, day, sequence, balance FROM account_days ORDER BY account_id, day",
		"SELECT event_id, day, scheduled, paid_accounts, total_paid, closed_at FROM day_closes ORDER BY event_id",
	} {
		rows, err := db.SQL.Query(q)
		if err != nil {
			tb.Fatal(err)
		}
		cols, err := rows.Columns()
		if err != nil {
			tb.Fatal(err)
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				tb.Fatal(err)
			}
			line := strings.Fields(q)[len(strings.Fields(q))-4] // the table's name
			for _, v := range vals {
				switch v := v.(type) {
				case []byte:
					line += " " + string(v)
				case time.Time:
					line += " " + v.UTC().Format(time.RFC3339Nano)
				default:
					line += fmt.Sprintf(" %v", v)
				}
			}
			out = append(out, line)
		}
		if err := rows.Close(); err != nil {
			tb.Fatal(err)
		}
	}
	if len(out) == 0 {
		tb.Fatal("no rows: the comparison checks nothing")
	}
	return out
}
