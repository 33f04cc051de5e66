package outbox

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/uberpopug/ates/ent/eventschema"
	"github.com/uberpopug/ates/services/backoff"
	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/fault"
	"github.com/uberpopug/ates/services/storage"
)

// Relay defaults (R-EVT-4).
const (
	DefaultBatchSize       = 500
	DefaultPollInterval    = 100 * time.Millisecond
	DefaultMaxBackoff      = 5 * time.Second
	DefaultStandbyInterval = time.Second
	// MaxBatchSize bounds a batch so its mark-sent UPDATE stays under SQLite's 32 766 bind
	// variables.
	MaxBatchSize = 10000
)

// lagRefresh is how often a running relay refreshes the lag gauge.
const lagRefresh = time.Second

// Reads from a mark (PostgreSQL). A row marked sent keeps its entry in the partial index of
// unsent rows until VACUUM removes it, and autovacuum comes seldom to a large outbox (by
// default once a fifth of its rows are dead): a read of the oldest unsent rows from the start
// of the index walks past every row sent since. So a relay reads from a mark instead: the
// rows from markMargin ids below the last one it marked sent, far enough behind for the rows
// of producers' transactions still in flight then (an id is drawn at insert, its row shows at
// commit). A row further behind — a long transaction's, such as a shuffle's thousands of
// events — is found by the read from the start that the relay makes every fullReadEvery.
const fullReadEvery = time.Second

// markMargin is how far below the last id marked sent a relay's reads start: a batch's worth
// of ids. A read from the mark visits the heap rows of the ids sent within it, so the margin
// is also its cost (up to a few dozen pages).
func (r *Relay) markMargin() int64 { return int64(r.opts.BatchSize) }

// advisoryLockKey is the PostgreSQL session advisory lock one context database's active relay
// holds. Advisory locks are per database, and every context has its own database.
var advisoryLockKey = func() int64 {
	h := fnv.New64a()
	h.Write([]byte("ates.outbox.relay"))
	return int64(h.Sum64())
}()

// RelayOptions configure a Relay; zero values take the defaults (R-EVT-4).
type RelayOptions struct {
	// Context names the bounded context (auth, tasks, …) in logs and metrics.
	Context string
	// BatchSize is how many rows one Publish call carries (default 500, at most MaxBatchSize).
	BatchSize int
	// PollInterval is how long an idle relay waits for new rows when not notified (default
	// 100ms): the fallback for commits nobody announced; it is also the first publish-error
	// backoff.
	PollInterval time.Duration
	// MaxBackoff caps the doubling wait after failed attempts (default 5s).
	MaxBackoff time.Duration
	// StandbyInterval is how often a standby relay tries to become the active one on
	// PostgreSQL (default 1s).
	StandbyInterval time.Duration
	// Logger receives the relay's logs (default slog.Default()).
	Logger *slog.Logger
}

// Relay publishes a context's committed outbox rows to the bus, in id order, and marks them
// sent (R-EVT-4). Only one relay per context database publishes at a time: on PostgreSQL the
// active one holds a session advisory lock and the others stand by; the active one also
// LISTENs for the commits other processes announce (notify.go).
type Relay struct {
	db   *storage.DB
	t    bus.Transport
	opts RelayOptions
	log  *slog.Logger
	wake chan struct{}
	// announcer tells another process's active relay about this process's commits (PostgreSQL).
	announcer *announcer

	running atomic.Bool
	active  atomic.Bool
	// mark is the running relay's mark (see fullReadEvery), for tests.
	mark atomic.Int64
	// listening is whether LISTEN holds (PostgreSQL); settledIdles counts the waits the relay
	// began with nothing left to do: no wake-up pending and, on PostgreSQL, LISTEN in place.
	// For tests, which wait for a settled relay instead of for time to pass.
	listening    atomic.Bool
	settledIdles atomic.Int64

	selectQuery string
	selectArgs  []any
	published   prometheus.Counter
	reads       prometheus.Counter
	errors      prometheus.Counter
	lag         prometheus.Gauge
}

// NewRelay returns a relay of db's outbox onto t (R-EVT-4).
func NewRelay(db *storage.DB, t bus.Transport, opts RelayOptions) (*Relay, error) {
	if db == nil || db.SQL == nil {
		return nil, errors.New("outbox: NewRelay needs a database")
	}
	if err := checkDialect(db.Dialect); err != nil {
		return nil, err
	}
	if t == nil {
		return nil, errors.New("outbox: NewRelay needs a bus transport")
	}
	if opts.Context == "" {
		return nil, errors.New("outbox: NewRelay needs the context name")
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.BatchSize > MaxBatchSize {
		return nil, fmt.Errorf("outbox: batch size %d above the maximum %d", opts.BatchSize, MaxBatchSize)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	opts.MaxBackoff = max(opts.MaxBackoff, opts.PollInterval)
	if opts.StandbyInterval <= 0 {
		opts.StandbyInterval = DefaultStandbyInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	sel := entsql.Dialect(db.Dialect).
		Select("id", "event_id", "name", "aggregate_key", "payload").
		From(entsql.Table(eventschema.OutboxTable)).
		Where(entsql.IsNull("sent_at")).
		OrderBy("id").
		Limit(opts.BatchSize)
	query, args := sel.Query()
	r := &Relay{
		db:          db,
		t:           t,
		opts:        opts,
		log:         opts.Logger.With("component", "outbox-relay", "context", opts.Context),
		wake:        make(chan struct{}, 1),
		selectQuery: query,
		selectArgs:  args,
		published:   publishedTotal.WithLabelValues(opts.Context),
		reads:       readsTotal.WithLabelValues(opts.Context),
		errors:      publishErrorsTotal.WithLabelValues(opts.Context),
		lag:         lagEvents.WithLabelValues(opts.Context),
	}
	if db.Dialect == dialect.Postgres {
		r.announcer = newAnnouncer(db, r.log, announcedTotal.WithLabelValues(opts.Context))
	}
	return r, nil
}

// Notify wakes the relay at once; services call it after committing events, so latency stays
// low without polling the database hard (R-EVT-4). On PostgreSQL, while this relay is not the
// active one, it also announces the commit to the active relay, whichever process runs it
// (pg_notify, in the background). It never blocks.
func (r *Relay) Notify() {
	r.wakeUp()
	if r.announcer != nil && !r.active.Load() {
		r.announcer.announce()
	}
}

// wakeUp wakes this relay's loop if it waits.
func (r *Relay) wakeUp() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Close stops announcing commits (see Notify); call it before closing the database. Notify
// still wakes this relay afterwards.
func (r *Relay) Close() {
	if r.announcer != nil {
		r.announcer.close()
	}
}

// Active reports whether this relay currently is the one publishing for its database (R-OPS-2).
func (r *Relay) Active() bool { return r.active.Load() }

// queryer is the part of *sql.DB and *sql.Conn the relay uses.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Run relays until ctx is done, then returns nil (R-EVT-4, R-OPS-5). Failures (database or
// bus down) are logged and retried with bounded exponential backoff; rows not yet marked sent
// are published again, so nothing is lost and duplicates are possible. On PostgreSQL Run
// stands by while another relay holds the database's relay lock, and while its transport has
// no broker connection (bus.Connected): an active relay whose transport loses the broker gives
// the lock up, so a connected replica takes over (R-REL-3).
func (r *Relay) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("outbox: relay is already running")
	}
	defer r.running.Store(false)
	r.log.Info("outbox relay starting", "database", r.db.Name, "dialect", r.db.Dialect)
	defer r.log.Info("outbox relay stopped")

	dbFailures := backoff.New(r.backoffPolicy())
	if r.db.Dialect != dialect.Postgres {
		// SQLite: one process owns the file; no lock is needed.
		for ctx.Err() == nil {
			if !r.awaitLink(ctx) {
				return nil
			}
			r.active.Store(true)
			err := r.publishWhileLinked(ctx, r.db.SQL)
			r.active.Store(false)
			switch {
			case errors.Is(err, errLinkDown):
				r.log.Warn("outbox relay: the event transport is down; waiting for it")
			case err != nil && ctx.Err() == nil:
				wait := dbFailures.Next()
				r.logDatabaseError(ctx, "outbox relay: database error; retrying", err, dbFailures, wait)
				r.sleep(ctx, wait)
			}
		}
		return nil
	}

	standbyLogged := false
	for ctx.Err() == nil {
		// A relay that cannot reach the broker never holds the lock: a connected replica
		// publishes meanwhile (R-REL-3).
		if !r.awaitLink(ctx) {
			return nil
		}
		conn, locked, err := r.acquire(ctx)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil
			}
			wait := dbFailures.Next()
			r.logDatabaseError(ctx, "outbox relay: taking the relay lock failed; retrying", err, dbFailures, wait)
			r.sleep(ctx, wait)
		case !locked:
			dbFailures.Reset()
			if !standbyLogged {
				r.log.Info("outbox relay standing by: another relay is active for this database")
				standbyLogged = true
			}
			r.sleep(ctx, r.opts.StandbyInterval)
		default:
			dbFailures.Reset()
			standbyLogged = false
			r.active.Store(true)
			r.log.Info("outbox relay active")
			stopListening := r.listen()
			err := r.publishWhileLinked(ctx, conn)
			stopListening()
			r.active.Store(false)
			r.release(conn)
			switch {
			case errors.Is(err, errLinkDown):
				r.log.Warn("outbox relay: the event transport is down; gave the relay lock up so that a connected replica takes over")
			case err != nil && ctx.Err() == nil:
				wait := dbFailures.Next()
				r.logDatabaseError(ctx, "outbox relay: database error; giving up the relay lock and retrying", err, dbFailures, wait)
				r.sleep(ctx, wait)
			}
		}
	}
	return nil
}

// logDatabaseError logs a failed database step: a temporary failure (the database restarting,
// fault.IsTransient) as a warning, anything else as an error.
func (r *Relay) logDatabaseError(ctx context.Context, msg string, err error, failures *backoff.Retry, wait time.Duration) {
	level := slog.LevelError
	if fault.IsTransient(ctx, err) {
		level = slog.LevelWarn
	}
	r.log.Log(ctx, level, msg, "error", err, "failures", failures.Failures(), "retry_in", wait)
}

// errLinkDown ends an active relay's publishing when its transport lost the broker (R-REL-3).
var errLinkDown = errors.New("outbox: the event transport lost its broker connection")

// awaitLink waits until the transport is connected (bus.Connected); false means ctx ended.
func (r *Relay) awaitLink(ctx context.Context) bool {
	for {
		up, changed := bus.Connected(r.t)
		if up {
			return true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}

// publishWhileLinked runs publishLoop on q until ctx is done (nil), the database fails (its
// error) or the transport loses its broker (errLinkDown): a relay waiting for a broker that is
// away would hold its lock for the whole outage, and the replica that reconnects first could
// not take over (R-REL-3).
func (r *Relay) publishWhileLinked(ctx context.Context, q queryer) error {
	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		for {
			up, changed := bus.Connected(r.t)
			if !up {
				cancel(errLinkDown)
				return
			}
			select {
			case <-changed:
			case <-lctx.Done():
				return
			}
		}
	}()
	err := r.publishLoop(lctx, q)
	cancel(nil)
	<-watching
	if err == nil && ctx.Err() == nil && errors.Is(context.Cause(lctx), errLinkDown) {
		return errLinkDown
	}
	return err
}

// acquire takes a dedicated connection and tries the relay's advisory lock on it.
func (r *Relay) acquire(ctx context.Context) (*sql.Conn, bool, error) {
	conn, err := r.db.SQL.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("outbox: dedicated connection: %w", err)
	}
	var locked bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", advisoryLockKey).Scan(&locked); err != nil {
		r.discard(conn)
		return nil, false, fmt.Errorf("outbox: pg_try_advisory_lock: %w", err)
	}
	if !locked {
		if err := conn.Close(); err != nil {
			r.log.Warn("outbox relay: returning a connection", "error", err)
		}
		return nil, false, nil
	}
	// Nothing the relay reads needs a sequential scan of the retained history: its reads go
	// through the partial index of unsent rows (eventschema.UnsentIndex), whatever statistics
	// the planner holds.
	if _, err := conn.ExecContext(ctx, "SET enable_seqscan = off"); err != nil {
		r.discard(conn) // ends the session, and the lock with it
		return nil, false, fmt.Errorf("outbox: configuring the relay session: %w", err)
	}
	return conn, true, nil
}

// release ends the lock-holding session. The connection is closed, not pooled, so the lock
// can never linger in an idle pooled session.
func (r *Relay) release(conn *sql.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", advisoryLockKey); err != nil {
		r.log.Warn("outbox relay: releasing the relay lock (the session is closed anyway)", "error", err)
	}
	r.discard(conn)
}

// discard closes the connection's session instead of returning it to the pool.
func (r *Relay) discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}

// publishLoop relays batches through q until ctx is done (nil) or the database fails (error).
// Publish errors are retried here, with backoff, without giving up q.
func (r *Relay) publishLoop(ctx context.Context, q queryer) error {
	failures := backoff.New(r.backoffPolicy())
	var (
		lagAt    time.Time
		pos      position
		linkLost bool
	)
loop:
	for ctx.Err() == nil {
		if time.Since(lagAt) >= lagRefresh {
			lagAt = time.Now()
			if _, _, err := r.lagOn(ctx, q); err != nil {
				return err
			}
		}
		n, dbErr, err := r.relayBatch(ctx, q, &pos)
		switch {
		case err != nil && !dbErr:
			if ctx.Err() != nil {
				break // stopping, or the link watcher ended the loop
			}
			r.errors.Inc()
			if up, _ := bus.Connected(r.t); !up && fault.IsTransient(ctx, err) {
				// The broker went away under this publication: give the lock up now, not
				// after a backoff (R-REL-3).
				linkLost = true
				break loop
			}
			wait := failures.Next()
			r.log.Warn("outbox relay: publishing failed; the events stay unsent and are retried",
				"error", err, "events", n, "failures", failures.Failures(), "retry_in", wait)
			r.sleep(ctx, wait)
		case err != nil:
			return err
		case n == r.opts.BatchSize:
			failures.Reset() // more rows are likely waiting
		default:
			// Caught up. A row committed since the read has woken the relay already (Notify
			// keeps one wake-up for the next idle), so the relay reads again at once only
			// then, and otherwise at its poll: no read just to find the outbox empty.
			failures.Reset()
			r.idle(ctx)
		}
	}
	// Stopping: mark what the bus already confirmed, so a restart does not publish it again.
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.markSent(mctx, q, &pos); err != nil {
		r.log.Warn("outbox relay: marking the last published events sent", "error", err)
	}
	if linkLost {
		return errLinkDown
	}
	return nil
}

// position is where a relay is in the outbox: the last id it marked sent and whether that batch
// was full, i.e. more rows are likely waiting right after it.
type position struct {
	cursor   int64
	draining bool
	// ahead is the next batch of a backlog, read while the previous one was being published.
	ahead *batch
	// unmarked are rows the bus confirmed whose mark-sent waits for the next publication, so
	// that the two overlap.
	unmarked []driver.Value
	// mark is the id reads start from (PostgreSQL; see fullReadEvery), fullAt when the relay
	// last read from the start.
	mark   int64
	fullAt time.Time
}

// batch is rows read from the outbox and their messages.
type batch struct {
	ids  []driver.Value
	msgs []bus.Message
}

// relayBatch publishes the oldest unsent rows with one Publish call and marks them sent. It
// returns how many rows it read and whether a returned error came from the database (true) or
// the bus (false).
//
// While a backlog drains on PostgreSQL the database work overlaps the broker's: during a
// batch's Publish (waiting for its confirms) the relay marks the previous batch sent and reads
// the next one. Publications stay one after another, in id order, so order per aggregate holds
// as before; a batch is marked sent only once the bus has it.
func (r *Relay) relayBatch(ctx context.Context, q queryer, pos *position) (n int, dbErr bool, err error) {
	var ids []driver.Value
	var msgs []bus.Message
	if pos.ahead != nil {
		ids, msgs, pos.ahead = pos.ahead.ids, pos.ahead.msgs, nil
	} else {
		if ids, msgs, err = r.readBatch(ctx, q, pos); err != nil {
			return 0, true, err
		}
	}
	if len(msgs) == 0 {
		pos.draining = false
		return 0, true, r.markSent(ctx, q, pos)
	}
	published := make(chan error, 1)
	go func() { published <- r.t.Publish(ctx, msgs...) }()
	markErr := r.markSent(ctx, q, pos)
	var ahead *batch
	if markErr == nil && r.db.Dialect == dialect.Postgres && len(msgs) == r.opts.BatchSize {
		// A backlog: read the batch after this one while the broker confirms. Only a full
		// batch is kept; anything else is read again the usual way once this one is sent.
		if aids, amsgs, err := r.readRange(ctx, q, ids[len(ids)-1].(int64)); err == nil && len(amsgs) == r.opts.BatchSize {
			ahead = &batch{ids: aids, msgs: amsgs}
		}
	}
	if err := <-published; err != nil {
		if markErr != nil {
			return len(msgs), true, markErr
		}
		return len(msgs), false, fmt.Errorf("outbox: publishing %d events: %w", len(msgs), err)
	}
	// The bus has them: a failure from here on only republishes them (duplicates, never loss).
	r.published.Add(float64(len(msgs)))
	pos.cursor = ids[len(ids)-1].(int64)
	pos.draining = len(msgs) == r.opts.BatchSize
	pos.unmarked = ids
	if markErr != nil {
		return len(msgs), true, markErr
	}
	if ahead != nil {
		pos.ahead = ahead // marked while the next batch publishes
		return len(msgs), false, nil
	}
	if err := r.markSent(ctx, q, pos); err != nil {
		return len(msgs), true, err
	}
	return len(msgs), false, nil
}

// markSent marks the published rows waiting for it (pos.unmarked) sent.
func (r *Relay) markSent(ctx context.Context, q queryer, pos *position) error {
	if len(pos.unmarked) == 0 {
		return nil
	}
	query, args := entsql.Dialect(r.db.Dialect).
		Update(eventschema.OutboxTable).
		Set("sent_at", time.Now().UTC()).
		Where(entsql.InValues("id", pos.unmarked...)).
		Query()
	if _, err := q.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("outbox: marking %d published events sent (they will be published again): %w", len(pos.unmarked), err)
	}
	// The rows were read in id order from the mark (or from a cursor past it), so every row
	// visible then up to the last one is sent now.
	if m := pos.unmarked[len(pos.unmarked)-1].(int64) + 1 - r.markMargin(); m > pos.mark {
		pos.mark = m
		r.mark.Store(m)
	}
	pos.unmarked = nil
	return nil
}

// readBatch reads the oldest unsent rows. While draining a backlog on PostgreSQL it first reads
// just past the previous batch, an id range whose cost does not grow with the backlog; when that
// range does not fill a batch (the end of the backlog, a gap of rolled-back ids) it reads the
// oldest unsent rows from the relay's mark, which also finds rows committed out of id order,
// and every fullReadEvery from the start (see fullReadEvery). SQLite removes a row's index
// entry when the row leaves the index: there every read is from the start.
func (r *Relay) readBatch(ctx context.Context, q queryer, pos *position) ([]driver.Value, []bus.Message, error) {
	if r.db.Dialect != dialect.Postgres {
		return r.scanBatch(ctx, q, r.selectQuery, r.selectArgs)
	}
	if pos.draining {
		ids, msgs, err := r.readRange(ctx, q, pos.cursor)
		if err != nil || len(msgs) == r.opts.BatchSize {
			return ids, msgs, err
		}
	}
	if pos.mark <= 0 || time.Since(pos.fullAt) >= fullReadEvery {
		pos.fullAt = time.Now()
		return r.scanBatch(ctx, q, r.selectQuery, r.selectArgs)
	}
	query, args := r.fromQuery(pos.mark)
	return r.scanBatch(ctx, q, query, args)
}

// fromQuery reads the oldest unsent rows from id mark on.
func (r *Relay) fromQuery(mark int64) (string, []any) {
	return entsql.Dialect(r.db.Dialect).
		Select("id", "event_id", "name", "aggregate_key", "payload").
		From(entsql.Table(eventschema.OutboxTable)).
		Where(entsql.And(entsql.IsNull("sent_at"), entsql.GTE("id", mark))).
		OrderBy("id").
		Limit(r.opts.BatchSize).
		Query()
}

// readRange reads unsent rows just past id after, in an id range whose cost does not grow with
// the backlog (PostgreSQL).
func (r *Relay) readRange(ctx context.Context, q queryer, after int64) ([]driver.Value, []bus.Message, error) {
	query, args := entsql.Dialect(r.db.Dialect).
		Select("id", "event_id", "name", "aggregate_key", "payload").
		From(entsql.Table(eventschema.OutboxTable)).
		Where(entsql.And(
			entsql.IsNull("sent_at"),
			entsql.GT("id", after),
			entsql.LTE("id", after+4*int64(r.opts.BatchSize)),
		)).
		OrderBy("id").
		Limit(r.opts.BatchSize).
		Query()
	return r.scanBatch(ctx, q, query, args)
}

func (r *Relay) scanBatch(ctx context.Context, q queryer, query string, args []any) ([]driver.Value, []bus.Message, error) {
	r.reads.Inc()
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("outbox: reading unsent events: %w", err)
	}
	msgs := make([]bus.Message, 0, r.opts.BatchSize)
	ids := make([]driver.Value, 0, r.opts.BatchSize)
	for rows.Next() {
		var (
			id      int64
			m       bus.Message
			payload string
		)
		if err := rows.Scan(&id, &m.ID, &m.Topic, &m.Key, &payload); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("outbox: reading unsent events: %w", err)
		}
		m.Body = []byte(payload)
		msgs = append(msgs, m)
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		return nil, nil, fmt.Errorf("outbox: reading unsent events: %w", err)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("outbox: reading unsent events: %w", err)
	}
	return ids, msgs, nil
}

// Lag reports how many committed events are not yet published and the age of the oldest
// (R-OPS-4); it also sets the ates_outbox_lag_events gauge.
func (r *Relay) Lag(ctx context.Context) (unsent int, oldest time.Duration, err error) {
	return r.lagOn(ctx, r.db.SQL)
}

func (r *Relay) lagOn(ctx context.Context, q queryer) (int, time.Duration, error) {
	countQ, _ := entsql.Dialect(r.db.Dialect).
		Select(entsql.Count("*")).
		From(entsql.Table(eventschema.OutboxTable)).
		Where(entsql.IsNull("sent_at")).
		Query()
	var unsent int
	if err := scanOne(ctx, q, countQ, &unsent); err != nil {
		return 0, 0, fmt.Errorf("outbox: counting unsent events: %w", err)
	}
	r.lag.Set(float64(unsent))
	if unsent == 0 {
		return 0, 0, nil
	}
	oldestQ, _ := entsql.Dialect(r.db.Dialect).
		Select("created_at").
		From(entsql.Table(eventschema.OutboxTable)).
		Where(entsql.IsNull("sent_at")).
		OrderBy("id").
		Limit(1).
		Query()
	var created time.Time
	if err := scanOne(ctx, q, oldestQ, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) { // published meanwhile
			return unsent, 0, nil
		}
		return 0, 0, fmt.Errorf("outbox: reading the oldest unsent event: %w", err)
	}
	return unsent, max(time.Since(created), 0), nil
}

func scanOne(ctx context.Context, q queryer, query string, dest any) error {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest); err != nil {
		return err
	}
	return rows.Close()
}

// idle waits for a notification, the poll interval or the end of ctx.
func (r *Relay) idle(ctx context.Context) {
	if len(r.wake) == 0 && (r.db.Dialect != dialect.Postgres || r.db.URL == "" || r.listening.Load()) {
		r.settledIdles.Add(1)
	}
	t := time.NewTimer(r.opts.PollInterval)
	defer t.Stop()
	select {
	case <-r.wake:
	case <-t.C:
	case <-ctx.Done():
	}
}

func (r *Relay) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// backoffPolicy is the wait after consecutive failures: PollInterval doubled per failure,
// capped at MaxBackoff, jittered so that replicas do not retry in step.
func (r *Relay) backoffPolicy() backoff.Policy {
	return backoff.Policy{Initial: r.opts.PollInterval, Max: r.opts.MaxBackoff, Jitter: 0.5}
}
