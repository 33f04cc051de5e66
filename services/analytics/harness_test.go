package analytics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/analyticsdb"
	"github.com/uberpopug/ates/services/analytics"
	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/inbox"
	"github.com/uberpopug/ates/services/storage"
)

// loc is the business-day timezone of the tests: three hours ahead of UTC, so a day's bounds
// differ from UTC's.
var loc = time.FixedZone("UTC+3", 3*60*60)

// at returns the instant of a wall-clock time on a business day in loc.
func at(d calendar.Date, hour, minute int) time.Time {
	return time.Date(d.Year, d.Month, d.Day, hour, minute, 0, 0, loc).UTC()
}

// date parses a YYYY-MM-DD date or fails the test.
func date(tb testing.TB, s string) calendar.Date {
	tb.Helper()
	d, err := calendar.Parse(s)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

var (
	admin      = identity.Actor{AccountID: uuid.New(), Role: identity.Admin}
	manager    = identity.Actor{AccountID: uuid.New(), Role: identity.Manager}
	accountant = identity.Actor{AccountID: uuid.New(), Role: identity.Accountant}
	worker     = identity.Actor{AccountID: uuid.New(), Role: identity.Worker}
)

// fakeClock is a time source the test sets by hand.
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

// harness is the analytics service on a fresh real database with a fake clock.
type harness struct {
	db     *storage.DB
	client *analyticsdb.Client
	svc    *analytics.Service
	clock  *fakeClock
}

// MustService returns the service over db with its schema created; the clock starts at now.
func MustService(tb testing.TB, db *storage.DB, now time.Time) *harness {
	tb.Helper()
	ctx := context.Background()
	client := analyticsdb.NewClient(analyticsdb.Driver(db.Driver()))
	if err := db.Migrate(ctx, func(ctx context.Context) error { return client.Schema.Create(ctx) }); err != nil {
		tb.Fatalf("creating the analytics schema: %v", err)
	}
	h := &harness{db: db, client: client, clock: &fakeClock{now: now}}
	var err error
	h.svc, err = analytics.New(analytics.Config{
		Client: client, Dialect: db.Dialect, Clock: h.clock.Now, Location: loc,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		tb.Fatalf("analytics.New: %v", err)
	}
	return h
}

// MustApply applies each event in a transaction of its own, as the consumer does, without the
// inbox's processed-event record (so applying one twice exercises Apply's own idempotency).
func (h *harness) MustApply(tb testing.TB, events ...event.Envelope) {
	tb.Helper()
	for _, e := range events {
		err := storage.InTx(context.Background(), h.client.Tx, func(tx *analyticsdb.Tx) error {
			return h.svc.Apply(context.Background(), tx, e)
		})
		if err != nil {
			tb.Fatalf("applying %s %s: %v", e.Name, e.ID, err)
		}
	}
}

// MustApplyInBatches applies the events in order, n per transaction (quicker than MustApply
// for long lists; Apply's result does not depend on transaction boundaries).
func (h *harness) MustApplyInBatches(tb testing.TB, n int, events ...event.Envelope) {
	tb.Helper()
	for len(events) > 0 {
		batch := events[:min(n, len(events))]
		events = events[len(batch):]
		err := storage.InTx(context.Background(), h.client.Tx, func(tx *analyticsdb.Tx) error {
			for _, e := range batch {
				if err := h.svc.Apply(context.Background(), tx, e); err != nil {
					return fmt.Errorf("applying %s %s: %w", e.Name, e.ID, err)
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// MustApplyBatches applies the events n per transaction through ApplyBatch, as the consumer
// does.
func (h *harness) MustApplyBatches(tb testing.TB, n int, events ...event.Envelope) {
	tb.Helper()
	for len(events) > 0 {
		batch := events[:min(n, len(events))]
		events = events[len(batch):]
		err := storage.InTx(context.Background(), h.client.Tx, func(tx *analyticsdb.Tx) error {
			return h.svc.ApplyBatch(context.Background(), tx, batch)
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// MustConsumer returns the live consumer of analytics over the harness's database, as
// cmd/ates wires it.
func (h *harness) MustConsumer(tb testing.TB) *inbox.Consumer[*analyticsdb.Tx] {
	tb.Helper()
	c, err := inbox.New(inbox.Config[*analyticsdb.Tx]{
		Name: analytics.ConsumerName, Dialect: h.db.Dialect, DB: h.db.SQL, Begin: h.client.Tx,
		Registry: event.MustDefaultRegistry(), Handle: h.svc.Apply, HandleBatch: h.svc.ApplyBatch, Logger: slog.New(slog.DiscardHandler),
		Backoff: func(int) time.Duration { return time.Millisecond },
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// MustDeliver hands each event to the consumer as the bus does and fails on a refused one.
func MustDeliver(tb testing.TB, c *inbox.Consumer[*analyticsdb.Tx], events ...event.Envelope) {
	tb.Helper()
	h := c.Handler()
	for _, e := range events {
		body, err := json.Marshal(e)
		if err != nil {
			tb.Fatal(err)
		}
		if err := h(context.Background(), bus.Delivery{Message: bus.Message{ID: e.ID, Topic: e.Name, Body: body}}); err != nil {
			tb.Fatalf("delivering %s %s: %v", e.Name, e.ID, err)
		}
	}
}

// envelope builds a valid event of the registry (R-EVT-2), as its producer publishes it.
func envelope(tb testing.TB, producer, name string, version int, t time.Time, data any) event.Envelope {
	tb.Helper()
	e, err := event.New(context.Background(), producer, name, version, t, data)
	if err != nil {
		tb.Fatal(err)
	}
	if err := event.MustDefaultRegistry().Validate(e); err != nil {
		tb.Fatalf("the test's own %s v%d event is invalid: %v", name, version, err)
	}
	return e
}

func strp(s string) *string { return &s }

func taskCreatedV2(tb testing.TB, id uuid.UUID, title string, jira *string, description string, t time.Time) event.Envelope {
	return envelope(tb, "tasks", contract.TaskCreated, 2, t, contract.TaskCreatedV2{
		TaskID: id.String(), Title: title, JiraID: jira, Description: description, CreatedAt: t,
	})
}

func taskCreatedV1(tb testing.TB, id uuid.UUID, title, description string, t time.Time) event.Envelope {
	return envelope(tb, "tasks", contract.TaskCreated, 1, t, contract.TaskCreatedV1{
		TaskID: id.String(), Title: title, Description: description, CreatedAt: t,
	})
}

func taskUpdated(tb testing.TB, id uuid.UUID, title string, jira *string, description string, created time.Time, completed *time.Time) event.Envelope {
	status, t := contract.TaskOpen, created
	if completed != nil {
		status, t = contract.TaskDone, *completed
	}
	return envelope(tb, "tasks", contract.TaskUpdated, 1, t, contract.TaskUpdatedV1{
		TaskID: id.String(), Title: title, JiraID: jira, Description: description, Status: status,
		CreatedAt: created, CompletedAt: completed,
	})
}

func taskAssigned(tb testing.TB, id, assignee uuid.UUID, reason string, t time.Time) event.Envelope {
	return envelope(tb, "tasks", contract.TaskAssigned, 1, t, contract.TaskAssignedV1{
		TaskID: id.String(), AssigneeID: assignee.String(), Reason: reason, AssignedAt: t,
	})
}

func taskCompleted(tb testing.TB, id, assignee uuid.UUID, t time.Time) event.Envelope {
	return envelope(tb, "tasks", contract.TaskCompleted, 1, t, contract.TaskCompletedV1{
		TaskID: id.String(), AssigneeID: assignee.String(), CompletedAt: t,
	})
}

func taskPriced(tb testing.TB, id uuid.UUID, fee, reward int64, t time.Time) event.Envelope {
	return envelope(tb, "accounting", contract.TaskPriced, 1, t, contract.TaskPricedV1{
		TaskID: id.String(), Fee: fee, Reward: reward, PricedAt: t,
	})
}

func balanceChanged(tb testing.TB, d contract.BalanceChangedV1) event.Envelope {
	return envelope(tb, "accounting", contract.BalanceChanged, 1, d.OccurredAt, d)
}

// dayClosed builds day.closed v1 as accounting publishes it.
func dayClosed(tb testing.TB, day calendar.Date, scheduled bool, paidAccounts int, totalPaid int64, t time.Time) event.Envelope {
	return envelope(tb, "accounting", contract.DayClosed, 1, t, contract.DayClosedV1{
		Day: day.String(), Scheduled: scheduled, PaidAccounts: paidAccounts, TotalPaid: totalPaid, ClosedAt: t,
	})
}

func accountCreated(tb testing.TB, id uuid.UUID, role identity.Role, t time.Time) event.Envelope {
	return envelope(tb, "auth", contract.AccountCreated, 1, t, contract.Account{
		AccountID: id.String(), Username: "popug-" + id.String()[:8], Email: id.String()[:8] + "@uberpopug.com",
		FullName: "Popug " + id.String()[:8], Role: string(role), Active: true, Version: 1, ChangedAt: t,
	})
}
