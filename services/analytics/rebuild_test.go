package analytics_test

import (
	"context"
	"database/sql"
	"errors"
	"iter"
	"slices"
	"strings"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entschema "entgo.io/ent/dialect/sql/schema"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/analyticsdb/migrate"
	"github.com/uberpopug/ates/ent/eventschema"
	"github.com/uberpopug/ates/services/analytics"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/money"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// MustProducer returns a fresh database of the dialect holding a producer's outbox table, with
// the events stored through the outbox writer in order, a few per transaction, as a
// producing context stores them. The table is the platform's (ent/eventschema), the one every
// context's schema embeds; it is created from analytics' generated copy of it, because this
// package may not import another context's Ent package (services/boundary_test.go).
func MustProducer(tb testing.TB, db *storage.DB, events []event.Envelope) *storage.DB {
	tb.Helper()
	ctx := context.Background()
	err := db.Migrate(ctx, func(ctx context.Context) error {
		m, err := entschema.NewMigrate(db.Driver())
		if err != nil {
			return err
		}
		return m.Create(ctx, migrate.OutboxEventsTable)
	})
	if err != nil {
		tb.Fatalf("creating the outbox table: %v", err)
	}
	w, err := outbox.NewWriter(db.Dialect, event.MustDefaultRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	for chunk := range slices.Chunk(events, 25) {
		err := storage.InTx(ctx, func(ctx context.Context) (*sql.Tx, error) {
			return db.SQL.BeginTx(ctx, nil)
		}, func(tx *sql.Tx) error {
			recs := make([]outbox.Record, len(chunk))
			for i, e := range chunk {
				recs[i] = outbox.Record{Key: e.Name, Envelope: e}
			}
			return w.Append(ctx, tx, recs...)
		})
		if err != nil {
			tb.Fatalf("storing events in the outbox: %v", err)
		}
	}
	return db
}

// TestRebuildFromOutboxes: R-AN-4 — the read models built from live deliveries, in an order
// of their own, are rebuilt identically by Reset and a replay of the producers' outboxes
// (auth, tasks, accounting; one producer after the other, in either order); the rebuild
// records the events as processed, so a live redelivery afterwards changes nothing.
func TestRebuildFromOutboxes(t *testing.T) {
	t.Parallel()
	sc := newTestScenario(t)
	qs := sc.queries(t)
	want := wanted(qs)
	var consumed []event.Envelope
	for _, e := range sc.shuffled(9) {
		if slices.Contains(analytics.Topics, e.Name) {
			consumed = append(consumed, e)
		}
	}
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		ctx := context.Background()
		h := MustService(t, db, sc.now)
		consumer := h.MustConsumer(t)
		// The live path: the first events through the consumer, the rest applied in batches.
		MustDeliver(t, consumer, consumed[:40]...)
		h.MustApplyInBatches(t, 50, consumed[40:]...)
		live := snapshot(t, h.svc, qs)
		diff(t, "live", live, want)

		auth := MustProducer(t, storagetest.MustOpen(t, db.Dialect), sc.authEvents)
		tasks := MustProducer(t, storagetest.MustOpen(t, db.Dialect), sc.tasksEvents)
		accounting := MustProducer(t, storagetest.MustOpen(t, db.Dialect), sc.accountingEvents)
		// Another consumer's record in analytics' inbox table survives a reset.
		if _, err := db.SQL.ExecContext(ctx, sqlOf(db, `INSERT INTO processed_events (consumer, event_id, processed_at) VALUES ('other', 'x', $1)`), time.Now().UTC()); err != nil {
			t.Fatal(err)
		}

		if err := h.svc.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		if got := countProcessed(t, db, analytics.ConsumerName); got != 0 {
			t.Fatalf("%d processed-event records of analytics after Reset, want 0", got)
		}
		if got := countProcessed(t, db, "other"); got != 1 {
			t.Fatalf("%d processed-event records of another consumer after Reset, want 1", got)
		}
		empty, err := h.svc.MostExpensive(ctx, admin, sc.first, sc.today)
		if err != nil || empty.Top != nil {
			t.Fatalf("MostExpensive after Reset = %s, %v; want no task", show(empty), err)
		}
		for name, order := range map[string][]*storage.DB{
			"auth, tasks, accounting": {auth, tasks, accounting},
			"accounting, tasks, auth": {accounting, tasks, auth},
		} {
			var sources []iter.Seq2[event.Envelope, error]
			for _, p := range order {
				sources = append(sources, analytics.OutboxEvents(ctx, p.SQL, p.Dialect, analytics.Topics))
			}
			stats, err := h.svc.Rebuild(ctx, sources...)
			if err != nil {
				t.Fatalf("Rebuild from %s: %v", name, err)
			}
			if want := (analytics.ReplayStats{Events: len(consumed), Applied: len(consumed)}); stats != want {
				t.Fatalf("Rebuild from %s: %+v, want %+v", name, stats, want)
			}
			diff(t, "rebuilt from "+name, snapshot(t, h.svc, qs), live)
		}
		if got := countProcessed(t, db, analytics.ConsumerName); got != len(consumed) {
			t.Fatalf("%d processed-event records after the rebuild, want %d", got, len(consumed))
		}
		// Live redeliveries of replayed events are duplicates; a second replay is too.
		MustDeliver(t, consumer, consumed[:10]...)
		stats, err := h.svc.Replay(ctx, analytics.OutboxEvents(ctx, accounting.SQL, accounting.Dialect, analytics.Topics))
		if err != nil {
			t.Fatal(err)
		}
		if stats.Applied != 0 || stats.Duplicates != len(sc.accountingEvents) {
			t.Fatalf("replaying accounting again: %+v, want %d duplicates", stats, len(sc.accountingEvents))
		}
		diff(t, "after redeliveries", snapshot(t, h.svc, qs), live)
	})
}

// TestReplayDeadLettersAndGoesOn: R-EVT-2 — an event a replay can never apply is stored as
// analytics' dead letter, and the rest of its batch and the batches after it are applied.
func TestReplayDeadLettersAndGoesOn(t *testing.T) {
	t.Parallel()
	day := date(t, "2026-03-02")
	l := newLedger(t)
	a := uuid.New()
	var events []event.Envelope
	for i := range analytics.ReplayBatch + 10 {
		events = append(events, l.post(a, contract.EntryFee, -100, at(day, 9, 0).Add(time.Duration(i)*time.Second)))
	}
	bad := l.post(a, contract.EntryFee, -100, at(day, 10, 0))
	bad.Data = []byte(`{"entryId":"` + uuid.NewString() + `","sequence":9999,"accountId":"` + a.String() +
		`","type":"BONUS","amount":1,"balanceAfter":1,"taskId":null,"description":"","occurredAt":"2026-03-02T07:00:00Z","day":"2026-03-02"}`)
	events = slices.Insert(events, 7, bad)
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		ctx := context.Background()
		h := MustService(t, db, at(day, 18, 0))
		for round, want := range []analytics.ReplayStats{
			{Events: len(events), Applied: len(events) - 1, DeadLettered: 1},
			{Events: len(events), Duplicates: len(events) - 1, DeadLettered: 1},
		} {
			got, err := h.svc.Replay(ctx, each(events))
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("replay %d: %+v, want %+v", round+1, got, want)
			}
		}
		s, err := h.svc.Summary(ctx, admin, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := len(events) - 1; s.ManagementEarnings != money.Cents(want*100) || s.NegativeBalanceCount != 1 {
			t.Fatalf("after the replays: %+v, want earnings of %d fees", s, want)
		}
		var id, status string
		var attempts int
		err = db.SQL.QueryRowContext(ctx, sqlOf(db, `SELECT event_id, status, attempts FROM dead_letters WHERE consumer = $1`), analytics.ConsumerName).Scan(&id, &status, &attempts)
		if err != nil {
			t.Fatal(err)
		}
		if id != bad.ID || status != "dead" || attempts != 2 {
			t.Fatalf("dead letter %s %s after %d attempts, want %s dead after 2", id, status, attempts, bad.ID)
		}
	})
}

// TestReadOutbox: the events of the names asked for, every one when none is named, in the
// producer's commit order across pages; the reader's error ends the read; an invalid payload
// is an error naming the row.
func TestReadOutbox(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var events, priced []event.Envelope
	for i := range 2300 {
		var e event.Envelope
		switch i % 3 {
		case 0:
			e = taskPriced(t, uuid.New(), 1000, 2000+int64(i%20)*100, now)
			priced = append(priced, e)
		case 1:
			e = taskAssigned(t, uuid.New(), uuid.New(), contract.AssignedOnCreate, now)
		default:
			e = accountCreated(t, uuid.New(), identity.Worker, now)
		}
		events = append(events, e)
	}
	ids := func(es []event.Envelope) []string {
		out := make([]string, len(es))
		for i, e := range es {
			out[i] = e.ID
		}
		return out
	}
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		ctx := context.Background()
		p := MustProducer(t, db, events)
		read := func(names []string) ([]event.Envelope, error) {
			var got []event.Envelope
			err := analytics.ReadOutbox(ctx, p.SQL, p.Dialect, names, func(e event.Envelope) error {
				got = append(got, e)
				return nil
			})
			return got, err
		}
		got, err := read([]string{contract.TaskPriced})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), ids(priced)) {
			t.Fatalf("read %d task.priced events, want the %d stored, in order", len(got), len(priced))
		}
		if got, err = read(nil); err != nil || !slices.Equal(ids(got), ids(events)) {
			t.Fatalf("read %d events (%v), want all %d in order", len(got), err, len(events))
		}
		stop := errors.New("enough")
		n := 0
		err = analytics.ReadOutbox(ctx, p.SQL, p.Dialect, nil, func(event.Envelope) error {
			if n++; n == 1500 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || n != 1500 {
			t.Fatalf("stopping after 1500: %v after %d", err, n)
		}
		if _, err := p.SQL.ExecContext(ctx, sqlOf(p, `INSERT INTO outbox_events (event_id, name, version, aggregate_key, payload, created_at)
			VALUES ('broken', 'task.priced', 1, 'k', '{"eventId":"broken"}', $1)`), now); err != nil {
			t.Fatal(err)
		}
		if _, err := read([]string{contract.TaskPriced}); err == nil || !strings.Contains(err.Error(), "outbox row 2301") {
			t.Fatalf("reading an invalid payload: %v, want an error naming row 2301", err)
		}
	})
}

// each yields the events, as Replay reads them.
func each(events []event.Envelope) iter.Seq2[event.Envelope, error] {
	return func(yield func(event.Envelope, error) bool) {
		for _, e := range events {
			if !yield(e, nil) {
				return
			}
		}
	}
}

func countProcessed(tb testing.TB, db *storage.DB, consumer string) int {
	tb.Helper()
	var n int
	err := db.SQL.QueryRowContext(context.Background(), sqlOf(db, `SELECT COUNT(*) FROM `+eventschema.InboxTable+` WHERE consumer = $1`), consumer).Scan(&n)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// sqlOf adapts a query with $n placeholders to the database's dialect.
func sqlOf(db *storage.DB, q string) string {
	if db.Dialect == dialect.SQLite {
		return strings.ReplaceAll(q, "$", "?")
	}
	return q
}
