package main

import (
	"context"
	"io"
	"iter"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/accountingdb"
	"github.com/uberpopug/ates/ent/analyticsdb"
	"github.com/uberpopug/ates/services/accounting"
	"github.com/uberpopug/ates/services/analytics"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// R-ACC-6, R-AN-2, R-AN-4: accounting's managementEarnings, read from its company days, and
// analytics' management earnings, built only from the events accounting published into its
// own store, agree on every day of a week of work: assignments and completions on every day
// (some applied event by event, some in batches), closes that pay out in between (payouts
// change neither), business days in Tokyo, so a UTC date is not a business day.
func TestManagementEarningsAgreeWithAnalytics(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, accDB *storage.DB) {
		ctx := context.Background()
		anDB := storagetest.MustOpen(t, accDB.Dialect)
		for name, db := range map[string]*storage.DB{"accounting": accDB, "analytics": anDB} {
			if err := migrate(ctx, name, db); err != nil {
				t.Fatal(err)
			}
		}
		loc, err := time.LoadLocation("Asia/Tokyo")
		if err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		start := time.Date(2026, 11, 2, 3, 0, 0, 0, time.UTC)
		now := start
		clock := func() time.Time { return now }
		w, err := outbox.NewWriter(accDB.Dialect, event.MustDefaultRegistry())
		if err != nil {
			t.Fatal(err)
		}
		accClient := accountingdb.NewClient(accountingdb.Driver(accDB.Driver()))
		acc, err := accounting.New(accounting.Config{
			Client: accClient, DB: accDB.SQL, Dialect: accDB.Dialect, Outbox: w, Clock: clock,
			Rand: rand.New(rand.NewPCG(1, 2)), Location: loc, Logger: log,
		})
		if err != nil {
			t.Fatal(err)
		}

		r := rand.New(rand.NewPCG(3, 4))
		newEvent := func(name string, data any) event.Envelope {
			e, err := event.New(ctx, "tasks", name, 1, now, data)
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		popugs := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New()}
		var published []event.Envelope // the tracker's events, as analytics would also get them
		apply := func(es []event.Envelope) {
			t.Helper()
			published = append(published, es...)
			err := storage.InTx(ctx, accClient.Tx, func(tx *accountingdb.Tx) error {
				if len(es) > 1 {
					return acc.ApplyBatch(ctx, tx, es)
				}
				return acc.Apply(ctx, tx, es[0])
			})
			if err != nil {
				t.Fatalf("applying %d events: %v", len(es), err)
			}
		}
		admin := identity.Actor{AccountID: uuid.New(), Role: identity.Admin}
		type open struct{ task, assignee uuid.UUID }
		var tasks []open
		for range 7 * 12 { // a week, every two hours
			now = now.Add(2*time.Hour + time.Duration(r.IntN(60))*time.Minute)
			var es []event.Envelope
			for range 1 + r.IntN(6) {
				if len(tasks) == 0 || r.IntN(3) > 0 {
					o := open{uuid.New(), popugs[r.IntN(len(popugs))]}
					tasks = append(tasks, o)
					es = append(es, newEvent(contract.TaskAssigned, contract.TaskAssignedV1{
						TaskID: o.task.String(), AssigneeID: o.assignee.String(), Reason: contract.AssignedOnShuffle, AssignedAt: now,
					}))
					continue
				}
				k := r.IntN(len(tasks))
				es = append(es, newEvent(contract.TaskCompleted, contract.TaskCompletedV1{
					TaskID: tasks[k].task.String(), AssigneeID: tasks[k].assignee.String(), CompletedAt: now,
				}))
				tasks = append(tasks[:k], tasks[k+1:]...)
			}
			if r.IntN(2) == 0 {
				apply(es)
			} else {
				for _, e := range es {
					apply([]event.Envelope{e})
				}
			}
			if r.IntN(8) == 0 {
				if _, err := acc.CloseNow(ctx, admin); err != nil {
					t.Fatal(err)
				}
			}
		}
		var payouts int
		if err := accDB.SQL.QueryRow(`SELECT COUNT(*) FROM entries WHERE type = 'PAYOUT'`).Scan(&payouts); err != nil {
			t.Fatal(err)
		}
		if payouts == 0 {
			t.Error("no payouts: the closes paid nobody")
		}

		an, err := analytics.New(analytics.Config{
			Client: analyticsdb.NewClient(analyticsdb.Driver(anDB.Driver())), Dialect: anDB.Dialect,
			Clock: clock, Location: loc, Logger: log,
		})
		if err != nil {
			t.Fatal(err)
		}
		tracker := func(yield func(event.Envelope, error) bool) {
			for _, e := range published {
				if !yield(e, nil) {
					return
				}
			}
		}
		if _, err := an.Rebuild(ctx, iter.Seq2[event.Envelope, error](tracker),
			analytics.OutboxEvents(ctx, accDB.SQL, accDB.Dialect, analytics.Topics)); err != nil {
			t.Fatal(err)
		}

		from, to := calendar.DateOf(start, loc).AddDays(-1), calendar.DateOf(now, loc)
		days, err := acc.ManagementEarnings(ctx, admin, from, to)
		if err != nil {
			t.Fatal(err)
		}
		nonzero := 0
		for _, d := range days {
			s, err := an.Summary(ctx, admin, &d.Date)
			if err != nil {
				t.Fatal(err)
			}
			if s.ManagementEarnings != d.Earnings {
				t.Errorf("%s: accounting says %v, analytics %v", d.Date, d.Earnings, s.ManagementEarnings)
			}
			if d.Earnings != 0 {
				nonzero++
			}
		}
		if nonzero < 6 {
			t.Errorf("only %d of %d days have earnings: the week was not played", nonzero, len(days))
		}
	})
}
