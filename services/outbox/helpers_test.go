package outbox_test

import (
	"context"
	"database/sql"
	"errors"
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

	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/inbox"
	"github.com/uberpopug/ates/services/outbox"
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

// MustContextDB creates the auth context's tables (the event platform's among them) and a
// table test consumers write their effects to.
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
	if _, err := db.SQL.Exec(`CREATE TABLE IF NOT EXISTS test_effects (consumer VARCHAR(100) NOT NULL, event_id VARCHAR(100) NOT NULL)`); err != nil {
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

// MustRecords returns n valid records.
func MustRecords(tb testing.TB, n int) []outbox.Record {
	tb.Helper()
	recs := make([]outbox.Record, n)
	for i := range recs {
		e := MustAccountCreated(tb)
		recs[i] = outbox.Record{Key: e.ID, Envelope: e}
	}
	return recs
}

func MustWriter(tb testing.TB, db *storage.DB) *outbox.Writer {
	tb.Helper()
	w, err := outbox.NewWriter(db.Dialect, event.MustDefaultRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	return w
}

// MustAppend commits recs in one transaction of the context's Ent client.
func MustAppend(tb testing.TB, client *authdb.Client, w *outbox.Writer, recs ...outbox.Record) {
	tb.Helper()
	ctx := context.Background()
	tx, err := client.Tx(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	if err := w.Append(ctx, tx, recs...); err != nil {
		_ = tx.Rollback()
		tb.Fatalf("Append: %v", err)
	}
	if err := tx.Commit(); err != nil {
		tb.Fatalf("commit: %v", err)
	}
}

// outboxRow is an outbox_events row.
type outboxRow struct {
	ID       int64
	EventID  string
	Name     string
	Version  int
	Key      string
	Payload  string
	Created  time.Time
	SentAt   sql.NullTime
	Sent     bool
	Original outbox.Record
}

func mustRows(tb testing.TB, db *storage.DB) []outboxRow {
	tb.Helper()
	q, args := entsql.Dialect(db.Dialect).
		Select("id", "event_id", "name", "version", "aggregate_key", "payload", "created_at", "sent_at").
		From(entsql.Table("outbox_events")).OrderBy("id").Query()
	rows, err := db.SQL.Query(q, args...)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		if err := rows.Scan(&r.ID, &r.EventID, &r.Name, &r.Version, &r.Key, &r.Payload, &r.Created, &r.SentAt); err != nil {
			tb.Fatal(err)
		}
		r.Sent = r.SentAt.Valid
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func countWhere(tb testing.TB, db *storage.DB, table string, p *entsql.Predicate) int {
	tb.Helper()
	sel := entsql.Dialect(db.Dialect).Select(entsql.Count("*")).From(entsql.Table(table))
	if p != nil {
		sel.Where(p)
	}
	q, args := sel.Query()
	var n int
	if err := db.SQL.QueryRow(q, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", q, err)
	}
	return n
}

func unsent(tb testing.TB, db *storage.DB) int {
	tb.Helper()
	return countWhere(tb, db, "outbox_events", entsql.IsNull("sent_at"))
}

// countingConsumer is an inbox consumer recording an effect per applied event.
type countingConsumer struct {
	*inbox.Consumer[*authdb.Tx]
	applied atomic.Int64
}

func MustInbox(tb testing.TB, db *storage.DB, client *authdb.Client, name string) *countingConsumer {
	tb.Helper()
	cc := &countingConsumer{}
	c, err := inbox.New(inbox.Config[*authdb.Tx]{
		Name: name, Dialect: db.Dialect, DB: db.SQL, Begin: client.Tx,
		Registry: event.MustDefaultRegistry(),
		Handle: func(ctx context.Context, tx *authdb.Tx, e event.Envelope) error {
			q, args := entsql.Dialect(db.Dialect).Insert("test_effects").
				Columns("consumer", "event_id").Values(name, e.ID).Query()
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return fmt.Errorf("recording effect: %w", err)
			}
			cc.applied.Add(1)
			return nil
		},
		Logger: testLogger(tb),
	})
	if err != nil {
		tb.Fatal(err)
	}
	cc.Consumer = c
	return cc
}

// collector is a private subscription remembering every delivery in order.
type collector struct {
	mu   sync.Mutex
	msgs []bus.Message
	more chan struct{}
}

func MustCollect(tb testing.TB, ctx context.Context, t bus.Transport, topics ...string) *collector {
	tb.Helper()
	return MustCollectFrom(tb, ctx, t, bus.Subscription{Topics: topics})
}

// MustCollectFrom collects the deliveries of the subscription (a durable queue keeps what is
// published while its consumer is away).
func MustCollectFrom(tb testing.TB, ctx context.Context, t bus.Transport, s bus.Subscription) *collector {
	tb.Helper()
	c := &collector{more: make(chan struct{}, 1)}
	sub, err := t.Subscribe(ctx, s, func(_ context.Context, d bus.Delivery) error {
		c.mu.Lock()
		c.msgs = append(c.msgs, d.Message)
		c.mu.Unlock()
		select {
		case c.more <- struct{}{}:
		default:
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(sub.Stop)
	return c
}

func (c *collector) snapshot() []bus.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bus.Message(nil), c.msgs...)
}

// waitFor returns the messages once at least n arrived, or fails after the timeout.
func (c *collector) waitFor(tb testing.TB, n int, timeout time.Duration) []bus.Message {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		if msgs := c.snapshot(); len(msgs) >= n {
			return msgs
		}
		select {
		case <-c.more:
		case <-deadline:
			tb.Fatalf("received %d messages, want %d", len(c.snapshot()), n)
		}
	}
}

// failingTransport wraps a real transport and fails its first n Publish calls.
type failingTransport struct {
	bus.Transport
	failFirst int64
	failCall  int64 // when set, this one call (1-based) fails too
	calls     atomic.Int64
}

var errBrokerDown = errors.New("broker down (test)")

func (f *failingTransport) Publish(ctx context.Context, msgs ...bus.Message) error {
	if n := f.calls.Add(1); n <= f.failFirst || n == f.failCall {
		return errBrokerDown
	}
	return f.Transport.Publish(ctx, msgs...)
}

// runRelay runs r in the background until the test ends.
func runRelay(tb testing.TB, r *outbox.Relay) context.CancelFunc {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Relay.Run: %v", err)
		}
	})
	tb.Cleanup(stop)
	return stop
}

// eventually polls cond until it holds or the timeout passes.
func eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
