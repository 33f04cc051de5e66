package accounting_test

import (
	"context"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/accounting"
	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
	"github.com/uberpopug/ates/services/testenv"
)

// mustReplicaPool opens another connection pool on the test's database, as a second process
// (replica) would.
func mustReplicaPool(tb testing.TB, db *storage.DB) *storage.DB {
	tb.Helper()
	switch db.Dialect {
	case dialect.SQLite:
		second, err := storage.OpenSQLite(context.Background(), db.Name)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { second.Close() })
		return second
	case dialect.Postgres:
		u, err := url.Parse(testenv.PostgresURL())
		if err != nil {
			tb.Fatal(err)
		}
		u.Path = "/" + db.Name
		second := storagetest.MustOpenPostgres(tb, u.String())
		frugal(tb, second)
		return second
	default:
		tb.Fatalf("unknown dialect %q", db.Dialect)
		return nil
	}
}

// feed is one consumer replica's stream: the deliveries it gets and how many handlers run at once.
type feed struct {
	handle  bus.Handler
	events  []event.Envelope
	workers int
}

// runFeeds starts every feed at the same moment, each with its workers taking deliveries in
// order, and fails on any refused delivery.
func runFeeds(tb testing.TB, feeds ...feed) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	for _, f := range feeds {
		deliveries := make(chan bus.Delivery, len(f.events))
		for _, e := range f.events {
			deliveries <- mustDelivery(tb, e)
		}
		close(deliveries)
		for range f.workers {
			wg.Go(func() {
				<-start
				for d := range deliveries {
					if err := f.handle(ctx, d); err != nil {
						mu.Lock()
						failures = append(failures, err)
						mu.Unlock()
					}
				}
			})
		}
	}
	close(start)
	wg.Wait()
	for _, err := range failures {
		tb.Errorf("delivery refused: %v", err)
	}
}

// TestConcurrentReplicasApplyEachEventOnce: R-ACC-4, R-EVT-5 — two consumer replicas on two
// connection pools receive the same events at once (the same event to both, in the same order,
// and again to the first in reverse), with several handlers each and half of all assignments
// landing on one popug; every assignment and completion is posted exactly once and every
// balance is the sum of its entries.
func TestConcurrentReplicasApplyEachEventOnce(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		_, second := h.mustReplica(t, mustReplicaPool(t, db), newLockedRand(7, 8))
		seed := uint64(time.Now().UnixNano())
		t.Logf("scenario seed %d", seed)
		s := newScenario(t, 4, 30, seed)
		order := shuffled(s.Events, 5)
		reversed := slices.Clone(order)
		slices.Reverse(reversed)
		runFeeds(t,
			feed{h.handle, order, 3},
			feed{second, order, 3},
			feed{h.handle, reversed, 2},
		)
		h.mustNoDeadLetters(t)
		s.mustApplied(t, h)
		if n := h.mustCount(t, `SELECT COUNT(*) FROM processed_events WHERE consumer = $1`, accounting.ConsumerName); n != len(s.Events) {
			t.Errorf("processed events = %d, want %d", n, len(s.Events))
		}
	})
}

// TestConcurrentEventsForOneAccount: R-ACC-1, R-ACC-3, R-ACC-4 — many assignments and
// completions of one popug applied at the same time on two pools (each task's assignment on
// one, its completion on the other, racing to price it): the balance is the sum of all of them,
// balance_after chains without a gap, and every task has one price.
func TestConcurrentEventsForOneAccount(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		_, second := h.mustReplica(t, mustReplicaPool(t, db), newLockedRand(9, 10))
		popug := uuid.New()
		s := &scenario{Accounts: []uuid.UUID{popug}, Labels: map[uuid.UUID]string{}}
		for i := range 40 {
			task := uuid.New()
			s.Tasks = append(s.Tasks, task)
			s.Labels[task] = task.String()
			at := start.Add(time.Duration(i) * time.Minute)
			a, c := taskAssigned(t, task, popug, at), taskCompleted(t, task, popug, at.Add(30*time.Second))
			s.Events = append(s.Events, a, c)
			s.Money = append(s.Money,
				moneyEvent{EventID: a.ID, Task: task, Account: popug, Type: "FEE", At: at},
				moneyEvent{EventID: c.ID, Task: task, Account: popug, Type: "REWARD", At: at.Add(30 * time.Second)})
		}
		// Assignments to one replica, completions to the other: both race to price each task.
		var assignments, completions []event.Envelope
		for i, e := range s.Events {
			if i%2 == 0 {
				assignments = append(assignments, e)
			} else {
				completions = append(completions, e)
			}
		}
		runFeeds(t,
			feed{h.handle, assignments, 4},
			feed{second, completions, 4},
		)
		h.mustNoDeadLetters(t)
		s.mustApplied(t, h)
		l := h.mustConsistent(t)
		if len(l.ByAccount(popug)) != 80 {
			t.Errorf("%d entries, want 80", len(l.ByAccount(popug)))
		}
	})
}
