package analytics_test

import (
	"context"
	"fmt"
	"math/rand/v2"
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
