package accounting_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/accounting"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/money"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// TestEntryDayIsTheEventsDayInTheTimezone: R-ACC-7 — a FEE or REWARD entry belongs to the
// calendar date, in ATES_TIMEZONE, of the assignment or completion, even when accounting applies
// it a day later; the audit log by day, the company figures and "earned today" follow it.
func TestEntryDayIsTheEventsDayInTheTimezone(t *testing.T) {
	t.Parallel()
	var (
		a1 = time.Date(2026, 11, 22, 14, 30, 0, 0, time.UTC)  // Tokyo 23:30 on the 22nd
		c1 = time.Date(2026, 11, 22, 15, 0, 0, 0, time.UTC)   // Tokyo 00:00 on the 23rd
		a2 = time.Date(2026, 11, 22, 23, 30, 0, 0, time.UTC)  // Tokyo 08:30 on the 23rd
		c2 = time.Date(2026, 11, 23, 14, 59, 59, 0, time.UTC) // Tokyo 23:59:59 on the 23rd
		// Accounting hears of it all on the 24th, in both zones.
		appliedAt = time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	)
	tests := []struct {
		zone string
		days [4]string // of a1, c1, a2, c2
	}{
		{"UTC", [4]string{"2026-11-22", "2026-11-22", "2026-11-22", "2026-11-23"}},
		{"Asia/Tokyo", [4]string{"2026-11-22", "2026-11-23", "2026-11-23", "2026-11-23"}},
	}
	for _, tt := range tests {
		t.Run(tt.zone, func(t *testing.T) {
			t.Parallel()
			storagetest.Each(t, func(t *testing.T, db *storage.DB) {
				loc := mustLocation(t, tt.zone)
				h := MustService(t, db, inLocation(loc))
				ctx := context.Background()
				popug, t1, t2 := uuid.New(), uuid.New(), uuid.New()
				h.clock.Set(appliedAt)
				events := []struct {
					task uuid.UUID
					typ  string
					at   time.Time
				}{{t1, "FEE", a1}, {t1, "REWARD", c1}, {t2, "FEE", a2}, {t2, "REWARD", c2}}
				var ids []string
				for _, e := range events {
					ev := taskAssigned(t, e.task, popug, e.at)
					if e.typ == "REWARD" {
						ev = taskCompleted(t, e.task, popug, e.at)
					}
					ids = append(ids, ev.ID)
					h.deliver(t, ev)
				}
				l := h.mustConsistent(t)
				prices := h.mustPrices(t)
				byDay := map[string]money.Cents{}
				for i, e := range events {
					es := l.BySource(ids[i])
					if len(es) != 1 {
						t.Fatalf("event %d: %d entries", i, len(es))
					}
					if es[0].Day != tt.days[i] || !es[0].OccurredAt.Equal(e.at) {
						t.Errorf("%s at %v: day %s, occurred %v; want day %s in %s", e.typ, e.at, es[0].Day, es[0].OccurredAt, tt.days[i], tt.zone)
					}
					amount := prices[e.task].Reward
					if e.typ == "FEE" {
						amount = -prices[e.task].Fee
					}
					byDay[tt.days[i]] += amount
				}
				// balance.changed carries the same day (checked against the entry by mustConsistent).
				for i, r := range h.mustOutbox(t, contract.BalanceChanged) {
					if d := decode[contract.BalanceChangedV1](t, r.Envelope); d.Day != tt.days[i] {
						t.Errorf("balance.changed %d: day %s, want %s", i, d.Day, tt.days[i])
					}
				}

				admin := actor(identity.Admin)
				from, to := mustDate(t, "2026-11-21"), mustDate(t, "2026-11-24")
				days, err := h.svc.Days(ctx, admin, popug, from, to)
				if err != nil {
					t.Fatal(err)
				}
				company, err := h.svc.ManagementEarnings(ctx, admin, from, to)
				if err != nil {
					t.Fatal(err)
				}
				if len(days) != 4 || len(company) != 4 {
					t.Fatalf("Days = %+v, ManagementEarnings = %+v; want 4 days each", days, company)
				}
				for i := range 4 {
					d := from.AddDays(i)
					want := byDay[d.String()]
					if days[i] != (accounting.BillingDay{Date: d, Earned: want}) {
						t.Errorf("Days[%d] = %+v, want %s earned %v", i, days[i], d, want)
					}
					if company[i] != (accounting.CompanyDay{Date: d, Earnings: -want}) {
						t.Errorf("ManagementEarnings[%d] = %+v, want %s %v", i, company[i], d, -want)
					}
				}

				// "Today" is the clock's date in the zone: nothing was earned on the 24th …
				got, err := h.svc.Account(ctx, as(popug, identity.Worker), popug)
				if err != nil {
					t.Fatal(err)
				}
				if got.EarnedToday != 0 {
					t.Errorf("earned today (the 24th) = %v, want 0: entries belong to the events' days", got.EarnedToday)
				}
				// … while at noon UTC on the 23rd (21:00 in Tokyo) today is the 23rd in both.
				h.clock.Set(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
				got, err = h.svc.Account(ctx, as(popug, identity.Worker), popug)
				if err != nil {
					t.Fatal(err)
				}
				if want := byDay["2026-11-23"]; got.EarnedToday != want || got.Balance != byDay["2026-11-22"]+want {
					t.Errorf("on the 23rd: %+v, want earned today %v", got, want)
				}
				// The audit log of one day holds exactly that day's entries.
				day := mustDate(t, "2026-11-23")
				p, err := h.svc.Entries(ctx, admin, popug, &day, pageAll)
				if err != nil {
					t.Fatal(err)
				}
				var want []string
				for i := len(events) - 1; i >= 0; i-- {
					if tt.days[i] == "2026-11-23" {
						want = append(want, ids[i])
					}
				}
				var gotIDs []string
				for _, e := range p.Items {
					gotIDs = append(gotIDs, l.byEntryID(e.ID).Source)
					if e.Day != day {
						t.Errorf("entry of %s in the log of %s", e.Day, day)
					}
				}
				if !slices.Equal(gotIDs, want) || p.TotalCount != len(want) {
					t.Errorf("log of the 23rd: events %v (total %d), want %v", gotIDs, p.TotalCount, want)
				}
			})
		})
	}
}

// byEntryID finds an entry by its public id.
func (l ledger) byEntryID(id uuid.UUID) entryRow {
	for _, e := range l.Entries {
		if e.ID == id {
			return e
		}
	}
	return entryRow{}
}

// TestDayOfUsesTheConfiguredZoneAtMidnight: R-ACC-7 — the last second before midnight and
// midnight itself fall on different business days, in the configured zone.
func TestDayOfUsesTheConfiguredZoneAtMidnight(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		loc := mustLocation(t, "Asia/Tokyo")
		h := MustService(t, db, inLocation(loc))
		popug := uuid.New()
		before := time.Date(2026, 11, 22, 23, 59, 59, 0, loc)
		midnight := time.Date(2026, 11, 23, 0, 0, 0, 0, loc)
		e1, e2 := taskAssigned(t, uuid.New(), popug, before), taskAssigned(t, uuid.New(), popug, midnight)
		h.deliver(t, e2, e1)
		l := h.mustConsistent(t)
		if d := l.BySource(e1.ID)[0].Day; d != "2026-11-22" {
			t.Errorf("23:59:59 in Tokyo: day %s", d)
		}
		if d := l.BySource(e2.ID)[0].Day; d != "2026-11-23" {
			t.Errorf("midnight in Tokyo: day %s", d)
		}
	})
}

// TestEntryTimeMatchesItsEvent: R-ACC-3, R-ACC-7, R-ACC-10 — producers stamp events with
// nanoseconds (time.Now); the entry as stored and listed, its balance.changed event and its
// business day agree on the instant on both databases (PostgreSQL keeps microseconds), also a
// hair before midnight.
func TestEntryTimeMatchesItsEvent(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		popug := uuid.New()
		almostMidnight := time.Date(2026, 11, 22, 23, 59, 59, 999_999_600, time.UTC)
		precise := time.Date(2026, 11, 22, 12, 0, 0, 123_456_789, time.UTC)
		e1, e2 := taskAssigned(t, uuid.New(), popug, almostMidnight), taskAssigned(t, uuid.New(), popug, precise)
		h.deliver(t, e1, e2)
		l := h.mustConsistent(t) // balance.changed occurredAt = the stored entry's
		for _, e := range h.mustEntries(t, popug) {
			stored := l.byEntryID(e.ID)
			if !e.OccurredAt.Equal(stored.OccurredAt) || e.Day.String() != stored.Day {
				t.Errorf("listed %v on %s, stored %v on %s", e.OccurredAt, e.Day, stored.OccurredAt, stored.Day)
			}
			if calendar.DateOf(e.OccurredAt, h.loc) != e.Day {
				t.Errorf("entry occurred at %v but belongs to %s", e.OccurredAt, e.Day)
			}
		}
		if got := l.BySource(e1.ID)[0]; got.Day != "2026-11-22" || got.OccurredAt.Sub(almostMidnight).Abs() >= time.Microsecond {
			t.Errorf("a hair before midnight: %v on %s", got.OccurredAt, got.Day)
		}
		if got := l.BySource(e2.ID)[0]; got.OccurredAt.Sub(precise).Abs() >= time.Microsecond {
			t.Errorf("occurred at %v, want %v to the microsecond", got.OccurredAt, precise)
		}
	})
}
