package inbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/bus/inproc"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/inbox"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

func TestNewRefusesMissingDependencies(t *testing.T) {
	t.Parallel()
	db := storagetest.MustOpen(t, dialect.SQLite)
	client := authdb.NewClient(authdb.Driver(db.Driver()))
	valid := func() inbox.Config[*authdb.Tx] {
		return inbox.Config[*authdb.Tx]{
			Name: "tasks", Dialect: db.Dialect, DB: db.SQL, Begin: client.Tx,
			Registry: event.MustDefaultRegistry(),
			Handle:   func(context.Context, *authdb.Tx, event.Envelope) error { return nil },
		}
	}
	tests := []struct {
		name   string
		mutate func(*inbox.Config[*authdb.Tx])
		ok     bool
	}{
		{"valid", func(*inbox.Config[*authdb.Tx]) {}, true},
		{"no name", func(c *inbox.Config[*authdb.Tx]) { c.Name = "" }, false},
		{"unknown dialect", func(c *inbox.Config[*authdb.Tx]) { c.Dialect = "mysql" }, false},
		{"no db", func(c *inbox.Config[*authdb.Tx]) { c.DB = nil }, false},
		{"no begin", func(c *inbox.Config[*authdb.Tx]) { c.Begin = nil }, false},
		{"no registry", func(c *inbox.Config[*authdb.Tx]) { c.Registry = nil }, false},
		{"no handle", func(c *inbox.Config[*authdb.Tx]) { c.Handle = nil }, false},
		{"negative attempts", func(c *inbox.Config[*authdb.Tx]) { c.MaxAttempts = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.mutate(&cfg)
			c, err := inbox.New(cfg)
			if tt.ok && (err != nil || c == nil) {
				t.Fatalf("New = %v, %v; want a consumer", c, err)
			}
			if !tt.ok && err == nil {
				t.Fatal("New accepted an incomplete config")
			}
		})
	}
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	base := errors.New("boom")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", inbox.Permanent(nil), false},
		{"plain", base, false},
		{"marked", inbox.Permanent(base), true},
		{"wrapped mark", errors.Join(errors.New("ctx"), inbox.Permanent(base)), true},
	}
	for _, tt := range tests {
		if got := inbox.IsPermanent(tt.err); got != tt.want {
			t.Errorf("%s: IsPermanent = %v, want %v", tt.name, got, tt.want)
		}
	}
	if !errors.Is(inbox.Permanent(base), base) {
		t.Error("Permanent hides the cause from errors.Is")
	}
}

// R-EVT-5, R-ACC-4: a redelivered event is applied once; the duplicate is acknowledged.
func TestDuplicateDeliveryAppliedOnce(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		name := uniqueName("dup")
		c := MustConsumer(t, db, client, name, 3, nil)
		d := MustDelivery(t, MustAccountCreated(t))
		h := c.Handler()
		ctx := context.Background()
		if err := h(ctx, d); err != nil {
			t.Fatalf("first delivery: %v", err)
		}
		d.Redelivered = true
		if err := h(ctx, d); err != nil {
			t.Fatalf("duplicate delivery not acknowledged: %v", err)
		}
		if got := effects(t, db, name, d.ID); got != 1 {
			t.Errorf("effects = %d, want 1", got)
		}
		if got := c.calls.Load(); got != 1 {
			t.Errorf("Handle called %d times, want 1", got)
		}
		if got := processed(t, db, name); got != 1 {
			t.Errorf("processed records = %d, want 1", got)
		}
		if got := counterValue(t, "ates_events_duplicate_total", "consumer", name); got != 1 {
			t.Errorf("ates_events_duplicate_total = %v, want 1", got)
		}
		if got := counterValue(t, "ates_events_consumed_total", "consumer", name); got != 1 {
			t.Errorf("ates_events_consumed_total = %v, want 1", got)
		}
		// Another consumer of the same database applies it for itself.
		other := MustConsumer(t, db, client, uniqueName("other"), 3, nil)
		if err := other.Handler()(ctx, d); err != nil {
			t.Fatal(err)
		}
		if got := other.calls.Load(); got != 1 {
			t.Errorf("second consumer's Handle called %d times, want 1", got)
		}
	})
}

// R-EVT-5: two replicas receiving the same events at the same moment apply each once.
func TestConcurrentDuplicateOnTwoReplicas(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		name := uniqueName("replicas")
		// The handler holds its transaction open, so the replicas overlap.
		slow := func(ctx context.Context, _ *authdb.Tx, _ event.Envelope, _ int64) error {
			time.Sleep(20 * time.Millisecond)
			return nil
		}
		r1 := MustConsumer(t, db, client, name, 3, slow)
		r2 := MustConsumer(t, db, client, name, 3, slow)
		const events = 10
		ctx := context.Background()
		for range events {
			d := MustDelivery(t, MustAccountCreated(t))
			start := make(chan struct{})
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, h := range []bus.Handler{r1.Handler(), r2.Handler()} {
				wg.Go(func() {
					<-start
					errs[i] = h(ctx, d)
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("replica %d: %v", i+1, err)
				}
			}
			if got := effects(t, db, name, d.ID); got != 1 {
				t.Fatalf("event %s applied %d times, want 1", d.ID, got)
			}
		}
		if got := r1.calls.Load() + r2.calls.Load(); got != events {
			t.Errorf("Handle called %d times across replicas, want %d", got, events)
		}
		if got := counterValue(t, "ates_events_duplicate_total", "consumer", name); got != events {
			t.Errorf("ates_events_duplicate_total = %v, want %d", got, events)
		}
		if dl := mustDeadLetters(t, db, name, ""); len(dl) != 0 {
			t.Errorf("dead letters: %+v", dl)
		}
	})
}

// R-EVT-5: failures are retried with backoff; a failed attempt leaves nothing behind.
func TestTransientErrorRetriedThenApplied(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		name := uniqueName("transient")
		c := MustConsumer(t, db, client, name, 5, func(_ context.Context, _ *authdb.Tx, _ event.Envelope, call int64) error {
			if call <= 2 {
				return errors.New("replica lag, try again")
			}
			return nil
		})
		d := MustDelivery(t, MustAccountCreated(t))
		if err := c.Handler()(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		if got := c.calls.Load(); got != 3 {
			t.Errorf("Handle called %d times, want 3", got)
		}
		if got := effects(t, db, name, d.ID); got != 1 {
			t.Errorf("effects = %d, want 1 (failed attempts must roll back)", got)
		}
		if got := counterValue(t, "ates_events_retried_total", "consumer", name); got != 2 {
			t.Errorf("ates_events_retried_total = %v, want 2", got)
		}
		if dl := mustDeadLetters(t, db, name, ""); len(dl) != 0 {
			t.Errorf("dead letters: %+v", dl)
		}
	})
}

// R-EVT-2, R-EVT-5: after MaxAttempts failures (or one permanent failure) the event is stored
// as a dead letter and acknowledged; nothing of it is applied.
func TestFailuresGoToDeadLetters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		err          error
		wantAttempts int
	}{
		{"persistent", errors.New("accounting is confused"), 4},
		{"permanent", inbox.Permanent(errors.New("task price is negative")), 1},
	}
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				name := uniqueName(tt.name)
				c := MustConsumer(t, db, client, name, 4, func(context.Context, *authdb.Tx, event.Envelope, int64) error {
					return tt.err
				})
				e := MustAccountCreated(t)
				d := MustDelivery(t, e)
				if err := c.Handler()(context.Background(), d); err != nil {
					t.Fatalf("dead-lettered event not acknowledged: %v", err)
				}
				if got := c.calls.Load(); got != int64(tt.wantAttempts) {
					t.Errorf("Handle called %d times, want %d", got, tt.wantAttempts)
				}
				if got := effects(t, db, name, ""); got != 0 {
					t.Errorf("effects = %d, want 0", got)
				}
				if got := processed(t, db, name); got != 0 {
					t.Errorf("processed records = %d, want 0", got)
				}
				dl := mustDeadLetters(t, db, name, inbox.StatusDead)
				if len(dl) != 1 {
					t.Fatalf("dead letters = %+v, want 1", dl)
				}
				l := dl[0]
				if l.EventID != e.ID || l.Name != e.Name || l.Version != e.Version || l.Attempts != tt.wantAttempts ||
					l.Status != inbox.StatusDead || string(l.Payload) != string(d.Body) ||
					!strings.Contains(l.Error, tt.err.Error()) || l.CreatedAt.IsZero() || l.UpdatedAt.IsZero() {
					t.Errorf("dead letter = %+v", l)
				}
				if got := counterValue(t, "ates_events_dead_lettered_total", "consumer", name); got != 1 {
					t.Errorf("ates_events_dead_lettered_total = %v, want 1", got)
				}
			})
		}
	})
}

// R-EVT-2: an invalid or unparseable event is dead-lettered at once, never handled.
func TestInvalidEventsGoToDeadLetters(t *testing.T) {
	t.Parallel()
	valid := func(t *testing.T) map[string]any {
		t.Helper()
		var m map[string]any
		raw, _ := json.Marshal(MustAccountCreated(t))
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	mustJSON := func(t *testing.T, m map[string]any) []byte {
		t.Helper()
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name        string
		body        func(t *testing.T) []byte
		wantName    string
		wantVersion int
	}{
		{"not JSON", func(*testing.T) []byte { return []byte("{not json") }, "account.created", 0},
		{"envelope without id", func(t *testing.T) []byte {
			m := valid(t)
			delete(m, "eventId")
			return mustJSON(t, m)
		}, "account.created", 1},
		{"unknown version", func(t *testing.T) []byte {
			m := valid(t)
			m["eventVersion"] = 99
			return mustJSON(t, m)
		}, "account.created", 99},
		{"data violates schema", func(t *testing.T) []byte {
			m := valid(t)
			m["data"].(map[string]any)["role"] = "EMPEROR"
			return mustJSON(t, m)
		}, "account.created", 1},
	}
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				name := uniqueName("invalid")
				c := MustConsumer(t, db, client, name, 5, nil)
				body := tt.body(t)
				d := bus.Delivery{Message: bus.Message{ID: "msg-" + name, Topic: "account.created", Body: body}}
				if err := c.Handler()(context.Background(), d); err != nil {
					t.Fatalf("invalid event not acknowledged: %v", err)
				}
				if got := c.calls.Load(); got != 0 {
					t.Errorf("Handle called %d times for an invalid event", got)
				}
				dl := mustDeadLetters(t, db, name, inbox.StatusDead)
				if len(dl) != 1 {
					t.Fatalf("dead letters = %+v, want 1", dl)
				}
				l := dl[0]
				if l.Attempts != 1 || string(l.Payload) != string(body) || l.Name != tt.wantName ||
					l.Version != tt.wantVersion || l.EventID == "" || !strings.Contains(l.Error, "invalid event") {
					t.Errorf("dead letter = %+v", l)
				}
			})
		}
	})
}

// R-EVT-2: a dead letter is re-driven once its cause is fixed: applied once, marked redriven;
// a failed re-drive keeps it dead with the new error and attempts.
func TestRedrive(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		ctx := context.Background()
		name := uniqueName("redrive")
		var broken atomic.Bool
		broken.Store(true)
		c := MustConsumer(t, db, client, name, 2, func(context.Context, *authdb.Tx, event.Envelope, int64) error {
			if broken.Load() {
				return errors.New("price table missing")
			}
			return nil
		})
		var ds []bus.Delivery
		for range 3 {
			d := MustDelivery(t, MustAccountCreated(t))
			ds = append(ds, d)
			if err := c.Handler()(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		dead := mustDeadLetters(t, db, name, inbox.StatusDead)
		if len(dead) != 3 {
			t.Fatalf("dead letters = %d, want 3", len(dead))
		}

		// Still broken: the re-drive fails and is recorded.
		err := c.Redrive(ctx, dead[0].ID)
		if err == nil || !strings.Contains(err.Error(), "price table missing") {
			t.Fatalf("Redrive of a still-failing event = %v", err)
		}
		l := mustDeadLetters(t, db, name, inbox.StatusDead)[0]
		if l.Attempts != 4 || l.Status != inbox.StatusDead {
			t.Errorf("after a failed re-drive: %+v, want attempts 4, status dead", l)
		}

		broken.Store(false)
		if err := c.Redrive(ctx, dead[0].ID); err != nil {
			t.Fatalf("Redrive: %v", err)
		}
		if got := effects(t, db, name, ds[0].ID); got != 1 {
			t.Errorf("effects after re-drive = %d, want 1", got)
		}
		var redrivenErr *errs.Error
		if err := c.Redrive(ctx, dead[0].ID); !errors.As(err, &redrivenErr) || redrivenErr.Code != errs.Conflict {
			t.Errorf("second Redrive = %v, want a conflict", err)
		}
		if err := c.Redrive(ctx, 1<<40); !errors.As(err, &redrivenErr) || redrivenErr.Code != errs.NotFound {
			t.Errorf("Redrive of an unknown id = %v, want not found", err)
		}

		// The second event was applied meanwhile by a redelivery: its re-drive only marks it.
		if err := c.Handler()(ctx, ds[1]); err != nil {
			t.Fatal(err)
		}
		n, err := c.RedriveAll(ctx)
		if err != nil || n != 2 {
			t.Fatalf("RedriveAll = %d, %v; want 2, nil", n, err)
		}
		for _, d := range ds {
			if got := effects(t, db, name, d.ID); got != 1 {
				t.Errorf("event %s applied %d times, want 1", d.ID, got)
			}
		}
		if got := mustDeadLetters(t, db, name, inbox.StatusRedriven); len(got) != 3 {
			t.Errorf("redriven dead letters = %d, want 3", len(got))
		}
		if got := mustDeadLetters(t, db, name, inbox.StatusDead); len(got) != 0 {
			t.Errorf("dead letters left = %+v", got)
		}
		// A redelivery after the re-drive is a duplicate.
		if err := c.Handler()(ctx, ds[0]); err != nil {
			t.Fatal(err)
		}
		if got := effects(t, db, name, ds[0].ID); got != 1 {
			t.Errorf("effects after redelivery = %d, want 1", got)
		}
	})
}

func TestListDeadLettersRefusesUnknownStatus(t *testing.T) {
	t.Parallel()
	db := storagetest.MustOpen(t, dialect.SQLite)
	MustContextDB(t, db)
	_, err := inbox.ListDeadLetters(context.Background(), db, "zombie")
	if e, ok := errs.As(err); !ok || e.Code != errs.Invalid {
		t.Fatalf("ListDeadLetters(zombie) = %v, want an invalid-input error", err)
	}
}

// R-EVT-5: a failed commit is a failed attempt: nothing applied, retried, then dead-lettered;
// the connection stays usable. A deferred foreign key makes COMMIT itself fail.
func TestCommitFailure(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		for _, stmt := range []string{
			`CREATE TABLE probe_parent (id INTEGER PRIMARY KEY)`,
			`CREATE TABLE probe_child (parent_id INTEGER NOT NULL REFERENCES probe_parent (id) DEFERRABLE INITIALLY DEFERRED)`,
		} {
			if _, err := db.SQL.Exec(stmt); err != nil {
				t.Fatal(err)
			}
		}
		name := uniqueName("commit")
		var orphan atomic.Bool
		orphan.Store(true)
		c := MustConsumer(t, db, client, name, 3, func(ctx context.Context, tx *authdb.Tx, _ event.Envelope, _ int64) error {
			parent := 1
			if orphan.Load() {
				parent = 42 // missing: only COMMIT notices
			} else {
				q, args := entsql.Dialect(db.Dialect).Insert("probe_parent").Columns("id").Values(parent).
					OnConflict(entsql.ConflictColumns("id"), entsql.DoNothing()).Query()
				if _, err := tx.ExecContext(ctx, q, args...); err != nil {
					return err
				}
			}
			q, args := entsql.Dialect(db.Dialect).Insert("probe_child").Columns("parent_id").Values(parent).Query()
			_, err := tx.ExecContext(ctx, q, args...)
			return err
		})
		ctx := context.Background()
		d := MustDelivery(t, MustAccountCreated(t))
		if err := c.Handler()(ctx, d); err != nil {
			t.Fatalf("event whose commit fails not acknowledged: %v", err)
		}
		if got := c.calls.Load(); got != 3 {
			t.Errorf("Handle called %d times, want 3", got)
		}
		if got := effects(t, db, name, ""); got != 0 {
			t.Errorf("effects = %d after failed commits, want 0", got)
		}
		if got := processed(t, db, name); got != 0 {
			t.Errorf("processed records = %d after failed commits, want 0", got)
		}
		dl := mustDeadLetters(t, db, name, inbox.StatusDead)
		if len(dl) != 1 || dl[0].Attempts != 3 || !strings.Contains(dl[0].Error, "committing") {
			t.Fatalf("dead letters = %+v", dl)
		}
		// Every pooled connection is still usable, and the fixed handler applies the event.
		orphan.Store(false)
		for range 8 {
			d := MustDelivery(t, MustAccountCreated(t))
			if err := c.Handler()(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Redrive(ctx, dl[0].ID); err != nil {
			t.Fatalf("Redrive: %v", err)
		}
		if got := effects(t, db, name, ""); got != 9 {
			t.Errorf("effects = %d, want 9", got)
		}
	})
}

// R-EVT-5, R-OPS-5: stopping while retrying hands the event back to the transport.
func TestCancelledWhileRetryingIsRequeued(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		name := uniqueName("cancel")
		ctx, cancel := context.WithCancel(context.Background())
		c := MustConsumer(t, db, client, name, 100, func(context.Context, *authdb.Tx, event.Envelope, int64) error {
			cancel()
			return errors.New("down")
		})
		err := c.Handler()(ctx, MustDelivery(t, MustAccountCreated(t)))
		if err == nil {
			t.Fatal("a cancelled consumer acknowledged an unapplied event")
		}
		if dl := mustDeadLetters(t, db, name, ""); len(dl) != 0 {
			t.Errorf("dead letters = %+v, want none", dl)
		}
	})
}

// R-EVT-2: when even the dead-letter store fails, the event is not acknowledged.
func TestDeadLetterStoreFailureRequeues(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		// A second pool on the same database, closed: the dead-letter store is down.
		closed := storagetest.MustOpen(t, db.Dialect)
		closed.Close()
		name := uniqueName("dlfail")
		c, err := inbox.New(inbox.Config[*authdb.Tx]{
			Name: name, Dialect: db.Dialect, DB: closed.SQL, Begin: client.Tx,
			Registry: event.MustDefaultRegistry(),
			Handle: func(context.Context, *authdb.Tx, event.Envelope) error {
				return inbox.Permanent(errors.New("unprocessable"))
			},
			Logger: testLogger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []bus.Delivery{
			MustDelivery(t, MustAccountCreated(t)),
			{Message: bus.Message{ID: "x", Topic: "account.created", Body: []byte("garbage")}},
		} {
			if err := c.Handler()(context.Background(), d); err == nil {
				t.Errorf("event %s acknowledged although its dead letter was not stored", d.ID)
			}
		}
	})
}

// The consumer on a real transport: events flow from Publish to the inbox, duplicates included.
func TestThroughInprocBus(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		name := uniqueName("bus")
		c := MustConsumer(t, db, client, name, 3, nil)
		b := inproc.New()
		defer b.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sub, err := b.Subscribe(ctx, bus.Subscription{Queue: name, Topics: []string{"account.*"}, Concurrency: 4}, c.Handler())
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Stop()
		var msgs []bus.Message
		for range 50 {
			d := MustDelivery(t, MustAccountCreated(t))
			msgs = append(msgs, d.Message, d.Message) // every event twice
		}
		if err := b.Publish(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		if got := effects(t, db, name, ""); got != 50 {
			t.Errorf("effects = %d, want 50", got)
		}
		if got := c.calls.Load(); got != 50 {
			t.Errorf("Handle called %d times, want 50", got)
		}
	})
}
