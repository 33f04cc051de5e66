// Package inbox is the consuming half of the event platform (R-EVT-2, R-EVT-5): an idempotent
// consumer that validates every delivery against the schema registry, applies it in the
// context's own transaction together with a processed-event record, acknowledges only after
// that transaction commits, retries failures with backoff and moves what cannot be processed
// to the dead-letter store, where it stays visible and can be re-driven.
//
// Temporary failures (R-REL-2): a failure fault.IsTransient recognises — the database
// restarting, a refused or dropped connection, a deadlock — is not the event's fault. The
// consumer holds the delivery and retries it with a capped, jittered backoff (OutageBackoff)
// for as long as the failure lasts; such attempts never count toward MaxAttempts and never
// dead-letter. Only deterministic failures count. When the consumer is stopped meanwhile
// (bus.Stopping) it hands the delivery back to the transport instead.
//
// Exactly once: the processed-event record (consumer, event id) is unique, so a redelivered,
// duplicated or replayed event, even delivered to two replicas at the same moment, is applied
// once (R-ACC-4). On PostgreSQL the second replica's insert waits for the first transaction and
// then conflicts; on SQLite transactions are serialized.
package inbox

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/uberpopug/ates/ent/eventschema"
	"github.com/uberpopug/ates/services/backoff"
	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/fault"
	"github.com/uberpopug/ates/services/storage"
)

// Tx is a context database transaction; every context's generated Ent *Tx satisfies it (its
// client is generated with the sql/execquery feature). The processed-event record is written
// through it, in the same transaction as the handler's changes (R-EVT-5).
type Tx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	Commit() error
	Rollback() error
}

// Defaults of Config (R-EVT-5).
const (
	DefaultMaxAttempts = 5
	// maxErrorText bounds the error text stored with a dead letter.
	maxErrorText = 16 << 10
)

// attemptBackoff is the wait after a failed attempt that counts (R-EVT-5).
var attemptBackoff = backoff.Policy{Initial: 50 * time.Millisecond, Max: 2 * time.Second}

// DefaultOutageBackoff is how a consumer waits out a temporary failure (R-REL-2): from 100 ms,
// doubling, at most 5 s, jittered so that replicas do not retry in step. A database back from
// a restart is used again within 5 s; an outage costs a few attempts a minute per held batch.
var DefaultOutageBackoff = backoff.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.5}

// DefaultBackoff waits 50ms after the first failed attempt, doubling per attempt up to 2s
// (R-EVT-5).
func DefaultBackoff(attempt int) time.Duration { return attemptBackoff.Delay(attempt) }

// Config is what a Consumer needs (R-EVT-2, R-EVT-5); the zero values of MaxAttempts, Backoff,
// Logger and Now take defaults, everything else is required.
type Config[T Tx] struct {
	// Name identifies the consumer in the inbox and dead-letter tables, logs and metrics, e.g.
	// "accounting"; one database may hold several consumers' records.
	Name string
	// Dialect is dialect.SQLite or dialect.Postgres, the dialect of DB.
	Dialect string
	// DB is the context database the transactions of Begin run on; dead letters are written
	// through it, outside the failed transaction.
	DB *sql.DB
	// Begin starts a transaction on the context database, e.g. an Ent client's Tx.
	Begin func(ctx context.Context) (T, error)
	// Registry validates every delivery (R-EVT-2).
	Registry *event.Registry
	// Handle applies a validated event inside tx. An error rolls tx back and is retried, unless
	// it is marked with Permanent, which dead-letters the event at once.
	Handle func(ctx context.Context, tx T, e event.Envelope) error
	// HandleBatch, when set, applies many validated, not yet applied events inside one tx, in
	// the order given (BatchHandler); without it they are handed to Handle one by one, still in
	// one transaction. An error rolls the whole batch back, and its events are then applied one
	// transaction each, with retries and dead letters as usual.
	HandleBatch func(ctx context.Context, tx T, es []event.Envelope) error
	// MaxAttempts bounds the attempts before an event is dead-lettered (default 5, R-EVT-5).
	MaxAttempts int
	// Backoff is the wait after failed attempt n (1-based) (default DefaultBackoff).
	Backoff func(attempt int) time.Duration
	// OutageBackoff is the wait between attempts while a temporary failure lasts (zero value:
	// DefaultOutageBackoff, R-REL-2).
	OutageBackoff backoff.Policy
	// Logger receives the consumer's logs (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock of processed_at and dead-letter timestamps (default time.Now).
	Now func() time.Time
}

// Consumer applies events idempotently and dead-letters what it cannot apply (R-EVT-2,
// R-EVT-5).
type Consumer[T Tx] struct {
	cfg Config[T]
	log *slog.Logger

	consumed, retried, deadLettered, duplicates, batchFallbacks, held prometheus.Counter
}

// New returns a consumer; it refuses a missing dependency (R-EVT-5).
func New[T Tx](cfg Config[T]) (*Consumer[T], error) {
	switch {
	case cfg.Name == "":
		return nil, errors.New("inbox: consumer needs a name")
	case cfg.Dialect != dialect.SQLite && cfg.Dialect != dialect.Postgres:
		return nil, fmt.Errorf("inbox: unsupported SQL dialect %q (want %q or %q)", cfg.Dialect, dialect.SQLite, dialect.Postgres)
	case cfg.DB == nil:
		return nil, errors.New("inbox: consumer needs the context database")
	case cfg.Begin == nil:
		return nil, errors.New("inbox: consumer needs a Begin function")
	case cfg.Registry == nil:
		return nil, errors.New("inbox: consumer needs a schema registry")
	case cfg.Handle == nil:
		return nil, errors.New("inbox: consumer needs a Handle function")
	case cfg.MaxAttempts < 0:
		return nil, fmt.Errorf("inbox: negative MaxAttempts %d", cfg.MaxAttempts)
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.OutageBackoff == (backoff.Policy{}) {
		cfg.OutageBackoff = DefaultOutageBackoff
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Consumer[T]{
		cfg:            cfg,
		log:            cfg.Logger.With("component", "inbox", "consumer", cfg.Name),
		consumed:       consumedTotal.WithLabelValues(cfg.Name),
		retried:        retriedTotal.WithLabelValues(cfg.Name),
		deadLettered:   deadLetteredTotal.WithLabelValues(cfg.Name),
		duplicates:     duplicateTotal.WithLabelValues(cfg.Name),
		batchFallbacks: batchFallbackTotal.WithLabelValues(cfg.Name),
		held:           heldTotal.WithLabelValues(cfg.Name),
	}, nil
}

// Name is the consumer's name, as recorded in its inbox and dead letters (R-EVT-5).
func (c *Consumer[T]) Name() string { return c.cfg.Name }

// Handler returns the bus handler of the consumer (R-EVT-2, R-EVT-5). It acknowledges (returns
// nil) once the event is applied and committed, was applied before, or is safely stored as a
// dead letter. It returns an error, so the transport redelivers, only when the consumer stops
// before that, or when the dead letter cannot be stored: an event is never dropped. While a
// temporary failure lasts it holds the delivery (R-REL-2).
func (c *Consumer[T]) Handler() bus.Handler {
	return func(ctx context.Context, d bus.Delivery) error {
		e, err := c.cfg.Registry.Parse(d.Body)
		if err != nil {
			// Invalid events never become valid by retrying: dead-letter at once (R-EVT-2).
			return c.deadLetter(ctx, letterOf(d, e), d.Body, fmt.Errorf("invalid event: %w", err), 1)
		}
		_, attempts, err := c.apply(ctx, e, nil)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, errHandedBack) {
			return fmt.Errorf("inbox %s: event %s not applied before stopping: %w", c.cfg.Name, e.ID, err)
		}
		return c.deadLetter(ctx, letterOf(d, e), d.Body, err, attempts)
	}
}

// errHandedBack marks a failure the consumer stopped waiting out: the delivery goes back to the
// transport, never to the dead-letter store.
var errHandedBack = errors.New("the consumer is stopping; the event goes back to the queue")

// waitOut waits before the next attempt after a temporary failure and reports whether to make
// it; false — the consumer stops — comes with the error to return (R-REL-2).
func (c *Consumer[T]) waitOut(ctx context.Context, waits *backoff.Retry, err error, attrs ...any) (bool, error) {
	c.held.Inc()
	wait := waits.Next()
	if waits.Failures() == 1 || waits.Failures()%10 == 0 {
		c.log.Warn("temporary failure; holding the delivery and retrying (not counted as an attempt)",
			append(attrs, "kind", fault.Classify(ctx, err), "waits", waits.Failures(), "retry_in", wait, "error", err)...)
	}
	if !backoff.SleepOr(ctx, bus.Stopping(ctx), wait) {
		return false, fmt.Errorf("%w: %w", errHandedBack, err)
	}
	return true, nil
}

// BatchHandler returns the bus batch handler of the consumer (R-EVT-5): the valid events of a
// batch are applied in one transaction with their processed-event records, so a batch costs
// one commit; the transport acknowledges the batch after it. Invalid events are dead-lettered
// first, one by one. When the batch transaction fails, its events are applied one transaction
// each through Handler's path — retries, permanent errors and dead letters work per event, and
// what the batch did is rolled back — so one poison event costs its batch only a slower pass.
func (c *Consumer[T]) BatchHandler() bus.BatchHandler {
	single := c.Handler()
	return func(ctx context.Context, ds []bus.Delivery) error {
		valid := make([]event.Envelope, 0, len(ds))
		byEvent := make([]bus.Delivery, 0, len(ds))
		for _, d := range ds {
			e, err := c.cfg.Registry.Parse(d.Body)
			if err != nil {
				if err := single(ctx, d); err != nil { // dead-letters it
					return err
				}
				continue
			}
			valid = append(valid, e)
			byEvent = append(byEvent, d)
		}
		if len(valid) == 0 {
			return nil
		}
		waits := backoff.New(c.cfg.OutageBackoff)
		var err error
		for {
			if err = c.applyBatch(ctx, valid); err == nil {
				return nil
			}
			if ctx.Err() != nil {
				return fmt.Errorf("inbox %s: batch not applied before stopping: %w", c.cfg.Name, err)
			}
			if !fault.IsTransient(ctx, err) {
				break
			}
			// The whole batch waits: one by one its events would only wait in turn (R-REL-2).
			if ok, err := c.waitOut(ctx, waits, err, "events", len(valid)); !ok {
				return fmt.Errorf("inbox %s: batch not applied before stopping: %w", c.cfg.Name, err)
			}
		}
		c.batchFallbacks.Inc()
		c.log.Warn("applying a batch failed; applying its events one by one", "events", len(valid), "error", err)
		for _, d := range byEvent {
			if err := single(ctx, d); err != nil {
				return err
			}
		}
		return nil
	}
}

// applyBatch applies events in one transaction: it records them all as processed, then hands
// the ones not applied before to HandleBatch (or Handle, one by one), then commits.
func (c *Consumer[T]) applyBatch(ctx context.Context, es []event.Envelope) (err error) {
	tx, err := c.cfg.Begin(ctx)
	if err != nil {
		return fmt.Errorf("inbox %s: beginning a transaction: %w", c.cfg.Name, err)
	}
	finished := false
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("inbox %s: handler panicked: %v", c.cfg.Name, p)
		}
		if !finished {
			if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
				c.log.Warn("rolling back a batch", "error", rbErr)
			}
		}
	}()
	fresh, err := c.recordProcessed(ctx, tx, es)
	if err != nil {
		return err
	}
	if c.cfg.HandleBatch != nil {
		if len(fresh) > 0 {
			if err := c.cfg.HandleBatch(ctx, tx, fresh); err != nil {
				return fmt.Errorf("inbox %s: handling a batch of %d events: %w", c.cfg.Name, len(fresh), err)
			}
		}
	} else {
		for _, e := range fresh {
			if err := c.cfg.Handle(ctx, tx, e); err != nil {
				return fmt.Errorf("inbox %s: handling event %s v%d %s: %w", c.cfg.Name, e.Name, e.Version, e.ID, err)
			}
		}
	}
	finished = true // a failed commit ends the transaction too
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("inbox %s: committing a batch of %d events: %w", c.cfg.Name, len(es), err)
	}
	c.consumed.Add(float64(len(fresh)))
	c.duplicates.Add(float64(len(es) - len(fresh)))
	return nil
}

// recordProcessed inserts the processed-event records of es in one statement, in event id
// order (so concurrent batches lock the unique index in one order), and returns the events not
// applied before, each once, in their order in es.
func (c *Consumer[T]) recordProcessed(ctx context.Context, tx T, es []event.Envelope) ([]event.Envelope, error) {
	ids := make([]string, 0, len(es))
	seen := make(map[string]bool, len(es))
	for _, e := range es {
		if !seen[e.ID] {
			seen[e.ID] = true
			ids = append(ids, e.ID)
		}
	}
	slices.Sort(ids)
	var q strings.Builder
	q.WriteString("INSERT INTO " + eventschema.InboxTable + " (consumer, event_id, processed_at) VALUES ")
	args := make([]any, 0, len(ids)+2)
	args = append(args, c.cfg.Name, c.cfg.Now().UTC())
	for i, id := range ids {
		if i > 0 {
			q.WriteString(", ")
		}
		args = append(args, id)
		fmt.Fprintf(&q, "($1, $%d, $2)", len(args))
	}
	q.WriteString(" ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id")
	rows, err := tx.QueryContext(ctx, storage.Rebind(c.cfg.Dialect, q.String()), args...)
	if err != nil {
		return nil, fmt.Errorf("inbox %s: recording %d events as processed: %w", c.cfg.Name, len(ids), err)
	}
	defer rows.Close()
	inserted := make(map[string]bool, len(ids))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("inbox %s: recording events as processed: %w", c.cfg.Name, err)
		}
		inserted[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("inbox %s: recording events as processed: %w", c.cfg.Name, err)
	}
	fresh := make([]event.Envelope, 0, len(inserted))
	for _, e := range es {
		if inserted[e.ID] {
			fresh = append(fresh, e)
			delete(inserted, e.ID)
		}
	}
	return fresh, nil
}

// apply runs attempts until the event is applied (or found applied before), a permanent error,
// MaxAttempts failures or the end of ctx. extra, when set, runs in the applying transaction.
//
// A temporary failure (fault.IsTransient) is retried after OutageBackoff for as long as it
// lasts and does not count as an attempt; when the consumer stops meanwhile the error wraps
// errHandedBack (R-REL-2). attempts counts the deterministic failures, plus the success.
func (c *Consumer[T]) apply(ctx context.Context, e event.Envelope, extra func(ctx context.Context, tx T) error) (applied bool, attempts int, err error) {
	waits := backoff.New(c.cfg.OutageBackoff)
	for attempt := 1; ; attempt++ {
		applied, err := c.once(ctx, e, extra)
		if err == nil {
			if applied {
				c.consumed.Inc()
			} else {
				c.duplicates.Inc()
				c.log.Debug("event already applied; acknowledging the duplicate", "event_id", e.ID, "event", e.Name)
			}
			return applied, attempt, nil
		}
		if ctx.Err() != nil {
			return false, attempt, err
		}
		if !IsPermanent(err) && fault.IsTransient(ctx, err) {
			attempt-- // not the event's fault: it does not count (R-REL-2)
			if ok, err := c.waitOut(ctx, waits, err, "event_id", e.ID, "event", e.Name); !ok {
				return false, attempt, err
			}
			continue
		}
		if IsPermanent(err) || attempt >= c.cfg.MaxAttempts {
			return false, attempt, err
		}
		c.retried.Inc()
		wait := c.cfg.Backoff(attempt)
		c.log.Warn("applying event failed; retrying", "event_id", e.ID, "event", e.Name,
			"version", e.Version, "attempt", attempt, "retry_in", wait, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false, attempt, fmt.Errorf("%w (stopped before retrying: %w)", err, ctx.Err())
		}
	}
}

// once is one attempt: record the event as processed and, when it was not before, apply it, in
// one transaction. It reports whether the event was applied now (false: a duplicate).
func (c *Consumer[T]) once(ctx context.Context, e event.Envelope, extra func(ctx context.Context, tx T) error) (applied bool, err error) {
	tx, err := c.cfg.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("inbox %s: beginning a transaction: %w", c.cfg.Name, err)
	}
	finished := false
	defer func() {
		if p := recover(); p != nil {
			applied, err = false, fmt.Errorf("inbox %s: handler panicked: %v", c.cfg.Name, p)
		}
		if !finished {
			if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
				c.log.Warn("rolling back", "event_id", e.ID, "error", rbErr)
			}
		}
	}()
	query, args := entsql.Dialect(c.cfg.Dialect).
		Insert(eventschema.InboxTable).
		Columns("consumer", "event_id", "processed_at").
		Values(c.cfg.Name, e.ID, c.cfg.Now().UTC()).
		OnConflict(entsql.ConflictColumns("consumer", "event_id"), entsql.DoNothing()).
		Query()
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return false, fmt.Errorf("inbox %s: recording event %s as processed: %w", c.cfg.Name, e.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("inbox %s: recording event %s as processed: %w", c.cfg.Name, e.ID, err)
	}
	if n == 0 {
		return false, nil // applied before: the deferred rollback ends the transaction
	}
	if err := c.cfg.Handle(ctx, tx, e); err != nil {
		return false, fmt.Errorf("inbox %s: handling event %s v%d %s: %w", c.cfg.Name, e.Name, e.Version, e.ID, err)
	}
	if extra != nil {
		if err := extra(ctx, tx); err != nil {
			return false, err
		}
	}
	finished = true // a failed commit ends the transaction too
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("inbox %s: committing event %s: %w", c.cfg.Name, e.ID, err)
	}
	return true, nil
}

// letterOf names what a delivery carries, as far as it is known: from the validated envelope,
// else from whatever of the envelope decodes, else from the message.
func letterOf(d bus.Delivery, e event.Envelope) DeadLetter {
	if e.ID == "" && e.Name == "" {
		var partial struct {
			ID      any `json:"eventId"`
			Name    any `json:"eventName"`
			Version any `json:"eventVersion"`
		}
		if json.Unmarshal(d.Body, &partial) == nil {
			e.ID, _ = partial.ID.(string)
			e.Name, _ = partial.Name.(string)
			if v, ok := partial.Version.(float64); ok && v == float64(int(v)) {
				e.Version = int(v)
			}
		}
	}
	l := DeadLetter{EventID: e.ID, Name: e.Name, Version: e.Version}
	if l.EventID == "" {
		l.EventID = d.ID
	}
	if l.EventID == "" {
		sum := sha256.Sum256(d.Body)
		l.EventID = "sha256:" + hex.EncodeToString(sum[:])
	}
	if l.Name == "" {
		l.Name = d.Topic
	}
	return l
}
