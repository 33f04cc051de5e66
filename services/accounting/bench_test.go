package accounting_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/accountingdb"
	"github.com/uberpopug/ates/services/accounting"
	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// benchPopugs is how many billing accounts the benchmarks' events spread over.
const benchPopugs = 100

// mustBenchDeliveries seeds benchPopugs billing accounts and ⌈n/2⌉ priced, described tasks (as
// if their account.created and task.created events had been applied), and returns n deliveries
// alternating task.assigned and task.completed of those tasks, ready for the inbox handler.
func mustBenchDeliveries(tb testing.TB, h *harness, n int) []bus.Delivery {
	tb.Helper()
	ctx := context.Background()
	popugs := make([]uuid.UUID, benchPopugs)
	accounts := make([]*accountingdb.AccountCreate, benchPopugs)
	for i := range popugs {
		popugs[i] = uuid.New()
		accounts[i] = h.client.Account.Create().SetPublicID(popugs[i]).SetUsername(fmt.Sprintf("popug_%d", i)).
			SetRole("WORKER").SetVersion(1)
	}
	if err := h.client.Account.CreateBulk(accounts...).Exec(ctx); err != nil {
		tb.Fatal(err)
	}
	tasks := make([]uuid.UUID, (n+1)/2)
	for from := 0; from < len(tasks); from += 1000 {
		batch := make([]*accountingdb.TaskCreate, 0, 1000)
		for i := from; i < min(from+1000, len(tasks)); i++ {
			tasks[i] = uuid.New()
			batch = append(batch, h.client.Task.Create().SetPublicID(tasks[i]).SetFee(1000+int64(i%11)*100).
				SetReward(2000+int64(i%21)*100).SetPricedAt(start).SetTitle(fmt.Sprintf("Task %d", i)).
				SetJiraID(fmt.Sprintf("UBERPOP-%d", i)).SetDescription("d").SetDescribed(true))
		}
		if err := h.client.Task.CreateBulk(batch...).Exec(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	out := make([]bus.Delivery, n)
	for i := range out {
		task, popug, at := tasks[i/2], popugs[(i/2)%benchPopugs], start.Add(time.Duration(i)*time.Second)
		if i%2 == 0 {
			out[i] = mustDelivery(tb, taskAssigned(tb, task, popug, at))
		} else {
			out[i] = mustDelivery(tb, taskCompleted(tb, task, popug, at))
		}
	}
	return out
}

// mustAllApplied checks, untimed, that every delivery made exactly one entry and the ledger holds.
func mustAllApplied(b *testing.B, h *harness, n int) {
	b.Helper()
	b.StopTimer()
	if got := h.mustCount(b, `SELECT COUNT(*) FROM entries`); got != n {
		b.Fatalf("%d entries after %d events", got, n)
	}
	if got := h.mustCount(b, `SELECT COUNT(*) FROM accounts a WHERE a.balance <>
		(SELECT COALESCE(SUM(e.amount), 0) FROM entries e WHERE e.account_id = a.public_id)`); got != 0 {
		b.Fatalf("%d balances differ from the sum of their entries", got)
	}
	h.mustNoDeadLetters(b)
}

// BenchmarkApplyEvents is the throughput of task.assigned / task.completed through accounting's
// inbox handler (validation, processed-event record, price lookup, balance update, entry,
// balance.changed in the outbox, commit), one handler and several at once (R-ACC-2, R-EVT-5).
//
//	go test -run '^$' -bench BenchmarkApplyEvents -benchtime 4000x ./services/accounting/
func BenchmarkApplyEvents(b *testing.B) {
	for _, d := range storagetest.Dialects {
		for _, handlers := range []int{1, 8, 32} {
			if d == dialect.SQLite && handlers > 8 {
				continue // one writer at a time: more handlers only queue
			}
			b.Run(fmt.Sprintf("%s/handlers=%d", d, handlers), func(b *testing.B) {
				db := storagetest.MustOpen(b, d)
				h := MustService(b, db)
				deliveries := mustBenchDeliveries(b, h, b.N)
				b.ResetTimer()
				applyConcurrently(b, deliveries, handlers, 1, func(ctx context.Context, ds []bus.Delivery) error {
					return h.handle(ctx, ds[0])
				})
				mustAllApplied(b, h, b.N)
			})
		}
	}
}

// BenchmarkApplyRabbitMQ is the throughput of task.assigned / task.completed published through
// RabbitMQ (persistent, confirmed) and applied by two competing accounting replicas on
// PostgreSQL: "pipeline" publishes while the replicas consume, "backlog" lets them drain a
// queue already full (R-OPS-2; target ≥ 5 000 events/s). batch=1 is one transaction and one
// ack per event (Subscribe, Apply) with several handlers per replica; larger batches are the
// workers' way (SubscribeBatch, ApplyBatch: one transaction and one multiple-ack per batch).
//
//	go test -run '^$' -bench BenchmarkApplyRabbitMQ -benchtime 20000x ./services/accounting/
func BenchmarkApplyRabbitMQ(b *testing.B) {
	for _, mode := range []string{"pipeline", "backlog"} {
		for _, c := range []struct{ handlers, batch int }{{16, 1}, {2, 200}, {4, 200}} {
			b.Run(fmt.Sprintf("postgres/%s/replicas=2/handlers=%d/batch=%d", mode, c.handlers, c.batch), func(b *testing.B) {
				benchRabbitMQ(b, mode == "backlog", c.handlers, c.batch)
			})
		}
	}
}

func benchRabbitMQ(b *testing.B, backlog bool, handlers, batch int) {
	top := mustRabbitTopology(b)
	db := storagetest.MustOpen(b, dialect.Postgres)
	h := MustService(b, db)
	pool2 := mustReplicaPool(b, db)
	_, second := h.mustReplica(b, pool2, newLockedRand(3, 4))
	msgs := make([]bus.Message, b.N)
	for i, d := range mustBenchDeliveries(b, h, b.N) {
		msgs[i] = d.Message
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	publisher := top.transport(b)
	if err := publisher.Declare(ctx, bus.Queue{Name: accountingQueue, Topics: accounting.Topics}); err != nil {
		b.Fatal(err)
	}
	var acked atomic.Int64
	done := make(chan struct{})
	count := func(h bus.Handler) bus.Handler {
		return func(ctx context.Context, d bus.Delivery) error {
			err := h(ctx, d)
			if err == nil && acked.Add(1) == int64(b.N) {
				close(done)
			}
			return err
		}
	}
	countBatch := func(h bus.BatchHandler) bus.BatchHandler {
		return func(ctx context.Context, ds []bus.Delivery) error {
			err := h(ctx, ds)
			if err == nil && acked.Add(int64(len(ds))) == int64(b.N) {
				close(done)
			}
			return err
		}
	}
	subscribe := func() {
		if batch > 1 {
			sub := bus.Subscription{Queue: accountingQueue, Topics: accounting.Topics, Concurrency: handlers, Batch: batch}
			for _, handle := range []bus.BatchHandler{h.mustBatchReplica(b, db, newLockedRand(1, 2)), h.mustBatchReplica(b, pool2, newLockedRand(3, 4))} {
				c, err := top.transport(b).SubscribeBatch(ctx, sub, countBatch(handle))
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(c.Stop)
			}
			return
		}
		sub := bus.Subscription{Queue: accountingQueue, Topics: accounting.Topics, Concurrency: handlers, Prefetch: 4 * handlers}
		for _, handle := range []bus.Handler{h.handle, second} {
			c, err := top.transport(b).Subscribe(ctx, sub, count(handle))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(c.Stop)
		}
	}
	publish := func() {
		const batch, publishers = 500, 4
		var wg sync.WaitGroup
		var next atomic.Int64
		for range publishers {
			wg.Go(func() {
				for {
					from := int(next.Add(batch)) - batch
					if from >= len(msgs) {
						return
					}
					if err := publisher.Publish(ctx, msgs[from:min(from+batch, len(msgs))]...); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}

	if backlog {
		publish()
		b.ResetTimer()
		subscribe()
	} else {
		subscribe()
		b.ResetTimer()
		publish()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "published/s")
	}
	select {
	case <-done:
	case <-ctx.Done():
		b.Fatalf("%d of %d events applied before the timeout", acked.Load(), b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	mustAllApplied(b, h, b.N)
}

// BenchmarkApplyBatch is the throughput of task.assigned / task.completed applied in batches
// through accounting's inbox batch handler (ApplyBatch: one transaction per batch), by one
// worker and by several at once, without a transport (R-ACC-2, R-EVT-5).
//
//	go test -run '^$' -bench BenchmarkApplyBatch -benchtime 20000x ./services/accounting/
func BenchmarkApplyBatch(b *testing.B) {
	for _, d := range storagetest.Dialects {
		for _, c := range []struct{ workers, batch int }{{1, 200}, {4, 200}} {
			b.Run(fmt.Sprintf("%s/workers=%d/batch=%d", d, c.workers, c.batch), func(b *testing.B) {
				db := storagetest.MustOpen(b, d)
				h := MustService(b, db)
				handle := h.mustBatchReplica(b, db, newLockedRand(1, 2))
				deliveries := mustBenchDeliveries(b, h, b.N)
				b.ResetTimer()
				applyConcurrently(b, deliveries, c.workers, c.batch, handle)
				mustAllApplied(b, h, b.N)
			})
		}
	}
}

// applyConcurrently hands the deliveries to apply, batch by batch, from several workers at once,
// then stops the timer, fails on any refused batch and reports events/s.
func applyConcurrently(b *testing.B, deliveries []bus.Delivery, workers, batch int, apply func(context.Context, []bus.Delivery) error) {
	b.Helper()
	ctx := context.Background()
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				from := int(next.Add(int64(batch))) - batch
				if from >= len(deliveries) {
					return
				}
				if err := apply(ctx, deliveries[from:min(from+batch, len(deliveries))]); err != nil {
					failed.Store(&err)
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	b.ReportMetric(float64(len(deliveries))/b.Elapsed().Seconds(), "events/s")
}
