package accounting_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // Asia/Tokyo without the system's zoneinfo

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/accountingdb"
	"github.com/uberpopug/ates/services/accounting"
	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/inbox"
	"github.com/uberpopug/ates/services/money"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/storage"
)

// start is the fake clock's first instant: 10:00 UTC on 2026-11-22 (19:00 in Tokyo).
var start = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// Seeds of the service's random source; firstPrice mirrors the first draw.
const seed1, seed2 = 42, 1042

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

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// lockedRand is a seeded PCG safe for the concurrent consumers of one service.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newLockedRand(s1, s2 uint64) *lockedRand { return &lockedRand{r: rand.New(rand.NewPCG(s1, s2))} }

func (l *lockedRand) IntN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

// cyclingRand returns 0, 1, 2, … (mod n): two draws in a row never give the same price, so a
// price drawn twice for one task cannot go unnoticed.
type cyclingRand struct {
	mu sync.Mutex
	k  int
}

func (c *cyclingRand) IntN(n int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.k++
	return c.k % n
}

// firstPrice is the price the service's first draw gives with the harness's seeds (R-ACC-1).
func firstPrice() accounting.Price {
	r := rand.New(rand.NewPCG(seed1, seed2))
	fee := accounting.MinFee + r.IntN(accounting.MaxFee-accounting.MinFee+1)
	reward := accounting.MinReward + r.IntN(accounting.MaxReward-accounting.MinReward+1)
	return accounting.Price{Fee: money.Dollars(int64(fee)), Reward: money.Dollars(int64(reward))}
}

// testLogger discards logs unless ATES_TEST_LOG is set.
func testLogger(tb testing.TB) *slog.Logger {
	tb.Helper()
	if os.Getenv("ATES_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// harness is an accounting service on a fresh real database, fed through the real inbox
// consumer, as in production.
type harness struct {
	db     *storage.DB
	client *accountingdb.Client
	svc    *accounting.Service
	clock  *fakeClock
	loc    *time.Location
	// handle is the inbox consumer's bus handler: events go through it, never to Apply directly.
	handle bus.Handler
	// notify is the services' Notify (nil: none).
	notify func()
}

type options struct {
	loc    *time.Location
	rand   accounting.Rand
	notify func()
}

type option func(*options)

// inLocation sets the business-day timezone (ATES_TIMEZONE, R-ACC-7).
func inLocation(loc *time.Location) option { return func(o *options) { o.loc = loc } }

// withNotify gives the service the relay's wake-up (accounting.Config.Notify).
func withNotify(f func()) option { return func(o *options) { o.notify = f } }

// withRand replaces the seeded random source.
func withRand(r accounting.Rand) option { return func(o *options) { o.rand = r } }

// mustLocation loads a timezone.
func mustLocation(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}

// MustService migrates db (one migration at a time: Ent's Schema.Create is not safe to run
// concurrently) and returns the service and its inbox consumer, on a fake clock and a seeded
// random source, business days in UTC unless told otherwise.
func MustService(tb testing.TB, db *storage.DB, opts ...option) *harness {
	tb.Helper()
	o := options{loc: time.UTC}
	for _, f := range opts {
		f(&o)
	}
	if o.rand == nil {
		o.rand = newLockedRand(seed1, seed2)
	}
	frugal(tb, db)
	client := accountingdb.NewClient(accountingdb.Driver(db.Driver()))
	if err := db.Migrate(context.Background(), func(ctx context.Context) error { return accounting.Migrate(ctx, db) }); err != nil {
		tb.Fatalf("creating the accounting schema: %v", err)
	}
	h := &harness{db: db, client: client, clock: &fakeClock{now: start}, loc: o.loc, notify: o.notify}
	h.svc, h.handle = h.mustReplica(tb, db, o.rand)
	return h
}

// frugal caps a test's PostgreSQL pool: the server's connections are shared by every test
// running on it, and no test here runs more than five handlers on one pool. Benchmarks keep
// the production pool.
func frugal(tb testing.TB, db *storage.DB) {
	if _, ok := tb.(*testing.T); ok && db.Dialect == dialect.Postgres {
		db.SQL.SetMaxOpenConns(6)
		db.SQL.SetMaxIdleConns(6)
	}
}

// mustReplica returns another instance of the service and its consumer on db (which may be a
// second pool on the harness's database), sharing the clock and timezone: a second replica.
func (h *harness) mustReplica(tb testing.TB, db *storage.DB, r accounting.Rand) (*accounting.Service, bus.Handler) {
	tb.Helper()
	svc, c := h.mustConsumer(tb, db, r, false)
	return svc, c.Handler()
}

// mustBatchReplica returns another instance of the service on db whose inbox applies batches
// through ApplyBatch, as the workers do (R-EVT-5).
func (h *harness) mustBatchReplica(tb testing.TB, db *storage.DB, r accounting.Rand) bus.BatchHandler {
	tb.Helper()
	_, c := h.mustConsumer(tb, db, r, true)
	return c.BatchHandler()
}

// mustConsumer builds a service on db and its inbox consumer (with ApplyBatch when batch).
func (h *harness) mustConsumer(tb testing.TB, db *storage.DB, r accounting.Rand, batch bool) (*accounting.Service, *inbox.Consumer[*accountingdb.Tx]) {
	tb.Helper()
	client := h.client
	if db != h.db {
		client = accountingdb.NewClient(accountingdb.Driver(db.Driver()))
	}
	w, err := outbox.NewWriter(db.Dialect, event.MustDefaultRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := accounting.New(accounting.Config{
		Client: client, DB: db.SQL, Dialect: db.Dialect, Outbox: w, Clock: h.clock.Now, Rand: r,
		Location: h.loc, Logger: testLogger(tb), Notify: h.notify,
	})
	if err != nil {
		tb.Fatalf("accounting.New: %v", err)
	}
	cfg := inbox.Config[*accountingdb.Tx]{
		Name: accounting.ConsumerName, Dialect: db.Dialect, DB: db.SQL, Begin: client.Tx,
		Registry: event.MustDefaultRegistry(), Handle: svc.Apply,
		// Production's backoff (50ms doubling to 2s), with a few more attempts: a busy SQLite or a
		// PostgreSQL shared with other test runs is retried as in production, while anything
		// that keeps failing still ends as a dead letter, which every test reports.
		MaxAttempts: 8,
		Logger:      testLogger(tb), Now: h.clock.Now,
	}
	if batch {
		cfg.HandleBatch = svc.ApplyBatch
	}
	c, err := inbox.New(cfg)
	if err != nil {
		tb.Fatalf("inbox.New: %v", err)
	}
	return svc, c
}

// deliver hands the events to the consumer, one by one, and fails on a refused delivery or a
// dead letter: every event of these tests must be applied (R-EVT-5).
func (h *harness) deliver(tb testing.TB, events ...event.Envelope) {
	tb.Helper()
	for _, e := range events {
		if err := h.handle(context.Background(), mustDelivery(tb, e)); err != nil {
			tb.Fatalf("delivering %s %s: %v", e.Name, e.ID, err)
		}
	}
	h.mustNoDeadLetters(tb)
}

func (h *harness) mustNoDeadLetters(tb testing.TB) {
	tb.Helper()
	rows, err := h.db.SQL.Query(`SELECT name, event_id, error FROM dead_letters`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, id, msg string
		if err := rows.Scan(&name, &id, &msg); err != nil {
			tb.Fatal(err)
		}
		tb.Errorf("dead letter %s %s: %s", name, id, msg)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
}

// mustDelivery wraps the envelope as the bus hands it over.
func mustDelivery(tb testing.TB, e event.Envelope) bus.Delivery {
	tb.Helper()
	body, err := json.Marshal(e)
	if err != nil {
		tb.Fatal(err)
	}
	return bus.Delivery{Message: bus.Message{ID: e.ID, Topic: e.Name, Body: body}}
}

// mustEvent builds an envelope as a producer would (R-EVT-1).
func mustEvent(tb testing.TB, producer, name string, version int, at time.Time, data any) event.Envelope {
	tb.Helper()
	e, err := event.New(context.Background(), producer, name, version, at, data)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func accountEvent(tb testing.TB, name string, id uuid.UUID, username string, role identity.Role, version int64, at time.Time) event.Envelope {
	tb.Helper()
	return mustEvent(tb, "auth", name, 1, at, contract.Account{
		AccountID: id.String(), Username: username, Email: username + "@uberpopug.com", FullName: "Popug " + username,
		Role: string(role), Active: true, Version: version, ChangedAt: at,
	})
}

// accountCreated is auth's account.created v1 (version 1).
func accountCreated(tb testing.TB, id uuid.UUID, username string, role identity.Role, at time.Time) event.Envelope {
	tb.Helper()
	return accountEvent(tb, contract.AccountCreated, id, username, role, 1, at)
}

// taskCreated is the tracker's task.created v2.
func taskCreated(tb testing.TB, id uuid.UUID, jira *string, title string, at time.Time) event.Envelope {
	tb.Helper()
	return mustEvent(tb, "tasks", contract.TaskCreated, 2, at, contract.TaskCreatedV2{
		TaskID: id.String(), Title: title, JiraID: jira, Description: "Description of " + title, CreatedAt: at,
	})
}

// taskCreatedV1 is the legacy task.created v1, its Jira id inside the title (R-EVT-3).
func taskCreatedV1(tb testing.TB, id uuid.UUID, title string, at time.Time) event.Envelope {
	tb.Helper()
	return mustEvent(tb, "tasks", contract.TaskCreated, 1, at, contract.TaskCreatedV1{
		TaskID: id.String(), Title: title, Description: "Description of " + title, CreatedAt: at,
	})
}

func taskAssigned(tb testing.TB, task, assignee uuid.UUID, at time.Time) event.Envelope {
	tb.Helper()
	return mustEvent(tb, "tasks", contract.TaskAssigned, 1, at, contract.TaskAssignedV1{
		TaskID: task.String(), AssigneeID: assignee.String(), Reason: contract.AssignedOnShuffle, AssignedAt: at,
	})
}

func taskCompleted(tb testing.TB, task, assignee uuid.UUID, at time.Time) event.Envelope {
	tb.Helper()
	return mustEvent(tb, "tasks", contract.TaskCompleted, 1, at, contract.TaskCompletedV1{
		TaskID: task.String(), AssigneeID: assignee.String(), CompletedAt: at,
	})
}

func strp(s string) *string { return &s }

// entryRow is one ledger entry as stored.
type entryRow struct {
	Seq          int64
	ID           uuid.UUID
	Account      uuid.UUID
	Type         string
	Amount       int64
	BalanceAfter int64
	Task         uuid.UUID // uuid.Nil: no task (a payout)
	OccurredAt   time.Time
	Day          string
	Source       string
}

// ledger is the database's ledger after a scenario.
type ledger struct {
	Entries  []entryRow // in id order
	Balances map[uuid.UUID]int64
}

// ByAccount returns the account's entries in id order.
func (l ledger) ByAccount(id uuid.UUID) []entryRow {
	var out []entryRow
	for _, e := range l.Entries {
		if e.Account == id {
			out = append(out, e)
		}
	}
	return out
}

// BySource returns the entries made by an event.
func (l ledger) BySource(eventID string) []entryRow {
	var out []entryRow
	for _, e := range l.Entries {
		if e.Source == eventID {
			out = append(out, e)
		}
	}
	return out
}

// mustConsistent checks the ledger with SQL and returns it (R-ACC-1, R-ACC-3, R-ACC-10):
// every balance equals the sum of its account's entries; balance_after chains in id order per
// account, from 0 to the balance; every entry has exactly one balance.changed event with its
// figures; every task has exactly one task.priced event with its price, in the ranges.
func (h *harness) mustConsistent(tb testing.TB) ledger {
	tb.Helper()
	db := h.db.SQL
	l := ledger{Balances: map[uuid.UUID]int64{}}

	// The balance equals the sum of the entries, by SQL alone.
	rows, err := db.Query(`SELECT a.public_id, a.balance, COALESCE(SUM(e.amount), 0), COUNT(e.id)
		FROM accounts a LEFT JOIN entries e ON e.account_id = a.public_id
		GROUP BY a.public_id, a.balance`)
	if err != nil {
		tb.Fatal(err)
	}
	for rows.Next() {
		var id uuid.UUID
		var balance, sum, n int64
		if err := rows.Scan(&id, &balance, &sum, &n); err != nil {
			tb.Fatal(err)
		}
		if balance != sum {
			tb.Errorf("account %s: balance %d ≠ sum of its %d entries %d (R-ACC-3)", id, balance, n, sum)
		}
		l.Balances[id] = balance
	}
	mustRowsDone(tb, rows)
	var orphans int
	if err := db.QueryRow(`SELECT COUNT(*) FROM entries e WHERE NOT EXISTS
		(SELECT 1 FROM accounts a WHERE a.public_id = e.account_id)`).Scan(&orphans); err != nil {
		tb.Fatal(err)
	}
	if orphans != 0 {
		tb.Errorf("%d entries belong to no billing account", orphans)
	}

	rows, err = db.Query(`SELECT id, public_id, account_id, type, amount, balance_after, task_id, occurred_at, day, source_event_id
		FROM entries ORDER BY id`)
	if err != nil {
		tb.Fatal(err)
	}
	for rows.Next() {
		var e entryRow
		var task uuid.NullUUID
		if err := rows.Scan(&e.Seq, &e.ID, &e.Account, &e.Type, &e.Amount, &e.BalanceAfter, &task, &e.OccurredAt, &e.Day, &e.Source); err != nil {
			tb.Fatal(err)
		}
		e.Task = task.UUID
		e.OccurredAt = e.OccurredAt.UTC()
		l.Entries = append(l.Entries, e)
	}
	mustRowsDone(tb, rows)

	// balance_after chains in id order per account.
	running := map[uuid.UUID]int64{}
	for _, e := range l.Entries {
		running[e.Account] += e.Amount
		if e.BalanceAfter != running[e.Account] {
			tb.Errorf("entry %d of %s: balance_after %d, want %d (previous balance + amount %d)",
				e.Seq, e.Account, e.BalanceAfter, running[e.Account], e.Amount)
		}
	}
	for id, r := range running {
		if l.Balances[id] != r {
			tb.Errorf("account %s: balance %d, entries chain to %d", id, l.Balances[id], r)
		}
	}

	// Every entry has exactly one balance.changed event with its figures.
	changed := map[string][]contract.BalanceChangedV1{}
	for _, r := range h.mustOutbox(tb, contract.BalanceChanged) {
		d := decode[contract.BalanceChangedV1](tb, r.Envelope)
		if r.Key != d.AccountID {
			tb.Errorf("balance.changed %s keyed %q, want the account %s", d.EntryID, r.Key, d.AccountID)
		}
		changed[d.EntryID] = append(changed[d.EntryID], d)
	}
	if len(changed) != len(l.Entries) {
		tb.Errorf("%d balance.changed events for %d entries", len(changed), len(l.Entries))
	}
	for _, e := range l.Entries {
		evs := changed[e.ID.String()]
		if len(evs) != 1 {
			tb.Errorf("entry %s: %d balance.changed events, want 1", e.ID, len(evs))
			continue
		}
		d := evs[0]
		var task *string
		if e.Task != uuid.Nil {
			task = strp(e.Task.String())
		}
		if d.AccountID != e.Account.String() || d.Type != e.Type || d.Amount != e.Amount || d.BalanceAfter != e.BalanceAfter ||
			d.Day != e.Day || d.Sequence != e.Seq || !d.OccurredAt.Equal(e.OccurredAt) || !sameString(d.TaskID, task) {
			tb.Errorf("balance.changed %+v does not match entry %+v", d, e)
		}
	}

	// Every task has exactly one task.priced event with its price (R-ACC-1).
	priced := map[string][]contract.TaskPricedV1{}
	for _, r := range h.mustOutbox(tb, contract.TaskPriced) {
		d := decode[contract.TaskPricedV1](tb, r.Envelope)
		priced[d.TaskID] = append(priced[d.TaskID], d)
	}
	prices := h.mustPrices(tb)
	if len(priced) != len(prices) {
		tb.Errorf("%d tasks priced in events, %d tasks stored", len(priced), len(prices))
	}
	for id, p := range prices {
		evs := priced[id.String()]
		if len(evs) != 1 {
			tb.Errorf("task %s: %d task.priced events, want exactly 1 (R-ACC-1)", id, len(evs))
			continue
		}
		if evs[0].Fee != int64(p.Fee) || evs[0].Reward != int64(p.Reward) {
			tb.Errorf("task %s priced %d/%d in its event, %d/%d stored", id, evs[0].Fee, evs[0].Reward, p.Fee, p.Reward)
		}
		mustPriceInRange(tb, p)
	}
	return l
}

func mustPriceInRange(tb testing.TB, p accounting.Price) {
	tb.Helper()
	if p.Fee%100 != 0 || p.Fee < money.Dollars(accounting.MinFee) || p.Fee > money.Dollars(accounting.MaxFee) ||
		p.Reward%100 != 0 || p.Reward < money.Dollars(accounting.MinReward) || p.Reward > money.Dollars(accounting.MaxReward) {
		tb.Errorf("price %v/%v outside R-ACC-1's ranges", p.Fee, p.Reward)
	}
}

// mustPrices reads every task's stored price.
func (h *harness) mustPrices(tb testing.TB) map[uuid.UUID]accounting.Price {
	tb.Helper()
	rows, err := h.db.SQL.Query(`SELECT public_id, fee, reward FROM tasks`)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[uuid.UUID]accounting.Price{}
	for rows.Next() {
		var id uuid.UUID
		var fee, reward int64
		if err := rows.Scan(&id, &fee, &reward); err != nil {
			tb.Fatal(err)
		}
		out[id] = accounting.Price{Fee: money.Cents(fee), Reward: money.Cents(reward)}
	}
	mustRowsDone(tb, rows)
	return out
}

// mustPrice is one task's stored price.
func (h *harness) mustPrice(tb testing.TB, task uuid.UUID) accounting.Price {
	tb.Helper()
	p, ok := h.mustPrices(tb)[task]
	if !ok {
		tb.Fatalf("task %s has no price", task)
	}
	return p
}

// mustBalance is the stored balance of an account.
func (h *harness) mustBalance(tb testing.TB, id uuid.UUID) money.Cents {
	tb.Helper()
	var b int64
	if err := h.db.SQL.QueryRow(h.q(`SELECT balance FROM accounts WHERE public_id = $1`), id.String()).Scan(&b); err != nil {
		tb.Fatalf("balance of %s: %v", id, err)
	}
	return money.Cents(b)
}

// q adapts $n placeholders to SQLite.
func (h *harness) q(s string) string {
	if h.db.Dialect == dialect.SQLite {
		return strings.ReplaceAll(s, "$", "?")
	}
	return s
}

func (h *harness) mustCount(tb testing.TB, query string, args ...any) int {
	tb.Helper()
	var n int
	if err := h.db.SQL.QueryRow(h.q(query), args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

// outboxRow is one stored event.
type outboxRow struct {
	Key      string
	Envelope event.Envelope
}

// mustOutbox returns the stored events of a name, in insertion order, each validated again.
func (h *harness) mustOutbox(tb testing.TB, name string) []outboxRow {
	tb.Helper()
	rows, err := h.db.SQL.Query(h.q(`SELECT aggregate_key, payload FROM outbox_events WHERE name = $1 ORDER BY id`), name)
	if err != nil {
		tb.Fatalf("reading outbox_events: %v", err)
	}
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		var payload string
		if err := rows.Scan(&r.Key, &payload); err != nil {
			tb.Fatal(err)
		}
		if r.Envelope, err = event.MustDefaultRegistry().Parse([]byte(payload)); err != nil {
			tb.Fatalf("stored event %s is invalid: %v", name, err)
		}
		if r.Envelope.Producer != accounting.Producer {
			tb.Errorf("stored event %s produced by %q", name, r.Envelope.Producer)
		}
		out = append(out, r)
	}
	mustRowsDone(tb, rows)
	return out
}

type rowsCloser interface {
	Err() error
	Close() error
}

func mustRowsDone(tb testing.TB, rows rowsCloser) {
	tb.Helper()
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	if err := rows.Close(); err != nil {
		tb.Fatal(err)
	}
}

func decode[T any](tb testing.TB, e event.Envelope) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(e.Data, &v); err != nil {
		tb.Fatal(err)
	}
	return v
}

func sameString(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// mustErr asserts err is an *errs.Error with the code (and field, when given).
func mustErr(tb testing.TB, err error, code errs.Code, field string) {
	tb.Helper()
	e, ok := errs.As(err)
	if !ok {
		tb.Fatalf("error = %v, want code %s", err, code)
	}
	if e.Code != code || e.Field != field {
		tb.Fatalf("error = {%s, field %q, %q}, want {%s, field %q}", e.Code, e.Field, e.Message, code, field)
	}
}

// mustDate parses a YYYY-MM-DD date.
func mustDate(tb testing.TB, s string) calendar.Date {
	tb.Helper()
	d, err := calendar.Parse(s)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// actor returns an actor of the role.
func actor(role identity.Role) identity.Actor {
	return identity.Actor{AccountID: uuid.New(), Role: role}
}

// as returns the actor for an existing account.
func as(id uuid.UUID, role identity.Role) identity.Actor {
	return identity.Actor{AccountID: id, Role: role}
}

// types lists the entries' types.
func types(es []entryRow) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Type
	}
	return out
}

// amounts lists the entries' amounts.
func amounts(es []entryRow) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Amount
	}
	return out
}

// shuffled returns a copy of s in a seeded random order.
func shuffled[T any](s []T, seed uint64) []T {
	out := slices.Clone(s)
	r := rand.New(rand.NewPCG(seed, seed+1))
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// describeEntry is a short form for failure messages.
func describeEntry(e accounting.Entry) string {
	return fmt.Sprintf("%s %v→%v %q %s", e.Type, e.Amount, e.BalanceAfter, e.Description, e.Day)
}
