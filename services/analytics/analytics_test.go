package analytics_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/analyticsdb"
	"github.com/uberpopug/ates/services/analytics"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/inbox"
	"github.com/uberpopug/ates/services/money"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

func TestNewRefusesMissingDependencies(t *testing.T) {
	t.Parallel()
	client := analyticsdb.NewClient()
	ok := analytics.Config{Client: client, Dialect: dialect.SQLite, Clock: time.Now, Location: time.UTC, Logger: slog.Default()}
	if _, err := analytics.New(ok); err != nil {
		t.Fatalf("New with every dependency: %v", err)
	}
	for name, mutate := range map[string]func(*analytics.Config){
		"client":   func(c *analytics.Config) { c.Client = nil },
		"dialect":  func(c *analytics.Config) { c.Dialect = "mysql" },
		"clock":    func(c *analytics.Config) { c.Clock = nil },
		"location": func(c *analytics.Config) { c.Location = nil },
		"logger":   func(c *analytics.Config) { c.Logger = nil },
	} {
		cfg := ok
		mutate(&cfg)
		if _, err := analytics.New(cfg); err == nil {
			t.Errorf("New without %s succeeded", name)
		}
	}
}

// TestScenarioInAnyOrder: R-AN-2, R-AN-3, R-AN-4 — the figures of a scenario of several weeks
// equal the ones computed from its ledger entries and tasks, whether its events arrive in the
// producers' order, in random orders or backwards, and when every event is applied twice.
func TestScenarioInAnyOrder(t *testing.T) {
	t.Parallel()
	sc := newTestScenario(t)
	qs := sc.queries(t)
	want := wanted(qs)
	reversed := sc.events()
	slices.Reverse(reversed)
	orders := []struct {
		name   string
		events []event.Envelope
		batch  bool // through ApplyBatch, as the consumer applies them, instead of Apply
	}{
		{"producer order", sc.events(), false},
		{"shuffled", sc.shuffled(1), false},
		{"shuffled again", sc.shuffled(2), false},
		{"backwards", reversed, false},
		{"everything twice", slices.Concat(sc.shuffled(3), sc.shuffled(4)), false},
		{"batches in producer order", sc.events(), true},
		{"batches shuffled", sc.shuffled(5), true},
		{"batches backwards", reversed, true},
		{"batches of everything twice", slices.Concat(sc.shuffled(6), sc.shuffled(7)), true},
	}
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		for i, o := range orders {
			t.Run(o.name, func(t *testing.T) {
				t.Parallel()
				odb := db
				if i > 0 {
					odb = storagetest.MustOpen(t, db.Dialect)
				}
				h := MustService(t, odb, sc.now)
				if o.batch {
					h.MustApplyBatches(t, 20, o.events...)
				} else {
					h.MustApplyInBatches(t, 20, o.events...)
				}
				diff(t, o.name, snapshot(t, h.svc, qs), want)
			})
		}
	})
}

// ledger builds an account's entries as accounting posts them: the balance after each and a
// sequence growing with every entry of the ledger.
type ledger struct {
	tb      testing.TB
	seq     int64
	balance map[uuid.UUID]int64
}

func newLedger(tb testing.TB) *ledger { return &ledger{tb: tb, balance: map[uuid.UUID]int64{}} }

func (l *ledger) post(account uuid.UUID, typ string, amount int64, t time.Time) event.Envelope {
	l.seq++
	l.balance[account] += amount
	return balanceChanged(l.tb, contract.BalanceChangedV1{
		EntryID: uuid.NewString(), Sequence: l.seq, AccountID: account.String(), Type: typ, Amount: amount,
		BalanceAfter: l.balance[account], Description: typ, OccurredAt: t, Day: calendar.DateOf(t, loc).String(),
	})
}

// payout posts the close of the day before t's day: the whole positive balance, dated that day.
func (l *ledger) payout(account uuid.UUID, t time.Time) event.Envelope {
	l.seq++
	amount := -l.balance[account]
	l.balance[account] = 0
	return balanceChanged(l.tb, contract.BalanceChangedV1{
		EntryID: uuid.NewString(), Sequence: l.seq, AccountID: account.String(), Type: contract.EntryPayout, Amount: amount,
		Description: "Payout", OccurredAt: t, Day: calendar.DateOf(t, loc).AddDays(-1).String(),
	})
}

// TestNegativeBalancesNowAndAtTheEndOfPastDays: R-AN-2 — today counts balances now; a past day
// counts balances at its end: an account negative at the end of yesterday but positive now
// counts for yesterday only, one in the red since three days ago counts for every day since,
// and a day's payout brings its closing balance to zero. Entries arrive in reverse order.
func TestNegativeBalancesNowAndAtTheEndOfPastDays(t *testing.T) {
	t.Parallel()
	today := date(t, "2026-03-10")
	d1, d2, d3 := today.AddDays(-1), today.AddDays(-2), today.AddDays(-3)
	a, b, c, d := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	l := newLedger(t)
	events := []event.Envelope{
		l.post(c, contract.EntryFee, -1200, at(d3, 10, 0)), // c: in the red since d3, never again an entry
		l.post(b, contract.EntryReward, 2000, at(d2, 11, 0)),
		l.post(b, contract.EntryFee, -500, at(d2, 23, 30)), // b: +15.00 at the end of d2, paid out
		l.payout(b, at(d1, 0, 0).Add(time.Minute)),         // … at the close of d2, after midnight
		l.post(a, contract.EntryFee, -1500, at(d1, 9, 0)),  // a: −15.00 at the end of d1
		l.post(d, contract.EntryReward, 4000, at(d1, 9, 30)),
		l.post(d, contract.EntryFee, -1000, at(d1, 22, 0)), // d: +30.00 at the end of d1 (no close yet)
		l.post(a, contract.EntryReward, 3000, at(today, 1, 0)),
		l.post(b, contract.EntryFee, -1000, at(today, 2, 0)), // b: −10.00 now
	}
	slices.Reverse(events)
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db, at(today, 15, 0))
		h.MustApply(t, events...)
		for _, tt := range []struct {
			day      calendar.Date
			negative int
			earnings money.Cents
		}{
			{d3.AddDays(-1), 0, 0},
			{d3, 1, 1200},               // c
			{d2, 1, 500 - 2000},         // c; b is +15.00 before and 0.00 after its payout
			{d1, 2, 1500 - 4000 + 1000}, // a, c
			{today, 2, -3000 + 1000},    // b, c: a is positive now
		} {
			got, err := h.svc.Summary(context.Background(), admin, &tt.day)
			if err != nil {
				t.Fatal(err)
			}
			want := analytics.Summary{Date: tt.day, ManagementEarnings: tt.earnings, NegativeBalanceCount: tt.negative}
			if got != want {
				t.Errorf("Summary(%s) = %+v, want %+v", tt.day, got, want)
			}
		}
		got, err := h.svc.Summary(context.Background(), admin, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := (analytics.Summary{Date: today, ManagementEarnings: -2000, NegativeBalanceCount: 2}); got != want {
			t.Errorf("Summary(default) = %+v, want today's %+v", got, want)
		}
		// Just after midnight yesterday's figures become a past day's, computed at its end.
		h.clock.Set(at(today.AddDays(1), 0, 5))
		got, err = h.svc.Summary(context.Background(), admin, &today)
		if err != nil {
			t.Fatal(err)
		}
		if got.NegativeBalanceCount != 2 {
			t.Errorf("Summary(%s) the next day counts %d negative balances, want 2", today, got.NegativeBalanceCount)
		}
	})
}

// TestBalanceChangedOutOfOrder: R-AN-2 — the balance follows the ledger's sequence, not the
// arrival order nor occurredAt: entries of one account arriving in every order leave the same
// balances now and at the end of each day; a redelivered entry changes nothing.
func TestBalanceChangedOutOfOrder(t *testing.T) {
	t.Parallel()
	today := date(t, "2026-05-02")
	yesterday := today.AddDays(-1)
	a := uuid.New()
	l := newLedger(t)
	entries := []event.Envelope{
		l.post(a, contract.EntryFee, -1500, at(yesterday, 10, 0)),   // −15
		l.post(a, contract.EntryReward, 3000, at(yesterday, 11, 0)), // +15
		l.post(a, contract.EntryFee, -2000, at(yesterday, 11, 0)),   // −5 at the end of yesterday, same occurredAt
		l.post(a, contract.EntryReward, 2500, at(today, 9, 0)),      // +20
		l.post(a, contract.EntryFee, -2600, at(today, 10, 0)),       // −6 now
	}
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db, at(today, 12, 0))
		perms := permutations(len(entries))
		for i, p := range perms {
			if i%5 != 0 && i != len(perms)-1 { // a spread of the 120 orders keeps the test quick
				continue
			}
			if err := h.svc.Reset(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, j := range p {
				h.MustApply(t, entries[j])
			}
			h.MustApply(t, entries[p[0]]) // a redelivery
			for _, tt := range []struct {
				day      calendar.Date
				negative int
			}{{yesterday, 1}, {today, 1}} {
				got, err := h.svc.Summary(context.Background(), admin, &tt.day)
				if err != nil {
					t.Fatal(err)
				}
				if got.NegativeBalanceCount != tt.negative {
					t.Fatalf("order %v: Summary(%s) counts %d negative balances, want %d", p, tt.day, got.NegativeBalanceCount, tt.negative)
				}
			}
			got, err := h.svc.Summary(context.Background(), admin, &yesterday)
			if err != nil {
				t.Fatal(err)
			}
			if got.ManagementEarnings != 500 {
				t.Fatalf("order %v: yesterday's earnings %s, want 5.00", p, got.ManagementEarnings)
			}
		}
	})
	// The last entry of today alone decides "now": were it positive, nobody would count.
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db, at(today, 12, 0))
		l := newLedger(t)
		first := l.post(a, contract.EntryFee, -1000, at(today, 9, 0))
		second := l.post(a, contract.EntryReward, 3000, at(today, 9, 0))
		h.MustApply(t, second, first)
		got, err := h.svc.Summary(context.Background(), admin, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.NegativeBalanceCount != 0 {
			t.Fatalf("an older entry arriving last moved the balance back: %d negative", got.NegativeBalanceCount)
		}
	})
}

// permutations returns every order of 0..n-1.
func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := slices.Insert(slices.Clone(p), i, n-1)
			out = append(out, q)
		}
	}
	return out
}

// TestMostExpensive: R-AN-3 — the highest reward among tasks completed in the range, ties to
// the earliest completion then to the smallest id; a task needs both its completion and its
// price, which come in any order, and its details arrive whenever they do (a v1 title's Jira
// id split out); the completion day is the business day of ATES_TIMEZONE.
func TestMostExpensive(t *testing.T) {
	t.Parallel()
	day1, day2, day3 := date(t, "2026-01-02"), date(t, "2026-01-03"), date(t, "2026-01-04")
	p, q := uuid.New(), uuid.New()
	low := uuid.MustParse("00000000-0000-4000-8000-000000000001")
	high := uuid.MustParse("ffffffff-0000-4000-8000-000000000001")
	late, early, unpriced, open, tz := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
	created := at(day1, 8, 0)
	var events []event.Envelope
	add := func(id uuid.UUID, title string, reward int64, who uuid.UUID, done time.Time) {
		// Completion first, then the price, then (for some) the creation.
		events = append(events, taskCompleted(t, id, who, done), taskPriced(t, id, 1000, reward, created))
		events = append(events, taskCreatedV2(t, id, title, nil, "about "+title, created))
	}
	add(late, "late", 4000, p, at(day1, 15, 0))
	add(early, "early", 4000, q, at(day1, 14, 59)) // same reward, a minute earlier: wins day1
	events = append(events, taskCompleted(t, high, p, at(day2, 10, 0)), taskPriced(t, high, 1000, 3900, created))
	events = append(events, taskPriced(t, low, 1000, 3900, created), taskCreatedV1(t, low, "[UBERPOP-7] - low id", "d", created),
		taskCompleted(t, low, q, at(day2, 10, 0))) // same reward and instant as high: the smaller id wins day2
	events = append(events, taskCompleted(t, unpriced, p, at(day2, 9, 0)))                          // never priced: not a candidate
	events = append(events, taskPriced(t, open, 1000, 4000, created))                               // never completed: not a candidate
	events = append(events, taskCompleted(t, tz, p, time.Date(2026, 1, 3, 22, 30, 0, 0, time.UTC)), // 01:30 on the 4th in UTC+3
		taskPriced(t, tz, 1000, 2500, created))
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db, at(day3, 23, 0))
		h.MustApply(t, events...)
		ctx := context.Background()
		for _, tt := range []struct {
			from, to calendar.Date
			want     *analytics.ExpensiveTask
		}{
			{day1, day1, &analytics.ExpensiveTask{TaskID: early, Title: "early", Description: "about early", Reward: 4000, CompletedAt: at(day1, 14, 59), AssigneeID: q}},
			{day1, day3, &analytics.ExpensiveTask{TaskID: early, Title: "early", Description: "about early", Reward: 4000, CompletedAt: at(day1, 14, 59), AssigneeID: q}},
			{day2, day2, &analytics.ExpensiveTask{TaskID: low, Title: "low id", JiraID: strp("UBERPOP-7"), Description: "d", Reward: 3900, CompletedAt: at(day2, 10, 0), AssigneeID: q}},
			{day2, day3, &analytics.ExpensiveTask{TaskID: low, Title: "low id", JiraID: strp("UBERPOP-7"), Description: "d", Reward: 3900, CompletedAt: at(day2, 10, 0), AssigneeID: q}},
			{day3, day3, &analytics.ExpensiveTask{TaskID: tz, Reward: 2500, CompletedAt: time.Date(2026, 1, 3, 22, 30, 0, 0, time.UTC), AssigneeID: p}},
			{day3.AddDays(1), day3.AddDays(30), nil},
			{day1.AddDays(-1), day1.AddDays(-1), nil},
		} {
			got, err := h.svc.MostExpensive(ctx, admin, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := show(got), show(analytics.Bucket{From: tt.from, To: tt.to, Top: tt.want}); g != w {
				t.Errorf("MostExpensive(%s, %s):\n got  %s\n want %s", tt.from, tt.to, g, w)
			}
		}
		// The descriptions of a later task.updated are not overwritten by an earlier
		// task.created that arrives after it.
		done := at(day1, 14, 59)
		h.MustApply(t, taskUpdated(t, early, "early (renamed)", strp("UBERPOP-1"), "new", created, &done),
			taskCreatedV2(t, early, "early", nil, "about early", created))
		got, err := h.svc.MostExpensive(ctx, admin, day1, day1)
		if err != nil {
			t.Fatal(err)
		}
		if got.Top == nil || got.Top.Title != "early (renamed)" || got.Top.Description != "new" || got.Top.JiraID == nil || *got.Top.JiraID != "UBERPOP-1" {
			t.Fatalf("after task.updated then a late task.created: %s", show(got))
		}
	})
}

// TestTaskUpdatedCompletes: R-AN-3 — a task.updated with status DONE is a completion too (the
// same instant as task.completed), so a task whose task.completed is late still counts; the
// assignee follows with task.completed.
func TestTaskUpdatedCompletes(t *testing.T) {
	t.Parallel()
	day := date(t, "2026-02-02")
	id, who := uuid.New(), uuid.New()
	created, done := at(day, 9, 0), at(day, 10, 0)
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db, at(day, 23, 0))
		h.MustApply(t, taskPriced(t, id, 1000, 3000, created), taskUpdated(t, id, "t", nil, "d", created, &done))
		got, err := h.svc.MostExpensive(context.Background(), admin, day, day)
		if err != nil {
			t.Fatal(err)
		}
		if got.Top == nil || got.Top.TaskID != id || got.Top.AssigneeID != uuid.Nil || !got.Top.CompletedAt.Equal(done) {
			t.Fatalf("after task.updated (DONE): %s", show(got))
		}
		h.MustApply(t, taskCompleted(t, id, who, done))
		if got, err = h.svc.MostExpensive(context.Background(), admin, day, day); err != nil {
			t.Fatal(err)
		}
		if got.Top == nil || got.Top.AssigneeID != who {
			t.Fatalf("after task.completed: %s", show(got))
		}
	})
}

// TestSeriesBuckets: R-AN-3 — one bucket per day, ISO week or calendar month touching the
// range, oldest first, each covering its whole period, empty ones with no top; weeks and
// months across a year end.
func TestSeriesBuckets(t *testing.T) {
	t.Parallel()
	// One task per listed completion day; its reward grows with the day, so a bucket's top is
	// its latest task.
	completions := []string{"2025-12-14", "2025-12-15", "2025-12-31", "2026-01-01", "2026-01-04", "2026-01-05", "2026-02-28", "2026-03-01"}
	ids := map[string]uuid.UUID{}
	var events []event.Envelope
	for i, s := range completions {
		id := uuid.New()
		ids[s] = id
		d := date(t, s)
		events = append(events, taskCompleted(t, id, admin.AccountID, at(d, 12, 0)), taskPriced(t, id, 1000, int64(2000+100*i), at(d, 9, 0)))
	}
	type bucket struct{ from, to, top string }
	tests := []struct {
		from, to string
		period   analytics.Period
		want     []bucket
	}{
		{"2025-12-29", "2026-01-04", analytics.Week, []bucket{{"2025-12-29", "2026-01-04", "2026-01-04"}}},
		{"2025-12-31", "2026-01-01", analytics.Week, []bucket{{"2025-12-29", "2026-01-04", "2026-01-04"}}},
		{"2025-12-14", "2025-12-29", analytics.Week, []bucket{
			{"2025-12-08", "2025-12-14", "2025-12-14"}, {"2025-12-15", "2025-12-21", "2025-12-15"},
			{"2025-12-22", "2025-12-28", ""}, {"2025-12-29", "2026-01-04", "2026-01-04"},
		}},
		{"2025-12-15", "2026-02-10", analytics.Month, []bucket{
			{"2025-12-01", "2025-12-31", "2025-12-31"}, {"2026-01-01", "2026-01-31", "2026-01-05"}, {"2026-02-01", "2026-02-28", "2026-02-28"},
		}},
		{"2026-01-15", "2026-03-02", analytics.Month, []bucket{
			{"2026-01-01", "2026-01-31", "2026-01-05"}, {"2026-02-01", "2026-02-28", "2026-02-28"}, {"2026-03-01", "2026-03-31", "2026-03-01"},
		}},
		{"2025-11-30", "2025-11-30", analytics.Month, []bucket{{"2025-11-01", "2025-11-30", ""}}},
		{"2025-12-30", "2026-01-02", analytics.Day, []bucket{
			{"2025-12-30", "2025-12-30", ""}, {"2025-12-31", "2025-12-31", "2025-12-31"},
			{"2026-01-01", "2026-01-01", "2026-01-01"}, {"2026-01-02", "2026-01-02", ""},
		}},
	}
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db, at(date(t, "2026-03-31"), 12, 0))
		h.MustApply(t, events...)
		for _, tt := range tests {
			got, err := h.svc.MostExpensiveSeries(context.Background(), admin, date(t, tt.from), date(t, tt.to), tt.period)
			if err != nil {
				t.Fatalf("%s..%s by %s: %v", tt.from, tt.to, tt.period, err)
			}
			var gotB []bucket
			for _, b := range got {
				top := ""
				if b.Top != nil {
					for s, id := range ids {
						if id == b.Top.TaskID {
							top = s
						}
					}
				}
				gotB = append(gotB, bucket{b.From.String(), b.To.String(), top})
			}
			if !slices.Equal(gotB, tt.want) {
				t.Errorf("%s..%s by %s:\n got  %v\n want %v", tt.from, tt.to, tt.period, gotB, tt.want)
			}
		}
	})
}

// TestRangeLimits: R-API-6 — ranges are bounded and well-formed, else BAD_USER_INPUT.
func TestRangeLimits(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db, at(date(t, "2026-06-01"), 12, 0))
		ctx := context.Background()
		d := func(s string) calendar.Date { return date(t, s) }
		series := func(from, to string, p analytics.Period) error {
			_, err := h.svc.MostExpensiveSeries(ctx, admin, d(from), d(to), p)
			return err
		}
		one := func(from, to string) error {
			_, err := h.svc.MostExpensive(ctx, admin, d(from), d(to))
			return err
		}
		for _, tt := range []struct {
			name    string
			err     error
			invalid bool
		}{
			{"DAY, 400 days", series("2025-01-01", "2026-02-04", analytics.Day), false},
			{"DAY, 401 days", series("2025-01-01", "2026-02-05", analytics.Day), true},
			{"MONTH, 5 years", series("2021-01-15", "2026-01-14", analytics.Month), false},
			{"MONTH, 5 years and a day", series("2021-01-15", "2026-01-15", analytics.Month), true},
			{"WEEK, 5 years", series("2021-01-15", "2026-01-14", analytics.Week), false},
			{"WEEK, more", series("2020-01-15", "2026-01-14", analytics.Week), true},
			{"unknown period", series("2026-01-01", "2026-01-02", analytics.Period("YEAR")), true},
			{"series ending before it starts", series("2026-01-02", "2026-01-01", analytics.Day), true},
			{"range of 5 years", one("2021-01-01", "2025-12-31"), false},
			{"range of more", one("2021-01-01", "2026-01-01"), true},
			{"range ending before it starts", one("2026-01-02", "2026-01-01"), true},
			{"zero from", func() error { _, err := h.svc.MostExpensive(ctx, admin, calendar.Date{}, d("2026-01-01")); return err }(), true},
		} {
			if tt.invalid && !errs.Is(tt.err, errs.Invalid) {
				t.Errorf("%s: error %v, want BAD_USER_INPUT", tt.name, tt.err)
			}
			if !tt.invalid && tt.err != nil {
				t.Errorf("%s: %v", tt.name, tt.err)
			}
		}
		got, err := h.svc.MostExpensiveSeries(ctx, admin, d("2025-01-01"), d("2026-02-04"), analytics.Day)
		if err != nil || len(got) != 400 {
			t.Fatalf("400 days by DAY: %d buckets, %v", len(got), err)
		}
	})
}

// TestSummaryRefusesTheFuture: a day after today (in the business timezone) has no figures.
func TestSummaryRefusesTheFuture(t *testing.T) {
	t.Parallel()
	db := storagetest.MustOpen(t, dialect.SQLite)
	// 22:00 UTC on March 1 is already March 2 in UTC+3.
	h := MustService(t, db, time.Date(2026, 3, 1, 22, 0, 0, 0, time.UTC))
	ctx := context.Background()
	got, err := h.svc.Summary(ctx, admin, nil)
	if err != nil || got.Date != date(t, "2026-03-02") {
		t.Fatalf("Summary(today) = %+v, %v; want 2026-03-02", got, err)
	}
	tomorrow := date(t, "2026-03-03")
	if _, err := h.svc.Summary(ctx, admin, &tomorrow); !errs.Is(err, errs.Invalid) {
		t.Fatalf("Summary(tomorrow): %v, want BAD_USER_INPUT", err)
	}
	if _, err := h.svc.Summary(ctx, admin, &calendar.Date{}); !errs.Is(err, errs.Invalid) {
		t.Fatalf("Summary(zero date): %v, want BAD_USER_INPUT", err)
	}
}

// TestAdminOnly: R-AN-1 — every query is for admins; others are FORBIDDEN, a request with no
// account UNAUTHENTICATED.
func TestAdminOnly(t *testing.T) {
	t.Parallel()
	h := MustService(t, storagetest.MustOpen(t, dialect.SQLite), at(date(t, "2026-03-01"), 12, 0))
	ctx := context.Background()
	from, to := date(t, "2026-02-01"), date(t, "2026-02-28")
	calls := map[string]func(identity.Actor) error{
		"Summary": func(a identity.Actor) error { _, err := h.svc.Summary(ctx, a, nil); return err },
		"MostExpensive": func(a identity.Actor) error {
			_, err := h.svc.MostExpensive(ctx, a, from, to)
			return err
		},
		"MostExpensiveSeries": func(a identity.Actor) error {
			_, err := h.svc.MostExpensiveSeries(ctx, a, from, to, analytics.Week)
			return err
		},
		// Even an invalid request says who may ask before what is wrong with it.
		"MostExpensiveSeries (invalid)": func(a identity.Actor) error {
			_, err := h.svc.MostExpensiveSeries(ctx, a, to, from, "YEAR")
			return err
		},
	}
	for name, call := range calls {
		for _, tt := range []struct {
			actor identity.Actor
			want  errs.Code
		}{
			{identity.Actor{}, errs.Unauthenticated},
			{identity.Actor{Role: identity.Admin}, errs.Unauthenticated},
			{manager, errs.Forbidden},
			{accountant, errs.Forbidden},
			{worker, errs.Forbidden},
		} {
			if err := call(tt.actor); errs.CodeOf(err) != tt.want {
				t.Errorf("%s as %q: %v, want %s", name, tt.actor.Role, err, tt.want)
			}
		}
		if name != "MostExpensiveSeries (invalid)" {
			if err := call(admin); err != nil {
				t.Errorf("%s as ADMIN: %v", name, err)
			}
		}
	}
}

// TestDayClosed: a scheduled close of a day marks the day's summary closed; a manual close or
// the same event twice does not change more.
func TestDayClosed(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		day := date(t, "2026-04-01")
		h := MustService(t, db, at(day.AddDays(2), 12, 0))
		manual := dayClosed(t, day.AddDays(1), false, 3, 9000, at(day.AddDays(1), 16, 0))
		scheduled := dayClosed(t, day, true, 2, 5000, at(day.AddDays(1), 0, 1))
		h.MustApply(t, manual, scheduled, scheduled)
		for d, want := range map[calendar.Date]bool{day: true, day.AddDays(1): false} {
			got, err := h.svc.Summary(context.Background(), admin, &d)
			if err != nil {
				t.Fatal(err)
			}
			if got.Closed != want {
				t.Errorf("Summary(%s).Closed = %v, want %v", d, got.Closed, want)
			}
		}
		n, err := h.client.DayClose.Query().Count(context.Background())
		if err != nil || n != 2 {
			t.Fatalf("%d closes recorded (%v), want 2", n, err)
		}
	})
}

// TestApplyRefusesWhatItCannotApply: events that can never be applied are permanent failures
// (the inbox dead-letters them at once, R-EVT-2); events analytics does not use are ignored.
func TestApplyRefusesWhatItCannotApply(t *testing.T) {
	t.Parallel()
	h := MustService(t, storagetest.MustOpen(t, dialect.SQLite), at(date(t, "2026-03-01"), 12, 0))
	now := at(date(t, "2026-03-01"), 9, 0)
	badType := balanceChanged(t, contract.BalanceChangedV1{EntryID: uuid.NewString(), Sequence: 1, AccountID: uuid.NewString(),
		Type: contract.EntryFee, Amount: -100, BalanceAfter: -100, OccurredAt: now, Day: "2026-03-01"})
	badType.Data = []byte(`{"entryId":"` + uuid.NewString() + `","sequence":1,"accountId":"` + uuid.NewString() +
		`","type":"BONUS","amount":1,"balanceAfter":1,"taskId":null,"description":"","occurredAt":"2026-03-01T09:00:00Z","day":"2026-03-01"}`)
	noSequence := balanceChanged(t, contract.BalanceChangedV1{EntryID: uuid.NewString(), Sequence: 1, AccountID: uuid.NewString(),
		Type: contract.EntryFee, Amount: -100, BalanceAfter: -100, OccurredAt: now, Day: "2026-03-01"})
	noSequence.Data = []byte(`{"entryId":"` + uuid.NewString() + `","accountId":"` + uuid.NewString() +
		`","type":"FEE","amount":-1,"balanceAfter":-1,"taskId":null,"description":"","occurredAt":"2026-03-01T09:00:00Z","day":"2026-03-01"}`)
	v2 := taskPriced(t, uuid.New(), 1000, 2000, now)
	v2.Version = 2
	garbled := taskCompleted(t, uuid.New(), uuid.New(), now)
	garbled.Data = []byte(`{"taskId":"not-a-uuid","assigneeId":"x","completedAt":"2026-03-01T09:00:00Z"}`)
	apply := func(e event.Envelope) error {
		return storage.InTx(context.Background(), h.client.Tx, func(tx *analyticsdb.Tx) error {
			return h.svc.Apply(context.Background(), tx, e)
		})
	}
	for name, e := range map[string]event.Envelope{"unknown entry type": badType, "no sequence": noSequence, "unknown version": v2, "not a uuid": garbled} {
		if err := apply(e); !inbox.IsPermanent(err) {
			t.Errorf("%s: %v, want a permanent error", name, err)
		}
	}
	for _, e := range []event.Envelope{accountCreated(t, uuid.New(), identity.Worker, now), taskAssigned(t, uuid.New(), uuid.New(), contract.AssignedOnCreate, now)} {
		if err := apply(e); err != nil {
			t.Errorf("%s: %v, want it ignored", e.Name, err)
		}
	}
}
