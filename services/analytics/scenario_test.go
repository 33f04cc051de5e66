package analytics_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/analytics"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/money"
)

// scenario is a few weeks of aTES, produced the way tasks and accounting produce events: tasks
// created, assigned, shuffled and completed; accounting pricing them, posting fees, rewards and
// the payouts of every day's close, with the ledger's sequence and balances. Its expected
// figures are computed from its ledger entries and tasks, independently of the service.
type scenario struct {
	first, today calendar.Date
	// now is the clock of the queries: the end of today.
	now      time.Time
	accounts []uuid.UUID
	// The producers' outboxes, each in commit order.
	authEvents, tasksEvents, accountingEvents []event.Envelope
	// entries is the ledger in the order accounting applied it.
	entries []contract.BalanceChangedV1
	tasks   map[uuid.UUID]*scenarioTask
}

type scenarioTask struct {
	id          uuid.UUID
	title       string
	jira        *string
	description string
	reward      int64
	assignee    uuid.UUID
	completedAt *time.Time
}

// quietWeek has no task activity at all: an empty ISO week.
var quietWeek = [2]string{"2025-12-15", "2025-12-21"}

// newScenario generates the scenario from first to today (inclusive) with a seeded random source.
func newScenario(tb testing.TB, seed uint64, first, today calendar.Date) *scenario {
	tb.Helper()
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	sc := &scenario{first: first, today: today, now: at(today, 23, 59).Add(59 * time.Second), tasks: map[uuid.UUID]*scenarioTask{}}
	for range 6 {
		id := uuid.New()
		sc.accounts = append(sc.accounts, id)
		sc.authEvents = append(sc.authEvents, accountCreated(tb, id, identity.Worker, first.Start(loc).Add(-time.Hour)))
	}
	balance := map[uuid.UUID]int64{}
	var seq int64
	post := func(account uuid.UUID, typ string, amount int64, task *uuid.UUID, t time.Time, day calendar.Date) {
		seq++
		balance[account] += amount
		var tid *string
		if task != nil {
			s := task.String()
			tid = &s
		}
		d := contract.BalanceChangedV1{
			EntryID: uuid.NewString(), Sequence: seq, AccountID: account.String(), Type: typ, Amount: amount,
			BalanceAfter: balance[account], TaskID: tid, Description: typ, OccurredAt: t, Day: day.String(),
		}
		sc.entries = append(sc.entries, d)
		sc.accountingEvents = append(sc.accountingEvents, balanceChanged(tb, d))
	}
	fees := map[uuid.UUID]int64{}
	var open []uuid.UUID
	n := 0
	for d := first; !today.Before(d); d = d.AddDays(1) {
		quiet := !d.Before(date(tb, quietWeek[0])) && !date(tb, quietWeek[1]).Before(d)
		complete := func(from, to int) { // some open tasks are completed between the hours
			var still []uuid.UUID
			for _, id := range open {
				if r.IntN(2) == 0 {
					still = append(still, id)
					continue
				}
				t := sc.tasks[id]
				c := at(d, from, 0).Add(time.Duration(r.IntN((to-from)*3600)) * time.Second).Add(time.Duration(r.IntN(1000)) * time.Microsecond)
				t.completedAt = &c
				sc.tasksEvents = append(sc.tasksEvents, taskCompleted(tb, id, t.assignee, c), taskUpdated(tb, id, t.title, t.jira, t.description, first.Start(loc), &c))
				post(t.assignee, contract.EntryReward, t.reward, &id, c, d)
			}
			open = still
		}
		if !quiet {
			// Completions just after midnight: the previous UTC day, this business day.
			complete(0, 2)
			for range 2 + r.IntN(4) {
				n++
				id := uuid.New()
				t := &scenarioTask{id: id, title: fmt.Sprintf("Task %d", n), description: fmt.Sprintf("Do thing %d", n), assignee: sc.accounts[r.IntN(len(sc.accounts))]}
				created := at(d, 9+r.IntN(3), r.IntN(60))
				if n%4 == 0 { // an old producer's v1 event, Jira id inside the title
					sc.tasksEvents = append(sc.tasksEvents, taskCreatedV1(tb, id, fmt.Sprintf("[UBERPOP-%d] - %s", n, t.title), t.description, created))
					t.jira = strp(fmt.Sprintf("UBERPOP-%d", n))
				} else {
					if n%3 == 0 {
						t.jira = strp(fmt.Sprintf("POPUG-%d", n))
					}
					sc.tasksEvents = append(sc.tasksEvents, taskCreatedV2(tb, id, t.title, t.jira, t.description, created))
				}
				sc.tasksEvents = append(sc.tasksEvents, taskAssigned(tb, id, t.assignee, contract.AssignedOnCreate, created))
				fees[id] = -int64(10+r.IntN(11)) * 100
				t.reward = int64(20+r.IntN(21)) * 100
				sc.tasks[id] = t
				sc.accountingEvents = append(sc.accountingEvents, taskPriced(tb, id, -fees[id], t.reward, created))
				post(t.assignee, contract.EntryFee, fees[id], &id, created, d)
				open = append(open, id)
			}
			if r.IntN(3) == 0 { // a shuffle at noon
				for _, id := range open {
					t := sc.tasks[id]
					t.assignee = sc.accounts[r.IntN(len(sc.accounts))]
					sc.tasksEvents = append(sc.tasksEvents, taskAssigned(tb, id, t.assignee, contract.AssignedOnShuffle, at(d, 12, 0)))
					post(t.assignee, contract.EntryFee, fees[id], &id, at(d, 12, 0), d)
				}
			}
			complete(13, 24)
		}
		if d == today {
			break
		}
		// The close of d, just after midnight: positive balances are paid out, dated d.
		closeAt := at(d.AddDays(1), 0, 0).Add(10 * time.Second)
		paid, total := 0, int64(0)
		for _, a := range sc.accounts {
			if b := balance[a]; b > 0 {
				post(a, contract.EntryPayout, -b, nil, closeAt, d)
				paid, total = paid+1, total+b
			}
		}
		sc.accountingEvents = append(sc.accountingEvents, dayClosed(tb, d, true, paid, total, closeAt.Add(time.Second)))
	}
	return sc
}

// events returns every event the producers stored, one producer after the other.
func (sc *scenario) events() []event.Envelope {
	return slices.Concat(sc.authEvents, sc.tasksEvents, sc.accountingEvents)
}

// shuffled returns the events in a random order of the seed.
func (sc *scenario) shuffled(seed uint64) []event.Envelope {
	out := sc.events()
	r := rand.New(rand.NewPCG(seed, 7))
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// earnings is −(sum of the day's FEE and REWARD entries) (R-ACC-6).
func (sc *scenario) earnings(d calendar.Date) money.Cents {
	var sum int64
	for _, e := range sc.entries {
		if e.Day == d.String() && (e.Type == contract.EntryFee || e.Type == contract.EntryReward) {
			sum += e.Amount
		}
	}
	return money.Cents(-sum)
}

// negativeAtEndOf counts the accounts whose entries up to day d sum to less than zero; with
// last set, all entries (the balance now).
func (sc *scenario) negativeAtEndOf(d calendar.Date, all bool) int {
	sum := map[string]int64{}
	for _, e := range sc.entries {
		if all || e.Day <= d.String() {
			sum[e.AccountID] += e.Amount
		}
	}
	n := 0
	for _, s := range sum {
		if s < 0 {
			n++
		}
	}
	return n
}

// mostExpensive is the brute-force answer of R-AN-3 over the scenario's tasks.
func (sc *scenario) mostExpensive(from, to calendar.Date) *analytics.ExpensiveTask {
	var best *scenarioTask
	for _, t := range sc.tasks {
		if t.completedAt == nil {
			continue
		}
		d := calendar.DateOf(*t.completedAt, loc)
		if d.Before(from) || to.Before(d) {
			continue
		}
		if best == nil || t.reward > best.reward || t.reward == best.reward && (t.completedAt.Before(*best.completedAt) ||
			t.completedAt.Equal(*best.completedAt) && bytes.Compare(t.id[:], best.id[:]) < 0) {
			best = t
		}
	}
	if best == nil {
		return nil
	}
	return &analytics.ExpensiveTask{
		TaskID: best.id, Title: best.title, JiraID: best.jira, Description: best.description,
		Reward: money.Cents(best.reward), CompletedAt: *best.completedAt, AssigneeID: best.assignee,
	}
}

// expectedSeries computes a series' buckets without the service's arithmetic: every day of
// [from, to] belongs to the period with its key (the date, its ISO year and week, its year
// and month), and a bucket runs from the first to the last day of its key.
func (sc *scenario) expectedSeries(from, to calendar.Date, p analytics.Period) []analytics.Bucket {
	key := func(d calendar.Date) string {
		switch p {
		case analytics.Week:
			y, w := d.Start(time.UTC).ISOWeek()
			return fmt.Sprintf("%d-W%d", y, w)
		case analytics.Month:
			return fmt.Sprintf("%d-%d", d.Year, d.Month)
		default:
			return d.String()
		}
	}
	var out []analytics.Bucket
	for d := from; !to.Before(d); d = d.AddDays(1) {
		if len(out) > 0 && key(out[len(out)-1].From) == key(d) {
			continue
		}
		b := analytics.Bucket{From: d, To: d}
		for key(b.From.AddDays(-1)) == key(d) {
			b.From = b.From.AddDays(-1)
		}
		for key(b.To.AddDays(1)) == key(d) {
			b.To = b.To.AddDays(1)
		}
		b.Top = sc.mostExpensive(b.From, b.To)
		out = append(out, b)
	}
	return out
}

// query is one question asked of the service, with the scenario's answer.
type query struct {
	name string
	ask  func(ctx context.Context, s *analytics.Service) (any, error)
	want any
}

// queries are the questions a snapshot asks: the summary of every day (and the default,
// today), the most expensive task over several ranges, and the series by day, week and month.
func (sc *scenario) queries(tb testing.TB) []query {
	tb.Helper()
	var qs []query
	for d := sc.first.AddDays(-2); !sc.today.Before(d); d = d.AddDays(1) {
		want := analytics.Summary{
			Date: d, ManagementEarnings: sc.earnings(d), NegativeBalanceCount: sc.negativeAtEndOf(d, d == sc.today),
			Closed: !d.Before(sc.first) && d.Before(sc.today),
		}
		qs = append(qs, query{"Summary " + d.String(), func(ctx context.Context, s *analytics.Service) (any, error) {
			return s.Summary(ctx, admin, &d)
		}, want})
	}
	today := analytics.Summary{Date: sc.today, ManagementEarnings: sc.earnings(sc.today), NegativeBalanceCount: sc.negativeAtEndOf(sc.today, true)}
	qs = append(qs, query{"Summary default", func(ctx context.Context, s *analytics.Service) (any, error) {
		return s.Summary(ctx, admin, nil)
	}, today})
	ranges := [][2]calendar.Date{
		{sc.first.AddDays(-10), sc.today},
		{date(tb, quietWeek[0]), date(tb, quietWeek[1])},
		{date(tb, "2025-12-31"), date(tb, "2026-01-01")},
	}
	for d := sc.first; !sc.today.Before(d); d = d.AddDays(1) {
		ranges = append(ranges, [2]calendar.Date{d, d})
	}
	for _, r := range ranges {
		want := analytics.Bucket{From: r[0], To: r[1], Top: sc.mostExpensive(r[0], r[1])}
		qs = append(qs, query{fmt.Sprintf("MostExpensive %s..%s", r[0], r[1]), func(ctx context.Context, s *analytics.Service) (any, error) {
			return s.MostExpensive(ctx, admin, r[0], r[1])
		}, want})
	}
	from := sc.first.AddDays(-20) // an empty month, November, and empty weeks first
	for _, p := range []analytics.Period{analytics.Day, analytics.Week, analytics.Month} {
		qs = append(qs, query{fmt.Sprintf("MostExpensiveSeries %s", p), func(ctx context.Context, s *analytics.Service) (any, error) {
			return s.MostExpensiveSeries(ctx, admin, from, sc.today, p)
		}, sc.expectedSeries(from, sc.today, p)})
	}
	return qs
}

// snapshot asks every query and returns the answers, printed one per line.
func snapshot(tb testing.TB, s *analytics.Service, qs []query) []string {
	tb.Helper()
	out := make([]string, len(qs))
	for i, q := range qs {
		got, err := q.ask(context.Background(), s)
		if err != nil {
			tb.Fatalf("%s: %v", q.name, err)
		}
		out[i] = q.name + ": " + show(got)
	}
	return out
}

// wanted prints the scenario's answers as snapshot prints the service's.
func wanted(qs []query) []string {
	out := make([]string, len(qs))
	for i, q := range qs {
		out[i] = q.name + ": " + show(q.want)
	}
	return out
}

// show prints an answer with times in UTC, so equal instants print alike.
func show(v any) string {
	switch v := v.(type) {
	case analytics.Summary:
		return fmt.Sprintf("%s earnings=%s negative=%d closed=%v", v.Date, v.ManagementEarnings, v.NegativeBalanceCount, v.Closed)
	case analytics.Bucket:
		return showBucket(v)
	case []analytics.Bucket:
		parts := make([]string, len(v))
		for i, b := range v {
			parts[i] = showBucket(b)
		}
		return "[" + strings.Join(parts, "; ") + "]"
	default:
		return fmt.Sprintf("%#v", v)
	}
}

func showBucket(b analytics.Bucket) string {
	if b.Top == nil {
		return fmt.Sprintf("%s..%s none", b.From, b.To)
	}
	t := b.Top
	jira := "<nil>"
	if t.JiraID != nil {
		jira = *t.JiraID
	}
	return fmt.Sprintf("%s..%s %s %q jira=%s %q reward=%s at=%s by=%s", b.From, b.To, t.TaskID, t.Title, jira,
		t.Description, t.Reward, t.CompletedAt.UTC().Format(time.RFC3339Nano), t.AssigneeID)
}

// diff fails the test with the lines where got and want differ.
func diff(tb testing.TB, what string, got, want []string) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: %d answers, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range got {
		if got[i] != want[i] {
			bad++
			if bad <= 10 {
				tb.Errorf("%s:\n got  %s\n want %s", what, got[i], want[i])
			}
		}
	}
	if bad > 0 {
		tb.Fatalf("%s: %d of %d answers differ", what, bad, len(got))
	}
}

// newTestScenario is the scenario most tests use: December 2025 to mid-January 2026, across a
// month end and a year end, with a quiet ISO week in December.
func newTestScenario(tb testing.TB) *scenario {
	tb.Helper()
	return newScenario(tb, 42, date(tb, "2025-12-01"), date(tb, "2026-01-20"))
}
