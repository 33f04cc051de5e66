package main

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/money"
)

// TestRunAccountingScenario plays a working day through the real `ates` process on the
// embedded default and checks every popug's ledger against what happened: the fees of every
// assignment and the rewards of every completion, balances, the audit log, per-day views,
// company earnings and who may see what (R-ACC-1…9, R-API-4, R-API-5). The business day is in
// a timezone 14 (or, near its midnight, 9) hours ahead of UTC, so it differs from the UTC date
// much of the time (R-ACC-7).
func TestRunAccountingScenario(t *testing.T) {
	tz, loc := businessZone(t, "Pacific/Kiritimati", "Asia/Tokyo")
	_, base := MustStart(t, []string{
		"ATES_HTTP_ADDR=127.0.0.1:0", "ATES_DATA_DIR=" + t.TempDir(), "ATES_TIMEZONE=" + tz,
		"ATES_ADMIN_USERNAME=boss", "ATES_ADMIN_PASSWORD=boss-beak-print",
	})
	checkAccountingScenario(t, base, loc)
}

// TestRunProductionAccountingScenario is the scenario on the production shape: a gateway and
// a separate worker on PostgreSQL and RabbitMQ, so every event crosses the broker (R-OPS-2).
func TestRunProductionAccountingScenario(t *testing.T) {
	tz, loc := businessZone(t, "America/Adak", "America/New_York") // UTC-10 (-9 in summer), or -5
	env := mustProduction(t, "ATES_TIMEZONE="+tz)
	_, base := MustStart(t, env.Environ, "gateway")
	MustStart(t, env.Environ, "worker")
	checkAccountingScenario(t, base, loc)
}

// businessZone returns the first of zones (ATES_TIMEZONE, R-ACC-7) whose local time is at least
// two hours before its next midnight, and its location. A scenario compares per-day figures
// with "today", so its business day must not change while it runs; zones 5 hours apart always
// leave one such. A scenario that still sees the day change has run for hours: a failure.
func businessZone(tb testing.TB, zones ...string) (string, *time.Location) {
	tb.Helper()
	for _, z := range zones {
		loc := mustLocation(tb, z)
		now := time.Now().In(loc)
		midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, loc)
		if midnight.Sub(now) >= 2*time.Hour {
			return z, loc
		}
	}
	tb.Fatalf("none of %v is two hours from its midnight", zones)
	return "", nil
}

// mustSameDay fails when the business day is no longer day: businessZone leaves every
// scenario hours before the day changes.
func mustSameDay(tb testing.TB, loc *time.Location, day calendar.Date) {
	tb.Helper()
	if now := calendar.DateOf(time.Now(), loc); now != day {
		tb.Fatalf("the business day changed during the test (%s → %s): it ran for hours", day, now)
	}
}

func mustLocation(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}

// scenarioEntry is a ledger entry as the API shows it.
type scenarioEntry struct {
	ID, Type, Amount, BalanceAfter, Description, Day string
	OccurredAt                                       time.Time
	Task                                             *struct {
		ID, Title, Status string
		JiraID            *string
	}
}

const entryFields = `id type amount balanceAfter description day occurredAt task{id title jiraId status}`

type entryPage struct {
	TotalCount int
	PageInfo   struct {
		HasNextPage bool
		EndCursor   *string
	}
	Edges []struct {
		Cursor string
		Node   scenarioEntry
	}
}

// scenarioState is what the test did, from the API's answers: the expected ledger follows
// from it.
type scenarioState struct {
	tasks       map[string]createdTask // by id
	assignments map[string]int         // task id → assignments (creation + shuffles while open)
	completedBy map[string]string      // task id → account id of the completing popug
}

func checkAccountingScenario(t *testing.T, base string, loc *time.Location) {
	day0 := calendar.DateOf(time.Now(), loc)
	adminToken, adminID := mustLogin(t, base, "boss", "boss-beak-print")
	boss := &popug{Name: "boss", ID: adminID, Token: adminToken, Role: "ADMIN"}
	// The admin creates an account of each role; three popugs sign up.
	ada := mustCreatePopug(t, base, adminToken, "ada", "ADMIN")
	mgr := mustCreatePopug(t, base, adminToken, "max", "MANAGER")
	acc := mustCreatePopug(t, base, adminToken, "acc", "ACCOUNTANT")
	wes := mustCreatePopug(t, base, adminToken, "wes", "WORKER")
	kiwi, rio, pip := mustSignUp(t, base, "kiwi"), mustSignUp(t, base, "rio"), mustSignUp(t, base, "pip")
	everyone := []*popug{boss, ada, mgr, acc, wes, kiwi, rio, pip}
	assignable := []*popug{acc, wes, kiwi, rio, pip} // R-TASK-3: neither ADMIN nor MANAGER
	byID := map[string]*popug{}
	for _, p := range everyone {
		byID[p.ID] = p
	}

	// R-ACC-5: every account gets a billing account (balance 0.00) once accounting hears of it.
	waitFor(t, "a billing account for every account", func() (bool, string) {
		var r struct{ BillingAccounts struct{ TotalCount int } }
		mustDo(t, base, acc.Token, `{billingAccounts{totalCount}}`, nil, &r)
		return r.BillingAccounts.TotalCount == len(everyone), fmt.Sprintf("%d billing accounts", r.BillingAccounts.TotalCount)
	})

	s := scenarioState{tasks: map[string]createdTask{}, assignments: map[string]int{}, completedBy: map[string]string{}}
	creators := []*popug{kiwi, mgr, rio, boss, acc, pip, wes, ada}
	for i := range 12 {
		ct := mustCreateTask(t, base, creators[i%len(creators)].Token, i+1)
		if p := byID[ct.Assignee.ID]; p == nil || !slices.Contains(assignable, p) {
			t.Fatalf("task %d assigned to %s, who is not assignable", i+1, ct.Assignee.ID)
		}
		s.tasks[ct.ID] = ct
		s.assignments[ct.ID] = 1
	}
	s.shuffle(t, base, mgr)
	s.completeSome(t, base, assignable, 1)
	// A DONE task is a conflict, someone else's open one forbidden: neither pays a reward (R-TASK-7).
	for id, by := range s.completedBy {
		mustFail(t, base, byID[by].Token, "CONFLICT", `mutation($id:ID!){completeTask(id:$id){id}}`, map[string]any{"id": id})
		break
	}
	var open struct {
		Tasks struct {
			Edges []struct {
				Node struct {
					ID       string
					Assignee struct{ ID string }
				}
			}
		}
	}
	mustDo(t, base, acc.Token, `{tasks(status:OPEN,first:1){edges{node{id assignee{id}}}}}`, nil, &open)
	if len(open.Tasks.Edges) == 1 {
		n := open.Tasks.Edges[0].Node
		other := kiwi
		if n.Assignee.ID == kiwi.ID {
			other = rio
		}
		mustFail(t, base, other.Token, "FORBIDDEN", `mutation($id:ID!){completeTask(id:$id){id}}`, map[string]any{"id": n.ID})
	}
	s.shuffle(t, base, ada)
	s.completeSome(t, base, []*popug{kiwi, rio, wes}, 100)
	mustFail(t, base, kiwi.Token, "FORBIDDEN", `mutation{shuffleTasks{reassigned}}`, nil)
	s.shuffle(t, base, boss)
	if len(s.completedBy) == 0 {
		t.Fatal("no task was completed: the scenario checks nothing about rewards")
	}

	// The tracker agrees with what the test did.
	var all struct {
		Tasks struct {
			TotalCount int
			Edges      []struct {
				Node struct {
					ID, Status string
					Assignee   struct{ ID string }
				}
			}
		}
	}
	mustDo(t, base, acc.Token, `{tasks(first:100){totalCount edges{node{id status assignee{id}}}}}`, nil, &all)
	if all.Tasks.TotalCount != len(s.tasks) {
		t.Fatalf("tasks totalCount = %d, want %d", all.Tasks.TotalCount, len(s.tasks))
	}
	assigneeNow := map[string]string{}
	for _, e := range all.Tasks.Edges {
		assigneeNow[e.Node.ID] = e.Node.Assignee.ID
		by, done := s.completedBy[e.Node.ID]
		if done != (e.Node.Status == "DONE") || (done && by != e.Node.Assignee.ID) {
			t.Errorf("task %s: status %s assignee %s; completed by %q", e.Node.ID, e.Node.Status, e.Node.Assignee.ID, by)
		}
	}

	wantFees, wantRewards := 0, len(s.completedBy)
	for _, n := range s.assignments {
		wantFees += n
	}
	// The ledger settles when every assignment and completion has its entry.
	waitFor(t, fmt.Sprintf("%d entries (%d fees, %d rewards)", wantFees+wantRewards, wantFees, wantRewards), func() (bool, string) {
		n := totalEntries(t, base, acc.Token)
		return n >= wantFees+wantRewards, fmt.Sprintf("%d entries", n)
	})
	// Late duplicates, if any, land before a later event's entry: one more task is created
	// after the ledger settled, and its fee reaches accounting behind every earlier event.
	marker := mustCreateTask(t, base, mgr.Token, 1000)
	s.tasks[marker.ID] = marker
	s.assignments[marker.ID] = 1
	assigneeNow[marker.ID] = marker.Assignee.ID
	wantFees++
	waitFor(t, "the later task's fee", func() (bool, string) {
		n := totalEntries(t, base, acc.Token)
		return n >= wantFees+wantRewards, fmt.Sprintf("%d entries", n)
	})

	mustSameDay(t, loc, day0)
	today := day0
	yesterday := today.AddDays(-1)
	ledgers := map[string][]scenarioEntry{} // account id → entries, newest first
	accounts := billingAccounts(t, base, acc.Token)
	if len(accounts) != len(everyone) {
		t.Fatalf("%d billing accounts, want %d", len(accounts), len(everyone))
	}
	for _, b := range accounts {
		p := byID[b.Account.ID]
		if p == nil {
			t.Fatalf("billing account of an unknown account %s", b.Account.ID)
		}
		if b.Account.Role != p.Role || b.Account.Username != p.Name {
			t.Errorf("billing account %s: account %+v, want %s %s", b.Account.ID, b.Account, p.Name, p.Role)
		}
		entries := allEntries(t, base, acc.Token, p.ID, nil)
		ledgers[p.ID] = entries
		checkLedger(t, p, b.Balance, b.EarnedToday, entries, today, loc)
		// The popug sees the same account as the accountant (R-ACC-5).
		var mine struct {
			MyBillingAccount struct {
				Account              struct{ ID string }
				Balance, EarnedToday string
				Entries              struct{ TotalCount int }
			}
		}
		mustDo(t, base, p.Token, `{myBillingAccount{account{id} balance earnedToday entries{totalCount}}}`, nil, &mine)
		if m := mine.MyBillingAccount; m.Account.ID != p.ID || m.Balance != b.Balance || m.EarnedToday != b.EarnedToday || m.Entries.TotalCount != len(entries) {
			t.Errorf("%s's own view %+v differs from the accountant's: balance %s earned today %s, %d entries", p.Name, m, b.Balance, b.EarnedToday, len(entries))
		}
		checkDays(t, base, p, entries, yesterday, today)
		if p.Role == "ADMIN" || p.Role == "MANAGER" {
			if len(entries) > 0 {
				t.Errorf("%s (%s) has %d entries, but is never assigned a task", p.Name, p.Role, len(entries))
			}
		}
	}
	checkTaskPrices(t, s, ledgers, assigneeNow, byID, wantFees, wantRewards)
	checkManagementEarnings(t, base, []*popug{boss, acc}, ledgers, yesterday, today)
	checkBillingAccess(t, base, kiwi, rio, mgr, acc, boss, today)
	t.Logf("%d tasks, %d assignments, %d completions; business day %s in %s", len(s.tasks), wantFees, wantRewards, today, loc)
}

// shuffle reassigns every open task as p and checks the count (R-TASK-4).
func (s *scenarioState) shuffle(t *testing.T, base string, p *popug) {
	t.Helper()
	var r struct{ ShuffleTasks struct{ Reassigned int } }
	mustDo(t, base, p.Token, `mutation{shuffleTasks{reassigned}}`, nil, &r)
	open := 0
	for id := range s.tasks {
		if _, done := s.completedBy[id]; !done {
			open++
			s.assignments[id]++
		}
	}
	if r.ShuffleTasks.Reassigned != open {
		t.Fatalf("shuffle by %s reassigned %d tasks, want every open one: %d", p.Name, r.ShuffleTasks.Reassigned, open)
	}
}

// completeSome has each popug complete up to n of the open tasks myTasks shows them.
func (s *scenarioState) completeSome(t *testing.T, base string, popugs []*popug, n int) {
	t.Helper()
	for _, p := range popugs {
		var r struct {
			MyTasks struct {
				Edges []struct {
					Node struct {
						ID, Status string
						Assignee   struct{ ID string }
					}
				}
			}
		}
		mustDo(t, base, p.Token, `{myTasks(status:OPEN,first:100){edges{node{id status assignee{id}}}}}`, nil, &r)
		for i, e := range r.MyTasks.Edges {
			if e.Node.Assignee.ID != p.ID || e.Node.Status != "OPEN" {
				t.Fatalf("%s's open tasks show %+v", p.Name, e.Node)
			}
			if _, ok := s.tasks[e.Node.ID]; !ok {
				t.Fatalf("%s's tasks show an unknown task %s", p.Name, e.Node.ID)
			}
			if i >= n {
				continue
			}
			var c struct {
				CompleteTask struct {
					Status      string
					CompletedAt *time.Time
				}
			}
			mustDo(t, base, p.Token, `mutation($id:ID!){completeTask(id:$id){status completedAt}}`, map[string]any{"id": e.Node.ID}, &c)
			if c.CompleteTask.Status != "DONE" || c.CompleteTask.CompletedAt == nil {
				t.Fatalf("completeTask by %s = %+v", p.Name, c.CompleteTask)
			}
			s.completedBy[e.Node.ID] = p.ID
		}
	}
}

// waitFor polls cond until it holds, failing after 30 s with its last description.
func waitFor(tb testing.TB, what string, cond func() (bool, string)) {
	tb.Helper()
	waitWithin(tb, 30*time.Second, what, cond)
}

// waitWithin polls cond until it holds, failing after the timeout with its last description.
// Every wait of these tests for something the processes do asynchronously goes through it.
func waitWithin(tb testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("waiting for %s: after %v, %s", what, timeout, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type billingAccountNode struct {
	Account              struct{ ID, Username, Role string }
	Balance, EarnedToday string
}

// billingAccounts returns every billing account, reading small pages (R-API-5).
func billingAccounts(t *testing.T, base, token string) []billingAccountNode {
	t.Helper()
	var out []billingAccountNode
	var after *string
	for page := 0; ; page++ {
		var r struct {
			BillingAccounts struct {
				TotalCount int
				PageInfo   struct {
					HasNextPage, HasPreviousPage bool
					EndCursor                    *string
				}
				Edges []struct {
					Cursor string
					Node   billingAccountNode
				}
			}
		}
		mustDo(t, base, token, `query($after:String){billingAccounts(first:3,after:$after){totalCount
			pageInfo{hasNextPage hasPreviousPage endCursor} edges{cursor node{account{id username role} balance earnedToday}}}}`,
			map[string]any{"after": after}, &r)
		c := r.BillingAccounts
		if len(c.Edges) > 3 || (c.PageInfo.HasNextPage && len(c.Edges) != 3) || c.PageInfo.HasPreviousPage != (page > 0) {
			t.Fatalf("billingAccounts page %d: %d edges, pageInfo %+v", page, len(c.Edges), c.PageInfo)
		}
		for _, e := range c.Edges {
			out = append(out, e.Node)
		}
		if !c.PageInfo.HasNextPage {
			if len(out) != c.TotalCount {
				t.Fatalf("billingAccounts: read %d, totalCount %d", len(out), c.TotalCount)
			}
			return out
		}
		after = c.PageInfo.EndCursor
	}
}

// totalEntries is the number of entries across every billing account.
func totalEntries(t *testing.T, base, token string) int {
	t.Helper()
	var r struct {
		BillingAccounts struct {
			Edges []struct {
				Node struct{ Entries struct{ TotalCount int } }
			}
		}
	}
	mustDo(t, base, token, `{billingAccounts(first:100){edges{node{entries(first:1){totalCount}}}}}`, nil, &r)
	n := 0
	for _, e := range r.BillingAccounts.Edges {
		n += e.Node.Entries.TotalCount
	}
	return n
}

// allEntries reads an account's audit log page by page (optionally of one day), newest first.
func allEntries(t *testing.T, base, token, accountID string, day *calendar.Date) []scenarioEntry {
	t.Helper()
	var out []scenarioEntry
	var after *string
	seen := map[string]bool{}
	total := -1
	vars := map[string]any{"id": accountID}
	if day != nil {
		vars["day"] = day.String()
	}
	for {
		vars["after"] = after
		var r struct{ BillingAccount struct{ Entries entryPage } }
		mustDo(t, base, token, `query($id:ID!,$after:String,$day:Date){billingAccount(accountId:$id){
			entries(first:4,after:$after,day:$day){totalCount pageInfo{hasNextPage endCursor} edges{cursor node{`+entryFields+`}}}}}`, vars, &r)
		p := r.BillingAccount.Entries
		if total >= 0 && p.TotalCount != total {
			t.Fatalf("entries of %s: totalCount changed from %d to %d between pages", accountID, total, p.TotalCount)
		}
		total = p.TotalCount
		for _, e := range p.Edges {
			if seen[e.Node.ID] {
				t.Fatalf("entries of %s: entry %s on two pages", accountID, e.Node.ID)
			}
			seen[e.Node.ID] = true
			out = append(out, e.Node)
		}
		if !p.PageInfo.HasNextPage {
			break
		}
		if len(p.Edges) != 4 {
			t.Fatalf("entries of %s: a page of %d with a next page", accountID, len(p.Edges))
		}
		after = p.PageInfo.EndCursor
	}
	if len(out) != total {
		t.Fatalf("entries of %s: read %d, totalCount %d", accountID, len(out), total)
	}
	return out
}

// checkLedger checks one account's entries against its balance and today's earnings
// (R-ACC-3, R-ACC-5, R-ACC-7).
func checkLedger(t *testing.T, p *popug, balance, earnedToday string, entries []scenarioEntry, today calendar.Date, loc *time.Location) {
	t.Helper()
	var sum, earned money.Cents
	for i, e := range entries {
		amount, after := cents(t, e.Amount), cents(t, e.BalanceAfter)
		sum += amount
		// Newest first: each entry's balance before it is the next (older) entry's balance after.
		before := money.Cents(0)
		if i+1 < len(entries) {
			before = cents(t, entries[i+1].BalanceAfter)
		}
		if after-amount != before {
			t.Errorf("%s entry %d (%s %s): balance after %s − amount ≠ the previous balance %s", p.Name, i, e.Type, e.ID, e.BalanceAfter, before)
		}
		if d := calendar.DateOf(e.OccurredAt, loc); e.Day != d.String() {
			t.Errorf("%s entry %s occurred at %s: day %s, want %s in the business timezone", p.Name, e.ID, e.OccurredAt, e.Day, d)
		}
		switch e.Type {
		case "FEE", "REWARD":
			if e.Task == nil {
				t.Errorf("%s %s entry %s has no task", p.Name, e.Type, e.ID)
				continue
			}
			if e.Day == today.String() {
				earned += amount
			}
			verb := map[string]string{"FEE": "Fee", "REWARD": "Reward"}[e.Type]
			if e.Task.JiraID == nil || e.Description != verb+" for task "+*e.Task.JiraID+" "+e.Task.Title {
				t.Errorf("%s entry description %q for task %+v", p.Name, e.Description, *e.Task)
			}
		case "PAYOUT":
			if e.Task != nil || amount >= 0 {
				t.Errorf("%s payout entry %+v", p.Name, e)
			}
		default:
			t.Errorf("%s entry of type %q", p.Name, e.Type)
		}
	}
	if cents(t, balance) != sum {
		t.Errorf("%s balance %s ≠ sum of its %d entries %s (R-ACC-3)", p.Name, balance, len(entries), sum)
	}
	if len(entries) > 0 && entries[0].BalanceAfter != balance {
		t.Errorf("%s balance %s ≠ the newest entry's balance after %s", p.Name, balance, entries[0].BalanceAfter)
	}
	if cents(t, earnedToday) != earned {
		t.Errorf("%s earnedToday %s ≠ sum of today's fees and rewards %s", p.Name, earnedToday, earned)
	}
}

// checkDays checks the per-day view against the entries, and the day filter of the log.
func checkDays(t *testing.T, base string, p *popug, entries []scenarioEntry, from, to calendar.Date) {
	t.Helper()
	var r struct {
		MyBillingAccount struct {
			Days []struct{ Date, Earned, PaidOut string }
		}
	}
	mustDo(t, base, p.Token, `query($from:Date!,$to:Date!){myBillingAccount{days(from:$from,to:$to){date earned paidOut}}}`,
		map[string]any{"from": from.String(), "to": to.String()}, &r)
	days := r.MyBillingAccount.Days
	if len(days) != 2 {
		t.Fatalf("%s days(%s, %s) = %+v, want two days", p.Name, from, to, days)
	}
	for i, d := range days {
		date := from.AddDays(i)
		var earned, paid money.Cents
		n := 0
		for _, e := range entries {
			if e.Day != date.String() {
				continue
			}
			n++
			switch e.Type {
			case "FEE", "REWARD":
				earned += cents(t, e.Amount)
			case "PAYOUT":
				paid -= cents(t, e.Amount)
			}
		}
		if d.Date != date.String() || cents(t, d.Earned) != earned || cents(t, d.PaidOut) != paid {
			t.Errorf("%s day %d = %+v, want %s earned %s paid out %s", p.Name, i, d, date, earned, paid)
		}
		var f struct {
			MyBillingAccount struct{ Entries struct{ TotalCount int } }
		}
		mustDo(t, base, p.Token, `query($d:Date){myBillingAccount{entries(day:$d){totalCount}}}`, map[string]any{"d": date.String()}, &f)
		if f.MyBillingAccount.Entries.TotalCount != n {
			t.Errorf("%s entries(day: %s) totalCount = %d, want %d", p.Name, date, f.MyBillingAccount.Entries.TotalCount, n)
		}
	}
}

// checkTaskPrices checks every task's entries across all ledgers: one fee per assignment, the
// same fee each time, one reward for a completion, to the completing popug, prices in their
// ranges (R-ACC-1, R-ACC-2, R-ACC-4).
func checkTaskPrices(t *testing.T, s scenarioState, ledgers map[string][]scenarioEntry, assigneeNow map[string]string, byID map[string]*popug, wantFees, wantRewards int) {
	t.Helper()
	type posting struct {
		account string
		amount  money.Cents
	}
	fees, rewards := map[string][]posting{}, map[string][]posting{}
	nFees, nRewards := 0, 0
	for account, entries := range ledgers {
		for _, e := range entries {
			if e.Task == nil {
				continue
			}
			if _, ok := s.tasks[e.Task.ID]; !ok {
				t.Errorf("an entry of %s names an unknown task %s", byID[account].Name, e.Task.ID)
				continue
			}
			m := posting{account: account, amount: cents(t, e.Amount)}
			switch e.Type {
			case "FEE":
				fees[e.Task.ID] = append(fees[e.Task.ID], m)
				nFees++
			case "REWARD":
				rewards[e.Task.ID] = append(rewards[e.Task.ID], m)
				nRewards++
			}
		}
	}
	if nFees != wantFees || nRewards != wantRewards {
		t.Errorf("the ledgers hold %d fees and %d rewards, want %d and %d (one per assignment and completion)", nFees, nRewards, wantFees, wantRewards)
	}
	for id, task := range s.tasks {
		f := fees[id]
		if len(f) != s.assignments[id] {
			t.Errorf("task %s (%s): %d fees, want %d assignments", id, task.JiraID, len(f), s.assignments[id])
		}
		hasCurrent := false
		for _, m := range f {
			if m.amount != f[0].amount {
				t.Errorf("task %s: fees %s and %s differ; a price never changes", id, f[0].amount, m.amount)
			}
			if r := byID[m.account].Role; r != "WORKER" && r != "ACCOUNTANT" {
				t.Errorf("task %s: a fee charged to %s (%s)", id, byID[m.account].Name, r)
			}
			hasCurrent = hasCurrent || m.account == assigneeNow[id]
		}
		if len(f) > 0 && (-f[0].amount < money.Dollars(10) || -f[0].amount > money.Dollars(20) || f[0].amount%100 != 0) {
			t.Errorf("task %s: fee %s, want whole dollars in [10, 20]", id, -f[0].amount)
		}
		if !hasCurrent {
			t.Errorf("task %s: its assignee %s was never charged its fee", id, assigneeNow[id])
		}
		r := rewards[id]
		by, done := s.completedBy[id]
		switch {
		case !done && len(r) > 0:
			t.Errorf("task %s is open but paid %d rewards", id, len(r))
		case done && len(r) != 1:
			t.Errorf("task %s: %d rewards for one completion", id, len(r))
		case done:
			if r[0].account != by {
				t.Errorf("task %s: reward paid to %s, completed by %s", id, byID[r[0].account].Name, byID[by].Name)
			}
			if r[0].amount < money.Dollars(20) || r[0].amount > money.Dollars(40) || r[0].amount%100 != 0 {
				t.Errorf("task %s: reward %s, want whole dollars in [20, 40]", id, r[0].amount)
			}
		}
	}
}

// checkManagementEarnings checks the company figures against all ledgers (R-ACC-6).
func checkManagementEarnings(t *testing.T, base string, viewers []*popug, ledgers map[string][]scenarioEntry, from, to calendar.Date) {
	t.Helper()
	want := map[string]money.Cents{}
	for _, entries := range ledgers {
		for _, e := range entries {
			if e.Type == "FEE" || e.Type == "REWARD" {
				want[e.Day] -= cents(t, e.Amount)
			}
		}
	}
	for _, p := range viewers {
		var r struct {
			ManagementEarnings []struct{ Date, ManagementEarnings string }
		}
		mustDo(t, base, p.Token, `query($from:Date!,$to:Date!){managementEarnings(from:$from,to:$to){date managementEarnings}}`,
			map[string]any{"from": from.String(), "to": to.String()}, &r)
		if len(r.ManagementEarnings) != 2 {
			t.Fatalf("managementEarnings(%s, %s) as %s = %+v, want two days", from, to, p.Name, r.ManagementEarnings)
		}
		for i, d := range r.ManagementEarnings {
			date := from.AddDays(i)
			if d.Date != date.String() || cents(t, d.ManagementEarnings) != want[date.String()] {
				t.Errorf("managementEarnings as %s: %+v, want %s: %s", p.Name, d, date, want[date.String()])
			}
		}
	}
	t.Logf("management earnings %s: %s", to, want[to.String()])
}

// checkBillingAccess checks who may see what (R-ACC-5) and the argument errors (R-API-4, R-API-5).
func checkBillingAccess(t *testing.T, base string, worker, otherWorker, manager, accountant, admin *popug, today calendar.Date) {
	t.Helper()
	yesterday := today.AddDays(-1)
	rng := map[string]any{"from": yesterday.String(), "to": today.String()}
	const (
		one      = `query($id:ID!){billingAccount(accountId:$id){account{id} balance earnedToday entries{totalCount}}}`
		many     = `{billingAccounts{totalCount edges{node{balance}}}}`
		earnings = `query($from:Date!,$to:Date!){managementEarnings(from:$from,to:$to){date managementEarnings}}`
	)
	for _, p := range []*popug{worker, manager} {
		t.Run("access/"+p.Role, func(t *testing.T) {
			mustFail(t, base, p.Token, "FORBIDDEN", one, map[string]any{"id": otherWorker.ID})
			mustFail(t, base, p.Token, "FORBIDDEN", one, map[string]any{"id": admin.ID})
			mustFail(t, base, p.Token, "FORBIDDEN", many, nil)
			mustFail(t, base, p.Token, "FORBIDDEN", earnings, rng)
			var own struct {
				BillingAccount struct{ Account struct{ ID string } }
			}
			mustDo(t, base, p.Token, one, map[string]any{"id": p.ID}, &own)
			if own.BillingAccount.Account.ID != p.ID {
				t.Errorf("%s's own billingAccount = %+v", p.Name, own)
			}
		})
	}
	for _, p := range []*popug{accountant, admin} {
		t.Run("access/"+p.Role, func(t *testing.T) {
			var r struct {
				BillingAccount struct{ Account struct{ ID string } }
			}
			mustDo(t, base, p.Token, one, map[string]any{"id": worker.ID}, &r)
			if r.BillingAccount.Account.ID != worker.ID {
				t.Errorf("billingAccount(%s) as %s = %+v", worker.ID, p.Role, r)
			}
			mustDo(t, base, p.Token, many, nil, nil)
			mustDo(t, base, p.Token, earnings, rng, nil)
		})
	}
	t.Run("errors", func(t *testing.T) {
		mustFail(t, base, "", "UNAUTHENTICATED", `{myBillingAccount{balance}}`, nil)
		mustFail(t, base, "", "UNAUTHENTICATED", one, map[string]any{"id": worker.ID})
		mustFail(t, base, accountant.Token, "NOT_FOUND", one, map[string]any{"id": "6f1c1f0e-8a7b-4c1e-9d55-000000000000"})
		mustFail(t, base, accountant.Token, "BAD_USER_INPUT", one, map[string]any{"id": "not-an-id"})
		// R-API-5: first above 100 is refused.
		mustFail(t, base, accountant.Token, "BAD_USER_INPUT", `{billingAccounts(first:101){totalCount}}`, nil)
		mustFail(t, base, worker.Token, "BAD_USER_INPUT", `{myBillingAccount{entries(first:101){totalCount}}}`, nil)
		mustFail(t, base, worker.Token, "BAD_USER_INPUT", `{myBillingAccount{entries(after:"garbage"){totalCount}}}`, nil)
		// Dates: malformed (as a literal and as a variable) and reversed ranges.
		for _, bad := range []string{"2026-02-30", "yesterday", "2026-1-05", ""} {
			mustFail(t, base, admin.Token, "BAD_USER_INPUT", earnings, map[string]any{"from": bad, "to": today.String()})
			mustFail(t, base, admin.Token, "BAD_USER_INPUT", fmt.Sprintf(`{managementEarnings(from:%q,to:%q){date}}`, today.String(), bad), nil)
			mustFail(t, base, worker.Token, "BAD_USER_INPUT", fmt.Sprintf(`{myBillingAccount{days(from:%q,to:%q){date}}}`, bad, today.String()), nil)
			mustFail(t, base, worker.Token, "BAD_USER_INPUT", `query($d:Date){myBillingAccount{entries(day:$d){totalCount}}}`, map[string]any{"d": bad})
		}
		reversed := map[string]any{"from": today.String(), "to": yesterday.String()}
		mustFail(t, base, admin.Token, "BAD_USER_INPUT", earnings, reversed)
		mustFail(t, base, worker.Token, "BAD_USER_INPUT", `query($from:Date!,$to:Date!){myBillingAccount{days(from:$from,to:$to){date}}}`, reversed)
	})
}
