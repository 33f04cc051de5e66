package tasks_test

import (
	"context"
	stdsql "database/sql"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/ent/tasksdb/task"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/tasks"
)

// start is the fake clock's first instant.
var start = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// fakeClock is a time source the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness is a task tracker on a fresh real database, with a fake clock and a seeded random
// source, so draws are the same on every run.
type harness struct {
	db       *storage.DB
	client   *tasksdb.Client
	svc      *tasks.Service
	clock    *fakeClock
	notified atomic.Int64
	// versions is the last version applied per account by MustApply.
	mu       sync.Mutex
	versions map[uuid.UUID]int64
}

type serviceOptions struct {
	batch        int
	seed1, seed2 uint64
	unprepared   bool
	statements   *statements
}

// option adjusts MustService.
type option func(*serviceOptions)

// withBatch sets tasks.Config.ShuffleBatch.
func withBatch(n int) option { return func(o *serviceOptions) { o.batch = n } }

// withoutPool leaves tasks.Config.DB unset: Create's statement is not prepared.
func withoutPool() option { return func(o *serviceOptions) { o.unprepared = true } }

// withStatements records every statement the service runs through Ent into rec.
func withStatements(rec *statements) option { return func(o *serviceOptions) { o.statements = rec } }

// withSeed seeds the PCG of the draws.
func withSeed(a, b uint64) option { return func(o *serviceOptions) { o.seed1, o.seed2 = a, b } }

// MustService returns a task tracker over db with its schema created. Draws come from a PCG with
// a fixed seed behind tasks.NewLockedRand.
func MustService(tb testing.TB, db *storage.DB, opts ...option) *harness {
	tb.Helper()
	o := serviceOptions{seed1: 42, seed2: 1042}
	for _, f := range opts {
		f(&o)
	}
	ctx := context.Background()
	var drv dialect.Driver = db.Driver()
	if o.statements != nil {
		drv = recordingDriver{drv, o.statements}
	}
	client := tasksdb.NewClient(tasksdb.Driver(drv))
	// Ent's migration writes the generated package-level table list: one at a time, as every
	// other migration in this process (storage.DB.Migrate).
	err := db.Migrate(ctx, func(ctx context.Context) error { return tasks.Migrate(ctx, db) })
	if err != nil {
		tb.Fatalf("creating the tasks schema: %v", err)
	}
	w, err := outbox.NewWriter(db.Dialect, event.MustDefaultRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	h := &harness{db: db, client: client, clock: &fakeClock{now: start}, versions: map[uuid.UUID]int64{}}
	pool := db.SQL
	if o.unprepared {
		pool = nil
	}
	h.svc, err = tasks.New(tasks.Config{
		Client: client, DB: pool, Dialect: db.Dialect, Outbox: w, Clock: h.clock.Now,
		Rand:   tasks.NewLockedRand(rand.New(rand.NewPCG(o.seed1, o.seed2))),
		Logger: slog.New(slog.DiscardHandler), Notify: func() { h.notified.Add(1) },
		ShuffleBatch: o.batch,
	})
	if err != nil {
		tb.Fatalf("tasks.New: %v", err)
	}
	return h
}

// statements records the statements run through a recordingDriver, with their arguments.
type statements struct {
	mu   sync.Mutex
	list []statement
}

type statement struct {
	Query string
	Args  []any
}

func (r *statements) add(query string, args any) {
	a, _ := args.([]any)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, statement{query, a})
}

// Take returns the statements recorded since the last Take.
func (r *statements) Take() []statement {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.list
	r.list = nil
	return l
}

// recordingDriver is an Ent driver that records what it runs, in and out of transactions.
type recordingDriver struct {
	dialect.Driver
	rec *statements
}

func (d recordingDriver) Exec(ctx context.Context, query string, args, v any) error {
	d.rec.add(query, args)
	return d.Driver.Exec(ctx, query, args, v)
}

func (d recordingDriver) Query(ctx context.Context, query string, args, v any) error {
	d.rec.add(query, args)
	return d.Driver.Query(ctx, query, args, v)
}

func (d recordingDriver) Tx(ctx context.Context) (dialect.Tx, error) {
	tx, err := d.Driver.Tx(ctx)
	if err != nil {
		return nil, err
	}
	return recordingTx{tx, d.rec}, nil
}

// ExecContext and QueryContext serve the service's own SQL (Client.ExecContext, Tx.QueryContext…).
func (d recordingDriver) ExecContext(ctx context.Context, query string, args ...any) (stdsql.Result, error) {
	d.rec.add(query, args)
	return d.Driver.(execer).ExecContext(ctx, query, args...)
}

func (d recordingDriver) QueryContext(ctx context.Context, query string, args ...any) (*stdsql.Rows, error) {
	d.rec.add(query, args)
	return d.Driver.(querier).QueryContext(ctx, query, args...)
}

type execer interface {
	ExecContext(context.Context, string, ...any) (stdsql.Result, error)
}

type querier interface {
	QueryContext(context.Context, string, ...any) (*stdsql.Rows, error)
}

type recordingTx struct {
	dialect.Tx
	rec *statements
}

func (t recordingTx) Exec(ctx context.Context, query string, args, v any) error {
	t.rec.add(query, args)
	return t.Tx.Exec(ctx, query, args, v)
}

func (t recordingTx) Query(ctx context.Context, query string, args, v any) error {
	t.rec.add(query, args)
	return t.Tx.Query(ctx, query, args, v)
}

func (t recordingTx) ExecContext(ctx context.Context, query string, args ...any) (stdsql.Result, error) {
	t.rec.add(query, args)
	return t.Tx.(execer).ExecContext(ctx, query, args...)
}

func (t recordingTx) QueryContext(ctx context.Context, query string, args ...any) (*stdsql.Rows, error) {
	t.rec.add(query, args)
	return t.Tx.(querier).QueryContext(ctx, query, args...)
}

// accountEvent builds an account.created or account.updated envelope as auth publishes it.
func accountEvent(tb testing.TB, name string, a contract.Account) event.Envelope {
	tb.Helper()
	e, err := event.New(context.Background(), "auth", name, 1, a.ChangedAt, a)
	if err != nil {
		tb.Fatal(err)
	}
	if err := event.MustDefaultRegistry().Validate(e); err != nil {
		tb.Fatalf("the test's own %s event is invalid: %v", name, err)
	}
	return e
}

// apply applies one account event in its own transaction, as the inbox consumer does.
func (h *harness) apply(tb testing.TB, e event.Envelope) error {
	tb.Helper()
	return storage.InTx(context.Background(), h.client.Tx, func(tx *tasksdb.Tx) error {
		return h.svc.Apply(context.Background(), tx, e)
	})
}

// MustApply applies an account event built from the fields and fails the test on error.
func (h *harness) MustApply(tb testing.TB, name string, id uuid.UUID, role identity.Role, active bool, version int64) {
	tb.Helper()
	a := contract.Account{
		AccountID: id.String(), Username: "popug-" + id.String()[:8], Email: id.String()[:8] + "@uberpopug.com",
		FullName: "Popug " + id.String()[:8], Role: string(role), Active: active, Version: version,
		ChangedAt: h.clock.Now(),
	}
	if err := h.apply(tb, accountEvent(tb, name, a)); err != nil {
		tb.Fatalf("applying %s v%d of %s: %v", name, version, id, err)
	}
	h.mu.Lock()
	if version > h.versions[id] {
		h.versions[id] = version
	}
	h.mu.Unlock()
}

// MustPopug puts a new account of the role in the replica (account.created, version 1).
func (h *harness) MustPopug(tb testing.TB, role identity.Role) identity.Actor {
	tb.Helper()
	id := uuid.New()
	h.MustApply(tb, contract.AccountCreated, id, role, true, 1)
	return identity.Actor{AccountID: id, Role: role}
}

// MustUpdate changes an account of the replica with the next account.updated version.
func (h *harness) MustUpdate(tb testing.TB, id uuid.UUID, role identity.Role, active bool) {
	tb.Helper()
	h.mu.Lock()
	v := h.versions[id] + 1
	h.mu.Unlock()
	h.MustApply(tb, contract.AccountUpdated, id, role, active, v)
}

// MustCreate creates a task as the actor.
func (h *harness) MustCreate(tb testing.TB, actor identity.Actor, title string) tasks.Task {
	tb.Helper()
	t, err := h.svc.Create(context.Background(), actor, tasks.NewTask{Title: title, Description: "Description of " + title})
	if err != nil {
		tb.Fatalf("creating task %q: %v", title, err)
	}
	return t
}

// MustComplete completes a task as its assignee.
func (h *harness) MustComplete(tb testing.TB, t tasks.Task) tasks.Task {
	tb.Helper()
	done, err := h.svc.Complete(context.Background(), identity.Actor{AccountID: t.AssigneeID, Role: identity.Worker}, t.ID)
	if err != nil {
		tb.Fatalf("completing %s: %v", t.ID, err)
	}
	return done
}

// taskRow is a task as stored.
type taskRow struct {
	Status     string
	AssigneeID uuid.UUID
	// CompletedAt is RFC 3339 in UTC, "" while open: rows compare with ==.
	CompletedAt string
}

// mustTasks returns every stored task by public id.
func (h *harness) mustTasks(tb testing.TB) map[uuid.UUID]taskRow {
	tb.Helper()
	rows, err := h.client.Task.Query().Order(tasksdb.Asc(task.FieldID)).All(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	out := make(map[uuid.UUID]taskRow, len(rows))
	for _, r := range rows {
		row := taskRow{Status: string(r.Status), AssigneeID: r.AssigneeID}
		if r.CompletedAt != nil {
			row.CompletedAt = r.CompletedAt.UTC().Format(time.RFC3339Nano)
		}
		out[r.PublicID] = row
	}
	return out
}

// outboxRow is one stored event.
type outboxRow struct {
	ID       int64
	Name     string
	Version  int
	Key      string
	Envelope event.Envelope
}

// mustOutbox returns every event in outbox_events in id order, each validated again as a
// consumer would (R-EVT-2).
func (h *harness) mustOutbox(tb testing.TB) []outboxRow {
	tb.Helper()
	rows, err := h.db.SQL.Query(`SELECT id, name, version, aggregate_key, payload FROM outbox_events ORDER BY id`)
	if err != nil {
		tb.Fatalf("reading outbox_events: %v", err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		var payload string
		if err := rows.Scan(&r.ID, &r.Name, &r.Version, &r.Key, &payload); err != nil {
			tb.Fatal(err)
		}
		if r.Envelope, err = event.MustDefaultRegistry().Parse([]byte(payload)); err != nil {
			tb.Fatalf("stored event %s is invalid: %v", r.Name, err)
		}
		if r.Envelope.Name != r.Name || r.Envelope.Version != r.Version || r.Envelope.Producer != tasks.Producer {
			tb.Fatalf("outbox row %d: columns %s v%d disagree with the envelope %+v", r.ID, r.Name, r.Version, r.Envelope)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// assignment is a decoded task.assigned event with its outbox id.
type assignment struct {
	OutboxID int64
	contract.TaskAssignedV1
}

// assignments decodes the task.assigned events of rows with the reason ("" = any), by task id,
// each task's in outbox order.
func assignments(tb testing.TB, rows []outboxRow, reason string) map[string][]assignment {
	tb.Helper()
	out := map[string][]assignment{}
	for _, r := range rows {
		if r.Name != contract.TaskAssigned {
			continue
		}
		var a contract.TaskAssignedV1
		if err := r.Envelope.DecodeData(&a); err != nil {
			tb.Fatal(err)
		}
		if a.TaskID != r.Key {
			tb.Fatalf("task.assigned of %s is keyed %s", a.TaskID, r.Key)
		}
		if reason == "" || a.Reason == reason {
			out[a.TaskID] = append(out[a.TaskID], assignment{OutboxID: r.ID, TaskAssignedV1: a})
		}
	}
	return out
}

// countOutbox counts the stored events of a name.
func (h *harness) countOutbox(tb testing.TB, name string) int {
	tb.Helper()
	var n int
	if err := h.db.SQL.QueryRow(h.sql(`SELECT count(*) FROM outbox_events WHERE name = $1`), name).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// sql adapts $n placeholders to SQLite's ?n.
func (h *harness) sql(q string) string {
	if h.db.Dialect == "sqlite3" {
		return strings.ReplaceAll(q, "$", "?")
	}
	return q
}

// mustCode fails unless err carries the code.
func mustCode(tb testing.TB, err error, code errs.Code) *errs.Error {
	tb.Helper()
	e, ok := errs.As(err)
	if !ok || e.Code != code {
		tb.Fatalf("error = %v (code %q), want %s", err, errs.CodeOf(err), code)
	}
	if e.Message == "" {
		tb.Fatalf("a %s error without a message", code)
	}
	return e
}
