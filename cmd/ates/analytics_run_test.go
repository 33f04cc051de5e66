package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/money"
)

// Analytics through the real process (R-AN-1…4): a working day is played through the API, the
// expected figures are derived from the accounting API's ledgers (what an ADMIN or ACCOUNTANT
// sees), analytics — built only from events, in its own store — must answer the same; then
// `ates analytics rebuild` replays the producers' event history into emptied read models and
// every answer must come back identical.

// TestRunAnalyticsScenario is the embedded default: one process, SQLite, the in-process bus.
// The business day is 14 (or, near its midnight, 9) hours ahead of UTC (R-ACC-7).
func TestRunAnalyticsScenario(t *testing.T) {
	tz, loc := businessZone(t, "Pacific/Kiritimati", "Asia/Tokyo")
	environ := []string{
		"ATES_HTTP_ADDR=127.0.0.1:0", "ATES_DATA_DIR=" + t.TempDir(), "ATES_TIMEZONE=" + tz,
		"ATES_ADMIN_USERNAME=boss", "ATES_ADMIN_PASSWORD=boss-beak-print",
	}
	p, base := MustStart(t, environ)
	logProblemsOnFailure(t, "ates", p)
	f := playAnalyticsScenario(t, base, loc)
	checkAnalytics(t, base, f)
	before := analyticsSnapshot(t, base, f.admin.Token, f.today)
	mustSameDay(t, f.loc, f.today)
	p.Stop(t)

	t.Run("rebuild", func(t *testing.T) {
		mustRebuildAnalytics(t, environ, f.events)
		// A second rebuild starts from scratch again: the same counts, nothing found applied.
		mustRebuildAnalytics(t, environ, f.events)
		p, base := MustStart(t, environ)
		logProblemsOnFailure(t, "ates after rebuild", p)
		admin, _ := mustLogin(t, base, "boss", "boss-beak-print")
		after := analyticsSnapshot(t, base, admin, f.today)
		mustSameDay(t, f.loc, f.today)
		checkSameAnswers(t, before, after)
	})
}

// TestRunProductionAnalyticsScenario is the production shape: a gateway and a separate worker
// on PostgreSQL and RabbitMQ, so every event analytics consumes crosses the broker (R-OPS-2).
func TestRunProductionAnalyticsScenario(t *testing.T) {
	tz, loc := businessZone(t, "America/Adak", "America/New_York") // UTC-10 (-9 in summer), or -5
	env := mustProduction(t, "ATES_TIMEZONE="+tz)
	gateway, base := MustStart(t, env.Environ, "gateway")
	worker, _ := MustStart(t, env.Environ, "worker")
	logProblemsOnFailure(t, "gateway", gateway)
	logProblemsOnFailure(t, "worker", worker)
	f := playAnalyticsScenario(t, base, loc)
	checkAnalytics(t, base, f)
	before := analyticsSnapshot(t, base, f.admin.Token, f.today)
	mustSameDay(t, f.loc, f.today)
	gateway.Stop(t)
	worker.Stop(t)

	t.Run("rebuild", func(t *testing.T) {
		// The rebuild needs the databases only: it works with the broker out of reach.
		mustRebuildAnalytics(t, withEnv(env.Environ, "ATES_AMQP_URL=amqp://guest:guest@127.0.0.1:1/"), f.events)
		gateway, base := MustStart(t, env.Environ, "gateway")
		worker, _ := MustStart(t, env.Environ, "worker")
		waitForWorkers(t, worker)
		logProblemsOnFailure(t, "gateway after rebuild", gateway)
		logProblemsOnFailure(t, "worker after rebuild", worker)
		admin, _ := mustLogin(t, base, "boss", "boss-beak-print")
		after := analyticsSnapshot(t, base, admin, f.today)
		mustSameDay(t, f.loc, f.today)
		checkSameAnswers(t, before, after)
	})
}

// waitForWorkers waits until a started `ates worker` runs its relays and consumers.
func waitForWorkers(t *testing.T, p *process) {
	t.Helper()
	waitFor(t, "the worker to start", func() (bool, string) {
		return strings.Contains(p.stderr.String(), `msg="workers running"`), "not yet"
	})
}

// analyticsFacts is what analytics must answer, derived from the scenario and the ledgers.
type analyticsFacts struct {
	today                       calendar.Date
	loc                         *time.Location
	admin, manager, accountant  *popug
	worker                      *popug
	earnings                    money.Cents     // R-ACC-6: −(sum of today's FEE and REWARD entries)
	negatives                   int             // billing accounts with a balance below 0 now
	maxReward                   money.Cents     // the highest REWARD amount of today
	topCandidates               map[string]bool // the DONE tasks rewarded maxReward today
	events                      int             // events analytics consumes that the producers published
	tasks, completions, entries int
}

// playAnalyticsScenario plays a day — accounts of every role, tasks created, shuffled three
// times, completed in two rounds, a manual close of the billing day between them — waits until
// the ledger has settled and analytics has caught up with it, and returns the expected figures.
func playAnalyticsScenario(t *testing.T, base string, loc *time.Location) analyticsFacts {
	t.Helper()
	day0 := calendar.DateOf(time.Now(), loc)
	adminToken, adminID := mustLogin(t, base, "boss", "boss-beak-print")
	boss := &popug{Name: "boss", ID: adminID, Token: adminToken, Role: "ADMIN"}
	ada := mustCreatePopug(t, base, adminToken, "ada", "ADMIN")
	mgr := mustCreatePopug(t, base, adminToken, "max", "MANAGER")
	acc := mustCreatePopug(t, base, adminToken, "acc", "ACCOUNTANT")
	wes := mustCreatePopug(t, base, adminToken, "wes", "WORKER")
	kiwi, rio, pip := mustSignUp(t, base, "kiwi"), mustSignUp(t, base, "rio"), mustSignUp(t, base, "pip")
	everyone := []*popug{boss, ada, mgr, acc, wes, kiwi, rio, pip}
	assignable := []*popug{acc, wes, kiwi, rio, pip} // R-TASK-3
	waitFor(t, "a billing account for every account", func() (bool, string) {
		var r struct{ BillingAccounts struct{ TotalCount int } }
		mustDo(t, base, acc.Token, `{billingAccounts{totalCount}}`, nil, &r)
		return r.BillingAccounts.TotalCount == len(everyone), fmt.Sprintf("%d billing accounts", r.BillingAccounts.TotalCount)
	})

	s := scenarioState{tasks: map[string]createdTask{}, assignments: map[string]int{}, completedBy: map[string]string{}}
	creators := []*popug{kiwi, mgr, rio, boss, acc, pip, wes, ada}
	for i := range 10 {
		ct := mustCreateTask(t, base, creators[i%len(creators)].Token, i+1)
		s.tasks[ct.ID] = ct
		s.assignments[ct.ID] = 1
	}
	s.shuffle(t, base, mgr)
	s.completeSome(t, base, assignable, 1)
	// Close the day by hand once the first rewards are in, so some balances are positive and
	// paid out: PAYOUT entries must not count in the earnings (R-ACC-6).
	settled := func() int {
		n := len(s.completedBy)
		for _, a := range s.assignments {
			n += a
		}
		return n
	}
	waitForEntries(t, base, acc.Token, settled())
	for round := 0; round < 3 && !anyPositive(t, base, acc.Token); round++ {
		s.completeSome(t, base, assignable, 1) // more rewards, until someone is in the black
		waitForEntries(t, base, acc.Token, settled())
	}
	var closed struct {
		CloseBillingDay struct {
			Day          string
			PaidAccounts int
			TotalPaid    string
		}
	}
	mustDo(t, base, acc.Token, `mutation{closeBillingDay{day paidAccounts totalPaid}}`, nil, &closed)
	s.shuffle(t, base, ada)
	s.completeSome(t, base, []*popug{kiwi, rio, wes}, 100)
	s.shuffle(t, base, boss)
	if len(s.completedBy) == 0 {
		t.Fatal("no task was completed: nothing competes for the most expensive task")
	}
	wantEntries := settled() + closed.CloseBillingDay.PaidAccounts
	waitForEntries(t, base, acc.Token, wantEntries)

	mustSameDay(t, loc, day0)
	today := day0
	if closed.CloseBillingDay.Day != today.String() {
		t.Fatalf("closeBillingDay closed %s, want today %s (R-ACC-8)", closed.CloseBillingDay.Day, today)
	}

	// The expected figures, from the ledgers as the accountant sees them.
	f := analyticsFacts{
		today: today, loc: loc, admin: boss, manager: mgr, accountant: acc, worker: kiwi,
		topCandidates: map[string]bool{}, tasks: len(s.tasks), completions: len(s.completedBy),
	}
	var fees, rewards, payouts int
	var paid money.Cents
	for _, b := range billingAccounts(t, base, acc.Token) {
		if cents(t, b.Balance) < 0 {
			f.negatives++
		}
		for _, e := range allEntries(t, base, acc.Token, b.Account.ID, nil) {
			f.entries++
			if e.Day != today.String() {
				t.Fatalf("entry %s of %s is dated %s, but everything happened on %s", e.ID, b.Account.Username, e.Day, today)
			}
			amount := cents(t, e.Amount)
			switch e.Type {
			case "FEE":
				fees++
				f.earnings -= amount
			case "REWARD":
				rewards++
				f.earnings -= amount
				if e.Task == nil || e.Task.Status != "DONE" {
					t.Fatalf("reward entry %s names task %+v, want a DONE task", e.ID, e.Task)
				}
				switch {
				case amount > f.maxReward:
					f.maxReward = amount
					clear(f.topCandidates)
					fallthrough
				case amount == f.maxReward:
					f.topCandidates[e.Task.ID] = true
				}
			case "PAYOUT":
				payouts++
				paid -= amount
			}
		}
	}
	if fees != settled()-len(s.completedBy) || rewards != len(s.completedBy) || payouts != closed.CloseBillingDay.PaidAccounts ||
		paid != cents(t, closed.CloseBillingDay.TotalPaid) {
		t.Fatalf("the ledgers hold %d fees, %d rewards, %d payouts of %s; want %d, %d, %d of %s",
			fees, rewards, payouts, paid, settled()-len(s.completedBy), len(s.completedBy),
			closed.CloseBillingDay.PaidAccounts, closed.CloseBillingDay.TotalPaid)
	}
	// What analytics consumes (analytics.Topics) and the producers' outboxes hold: per task a
	// task.created and a task.priced; per completion a task.completed and a task.updated; per
	// entry a balance.changed; two day.closed: the worker's start-up catch-up close of
	// yesterday (R-ACC-8) and the close above.
	f.events = 2*f.tasks + 2*f.completions + f.entries + 2

	// Analytics is eventually consistent: wait until it has applied what the ledger shows.
	waitFor(t, "analytics to catch up with the ledger", func() (bool, string) {
		var r struct {
			AnalyticsSummary struct {
				ManagementEarnings   string
				NegativeBalanceCount int
			}
			MostExpensiveTask expensiveBucket
		}
		mustDo(t, base, boss.Token, `query($d:Date!){analyticsSummary{managementEarnings negativeBalanceCount}
			mostExpensiveTask(from:$d,to:$d){`+bucketFields+`}}`, map[string]any{"d": today.String()}, &r)
		top := r.MostExpensiveTask.Top
		ok := cents(t, r.AnalyticsSummary.ManagementEarnings) == f.earnings &&
			r.AnalyticsSummary.NegativeBalanceCount == f.negatives &&
			top != nil && cents(t, top.Reward) == f.maxReward
		return ok, fmt.Sprintf("summary %+v, top %+v; want earnings %s, %d negative, top reward %s",
			r.AnalyticsSummary, top, f.earnings, f.negatives, f.maxReward)
	})
	t.Logf("%d tasks, %d completions, %d entries (%d paid out); %s: earnings %s, %d negative, top reward %s (%d candidates)",
		f.tasks, f.completions, f.entries, payouts, today, f.earnings, f.negatives, f.maxReward, len(f.topCandidates))
	return f
}

// anyPositive reports whether some billing account has a positive balance.
func anyPositive(t *testing.T, base, token string) bool {
	t.Helper()
	return slices.ContainsFunc(billingAccounts(t, base, token), func(b billingAccountNode) bool { return cents(t, b.Balance) > 0 })
}

// waitForEntries waits until the ledgers hold at least n entries.
func waitForEntries(t *testing.T, base, token string, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d ledger entries", n), func() (bool, string) {
		got := totalEntries(t, base, token)
		return got >= n, fmt.Sprintf("%d entries", got)
	})
}

// expensiveTop is an ExpensiveTask as the API shows it.
type expensiveTop struct {
	Reward      string
	CompletedAt time.Time
	Task        struct {
		ID, Title, Description, Status string
		JiraID                         *string
		CompletedAt                    *time.Time
		Assignee                       struct{ ID string }
	}
}

// expensiveBucket is a MostExpensiveTask as the API shows it.
type expensiveBucket struct {
	From, To string
	Top      *expensiveTop
}

const bucketFields = `from to top{reward completedAt task{id title jiraId description status completedAt assignee{id}}}`

const (
	summaryQuery = `query($d:Date){analyticsSummary(date:$d){date managementEarnings negativeBalanceCount}}`
	topQuery     = `query($from:Date!,$to:Date!){mostExpensiveTask(from:$from,to:$to){` + bucketFields + `}}`
	seriesQuery  = `query($from:Date!,$to:Date!,$p:Period!){mostExpensiveTasks(from:$from,to:$to,period:$p){` + bucketFields + `}}`
)

// checkAnalytics checks every analytics answer against the facts (R-AN-1…3).
func checkAnalytics(t *testing.T, base string, f analyticsFacts) {
	t.Helper()
	today, yesterday := f.today, f.today.AddDays(-1)
	admin := f.admin.Token

	t.Run("summary", func(t *testing.T) {
		type summary struct {
			Date, ManagementEarnings string
			NegativeBalanceCount     int
		}
		get := func(d *calendar.Date) summary {
			vars := map[string]any{}
			if d != nil {
				vars["d"] = d.String()
			}
			var r struct{ AnalyticsSummary summary }
			mustDo(t, base, admin, summaryQuery, vars, &r)
			return r.AnalyticsSummary
		}
		want := summary{Date: today.String(), ManagementEarnings: f.earnings.String(), NegativeBalanceCount: f.negatives}
		if got := get(nil); got != want {
			t.Errorf("analyticsSummary (default date) = %+v, want %+v", got, want)
		}
		if got := get(&today); got != want {
			t.Errorf("analyticsSummary(%s) = %+v, want %+v", today, got, want)
		}
		// Nothing happened yesterday: no earnings, and nobody was in the red at its end.
		if got, want := get(&yesterday), (summary{Date: yesterday.String(), ManagementEarnings: "0.00"}); got != want {
			t.Errorf("analyticsSummary(%s) = %+v, want %+v", yesterday, got, want)
		}
		// The accounting API's company figure is the same formula (R-ACC-6).
		for _, p := range []*popug{f.admin, f.accountant} {
			var r struct {
				ManagementEarnings []struct{ Date, ManagementEarnings string }
			}
			mustDo(t, base, p.Token, `query($d:Date!){managementEarnings(from:$d,to:$d){date managementEarnings}}`,
				map[string]any{"d": today.String()}, &r)
			if len(r.ManagementEarnings) != 1 || r.ManagementEarnings[0].ManagementEarnings != want.ManagementEarnings {
				t.Errorf("managementEarnings(%s) as %s = %+v, want %s", today, p.Name, r.ManagementEarnings, want.ManagementEarnings)
			}
		}
	})

	// The day's most expensive task: the highest reward of the day's completions.
	top := mostExpensive(t, base, admin, today, today)
	t.Run("mostExpensiveTask", func(t *testing.T) {
		if top.From != today.String() || top.To != today.String() || top.Top == nil {
			t.Fatalf("mostExpensiveTask(%s, %s) = %+v", today, today, top)
		}
		tt := top.Top
		if cents(t, tt.Reward) != f.maxReward || !f.topCandidates[tt.Task.ID] || tt.Task.Status != "DONE" {
			t.Errorf("top = %s for task %s (%s); want reward %s and one of the DONE tasks %v",
				tt.Reward, tt.Task.ID, tt.Task.Status, f.maxReward, keys(f.topCandidates))
		}
		if tt.Task.CompletedAt == nil || !tt.Task.CompletedAt.Equal(tt.CompletedAt) {
			t.Errorf("top completedAt %s, its task's completedAt %v: want the same instant", tt.CompletedAt, tt.Task.CompletedAt)
		}
		if tt.Task.Title == "" || tt.Task.Description == "" || tt.Task.JiraID == nil || tt.Task.Assignee.ID == "" {
			t.Errorf("top task %+v is not fully described", tt.Task)
		}
		// A wider range holds nothing more expensive; a range of past days holds nothing.
		if wide := mostExpensive(t, base, admin, today.AddDays(-45), today); !sameTop(wide.Top, tt) {
			t.Errorf("mostExpensiveTask(%s, %s).top = %+v, want today's %+v", today.AddDays(-45), today, wide.Top, tt)
		}
		if past := mostExpensive(t, base, admin, today.AddDays(-45), yesterday); past.Top != nil {
			t.Errorf("mostExpensiveTask(%s, %s).top = %+v, want null", today.AddDays(-45), yesterday, past.Top)
		}
	})

	t.Run("series", func(t *testing.T) {
		newYearsEve := calendar.Date{Year: today.Year - 1, Month: time.December, Day: 28}
		for _, r := range []struct{ from, to calendar.Date }{
			{today.AddDays(-45), today}, // crosses a month boundary, whatever today is
			{newYearsEve, today},        // crosses a year boundary; at most 369 days
			{today.AddDays(-3), today.AddDays(-1)},
		} {
			for _, period := range []string{"DAY", "WEEK", "MONTH"} {
				checkSeries(t, base, admin, r.from, r.to, period, today, top.Top)
			}
		}
	})

	t.Run("access", func(t *testing.T) {
		queries := []struct {
			q    string
			vars map[string]any
		}{
			{summaryQuery, nil},
			{summaryQuery, map[string]any{"d": yesterday.String()}},
			{topQuery, map[string]any{"from": today.String(), "to": today.String()}},
			{seriesQuery, map[string]any{"from": yesterday.String(), "to": today.String(), "p": "DAY"}},
		}
		for _, q := range queries {
			for _, p := range []*popug{f.manager, f.accountant, f.worker} { // R-AN-1: ADMIN only
				mustFail(t, base, p.Token, "FORBIDDEN", q.q, q.vars)
			}
			mustFail(t, base, "", "UNAUTHENTICATED", q.q, q.vars)
		}
		reversed := map[string]any{"from": today.String(), "to": yesterday.String()}
		mustFail(t, base, admin, "BAD_USER_INPUT", topQuery, reversed)
		for _, period := range []string{"DAY", "WEEK", "MONTH"} {
			mustFail(t, base, admin, "BAD_USER_INPUT", seriesQuery, map[string]any{"from": today.String(), "to": yesterday.String(), "p": period})
		}
		// A series by day covers at most 400 days (R-API-6); by week it may be longer.
		mustFail(t, base, admin, "BAD_USER_INPUT", seriesQuery, map[string]any{"from": today.AddDays(-400).String(), "to": today.String(), "p": "DAY"})
		var r struct{ MostExpensiveTasks []expensiveBucket }
		mustDo(t, base, admin, seriesQuery, map[string]any{"from": today.AddDays(-399).String(), "to": today.String(), "p": "DAY"}, &r)
		if len(r.MostExpensiveTasks) != 400 {
			t.Errorf("a DAY series of 400 days has %d elements", len(r.MostExpensiveTasks))
		}
		mustDo(t, base, admin, seriesQuery, map[string]any{"from": today.AddDays(-400).String(), "to": today.String(), "p": "WEEK"}, nil)
		mustFail(t, base, admin, "BAD_USER_INPUT", topQuery, map[string]any{"from": "2026-02-30", "to": today.String()})
	})
}

func mostExpensive(t *testing.T, base, token string, from, to calendar.Date) expensiveBucket {
	t.Helper()
	var r struct{ MostExpensiveTask expensiveBucket }
	mustDo(t, base, token, topQuery, map[string]any{"from": from.String(), "to": to.String()}, &r)
	return r.MostExpensiveTask
}

// sameTop reports whether two answers name the same task, reward and completion.
func sameTop(a, b *expensiveTop) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Task.ID == b.Task.ID && a.Reward == b.Reward && a.CompletedAt.Equal(b.CompletedAt)
}

// checkSeries checks a series (R-AN-3): one bucket per whole day, ISO week or calendar month
// touching [from, to], oldest first; a top only in the bucket holding today, today's top.
func checkSeries(t *testing.T, base, token string, from, to calendar.Date, period string, today calendar.Date, todays *expensiveTop) {
	t.Helper()
	var r struct{ MostExpensiveTasks []expensiveBucket }
	mustDo(t, base, token, seriesQuery, map[string]any{"from": from.String(), "to": to.String(), "p": period}, &r)
	got := r.MostExpensiveTasks
	want := wholePeriods(from, to, period)
	name := fmt.Sprintf("mostExpensiveTasks(%s, %s, %s)", from, to, period)
	if len(got) != len(want) {
		t.Fatalf("%s: %d buckets, want %d", name, len(got), len(want))
	}
	for i, b := range got {
		bf, bt := mustDate(t, b.From), mustDate(t, b.To)
		if bf != want[i][0] || bt != want[i][1] {
			t.Errorf("%s bucket %d = [%s, %s], want [%s, %s]", name, i, b.From, b.To, want[i][0], want[i][1])
		}
		// Whole periods, back to back.
		wd := func(d calendar.Date) time.Weekday { return d.Start(time.UTC).Weekday() }
		switch period {
		case "DAY":
			if bf != bt {
				t.Errorf("%s bucket %d = [%s, %s] is not one day", name, i, b.From, b.To)
			}
		case "WEEK":
			if wd(bf) != time.Monday || wd(bt) != time.Sunday || bt != bf.AddDays(6) {
				t.Errorf("%s bucket %d = [%s %s, %s %s] is not an ISO week", name, i, b.From, wd(bf), b.To, wd(bt))
			}
		case "MONTH":
			if bf.Day != 1 || bt.AddDays(1).Day != 1 || bf.Month != bt.Month || bf.Year != bt.Year {
				t.Errorf("%s bucket %d = [%s, %s] is not a calendar month", name, i, b.From, b.To)
			}
		}
		if i > 0 && mustDate(t, got[i-1].To).AddDays(1) != bf {
			t.Errorf("%s: bucket %d starts %s, the previous one ends %s", name, i, b.From, got[i-1].To)
		}
		if i == 0 && (from.Before(bf) || bt.Before(from)) || i == len(got)-1 && (to.Before(bf) || bt.Before(to)) {
			t.Errorf("%s: bucket %d = [%s, %s] does not hold the range's end", name, i, b.From, b.To)
		}
		if holdsToday := !today.Before(bf) && !bt.Before(today); holdsToday {
			if !sameTop(b.Top, todays) {
				t.Errorf("%s bucket %d [%s, %s] holds today: top %+v, want %+v", name, i, b.From, b.To, b.Top, todays)
			}
		} else if b.Top != nil {
			t.Errorf("%s bucket %d [%s, %s]: top %+v, want null (nothing was completed then)", name, i, b.From, b.To, b.Top)
		}
	}
}

// wholePeriods is the test's own reckoning of the periods touching [from, to].
func wholePeriods(from, to calendar.Date, period string) [][2]calendar.Date {
	start := from.Start(time.UTC)
	switch period {
	case "WEEK":
		start = start.AddDate(0, 0, -((int(start.Weekday()) + 6) % 7))
	case "MONTH":
		start = time.Date(from.Year, from.Month, 1, 0, 0, 0, 0, time.UTC)
	}
	var out [][2]calendar.Date
	for end := to.Start(time.UTC); !start.After(end); {
		var next time.Time
		switch period {
		case "DAY":
			next = start.AddDate(0, 0, 1)
		case "WEEK":
			next = start.AddDate(0, 0, 7)
		case "MONTH":
			next = start.AddDate(0, 1, 0)
		}
		out = append(out, [2]calendar.Date{calendar.DateOf(start, time.UTC), calendar.DateOf(next.AddDate(0, 0, -1), time.UTC)})
		start = next
	}
	return out
}

func mustDate(tb testing.TB, s string) calendar.Date {
	tb.Helper()
	d, err := calendar.Parse(s)
	if err != nil {
		tb.Fatalf("date %q: %v", s, err)
	}
	return d
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// analyticsSnapshot is every analytics answer the rebuild must reproduce, as raw JSON by name.
func analyticsSnapshot(t *testing.T, base, token string, today calendar.Date) map[string]string {
	t.Helper()
	summary := `date managementEarnings negativeBalanceCount`
	r := mustGraphQL(t, base, token, `query($today:Date!,$yesterday:Date!,$from:Date!,$newYear:Date!){
		summary: analyticsSummary{`+summary+`}
		summaryToday: analyticsSummary(date:$today){`+summary+`}
		summaryYesterday: analyticsSummary(date:$yesterday){`+summary+`}
		top: mostExpensiveTask(from:$today,to:$today){`+bucketFields+`}
		topWide: mostExpensiveTask(from:$from,to:$today){`+bucketFields+`}
		days: mostExpensiveTasks(from:$from,to:$today,period:DAY){`+bucketFields+`}
		weeks: mostExpensiveTasks(from:$newYear,to:$today,period:WEEK){`+bucketFields+`}
		months: mostExpensiveTasks(from:$newYear,to:$today,period:MONTH){`+bucketFields+`}
	}`, map[string]any{
		"today": today.String(), "yesterday": today.AddDays(-1).String(), "from": today.AddDays(-45).String(),
		"newYear": calendar.Date{Year: today.Year - 1, Month: time.December, Day: 28}.String(),
	})
	if len(r.Errors) > 0 {
		t.Fatalf("analytics snapshot: %+v", r.Errors)
	}
	out := map[string]string{}
	for k, v := range r.Data {
		out[k] = string(v)
	}
	if len(out) != 8 || out["top"] == "" || !json.Valid([]byte(out["top"])) {
		t.Fatalf("analytics snapshot: %v", out)
	}
	return out
}

func checkSameAnswers(t *testing.T, before, after map[string]string) {
	t.Helper()
	for k, b := range before {
		if a := after[k]; a != b {
			t.Errorf("%s after the rebuild:\n%s\nbefore:\n%s", k, a, b)
		}
	}
}

var rebuiltLine = regexp.MustCompile(`^analytics rebuilt: (\d+) events read, (\d+) applied, (\d+) duplicates, (\d+) dead-lettered\n$`)

// mustRebuildAnalytics runs `ates analytics rebuild` (R-AN-4) and checks its report: every
// event analytics consumes read once and applied, none found applied before (the rebuild
// forgets what was applied), none dead-lettered.
func mustRebuildAnalytics(t *testing.T, environ []string, wantEvents int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr syncBuffer
	if err := run(ctx, []string{"analytics", "rebuild"}, environ, &stdout, &stderr); err != nil {
		t.Fatalf("ates analytics rebuild: %v\nstderr:\n%s", err, stderr.String())
	}
	m := rebuiltLine.FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("ates analytics rebuild printed %q", stdout.String())
	}
	n := make([]int, 4)
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+1])
	}
	if n[0] != wantEvents || n[1] != wantEvents || n[2] != 0 || n[3] != 0 {
		t.Errorf("ates analytics rebuild: %q; want %d events read and applied, 0 duplicates, 0 dead-lettered",
			stdout.String(), wantEvents)
	}
}

// withEnv returns environ with the variable set to the value of kv ("NAME=value").
func withEnv(environ []string, kv string) []string {
	name, _, _ := strings.Cut(kv, "=")
	out := make([]string, 0, len(environ)+1)
	for _, e := range environ {
		if !strings.HasPrefix(e, name+"=") {
			out = append(out, e)
		}
	}
	return append(out, kv)
}
