package inbox_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/inbox"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// R-EVT-5, R-ACC-4: a batch applies each of its events once, in one transaction, and skips
// those applied before — whether by an earlier batch, by the one-event path or twice within
// the batch.
func TestBatchAppliesEachEventOnce(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		name := uniqueName("batch")
		c := MustConsumer(t, db, client, name, 3, nil)
		ctx := context.Background()
		var ds []bus.Delivery
		for range 20 {
			ds = append(ds, MustDelivery(t, MustAccountCreated(t)))
		}
		if err := c.Handler()(ctx, ds[0]); err != nil { // applied before, singly
			t.Fatal(err)
		}
		h := c.BatchHandler()
		if err := h(ctx, ds[:10]); err != nil {
			t.Fatal(err)
		}
		again := append(append([]bus.Delivery{}, ds[5:]...), ds[12], ds[3]) // overlaps and repeats
		if err := h(ctx, again); err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if got := effects(t, db, name, d.ID); got != 1 {
				t.Errorf("event %s: effects = %d, want 1", d.ID, got)
			}
		}
		if got := c.calls.Load(); got != int64(len(ds)) {
			t.Errorf("Handle called %d times, want %d", got, len(ds))
		}
		if got := processed(t, db, name); got != len(ds) {
			t.Errorf("processed records = %d, want %d", got, len(ds))
		}
		if got := counterValue(t, "ates_events_consumed_total", "consumer", name); got != float64(len(ds)) {
			t.Errorf("ates_events_consumed_total = %v, want %d", got, len(ds))
		}
		if got := counterValue(t, "ates_events_duplicate_total", "consumer", name); got != 1+5+2 {
			t.Errorf("ates_events_duplicate_total = %v, want 8", got)
		}
	})
}

// R-EVT-2, R-EVT-5: a poison event in a batch does not hold the others back: the batch
// transaction fails and is rolled back, its events are applied one by one, the poison one is
// dead-lettered, an invalid one too, and the batch is acknowledged.
func TestBatchWithPoisonEventFallsBackToSingleEvents(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		name := uniqueName("poison")
		var poisonID string
		c := MustConsumer(t, db, client, name, 3, func(_ context.Context, _ *authdb.Tx, e event.Envelope, _ int64) error {
			if e.ID == poisonID {
				return inbox.Permanent(errors.New("cannot apply this one"))
			}
			return nil
		})
		var ds []bus.Delivery
		for range 6 {
			ds = append(ds, MustDelivery(t, MustAccountCreated(t)))
		}
		poisonID = ds[3].ID
		invalid := bus.Delivery{Message: bus.Message{ID: "bad", Topic: "account.created", Body: []byte(`{"eventId":"nope"}`)}}
		ds = append(ds[:2], append([]bus.Delivery{invalid}, ds[2:]...)...)
		if err := c.BatchHandler()(context.Background(), ds); err != nil {
			t.Fatalf("batch with a poison event not acknowledged: %v", err)
		}
		for _, d := range ds {
			want := 1
			if d.ID == poisonID || d.ID == "bad" {
				want = 0
			}
			if got := effects(t, db, name, d.ID); got != want {
				t.Errorf("event %s: effects = %d, want %d", d.ID, got, want)
			}
		}
		if got := processed(t, db, name); got != 5 {
			t.Errorf("processed records = %d, want 5", got)
		}
		dead := mustDeadLetters(t, db, name, inbox.StatusDead)
		if len(dead) != 2 {
			t.Fatalf("dead letters = %+v, want the poison and the invalid event", dead)
		}
		if got := counterValue(t, "ates_event_batches_split_total", "consumer", name); got != 1 {
			t.Errorf("ates_event_batches_split_total = %v, want 1", got)
		}
	})
}

// R-EVT-5: HandleBatch, when set, gets the batch's new events in delivery order, in the
// transaction that records them; an error from it rolls everything back and the events are
// applied one by one through Handle instead.
func TestHandleBatch(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		for _, fail := range []bool{false, true} {
			name := uniqueName("handlebatch")
			var mu sync.Mutex
			var batches [][]string
			single := 0
			c, err := inbox.New(inbox.Config[*authdb.Tx]{
				Name: name, Dialect: db.Dialect, DB: db.SQL, Begin: client.Tx,
				Registry: event.MustDefaultRegistry(), Logger: testLogger(t),
				Handle: func(ctx context.Context, tx *authdb.Tx, e event.Envelope) error {
					mu.Lock()
					single++
					mu.Unlock()
					return recordEffect(ctx, db, tx, name, e.ID)
				},
				HandleBatch: func(ctx context.Context, tx *authdb.Tx, es []event.Envelope) error {
					var ids []string
					for _, e := range es {
						ids = append(ids, e.ID)
						if err := recordEffect(ctx, db, tx, name, e.ID); err != nil {
							return err
						}
					}
					mu.Lock()
					batches = append(batches, ids)
					mu.Unlock()
					if fail {
						return errors.New("batch refused")
					}
					return nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			var ds []bus.Delivery
			var want []string
			for range 4 {
				d := MustDelivery(t, MustAccountCreated(t))
				ds = append(ds, d)
				want = append(want, d.ID)
			}
			if err := c.BatchHandler()(context.Background(), ds); err != nil {
				t.Fatal(err)
			}
			if len(batches) != 1 || len(batches[0]) != len(want) {
				t.Fatalf("fail=%v: HandleBatch got %v, want one batch %v", fail, batches, want)
			}
			for i := range want {
				if batches[0][i] != want[i] {
					t.Errorf("fail=%v: HandleBatch order %v, want %v", fail, batches[0], want)
					break
				}
			}
			for _, id := range want {
				if got := effects(t, db, name, id); got != 1 {
					t.Errorf("fail=%v: event %s: effects = %d, want 1", fail, id, got)
				}
			}
			if wantSingle := map[bool]int{false: 0, true: 4}[fail]; single != wantSingle {
				t.Errorf("fail=%v: Handle called %d times, want %d", fail, single, wantSingle)
			}
		}
	})
}
