package outbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/bus/inproc"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

func TestNewWriterRefusesBadConfig(t *testing.T) {
	t.Parallel()
	reg := event.MustDefaultRegistry()
	tests := []struct {
		name    string
		dialect string
		reg     *event.Registry
		ok      bool
	}{
		{"sqlite", dialect.SQLite, reg, true},
		{"postgres", dialect.Postgres, reg, true},
		{"mysql", dialect.MySQL, reg, false},
		{"no dialect", "", reg, false},
		{"no registry", dialect.Postgres, nil, false},
	}
	for _, tt := range tests {
		w, err := outbox.NewWriter(tt.dialect, tt.reg)
		if tt.ok != (err == nil && w != nil) {
			t.Errorf("%s: NewWriter = %v, %v", tt.name, w, err)
		}
	}
}

func TestNewRelayRefusesBadConfig(t *testing.T) {
	t.Parallel()
	db := storagetest.MustOpen(t, dialect.SQLite)
	b := inproc.New()
	tests := []struct {
		name string
		db   *storage.DB
		t    bus.Transport
		opts outbox.RelayOptions
	}{
		{"no db", nil, b, outbox.RelayOptions{Context: "auth"}},
		{"no transport", db, nil, outbox.RelayOptions{Context: "auth"}},
		{"no context name", db, b, outbox.RelayOptions{}},
		{"huge batch", db, b, outbox.RelayOptions{Context: "auth", BatchSize: outbox.MaxBatchSize + 1}},
	}
	for _, tt := range tests {
		if r, err := outbox.NewRelay(tt.db, tt.t, tt.opts); err == nil {
			t.Errorf("%s: NewRelay = %v, want an error", tt.name, r)
		}
	}
}

// Taken counts the records a Writer was given, so a consumer can tell a transaction that stored
// no event and leave its relay be (cmd/ates, notifyAfter).
func TestWriterTaken(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		w := MustWriter(t, db)
		if n := w.Taken(); n != 0 {
			t.Fatalf("Taken = %d on a new writer", n)
		}
		MustAppend(t, client, w) // nothing
		if _, err := w.Rows(MustRecords(t, 2)...); err != nil {
			t.Fatal(err)
		}
		MustAppend(t, client, w, MustRecords(t, 3)...)
		if n := w.Taken(); n != 5 {
			t.Fatalf("Taken = %d after 2 rows and 3 appended, want 5", n)
		}
	})
}

// R-EVT-2: producers validate before an event is stored; an invalid one stores nothing.
func TestAppendValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*outbox.Record)
	}{
		{"data violates schema", func(r *outbox.Record) { r.Envelope.Data = json.RawMessage(`{"accountId":"not-a-uuid"}`) }},
		{"unknown event", func(r *outbox.Record) { r.Envelope.Name = "account.exploded" }},
		{"unknown version", func(r *outbox.Record) { r.Envelope.Version = 7 }},
		{"no event id", func(r *outbox.Record) { r.Envelope.ID = "" }},
		{"no producer", func(r *outbox.Record) { r.Envelope.Producer = "" }},
		{"data not JSON", func(r *outbox.Record) { r.Envelope.Data = json.RawMessage(`{`) }},
		{"no aggregate key", func(r *outbox.Record) { r.Key = "" }},
	}
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		w := MustWriter(t, db)
		ctx := context.Background()
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				// The bad record sits among good ones, beyond the parallel-validation threshold.
				recs := MustRecords(t, 1500)
				tt.mutate(&recs[1200])
				tx, err := client.Tx(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if err := w.Append(ctx, tx, recs...); err == nil {
					t.Error("Append accepted an invalid record")
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
				if got := mustRows(t, db); len(got) != 0 {
					t.Errorf("%d rows stored after a refused Append", len(got))
				}
			})
		}
	})
}

// R-EVT-2: a batch larger than one INSERT that is refused part-way (an invalid record, or the
// database refusing a chunk) leaves nothing behind, and the caller's transaction goes on.
func TestAppendLargeBatchRefusedLeavesNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(recs []outbox.Record)
	}{
		{"invalid record in the third chunk", func(recs []outbox.Record) {
			recs[10000].Envelope.Data = json.RawMessage(`{"role":"EMPEROR"}`)
		}},
		{"duplicate event id in the third chunk", func(recs []outbox.Record) {
			recs[10000].Envelope.ID = recs[3].Envelope.ID
		}},
	}
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		w := MustWriter(t, db)
		ctx := context.Background()
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				recs := MustRecords(t, 10001)
				tt.mutate(recs)
				tx, err := client.Tx(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback()
				if err := w.Append(ctx, tx, recs...); err == nil {
					t.Fatal("Append accepted the batch")
				}
				good := MustRecords(t, 2)
				if err := w.Append(ctx, tx, good...); err != nil {
					t.Fatalf("the transaction is unusable after a refused Append: %v", err)
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
				rows := mustRows(t, db)
				if len(rows) != 2 || rows[0].EventID != good[0].Envelope.ID || rows[1].EventID != good[1].Envelope.ID {
					t.Fatalf("stored %d rows, want only the 2 appended after the refusal", len(rows))
				}
				if _, err := db.SQL.Exec("DELETE FROM outbox_events"); err != nil {
					t.Fatal(err)
				}
			})
		}
	})
}

// R-EVT-4: the events commit or roll back with the caller's transaction, in many chunks.
func TestAppendIsPartOfTheCallersTransaction(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		w := MustWriter(t, db)
		ctx := context.Background()

		tx, err := client.Tx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Append(ctx, tx, MustRecords(t, 3)...); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		if got := mustRows(t, db); len(got) != 0 {
			t.Fatalf("%d rows after rollback, want 0", len(got))
		}

		// More rows than one INSERT carries: 10 001 = 3 chunks of 5 000, 5 000 and 1.
		recs := MustRecords(t, 10001)
		MustAppend(t, client, w, recs...)
		rows := mustRows(t, db)
		if len(rows) != len(recs) {
			t.Fatalf("%d rows, want %d", len(rows), len(recs))
		}
		for i, r := range rows {
			e := recs[i].Envelope
			if r.EventID != e.ID || r.Name != e.Name || r.Version != e.Version || r.Key != recs[i].Key || r.Sent {
				t.Fatalf("row %d = %+v, want event %s unsent", i, r, e.ID)
			}
			if time.Since(r.Created) > time.Minute || time.Since(r.Created) < 0 {
				t.Fatalf("row %d created_at = %v", i, r.Created)
			}
			want, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			if r.Payload != string(want) {
				t.Fatalf("row %d payload = %s, want the envelope %s", i, r.Payload, want)
			}
		}
		if err := w.Append(ctx, nil, recs[0]); err == nil {
			t.Error("Append without a transaction succeeded")
		}
	})
}

// R-EVT-4: the relay publishes every committed row, in id order, with its aggregate key (the
// transport keeps each key's order), and marks it sent.
func TestRelayPublishesInOrderAndMarksSent(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		w := MustWriter(t, db)
		b := inproc.New()
		ctx := context.Background()
		got := MustCollect(t, ctx, b, "account.#")
		var recs []outbox.Record
		for range 4 {
			batch := MustRecords(t, 300)
			MustAppend(t, client, w, batch...)
			recs = append(recs, batch...)
		}
		keys := &keyTap{Transport: b, keys: map[string]string{}}
		r, err := outbox.NewRelay(db, keys, outbox.RelayOptions{Context: "order-" + db.Dialect, BatchSize: 500, PollInterval: 10 * time.Millisecond, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if n, oldest, err := r.Lag(ctx); err != nil || n != len(recs) || oldest <= 0 {
			t.Errorf("Lag before relaying = %d, %v, %v; want %d, > 0", n, oldest, err, len(recs))
		}
		runRelay(t, r)
		msgs := got.waitFor(t, len(recs), 30*time.Second)
		if len(msgs) != len(recs) {
			t.Fatalf("received %d messages, want %d", len(msgs), len(recs))
		}
		for i, m := range msgs {
			e := recs[i].Envelope
			if m.ID != e.ID || m.Topic != e.Name {
				t.Fatalf("message %d = %s %s, want %s %s", i, m.ID, m.Topic, e.ID, e.Name)
			}
			if k := keys.key(m.ID); k != recs[i].Key {
				t.Fatalf("message %d was published with key %q, want %q", i, k, recs[i].Key)
			}
			if parsed, err := event.MustDefaultRegistry().Parse(m.Body); err != nil || parsed.ID != e.ID {
				t.Fatalf("message %d body = %v, %v", i, parsed, err)
			}
		}
		eventually(t, 10*time.Second, "rows marked sent", func() bool { return unsent(t, db) == 0 })
		for _, row := range mustRows(t, db) {
			if !row.Sent || row.SentAt.Time.Before(row.Created.Add(-time.Second)) {
				t.Fatalf("row %+v not marked sent properly", row)
			}
		}
		if n, oldest, err := r.Lag(ctx); err != nil || n != 0 || oldest != 0 {
			t.Errorf("Lag after relaying = %d, %v, %v; want 0, 0, nil", n, oldest, err)
		}
	})
}

// R-EVT-4: while the broker is down the rows wait; once it is back they flow, nothing lost.
// "mid-backlog": draining a backlog, the relay marks a batch sent and reads the next one while
// the following batch publishes; a publication failing in the middle loses nothing, doubles
// nothing and keeps the order.
func TestRelayResumesAfterPublishErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                string
		records             int
		failFirst, failCall int64
		wantCalls           int64
	}{
		{"broker down at first", 250, 4, 0, 4 + 3}, // 4 failures, then 3 batches
		{"mid-backlog", 1050, 0, 3, 11 + 1},        // 11 batches, one of them twice
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			storagetest.Each(t, func(t *testing.T, db *storage.DB) {
				client := MustContextDB(t, db)
				w := MustWriter(t, db)
				b := inproc.New()
				ctx := context.Background()
				got := MustCollect(t, ctx, b, "#")
				ft := &failingTransport{Transport: b, failFirst: tt.failFirst, failCall: tt.failCall}
				recs := MustRecords(t, tt.records)
				MustAppend(t, client, w, recs...)
				r, err := outbox.NewRelay(db, ft, outbox.RelayOptions{
					Context: fmt.Sprintf("flaky%d-%s", i, db.Dialect), BatchSize: 100, PollInterval: 5 * time.Millisecond,
					MaxBackoff: 20 * time.Millisecond, Logger: testLogger(t),
				})
				if err != nil {
					t.Fatal(err)
				}
				runRelay(t, r)
				msgs := got.waitFor(t, len(recs), 30*time.Second)
				for i, m := range msgs {
					if m.ID != recs[i].Envelope.ID {
						t.Fatalf("message %d = %s, want %s", i, m.ID, recs[i].Envelope.ID)
					}
				}
				eventually(t, 10*time.Second, "rows marked sent", func() bool { return unsent(t, db) == 0 })
				if calls := ft.calls.Load(); calls != tt.wantCalls {
					t.Errorf("Publish called %d times, want %d", calls, tt.wantCalls)
				}
				if len(got.snapshot()) != len(recs) {
					t.Errorf("received %d messages, want exactly %d", len(got.snapshot()), len(recs))
				}
			})
		})
	}
}

// R-EVT-4: 10 000 events, appended before and while the relay runs, are all published once, in
// order, and marked sent.
func TestRelayTenThousand(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		w := MustWriter(t, db)
		b := inproc.New()
		const n = 10000
		got := MustCollect(t, context.Background(), b, "account.*")
		recs := MustRecords(t, n)
		MustAppend(t, client, w, recs[:n/2]...)
		r, err := outbox.NewRelay(db, b, outbox.RelayOptions{Context: "tenk-" + db.Dialect, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		runRelay(t, r)
		// More events while it runs, in smaller transactions, each followed by a Notify.
		for i := n / 2; i < n; i += 500 {
			MustAppend(t, client, w, recs[i:i+500]...)
			r.Notify()
		}
		msgs := got.waitFor(t, n, 60*time.Second)
		eventually(t, 10*time.Second, "rows marked sent", func() bool { return unsent(t, db) == 0 })
		if len(msgs) != n {
			t.Fatalf("received %d messages, want %d", len(msgs), n)
		}
		for i, m := range msgs {
			if m.ID != recs[i].Envelope.ID {
				t.Fatalf("message %d = %s, want %s", i, m.ID, recs[i].Envelope.ID)
			}
		}
		if n, _, err := r.Lag(context.Background()); err != nil || n != 0 {
			t.Errorf("Lag = %d, %v; want 0", n, err)
		}
	})
}

// R-EVT-4: Notify wakes an idle relay at once, without waiting for the poll interval.
func TestRelayNotifyWakesIt(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		w := MustWriter(t, db)
		b := inproc.New()
		got := MustCollect(t, context.Background(), b, "#")
		r, err := outbox.NewRelay(db, b, outbox.RelayOptions{Context: "notify-" + db.Dialect, PollInterval: time.Hour, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		runRelay(t, r)
		eventually(t, 10*time.Second, "relay active", r.Active)
		settled(t, r, 0) // idle now, for an hour unless notified
		for i := range 3 {
			MustAppend(t, client, w, MustRecords(t, 1)...)
			r.Notify()
			got.waitFor(t, i+1, 10*time.Second)
		}
	})
}

// R-EVT-4: a relay that caught up reads again only when woken (or at its poll), not once more
// just to find its outbox empty; and a row committed while it publishes is not left behind,
// because the Notify that follows the commit is kept for the relay's next wait.
func TestRelayReadsOnceWhenCaughtUp(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		w := MustWriter(t, db)
		name := "reads-" + t.Name()
		b := &gatedTransport{Transport: inproc.New(), entered: make(chan struct{}, 1), release: make(chan struct{})}
		got := MustCollect(t, context.Background(), b.Transport, "#")
		r, err := outbox.NewRelay(db, b, outbox.RelayOptions{Context: name, PollInterval: time.Hour, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		runRelay(t, r)
		eventually(t, 10*time.Second, "relay active", r.Active)
		eventually(t, 10*time.Second, "first read", func() bool { return outbox.Reads(name) > 0 })
		// Idle now, for an hour unless notified, once its first reads are done (1, or 2 on
		// PostgreSQL: once listening, it looks again).
		settled(t, r, 0)
		base := outbox.Reads(name)

		idles := r.SettledIdles()
		commit := func() { // a row, announced as services do after their commit
			MustAppend(t, client, w, MustRecords(t, 1)...)
			r.Notify()
		}
		readsAfter := func(published int) int { // reads since base, once the relay settled again
			got.waitFor(t, published, 10*time.Second)
			settled(t, r, idles)
			idles = r.SettledIdles()
			return outbox.Reads(name) - base
		}

		// One row, one wake-up: one read.
		commit()
		<-b.entered
		b.release <- struct{}{}
		if n := readsAfter(1); n != 1 {
			t.Fatalf("%d reads for one row and one Notify, want 1", n)
		}

		// A row committed (and announced) while the relay publishes the one before it.
		commit()
		<-b.entered
		commit()
		b.release <- struct{}{}
		<-b.entered
		b.release <- struct{}{}
		if n := readsAfter(3); n != 3 {
			t.Fatalf("%d reads in all after two more rows, each announced, want 3", n)
		}
		if n := unsent(t, db); n != 0 {
			t.Fatalf("%d rows left unsent", n)
		}
	})
}

// settled waits until the relay has begun to wait with nothing left to do more than after
// times: it then reads nothing until woken or polled.
func settled(tb testing.TB, r *outbox.Relay, after int64) {
	tb.Helper()
	eventually(tb, 10*time.Second, "the relay settled", func() bool { return r.SettledIdles() > after })
}

// keyTap notes the key each message was published with.
type keyTap struct {
	bus.Transport
	mu   sync.Mutex
	keys map[string]string // by message id
}

func (k *keyTap) Publish(ctx context.Context, msgs ...bus.Message) error {
	k.mu.Lock()
	for _, m := range msgs {
		k.keys[m.ID] = m.Key
	}
	k.mu.Unlock()
	return k.Transport.Publish(ctx, msgs...)
}

func (k *keyTap) key(id string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys[id]
}

// gatedTransport signals each Publish on entered and holds it until release receives.
type gatedTransport struct {
	bus.Transport
	entered chan struct{}
	release chan struct{}
}

func (g *gatedTransport) Publish(ctx context.Context, msgs ...bus.Message) error {
	g.entered <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Transport.Publish(ctx, msgs...)
}

// R-OPS-2: with several relays on one PostgreSQL database only one publishes; when it stops,
// a standby takes over.
func TestRelaySingleActiveOnPostgres(t *testing.T) {
	t.Parallel()
	url := storagetest.MustCreatePostgresDatabase(t)
	db := storagetest.MustOpenPostgres(t, url)
	client := MustContextDB(t, db)
	w := MustWriter(t, db)
	b := inproc.New()
	got := MustCollect(t, context.Background(), b, "#")

	var relays []*outbox.Relay
	var stops []context.CancelFunc
	for i := range 3 {
		// Each replica has its own pool, as separate processes would.
		rdb := storagetest.MustOpenPostgres(t, url)
		r, err := outbox.NewRelay(rdb, b, outbox.RelayOptions{
			Context: "single", PollInterval: 10 * time.Millisecond, StandbyInterval: 20 * time.Millisecond,
			Logger: testLogger(t).With("replica", i),
		})
		if err != nil {
			t.Fatal(err)
		}
		relays = append(relays, r)
		stops = append(stops, runRelay(t, r))
	}
	activeOne := func() int {
		idx, n := -1, 0
		for i, r := range relays {
			if r.Active() {
				idx, n = i, n+1
			}
		}
		if n > 1 {
			t.Fatalf("%d relays active at once", n)
		}
		return idx
	}
	eventually(t, 10*time.Second, "one active relay", func() bool { return activeOne() >= 0 })
	first := activeOne()
	MustAppend(t, client, w, MustRecords(t, 100)...)
	got.waitFor(t, 100, 10*time.Second)
	// Never two at once: activeOne fails the test whenever it sees more than one, at every
	// poll of the waits here; the lock decides, not timing.
	if i := activeOne(); i != first {
		t.Fatalf("relay %d active after the backlog, want %d, the one that took the lock", i, first)
	}

	stops[first]()
	eventually(t, 10*time.Second, "a standby taking over", func() bool {
		i := activeOne()
		return i >= 0 && i != first
	})
	MustAppend(t, client, w, MustRecords(t, 100)...)
	if msgs := got.waitFor(t, 200, 10*time.Second); len(msgs) != 200 {
		t.Errorf("received %d messages, want 200", len(msgs))
	}
}

// R-OPS-4: Lag counts unsent rows and ages the oldest.
func TestLag(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		w := MustWriter(t, db)
		r, err := outbox.NewRelay(db, inproc.New(), outbox.RelayOptions{Context: "lag-" + db.Dialect})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if n, oldest, err := r.Lag(ctx); err != nil || n != 0 || oldest != 0 {
			t.Fatalf("Lag of an empty outbox = %d, %v, %v", n, oldest, err)
		}
		w.SetNow(func() time.Time { return time.Now().Add(-time.Minute) }) // committed a minute ago
		MustAppend(t, client, w, MustRecords(t, 3)...)
		n, oldest, err := r.Lag(ctx)
		if err != nil || n != 3 || oldest < time.Minute || oldest > time.Hour {
			t.Fatalf("Lag = %d, %v, %v; want 3, a minute old", n, oldest, err)
		}
	})
}

// R-EVT-4: Run refuses to run twice at once, and returns nil once its context ends.
func TestRelayRunTwice(t *testing.T) {
	t.Parallel()
	db := storagetest.MustOpen(t, dialect.SQLite)
	MustContextDB(t, db)
	r, err := outbox.NewRelay(db, inproc.New(), outbox.RelayOptions{Context: "twice"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var first error
	wg.Go(func() { first = r.Run(ctx) })
	eventually(t, 5*time.Second, "relay active", r.Active)
	if err := r.Run(ctx); err == nil {
		t.Error("a second concurrent Run was accepted")
	}
	cancel()
	wg.Wait()
	if first != nil {
		t.Errorf("Run = %v, want nil", first)
	}
}

// R-EVT-4: when the database drops the active relay's session (and with it the relay lock),
// the relay takes the lock again on a new session and goes on.
func TestRelayRecoversFromLostSession(t *testing.T) {
	t.Parallel()
	url := storagetest.MustCreatePostgresDatabase(t)
	db := storagetest.MustOpenPostgres(t, url)
	client := MustContextDB(t, db)
	w := MustWriter(t, db)
	b := inproc.New()
	got := MustCollect(t, context.Background(), b, "#")
	r, err := outbox.NewRelay(db, b, outbox.RelayOptions{
		Context: "lost-session", PollInterval: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		StandbyInterval: 20 * time.Millisecond, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	runRelay(t, r)
	MustAppend(t, client, w, MustRecords(t, 10)...)
	got.waitFor(t, 10, 10*time.Second)

	lockHolder := func() (pid int, ok bool) {
		err := db.SQL.QueryRow(`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&pid)
		return pid, err == nil
	}
	pid, ok := lockHolder()
	if !ok {
		t.Fatal("no session holds the relay lock")
	}
	if _, err := db.SQL.Exec("SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	MustAppend(t, client, w, MustRecords(t, 10)...)
	r.Notify()
	got.waitFor(t, 20, 30*time.Second)
	eventually(t, 10*time.Second, "rows marked sent", func() bool { return unsent(t, db) == 0 })
	if next, ok := lockHolder(); !ok || next == pid {
		t.Errorf("relay lock holder after the loss = %d, %v; want a new session", next, ok)
	}
}
