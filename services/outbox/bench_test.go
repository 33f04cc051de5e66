package outbox_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/bus/inproc"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// shuffleRows is the size of the tasks context's shuffle (R-TASK-4).
const shuffleRows = 100000

// BenchmarkAppend measures appending 100 000 events (validation included) in one transaction
// and committing it, as a shuffle of 100 000 open tasks does (R-TASK-4, R-EVT-4): through an
// Ent transaction (multi-row INSERTs), and on PostgreSQL also through a *sql.Tx ("copy": the
// writer COPYs). Besides time it reports the CPU seconds of this process and of the PostgreSQL
// backends of the test database.
//
//	go test -run '^$' -bench BenchmarkAppend -benchtime 5x ./services/outbox/
func BenchmarkAppend(b *testing.B) {
	for _, d := range storagetest.Dialects {
		for _, via := range []string{"ent", "copy"} {
			if via == "copy" && d != dialect.Postgres {
				continue
			}
			b.Run(d+"/"+via, func(b *testing.B) {
				db := storagetest.MustOpen(b, d)
				client := MustContextDB(b, db)
				w := MustWriter(b, db)
				recs := MustRecords(b, shuffleRows)
				ctx := context.Background()
				begin := func() (interface {
					outbox.Execer
					Commit() error
				}, error) {
					if via == "copy" {
						return db.SQL.BeginTx(ctx, nil)
					}
					return client.Tx(ctx)
				}
				var goCPU, pgCPU time.Duration
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					for i := range recs { // fresh event ids: event_id is unique
						recs[i].Envelope.ID = uuid.NewString()
					}
					goCPU0, pgCPU0 := storagetest.ProcessCPU(b), storagetest.BackendCPU(b, db)
					b.StartTimer()
					tx, err := begin()
					if err != nil {
						b.Fatal(err)
					}
					if err := w.Append(ctx, tx, recs...); err != nil {
						b.Fatal(err)
					}
					if err := tx.Commit(); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					goCPU += storagetest.ProcessCPU(b) - goCPU0
					pgCPU += storagetest.BackendCPU(b, db).Since(pgCPU0)
					b.StartTimer()
				}
				b.ReportMetric(float64(b.N*shuffleRows)/b.Elapsed().Seconds(), "rows/s")
				b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/append")
				b.ReportMetric(goCPU.Seconds()/float64(b.N), "go-cpu-s/op")
				b.ReportMetric(pgCPU.Seconds()/float64(b.N), "pg-cpu-s/op")
			})
		}
	}
}

// relayEvents is how many outbox rows one BenchmarkRelay iteration relays.
const relayEvents = 20000

// BenchmarkRelay measures events from committed outbox rows to acknowledged consumption
// through the in-process bus: "noop" acknowledges at once, "inbox" applies each event in its
// own transaction through an idempotent consumer with a no-op handler; "-batch" consumers take
// up to 200 deliveries at a time (SubscribeBatch; the inbox applies them in one transaction)
// (R-EVT-4, R-EVT-5).
//
//	go test -run '^$' -bench BenchmarkRelay -benchtime 5x ./services/outbox/
func BenchmarkRelay(b *testing.B) {
	for _, d := range storagetest.Dialects {
		for _, consumer := range relayConsumers {
			b.Run(d+"/"+consumer, func(b *testing.B) {
				db := storagetest.MustOpen(b, d)
				benchRelay(b, db, inproc.New(), consumer, "bench_"+strings.ReplaceAll(consumer, "-", "_"))
			})
		}
	}
}

// relayConsumers are the consumers benchRelay can measure.
var relayConsumers = []string{"noop", "noop-batch", "inbox", "inbox-batch"}

// benchRelay relays relayEvents rows per iteration from db through t to a consumer of queue.
func benchRelay(b *testing.B, db *storage.DB, t bus.Transport, consumer, queue string) {
	b.Helper()
	client := MustContextDB(b, db)
	w := MustWriter(b, db)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var consumed atomic.Int64
	done := make(chan struct{}, 1)
	count := func() {
		if consumed.Add(1)%relayEvents == 0 {
			select {
			case done <- struct{}{}:
			default:
			}
		}
	}
	var h bus.Handler
	var bh bus.BatchHandler
	switch consumer {
	case "noop":
		h = func(context.Context, bus.Delivery) error { count(); return nil }
	case "noop-batch":
		bh = func(_ context.Context, ds []bus.Delivery) error {
			for range ds {
				count()
			}
			return nil
		}
	case "inbox", "inbox-batch":
		in := MustInbox(b, db, client, queue)
		inner, batch := in.Handler(), in.BatchHandler()
		h = func(ctx context.Context, d bus.Delivery) error {
			if err := inner(ctx, d); err != nil {
				return err
			}
			count()
			return nil
		}
		if consumer == "inbox-batch" {
			h, bh = nil, func(ctx context.Context, ds []bus.Delivery) error {
				if err := batch(ctx, ds); err != nil {
					return err
				}
				for range ds {
					count()
				}
				return nil
			}
		}
	}
	var sub bus.Consumer
	var err error
	if bh != nil {
		sub, err = t.SubscribeBatch(ctx, bus.Subscription{Queue: queue, Topics: []string{"account.*"}, Concurrency: 2, Batch: 200}, bh)
	} else {
		sub, err = t.Subscribe(ctx, bus.Subscription{Queue: queue, Topics: []string{"account.*"}, Concurrency: 8, Prefetch: 1024}, h)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Stop()

	recs := MustRecords(b, relayEvents)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for i := range recs {
			recs[i].Envelope.ID = uuid.NewString()
		}
		MustAppend(b, client, w, recs...)
		r, err := outbox.NewRelay(db, t, outbox.RelayOptions{Context: "bench", Logger: testLogger(b)})
		if err != nil {
			b.Fatal(err)
		}
		rctx, stop := context.WithCancel(ctx)
		ran := make(chan error, 1)
		b.StartTimer()
		go func() { ran <- r.Run(rctx) }()
		select {
		case <-done:
		case <-time.After(5 * time.Minute):
			b.Fatalf("consumed %d events, want %d", consumed.Load(), relayEvents)
		}
		b.StopTimer()
		stop()
		if err := <-ran; err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	if got := consumed.Load(); got < int64(b.N*relayEvents) {
		b.Fatalf("consumed %d events, want %d", got, b.N*relayEvents)
	}
	b.ReportMetric(float64(b.N*relayEvents)/b.Elapsed().Seconds(), "events/s")
}
