package inbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	entsql "entgo.io/ent/dialect/sql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/services/backoff"
	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/inbox"
	"github.com/uberpopug/ates/services/storage"
)

// testLogger discards logs unless ATES_TEST_LOG is set.
func testLogger(tb testing.TB) *slog.Logger {
	tb.Helper()
	if os.Getenv("ATES_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(&tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tbWriter struct{ tb testing.TB }

func (w *tbWriter) Write(p []byte) (int, error) { w.tb.Log(string(p)); return len(p), nil }

var schemaMu sync.Mutex

// MustContextDB creates the auth context's tables (which include the event platform's) and a
// table the test handlers write their effects to.
func MustContextDB(tb testing.TB, db *storage.DB) *authdb.Client {
	tb.Helper()
	client := authdb.NewClient(authdb.Driver(db.Driver()))
	// Ent's migration writes to the generated package's global table definitions: running two
	// at once is a data race, so parallel tests take turns.
	schemaMu.Lock()
	err := client.Schema.Create(context.Background())
	schemaMu.Unlock()
	if err != nil {
		tb.Fatalf("creating schema: %v", err)
	}
	if _, err := db.SQL.Exec(`CREATE TABLE test_effects (consumer VARCHAR(100) NOT NULL, event_id VARCHAR(100) NOT NULL)`); err != nil {
		tb.Fatalf("creating test_effects: %v", err)
	}
	return client
}

// MustAccountCreated returns a valid account.created v1 envelope.
func MustAccountCreated(tb testing.TB) event.Envelope {
	tb.Helper()
	id := uuid.NewString()
	now := time.Now().UTC()
	e, err := event.New(context.Background(), "auth", "account.created", 1, now, map[string]any{
		"accountId": id,
		"username":  "popug_" + id[:8],
		"email":     "popug@example.com",
		"fullName":  "Popug",
		"role":      "WORKER",
		"active":    true,
		"version":   1,
		"changedAt": now.Format(time.RFC3339Nano),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// MustDelivery wraps the envelope as a bus delivery.
func MustDelivery(tb testing.TB, e event.Envelope) bus.Delivery {
	tb.Helper()
	body, err := json.Marshal(e)
	if err != nil {
		tb.Fatal(err)
	}
	return bus.Delivery{Message: bus.Message{ID: e.ID, Topic: e.Name, Body: body}}
}

// recordEffect is what a handler does: a row in the consumer's transaction.
func recordEffect(ctx context.Context, db *storage.DB, tx inbox.Tx, consumer, eventID string) error {
	q, args := entsql.Dialect(db.Dialect).Insert("test_effects").
		Columns("consumer", "event_id").Values(consumer, eventID).Query()
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("recording effect: %w", err)
	}
	return nil
}

// effects counts the committed effects of consumer for the event ("" = all events).
func effects(tb testing.TB, db *storage.DB, consumer, eventID string) int {
	tb.Helper()
	sel := entsql.Dialect(db.Dialect).Select(entsql.Count("*")).From(entsql.Table("test_effects"))
	if eventID == "" {
		sel.Where(entsql.EQ("consumer", consumer))
	} else {
		sel.Where(entsql.And(entsql.EQ("consumer", consumer), entsql.EQ("event_id", eventID)))
	}
	return countQuery(tb, db, sel)
}

// processed counts the inbox records of consumer.
func processed(tb testing.TB, db *storage.DB, consumer string) int {
	tb.Helper()
	return countQuery(tb, db, entsql.Dialect(db.Dialect).Select(entsql.Count("*")).
		From(entsql.Table("processed_events")).Where(entsql.EQ("consumer", consumer)))
}

func countQuery(tb testing.TB, db *storage.DB, sel *entsql.Selector) int {
	tb.Helper()
	q, args := sel.Query()
	var n int
	if err := db.SQL.QueryRow(q, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", q, err)
	}
	return n
}

// testConsumer is a consumer whose handler records an effect, after calling hook (when set),
// and counts its calls.
type testConsumer struct {
	*inbox.Consumer[*authdb.Tx]
	calls atomic.Int64
}

var consumerSeq atomic.Int64

// quickOutageBackoff waits out temporary failures in milliseconds, so tests need not wait long.
var quickOutageBackoff = backoff.Policy{Initial: time.Millisecond, Max: 20 * time.Millisecond, Jitter: 0.5}

// uniqueName gives each test its own consumer name, so metrics do not mix.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s_%d", prefix, consumerSeq.Add(1))
}

func MustConsumer(tb testing.TB, db *storage.DB, client *authdb.Client, name string, maxAttempts int,
	hook func(ctx context.Context, tx *authdb.Tx, e event.Envelope, call int64) error,
) *testConsumer {
	tb.Helper()
	tc := &testConsumer{}
	c, err := inbox.New(inbox.Config[*authdb.Tx]{
		Name:     name,
		Dialect:  db.Dialect,
		DB:       db.SQL,
		Begin:    client.Tx,
		Registry: event.MustDefaultRegistry(),
		Handle: func(ctx context.Context, tx *authdb.Tx, e event.Envelope) error {
			call := tc.calls.Add(1)
			if err := recordEffect(ctx, db, tx, name, e.ID); err != nil {
				return err
			}
			if hook != nil {
				return hook(ctx, tx, e, call)
			}
			return nil
		},
		MaxAttempts:   maxAttempts,
		Backoff:       func(int) time.Duration { return time.Millisecond },
		OutageBackoff: quickOutageBackoff,
		Logger:        testLogger(tb),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tc.Consumer = c
	return tc
}

// counterValue reads a counter of the default registry (0 when it has no such series yet).
func counterValue(tb testing.TB, name, label, value string) float64 {
	tb.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// mustDeadLetters lists the dead letters of one consumer.
func mustDeadLetters(tb testing.TB, db *storage.DB, consumer, status string) []inbox.DeadLetter {
	tb.Helper()
	all, err := inbox.ListDeadLetters(context.Background(), db, status)
	if err != nil {
		tb.Fatal(err)
	}
	var out []inbox.DeadLetter
	for _, l := range all {
		if l.Consumer == consumer {
			out = append(out, l)
		}
	}
	return out
}
