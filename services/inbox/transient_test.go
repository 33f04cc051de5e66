package inbox_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/services/backoff"
	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/bus/inproc"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/inbox"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/pgtest"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// Failures a handler may meet while its database restarts.
var (
	errBadConn  = fmt.Errorf("recording effect: %w", driver.ErrBadConn)
	errRefused  = fmt.Errorf("begin: %w", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)})
	errShutdown = fmt.Errorf("insert: %w", &pq.Error{Code: "57P01", Message: "terminating connection due to administrator command"})
	errDeadlock = fmt.Errorf("update: %w", &pq.Error{Code: "40P01", Message: "deadlock detected"})
	errBug      = errors.New("the ledger does not balance")
)

// R-REL-2: temporary failures — however many, in any mix with deterministic ones — never count
// toward MaxAttempts: the event waits and is applied once. Only deterministic failures count,
// and MaxAttempts of them dead-letter the event.
func TestTransientFailuresDoNotCount(t *testing.T) {
	t.Parallel()
	const maxAttempts = 3
	tests := []struct {
		name      string
		failures  []error // what the handler's calls return, in turn; then success
		wantDead  bool
		wantCount int // deterministic failures counted (ates_events_retried_total)
		wantHeld  int // waits for temporary failures (ates_events_held_total)
	}{
		{"outage longer than the attempts", []error{errRefused, errRefused, errRefused, errRefused, errRefused, errRefused, errRefused, errRefused}, false, 0, 8},
		{"restart as seen by a session", []error{errShutdown, errBadConn, errRefused, errRefused, errBadConn}, false, 0, 5},
		{"deadlocks", []error{errDeadlock, errDeadlock, errDeadlock, errDeadlock}, false, 0, 4},
		{"deterministic failures between temporary ones", []error{errBadConn, errBug, errRefused, errRefused, errRefused, errBug, errBadConn}, false, 2, 5},
		{"deterministic failures still dead-letter", []error{errBug, errBadConn, errBadConn, errBug, errRefused, errBug}, true, 2, 3},
		{"permanent wins over a temporary cause", []error{inbox.Permanent(errBadConn)}, true, 0, 0},
	}
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				name := uniqueName("held")
				c := MustConsumer(t, db, client, name, maxAttempts, func(_ context.Context, _ *authdb.Tx, _ event.Envelope, call int64) error {
					if int(call) <= len(tt.failures) {
						return tt.failures[call-1]
					}
					return nil
				})
				d := MustDelivery(t, MustAccountCreated(t))
				if err := c.Handler()(context.Background(), d); err != nil {
					t.Fatalf("not acknowledged: %v", err)
				}
				dead := mustDeadLetters(t, db, name, "")
				if got := len(dead) == 1; got != tt.wantDead {
					t.Fatalf("dead-lettered = %v (%+v), want %v", got, dead, tt.wantDead)
				}
				wantEffects := 1
				if tt.wantDead {
					wantEffects = 0
				}
				if got := effects(t, db, name, d.ID); got != wantEffects {
					t.Errorf("effects = %d, want %d", got, wantEffects)
				}
				if got := counterValue(t, "ates_events_retried_total", "consumer", name); got != float64(tt.wantCount) {
					t.Errorf("counted failures (ates_events_retried_total) = %v, want %d", got, tt.wantCount)
				}
				if got := counterValue(t, "ates_events_held_total", "consumer", name); got != float64(tt.wantHeld) {
					t.Errorf("held waits (ates_events_held_total) = %v, want %d", got, tt.wantHeld)
				}
			})
		}
	})
}

// R-REL-2: a batch whose transaction fails for a temporary reason waits as a batch and is
// applied as one; it does not fall back to one event at a time, where each event would count
// the outage as attempts.
func TestBatchWaitsOutTemporaryFailures(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		name := uniqueName("heldbatch")
		var failing atomic.Int64
		failing.Store(12)
		c := MustConsumer(t, db, client, name, 2, func(context.Context, *authdb.Tx, event.Envelope, int64) error {
			if failing.Add(-1) >= 0 {
				return errRefused
			}
			return nil
		})
		var ds []bus.Delivery
		for range 10 {
			ds = append(ds, MustDelivery(t, MustAccountCreated(t)))
		}
		if err := c.BatchHandler()(context.Background(), ds); err != nil {
			t.Fatalf("batch not acknowledged: %v", err)
		}
		if got := effects(t, db, name, ""); got != len(ds) {
			t.Errorf("effects = %d, want %d", got, len(ds))
		}
		if dl := mustDeadLetters(t, db, name, ""); len(dl) != 0 {
			t.Errorf("dead letters after an outage: %d, want none", len(dl))
		}
		if got := counterValue(t, "ates_event_batches_split_total", "consumer", name); got != 0 {
			t.Errorf("batches split = %v, want 0", got)
		}
		if got := counterValue(t, "ates_events_held_total", "consumer", name); got != 12 {
			t.Errorf("held waits = %v, want 12", got)
		}
	})
}

// R-REL-2, R-OPS-5: a consumer stopped while it holds a delivery for a temporary failure hands
// the delivery back to the transport (an error), and dead-letters nothing.
func TestStoppingWhileHeldHandsBack(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		name := uniqueName("handback")
		stopping := make(chan struct{})
		c := MustConsumer(t, db, client, name, 2, func(_ context.Context, _ *authdb.Tx, _ event.Envelope, call int64) error {
			if call == 5 {
				close(stopping)
			}
			return errBadConn
		})
		ctx := bus.WithStopping(context.Background(), stopping)
		if err := c.Handler()(ctx, MustDelivery(t, MustAccountCreated(t))); err == nil {
			t.Fatal("a stopping consumer acknowledged an event it never applied")
		}
		if err := c.BatchHandler()(ctx, []bus.Delivery{MustDelivery(t, MustAccountCreated(t))}); err == nil {
			t.Fatal("a stopping consumer acknowledged a batch it never applied")
		}
		if dl := mustDeadLetters(t, db, name, ""); len(dl) != 0 {
			t.Errorf("dead letters = %+v, want none", dl)
		}
		if got := effects(t, db, name, ""); got != 0 {
			t.Errorf("effects = %d, want 0", got)
		}
	})
}

// R-REL-2, R-ACC-4: a real PostgreSQL server stopped and started under a consumer taking
// batches from the bus, as a worker does: no event is dead-lettered, none counts the outage
// as a failed attempt, and every event is applied exactly once.
func TestRealPostgresRestartUnderConsumer(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := storage.OpenPostgres(ctx, srv.URL("inbox_restart"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	client := MustContextDB(t, db)
	name := uniqueName("restart")
	c, err := inbox.New(inbox.Config[*authdb.Tx]{
		Name: name, Dialect: db.Dialect, DB: db.SQL, Begin: client.Tx, Registry: event.MustDefaultRegistry(),
		Handle: func(ctx context.Context, tx *authdb.Tx, e event.Envelope) error {
			return recordEffect(ctx, db, tx, name, e.ID)
		},
		// Production's attempts would be spent in a moment: the outage must not touch them.
		MaxAttempts:   3,
		Backoff:       func(int) time.Duration { return time.Millisecond },
		OutageBackoff: backoff.Policy{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond, Jitter: 0.5},
		Logger:        testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	b := inproc.New()
	defer b.Close()
	sub, err := b.SubscribeBatch(ctx, bus.Subscription{Queue: name, Topics: []string{"account.*"}, Concurrency: 4, Batch: 20}, c.BatchHandler())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()

	const total, chunk = 400, 10
	var msgs []bus.Message
	for range total {
		msgs = append(msgs, MustDelivery(t, MustAccountCreated(t)).Message)
	}
	// A quarter is published before the outage and the rest only once the server is down, so
	// the outage always meets events to deliver, however fast the consumer is.
	published := make(chan error, 1)
	stopped := make(chan struct{})
	go func() {
		for i := 0; i < total; i += chunk {
			if i == total/4 {
				select {
				case <-stopped:
				case <-ctx.Done():
					published <- ctx.Err()
					return
				}
			}
			if err := b.Publish(ctx, msgs[i:i+chunk]...); err != nil { // returns once consumed
				published <- err
				return
			}
		}
		published <- nil
	}()

	waitUntil(ctx, t, "a quarter of the events applied", func() bool { return effectsOn(t, db, name) >= total/4 })
	srv.Stop(t)
	close(stopped)
	// Down long enough that the old way — every failure an attempt — would have spent the
	// attempts of many events several times over.
	waitUntil(ctx, t, "the consumer waiting out the outage", func() bool {
		return counterValue(t, "ates_events_held_total", "consumer", name)+
			counterValue(t, "ates_events_retried_total", "consumer", name) >= 30
	})
	srv.Start(t)
	select {
	case err := <-published:
		if err != nil {
			t.Fatalf("publishing: %v", err)
		}
	case <-ctx.Done():
		t.Fatalf("the events were not all consumed after the restart: %v", ctx.Err())
	}

	var n, distinct int
	if err := db.SQL.QueryRowContext(ctx, `SELECT count(*), count(DISTINCT event_id) FROM test_effects WHERE consumer = $1`, name).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != total || distinct != total {
		t.Errorf("effects = %d of %d distinct events, want each of %d once", n, distinct, total)
	}
	if dl := mustDeadLetters(t, db, name, ""); len(dl) != 0 {
		t.Errorf("%d events dead-lettered by a database restart, want none (first: %s)", len(dl), dl[0].Error)
	}
	if got := counterValue(t, "ates_events_retried_total", "consumer", name); got != 0 {
		t.Errorf("the outage counted %v failed attempts, want 0", got)
	}
	if got := counterValue(t, "ates_events_held_total", "consumer", name); got == 0 {
		t.Error("the consumer never waited: the server was not stopped under it")
	}
}

// effectsOn counts consumer's committed effects, 0 while the database cannot be read.
func effectsOn(tb testing.TB, db *storage.DB, consumer string) int {
	tb.Helper()
	var n int
	if err := db.SQL.QueryRow(`SELECT count(*) FROM test_effects WHERE consumer = $1`, consumer).Scan(&n); err != nil {
		return 0
	}
	return n
}

// waitUntil polls cond until it holds, failing the test when ctx ends first.
func waitUntil(ctx context.Context, tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			tb.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
