package main

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/bus/rabbitmq"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
	"github.com/uberpopug/ates/services/tasks"
)

// TestNotifyAfter checks that a consumer wakes its relay after a batch it handled that stored
// events, and only then.
func TestNotifyAfter(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		err    error
		stored uint64
		notify int
	}{
		"handled, events stored": {nil, 2, 1},
		"handled, none stored":   {nil, 0, 0},
		"failed":                 {errors.New("boom"), 2, 0},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var taken uint64
			notified, handled := 0, 0
			h := notifyAfter(func(context.Context, []bus.Delivery) error {
				handled++
				taken += tc.stored
				return tc.err
			}, func() uint64 { return taken }, func() { notified++ })
			if err := h(context.Background(), []bus.Delivery{{}}); !errors.Is(err, tc.err) {
				t.Fatalf("handler error %v, want %v", err, tc.err)
			}
			if handled != 1 || notified != tc.notify {
				t.Fatalf("handled %d times, notified %d times; want 1 and %d", handled, notified, tc.notify)
			}
		})
	}
}

// TestQueuePrefix checks that stacks on different exchanges get different durable queues, and
// that the default exchange keeps the historical names.
func TestQueuePrefix(t *testing.T) {
	t.Parallel()
	for exchange, want := range map[string]string{
		"": "ates.accounting", rabbitmq.DefaultExchange: "ates.accounting", "ates_run_1": "ates_run_1.ates.accounting",
	} {
		if got := queuePrefix(exchange) + queueName("accounting"); got != want {
			t.Errorf("exchange %q: queue %q, want %q", exchange, got, want)
		}
	}
}

// TestBalanceFeedLooksTasksUpOnItsOwnPool: R-ACC-10 — the balance feed finds its pushes' tasks
// while requests hold every connection of the task tracker's pool; through that pool the same
// lookup waits (the control).
func TestBalanceFeedLooksTasksUpOnItsOwnPool(t *testing.T) {
	t.Parallel()
	for _, d := range storagetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var (
				cfg storage.Config
				db  *storage.DB
			)
			if d == dialect.Postgres {
				u := storagetest.MustCreatePostgresDatabase(t)
				cfg, db = storage.Config{Overrides: map[string]string{"tasks": u}}, storagetest.MustOpenPostgres(t, u)
			} else {
				dir := t.TempDir()
				var err error
				if db, err = storage.OpenSQLite(ctx, filepath.Join(dir, "tasks.db")); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				cfg = storage.Config{DataDir: dir}
			}
			if err := migrate(ctx, "tasks", db); err != nil {
				t.Fatal(err)
			}
			client := tasksdb.NewClient(tasksdb.Driver(db.Driver()))
			id := uuid.New()
			if _, err := client.Task.Create().SetPublicID(id).SetTitle("Feed the kiwi").SetDescription("Twice a day").
				SetAssigneeID(uuid.New()).SetCreatedAt(time.Now()).Save(ctx); err != nil {
				t.Fatal(err)
			}

			storagetest.HoldPool(t, db) // requests hold every connection of the pool
			waiting, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			if _, errs := tasks.NewLookup(client).GetMany(waiting, []uuid.UUID{id}); !errors.Is(errs[0], context.DeadlineExceeded) {
				t.Fatalf("through the held pool the lookup returned %v, want it to wait (the test would show nothing)", errs[0])
			}

			lookup, closeLookup, err := openTaskLookup(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer closeLookup()
			bounded, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			got, errs := lookup.GetMany(bounded, []uuid.UUID{id})
			if errs[0] != nil || got[0].Title != "Feed the kiwi" {
				t.Fatalf("the feed's lookup = %+v, %v; want the task", got[0], errs[0])
			}
		})
	}
}

// TestConsumerSubscriptions: every context's consumer reads its own queue and topics; the
// ledger's and the task tracker's take what is queued at once with several workers, while
// analytics' read models gather larger batches on one worker; task.updated goes to analytics,
// not to accounting, which learns a task's description from task.created (docs/decisions.md).
func TestConsumerSubscriptions(t *testing.T) {
	if q := topologyQueue("accounting"); slices.Contains(q.Topics, contract.TaskUpdated) {
		t.Errorf("accounting's queue is bound to %s: %v", contract.TaskUpdated, q.Topics)
	}
	if q := topologyQueue("analytics"); !slices.Contains(q.Topics, contract.TaskUpdated) {
		t.Errorf("analytics' queue is not bound to %s: %v", contract.TaskUpdated, q.Topics)
	}
	for _, name := range Contexts {
		s, q := consumerSubscription(name), topologyQueue(name)
		if q.Name == "" {
			continue // a context without a queue (auth)
		}
		if s.Queue != q.Name || !slices.Equal(s.Topics, q.Topics) || s.Batch != consumerBatch {
			t.Errorf("%s: subscription %+v, want queue %s, topics %v, batch %d", name, s, q.Name, q.Topics, consumerBatch)
		}
		want := bus.Subscription{Concurrency: consumerWorkers}
		if name == "analytics" {
			want = bus.Subscription{Concurrency: 1, Linger: readModelLinger}
		}
		if s.Concurrency != want.Concurrency || s.Linger != want.Linger {
			t.Errorf("%s: %d workers lingering %v, want %d lingering %v", name, s.Concurrency, s.Linger, want.Concurrency, want.Linger)
		}
	}
}
