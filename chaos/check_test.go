package chaos

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/uberpopug/ates/services/accounting"
	"github.com/uberpopug/ates/services/analytics"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/mail/mailtest"
	"github.com/uberpopug/ates/services/money"
	"github.com/uberpopug/ates/services/tasks"
)

// The invariants the suite checks, in the order the report lists them.
const (
	invBalance   = "balance = sum of its entries (R-ACC-3)"
	invChain     = "balanceAfter chains entry to entry (R-ACC-3)"
	invFee       = "one FEE per task.assigned (R-ACC-2, R-ACC-4)"
	invReward    = "one REWARD per task.completed (R-ACC-2, R-ACC-4)"
	invPayout    = "payouts: one per payment, account and close (R-ACC-8)"
	invEmail     = "emails: one per payment (R-ACC-8)"
	invAcked     = "acknowledged mutations applied (R-REL-1)"
	invRefused   = "refused mutations not applied (R-REL-4)"
	invTasks     = "tasks agree with their events (R-TASK-2, R-TASK-5)"
	invAnalytics = "analytics agrees with accounting (R-AN-2, R-ACC-6)"
	invDead      = "no dead letters (R-REL-2)"
	invOutbox    = "outboxes drained (R-EVT-4)"
	invConsumed  = "every event consumed (R-EVT-5)"
	invBalPush   = "balance pushes: none lost without RESYNC (R-REL-1)"
	invBoardPush = "board pushes: none lost without RESYNC (R-LIVE-1)"
	invTruePush  = "pushes match the ledger and the events"
	invRefetch   = "a RESYNC is followed by a refetch"
	invErrors    = "errors: UNAVAILABLE with retryAfter, no other failure (R-REL-4)"
	invStop      = "processes stop cleanly at the end (R-OPS-5)"
	invRecovery  = "events flow again within 5 s of the broker's return (R-REL-3)"
)

var invariants = []string{invBalance, invChain, invFee, invReward, invPayout, invEmail, invAcked, invRefused,
	invTasks, invAnalytics, invDead, invOutbox, invConsumed, invBalPush, invBoardPush, invTruePush, invRefetch, invErrors, invRecovery, invStop}

// checkRecoveries holds the faults to the recovery times the specification states.
func checkRecoveries(c *checks, runs []*faultRun) {
	for _, r := range runs {
		if r.Bound > 0 && (r.Recovered.IsZero() || r.Recovered.Sub(r.End) > r.Bound) {
			c.add(invRecovery, r.End, "%s: flowing again after %s, want within %v", r.Name, since(r.End, r.Recovered), r.Bound)
		}
	}
}

// registration bounds how long after its subscribe message a subscription starts receiving:
// a change committed later than that must be pushed to it.
const registration = 3 * time.Second

// violation is one broken invariant; At, when set, is when the offending change happened, to
// count it against the fault running then.
type violation struct {
	Invariant string
	At        time.Time
	Detail    string
}

// checks collects violations.
type checks struct {
	list []violation
}

func (c *checks) add(inv string, at time.Time, format string, args ...any) {
	c.list = append(c.list, violation{Invariant: inv, At: at, Detail: fmt.Sprintf(format, args...)})
}

func (c *checks) count(inv string) int {
	n := 0
	for _, v := range c.list {
		if v.Invariant == inv {
			n++
		}
	}
	return n
}

// run is everything the checks need: the snapshot, the clients' records and the analytics
// figures read through GraphQL.
type run struct {
	sn        *snapshot
	mutations []*mutation
	answers   []answer
	sessions  []*session
	mails     []mailtest.Message
	summaries map[string]summary // day → analytics' figures
	earnings  map[string]int64   // day → accounting's managementEarnings through GraphQL
	today     string
}

type summary struct {
	Earnings int64
	Negative int
}

// events returns a context's outbox events of a name.
func (sn *snapshot) events(ctx, name string) []*outboxEvent {
	var out []*outboxEvent
	for _, e := range sn.outbox[ctx] {
		if e.Env.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// check runs every invariant over the run.
func check(r *run) *checks {
	c := &checks{}
	checkLedger(c, r)
	checkPayouts(c, r)
	checkMutations(c, r)
	checkTasks(c, r)
	checkAnalytics(c, r)
	checkEvents(c, r)
	checkBalancePushes(c, r)
	checkBoardPushes(c, r)
	checkRefetches(c, r)
	checkErrors(c, r)
	return c
}

func checkLedger(c *checks, r *run) {
	sn := r.sn
	for account, balance := range sn.balances {
		var sum, after int64
		for _, e := range sn.byAccount[account] {
			sum += e.Amount
			if e.BalanceAfter != sum {
				c.add(invChain, e.Created, "entry %s of %s: balanceAfter %d, the entries before it and it sum to %d", e.ID, account, e.BalanceAfter, sum)
			}
			after = e.BalanceAfter
		}
		if sum != balance {
			c.add(invBalance, time.Time{}, "account %s: balance %d, entries sum to %d (last balanceAfter %d)", account, balance, sum, after)
		}
	}
	for account := range sn.byAccount {
		if _, ok := sn.balances[account]; !ok {
			c.add(invBalance, time.Time{}, "entries of account %s, which has no billing account", account)
		}
	}
	// Exactly one FEE per assignment and one REWARD per completion, for the right account and
	// amount; no FEE or REWARD without its event.
	bySource := map[string][]*entry{}
	for _, e := range sn.entries {
		if e.Type != contract.EntryPayout {
			bySource[e.Source] = append(bySource[e.Source], e)
		}
	}
	seen := map[string]bool{}
	for _, ev := range sn.events("tasks", contract.TaskAssigned) {
		var d contract.TaskAssignedV1
		if ev.Env.DecodeData(&d) != nil {
			c.add(invFee, ev.Created, "task.assigned %s unreadable", ev.Env.ID)
			continue
		}
		seen[ev.Env.ID] = true
		es := bySource[ev.Env.ID]
		if len(es) != 1 {
			c.add(invFee, ev.Created, "task.assigned %s (task %s to %s) has %d ledger entries", ev.Env.ID, d.TaskID, d.AssigneeID, len(es))
			continue
		}
		e := es[0]
		if p, ok := sn.prices[d.TaskID]; e.Type != contract.EntryFee || e.Account != d.AssigneeID || !ok || e.Amount != -p.Fee {
			c.add(invFee, ev.Created, "task.assigned %s: entry %s %s %d to %s, want FEE -%d to %s", ev.Env.ID, e.ID, e.Type, e.Amount, e.Account, p.Fee, d.AssigneeID)
		}
	}
	for _, ev := range sn.events("tasks", contract.TaskCompleted) {
		var d contract.TaskCompletedV1
		if ev.Env.DecodeData(&d) != nil {
			c.add(invReward, ev.Created, "task.completed %s unreadable", ev.Env.ID)
			continue
		}
		seen[ev.Env.ID] = true
		es := bySource[ev.Env.ID]
		if len(es) != 1 {
			c.add(invReward, ev.Created, "task.completed %s (task %s by %s) has %d ledger entries", ev.Env.ID, d.TaskID, d.AssigneeID, len(es))
			continue
		}
		e := es[0]
		if p, ok := sn.prices[d.TaskID]; e.Type != contract.EntryReward || e.Account != d.AssigneeID || !ok || e.Amount != p.Reward {
			c.add(invReward, ev.Created, "task.completed %s: entry %s %s %d to %s, want REWARD %d to %s", ev.Env.ID, e.ID, e.Type, e.Amount, e.Account, p.Reward, d.AssigneeID)
		}
	}
	for source, es := range bySource {
		if !seen[source] {
			for _, e := range es {
				inv := invFee
				if e.Type == contract.EntryReward {
					inv = invReward
				}
				c.add(inv, e.Created, "entry %s (%s %d) comes from %s, no task.assigned or task.completed", e.ID, e.Type, e.Amount, source)
			}
		}
	}
}

var subjectLine = regexp.MustCompile(`^aTES payout for (\d{4}-\d{2}-\d{2}): \$(-?\d+\.\d{2})$`)

func checkPayouts(c *checks, r *run) {
	sn := r.sn
	byEntry := map[string]payment{}
	perClose := map[string]int{}
	for _, p := range sn.payments {
		byEntry[p.Entry] = p
		key := fmt.Sprintf("%s/%d", p.Account, p.Close)
		perClose[key]++
		if perClose[key] == 2 {
			c.add(invPayout, time.Time{}, "account %s paid twice by close %d", p.Account, p.Close)
		}
		e := sn.byEntry[p.Entry]
		switch {
		case e == nil:
			c.add(invPayout, time.Time{}, "payment %s has no ledger entry", p.ID)
		case e.Type != contract.EntryPayout || e.Account != p.Account || e.Amount != -p.Amount || e.BalanceAfter != 0 || p.Amount <= 0:
			c.add(invPayout, e.Created, "payment %s of %d to %s: entry %s %s %d (balance after %d)", p.ID, p.Amount, p.Account, e.ID, e.Type, e.Amount, e.BalanceAfter)
		}
	}
	for _, e := range sn.entries {
		if _, ok := byEntry[e.ID]; e.Type == contract.EntryPayout && !ok {
			c.add(invPayout, e.Created, "PAYOUT %s of %s has no payment", e.ID, e.Account)
		}
	}
	// Emails: the sink's messages and the payments, as (address, day, amount).
	want := map[string]int{}
	for _, p := range sn.payments {
		want[fmt.Sprintf("%s %s %s", p.Email, p.Day, money.Cents(p.Amount))]++
		if !p.EmailSent {
			c.add(invEmail, time.Time{}, "payment %s of %s: email not sent", p.ID, p.Account)
		}
	}
	got := map[string]int{}
	for _, m := range r.mails {
		parsed, err := mailtest.Parse(m.Data)
		if err != nil || len(parsed.To) != 1 {
			c.add(invEmail, time.Time{}, "an email the sink cannot read: %v", err)
			continue
		}
		s := subjectLine.FindStringSubmatch(parsed.Subject)
		if s == nil {
			c.add(invEmail, time.Time{}, "an email with subject %q", parsed.Subject)
			continue
		}
		got[fmt.Sprintf("%s %s %s", parsed.To[0].Address, s[1], s[2])]++
	}
	for k, n := range want {
		if got[k] != n {
			c.add(invEmail, time.Time{}, "%d payments (address, day, amount) %s, %d emails", n, k, got[k])
		}
	}
	for k, n := range got {
		if want[k] == 0 {
			c.add(invEmail, time.Time{}, "%d emails %s, no payment", n, k)
		}
	}
}

// checkMutations holds every acknowledged mutation to its effect and every refused one to
// none, through the events that carry its request id as correlation id (R-EVT-1).
func checkMutations(c *checks, r *run) {
	sn := r.sn
	byCorr := map[string][]*outboxEvent{}
	for _, ctx := range contexts {
		for _, e := range sn.outbox[ctx] {
			byCorr[e.Env.CorrelationID] = append(byCorr[e.Env.CorrelationID], e)
		}
	}
	named := func(es []*outboxEvent, name string) []*outboxEvent {
		var out []*outboxEvent
		for _, e := range es {
			if e.Env.Name == name {
				out = append(out, e)
			}
		}
		return out
	}
	for _, m := range r.mutations {
		es := byCorr[m.RequestID]
		switch m.Op {
		case "createTask", "completeTask", "shuffleTasks", "closeBillingDay":
		default:
			continue
		}
		if m.Outcome == refused {
			if len(es) > 0 {
				c.add(invRefused, m.Start, "%s by %s refused (%s: %s) yet applied: %d events, e.g. %s", m.Op, m.Client, m.Code, m.Message, len(es), es[0].Env.Name)
			}
			continue
		}
		if m.Outcome != acked {
			continue
		}
		switch m.Op {
		case "createTask":
			t, ok := sn.tasks[m.TaskID]
			if !ok || t.Title != m.Title {
				c.add(invAcked, m.Start, "createTask %q by %s acknowledged as %s: task %+v", m.Title, m.Client, m.TaskID, t)
			}
			if len(named(es, contract.TaskCreated)) != 1 || len(named(es, contract.TaskAssigned)) != 1 {
				c.add(invAcked, m.Start, "createTask %s by %s: %d task.created, %d task.assigned events", m.TaskID, m.Client, len(named(es, contract.TaskCreated)), len(named(es, contract.TaskAssigned)))
			}
		case "completeTask":
			if t := sn.tasks[m.TaskID]; t.Status != contract.TaskDone || t.Assignee != m.Account {
				c.add(invAcked, m.Start, "completeTask %s by %s acknowledged: task %+v", m.TaskID, m.Client, t)
			}
			done := named(es, contract.TaskCompleted)
			if len(done) != 1 {
				c.add(invAcked, m.Start, "completeTask %s by %s: %d task.completed events", m.TaskID, m.Client, len(done))
				continue
			}
			var d contract.TaskCompletedV1
			if done[0].Env.DecodeData(&d) != nil || d.TaskID != m.TaskID || d.AssigneeID != m.Account {
				c.add(invAcked, m.Start, "completeTask %s by %s: event %s says %+v", m.TaskID, m.Client, done[0].Env.ID, d)
			}
		case "shuffleTasks":
			if n := len(named(es, contract.TaskAssigned)); n != m.Reassigned {
				c.add(invAcked, m.Start, "shuffleTasks by %s acknowledged %d reassigned, %d task.assigned events", m.Client, m.Reassigned, n)
			}
		case "closeBillingDay":
			paid := named(es, contract.PaymentMade)
			var total int64
			for _, e := range paid {
				var d contract.PaymentMadeV1
				if e.Env.DecodeData(&d) == nil {
					total += d.Amount
				}
			}
			if len(paid) != m.Paid || total != m.TotalPaid {
				c.add(invAcked, m.Start, "closeBillingDay acknowledged %d accounts, %d cents; its events: %d payments, %d cents", m.Paid, m.TotalPaid, len(paid), total)
			}
		}
	}
}

// checkTasks holds each task to its events: created once, assigned to the assignee of its last
// assignment, DONE exactly when completed once.
func checkTasks(c *checks, r *run) {
	sn := r.sn
	created := map[string]int{}
	completed := map[string]int{}
	lastAssignee := map[string]string{}
	for _, e := range sn.outbox["tasks"] {
		switch e.Env.Name {
		case contract.TaskCreated:
			var d contract.TaskCreatedV2
			if e.Env.DecodeData(&d) == nil {
				created[d.TaskID]++
			}
		case contract.TaskAssigned:
			var d contract.TaskAssignedV1
			if e.Env.DecodeData(&d) == nil {
				lastAssignee[d.TaskID] = d.AssigneeID
			}
		case contract.TaskCompleted:
			var d contract.TaskCompletedV1
			if e.Env.DecodeData(&d) == nil {
				completed[d.TaskID]++
			}
		}
	}
	for id, t := range sn.tasks {
		if created[id] != 1 {
			c.add(invTasks, time.Time{}, "task %s: %d task.created events", id, created[id])
		}
		if lastAssignee[id] != t.Assignee {
			c.add(invTasks, time.Time{}, "task %s is %s's, its last task.assigned says %q", id, t.Assignee, lastAssignee[id])
		}
		if want := map[bool]int{true: 1, false: 0}[t.Status == contract.TaskDone]; completed[id] != want {
			c.add(invTasks, time.Time{}, "task %s is %s with %d task.completed events", id, t.Status, completed[id])
		}
	}
	for id := range created {
		if _, ok := sn.tasks[id]; !ok {
			c.add(invTasks, time.Time{}, "task.created for %s, which does not exist", id)
		}
	}
}

// checkAnalytics holds analytics' read models to accounting's ledger: the same entries and
// balances, and per day the same management earnings and negative balances (R-AN-2).
func checkAnalytics(c *checks, r *run) {
	sn := r.sn
	for _, e := range sn.entries {
		a, ok := sn.anEntries[e.ID]
		if !ok || a.Account != e.Account || a.Amount != e.Amount || a.After != e.BalanceAfter || a.Seq != e.Seq {
			c.add(invAnalytics, e.Created, "entry %s: analytics has %+v (found %v), accounting %d/%d/%d", e.ID, a, ok, e.Amount, e.BalanceAfter, e.Seq)
		}
	}
	if len(sn.anEntries) != len(sn.entries) {
		c.add(invAnalytics, time.Time{}, "analytics holds %d entries, accounting %d", len(sn.anEntries), len(sn.entries))
	}
	for account, es := range sn.byAccount {
		last := es[len(es)-1]
		if got := sn.anBalance[account]; got != [2]int64{last.Seq, last.BalanceAfter} {
			c.add(invAnalytics, time.Time{}, "account %s: analytics has sequence/balance %v, accounting %d/%d", account, got, last.Seq, last.BalanceAfter)
		}
	}
	for _, day := range ledgerDays(sn) {
		var earned int64
		for _, e := range sn.entries {
			if e.Day == day && e.Type != contract.EntryPayout {
				earned -= e.Amount
			}
		}
		negative := 0
		for _, es := range sn.byAccount {
			var balance int64
			for _, e := range es {
				if e.Day <= day || day == r.today {
					balance = e.BalanceAfter
				}
			}
			if balance < 0 {
				negative++
			}
		}
		s, ok := r.summaries[day]
		if !ok || s.Earnings != earned || s.Negative != negative {
			c.add(invAnalytics, time.Time{}, "day %s: analyticsSummary %+v (read %v), the ledger: earnings %d, %d negative balances", day, s, ok, earned, negative)
		}
		if got, ok := r.earnings[day]; !ok || got != earned {
			c.add(invAnalytics, time.Time{}, "day %s: accounting's managementEarnings %d (read %v), its ledger %d", day, got, ok, earned)
		}
	}
}

// ledgerDays are the business days the ledger has entries on, oldest first, and today.
func ledgerDays(sn *snapshot) []string {
	set := map[string]bool{}
	for _, e := range sn.entries {
		set[e.Day] = true
	}
	days := make([]string, 0, len(set))
	for d := range set {
		days = append(days, d)
	}
	sort.Strings(days)
	return days
}

// checkEvents: nothing dead-lettered, nothing left unsent, and every event each consumer
// subscribes to recorded in its inbox.
func checkEvents(c *checks, r *run) {
	sn := r.sn
	for _, ctx := range contexts {
		if n := sn.dead[ctx]; n > 0 {
			c.add(invDead, time.Time{}, "%s: %d dead letters", ctx, n)
		}
		if n := sn.unsent[ctx]; n > 0 {
			c.add(invOutbox, time.Time{}, "%s: %d outbox events unsent", ctx, n)
		}
	}
	consumers := map[string]struct {
		topics    []string
		producers []string
	}{
		"tasks":      {tasks.Topics, []string{"auth"}},
		"accounting": {accounting.Topics, []string{"auth", "tasks"}},
		"analytics":  {analytics.Topics, []string{"auth", "tasks", "accounting"}},
	}
	for consumer, want := range consumers {
		missing := 0
		var first *outboxEvent
		for _, p := range want.producers {
			for _, e := range sn.outbox[p] {
				if slices.Contains(want.topics, e.Env.Name) && !sn.processed[consumer][e.Env.ID] {
					missing++
					if first == nil {
						first = e
					}
				}
			}
		}
		if missing > 0 {
			c.add(invConsumed, first.Created, "%s consumed none of %d events it subscribes to, e.g. %s %s", consumer, missing, first.Env.Name, first.Env.ID)
		}
	}
}

// checkBalancePushes: within one subscription, an account's pushes are its ledger entries one
// after another; after the subscription began receiving, no entry is skipped; a subscription
// that still runs got every entry to the last. Only a RESYNC (or a broken socket) may end one
// with entries unpushed, and then the client refetches (R-REL-1, R-ACC-10).
func checkBalancePushes(c *checks, r *run) {
	sn := r.sn
	for _, s := range r.sessions {
		if s.Feed != balanceFeed {
			continue
		}
		threshold := s.Start.Add(registration)
		if len(s.Balances) > 0 && s.Balances[0].At.Before(threshold) {
			threshold = s.Balances[0].At // it was registered by then
		}
		live := s.End.IsZero()
		byAccount := map[string][]*entry{}
		for _, p := range s.Balances {
			e := sn.byEntry[p.EntryID]
			if e == nil || e.Account != p.Account || e.Amount != p.Amount || e.BalanceAfter != p.BalanceAfter || p.Balance != p.BalanceAfter || e.Type != p.Type {
				c.add(invTruePush, p.At, "session %d (%s): push %+v, the ledger has %+v", s.ID, s.Socket, p, e)
				continue
			}
			if s.Follow != "" && p.Account != s.Follow {
				c.add(invTruePush, p.At, "session %d (%s) follows %s, was pushed %s's entry", s.ID, s.Socket, s.Follow, p.Account)
			}
			byAccount[e.Account] = append(byAccount[e.Account], e)
		}
		accounts := []string{s.Follow}
		if s.Follow == "" {
			accounts = accounts[:0]
			for a := range sn.byAccount {
				accounts = append(accounts, a)
			}
		}
		for _, a := range accounts {
			pushed := byAccount[a]
			ledger := sn.byAccount[a]
			for i := 1; i < len(pushed); i++ {
				if pushed[i].Seq <= pushed[i-1].Seq {
					c.add(invBalPush, pushed[i].Created, "session %d (%s): entry %d pushed after entry %d", s.ID, s.Socket, pushed[i].Seq, pushed[i-1].Seq)
				}
			}
			var first, last int64 = -1, -1
			if len(pushed) > 0 {
				first, last = pushed[0].Seq, pushed[len(pushed)-1].Seq
			}
			isPushed := map[int64]bool{}
			for _, e := range pushed {
				isPushed[e.Seq] = true
			}
			for _, e := range ledger {
				var missed bool
				switch {
				case isPushed[e.Seq]:
				case first >= 0 && e.Seq > first && e.Seq < last:
					missed = true // between two pushes of one subscription
				case (first < 0 || e.Seq < first) && e.Created.After(threshold) && (live || first >= 0):
					missed = true // committed after the subscription received, yet never pushed
				case live && e.Seq > last && e.Created.After(threshold):
					missed = true // the subscription still runs and never got it
				}
				if missed {
					c.add(invBalPush, e.Created, "session %d (%s via gateway %d, %s, ended %q): entry %d (%s %d of %s, committed %s) never pushed",
						s.ID, s.Socket, s.Gateway+1, s.Start.Format("15:04:05.000"), s.EndReason, e.Seq, e.Type, e.Amount, a, e.Created.Format("15:04:05.000"))
				}
			}
		}
	}
}

// boardKey identifies a task board change: the task, what happened, when.
func boardKey(task, kind string, at time.Time) string {
	return fmt.Sprintf("%s %s %d", task, kind, at.UnixMicro())
}

// checkBoardPushes: the task events a board follows reach it in relay order; events the relay
// published after the first one a subscription received (a later sent_at: the relay marks what
// it published in order) must all be pushed to it, up to its last push — to the end when it
// still runs (R-LIVE-1, R-REL-1).
func checkBoardPushes(c *checks, r *run) {
	sn := r.sn
	type change struct {
		ev               *outboxEvent
		key              string
		assignee, before string
	}
	var changes []*change
	byKey := map[string]*change{}
	for _, e := range sn.outbox["tasks"] {
		ch := &change{ev: e}
		switch e.Env.Name {
		case contract.TaskAssigned:
			var d contract.TaskAssignedV1
			if e.Env.DecodeData(&d) != nil {
				continue
			}
			kind := "CREATED"
			if d.Reason == contract.AssignedOnShuffle {
				kind = "REASSIGNED"
			}
			ch.key, ch.assignee = boardKey(d.TaskID, kind, d.AssignedAt), d.AssigneeID
			if d.PreviousAssigneeID != nil {
				ch.before = *d.PreviousAssigneeID
			}
		case contract.TaskCompleted:
			var d contract.TaskCompletedV1
			if e.Env.DecodeData(&d) != nil {
				continue
			}
			ch.key, ch.assignee = boardKey(d.TaskID, "COMPLETED", d.CompletedAt), d.AssigneeID
		default:
			continue
		}
		changes = append(changes, ch)
		byKey[ch.key] = ch
	}
	for _, s := range r.sessions {
		if s.Feed != boardFeed {
			continue
		}
		follows := func(ch *change) bool { return s.Follow == "" || ch.assignee == s.Follow || ch.before == s.Follow }
		threshold := s.Start.Add(registration)
		if len(s.Board) > 0 && s.Board[0].At.Before(threshold) {
			threshold = s.Board[0].At
		}
		live := s.End.IsZero()
		pushed := map[*change]bool{}
		var firstSent, lastSent time.Time
		for _, p := range s.Board {
			ch := byKey[boardKey(p.TaskID, p.Kind, p.OccurredAt)]
			if ch == nil || !follows(ch) {
				c.add(invTruePush, p.At, "session %d (%s): board push %+v matches no followed event", s.ID, s.Socket, p)
				continue
			}
			if pushed[ch] {
				c.add(invBoardPush, p.At, "session %d (%s): %s pushed twice", s.ID, s.Socket, ch.key)
			}
			pushed[ch] = true
			if firstSent.IsZero() {
				firstSent = ch.ev.Sent
			}
			lastSent = ch.ev.Sent
		}
		for _, ch := range changes {
			if !follows(ch) || pushed[ch] {
				continue
			}
			sent := ch.ev.Sent
			var missed bool
			switch {
			case !firstSent.IsZero() && sent.After(firstSent) && (live || sent.Before(lastSent)):
				missed = true
			case firstSent.IsZero() && live && ch.ev.Created.After(threshold):
				missed = true
			}
			if missed {
				c.add(invBoardPush, ch.ev.Created, "session %d (%s via gateway %d, %s, ended %q): %s never pushed",
					s.ID, s.Socket, s.Gateway+1, s.Start.Format("15:04:05.000"), s.EndReason, ch.key)
			}
		}
	}
}

// checkRefetches: every subscription a RESYNC (or a push that came as an error) ended was
// followed, on its socket, by a new one whose client read the state again (R-REL-1).
func checkRefetches(c *checks, r *run) {
	for i, s := range r.sessions {
		if s.EndReason != "RESYNC" && !strings.HasPrefix(s.EndReason, "push error") {
			continue
		}
		ok := false
		for _, n := range r.sessions[i+1:] {
			if n.Socket == s.Socket && n.Feed == s.Feed && n.Follow == s.Follow {
				ok = !n.Refetched.IsZero()
				break
			}
		}
		if !ok {
			c.add(invRefetch, s.End, "session %d (%s) ended with %s and no refetch followed", s.ID, s.Socket, s.EndReason)
		}
	}
}

// expectedRefusals are the answers aTES owes a client in this run besides UNAVAILABLE: a
// completion of a task a shuffle took away, or of one already done (R-TASK-7, R-TASK-8).
var expectedRefusals = map[string]bool{"FORBIDDEN": true, "CONFLICT": true}

// checkErrors: every error answer is UNAVAILABLE with a retryAfter or an expected refusal; no
// request hangs (R-REL-4, R-API-4).
func checkErrors(c *checks, r *run) {
	for _, a := range r.answers {
		switch {
		case a.Code == "UNAVAILABLE" && (a.RetryAfter == nil || *a.RetryAfter < 1):
			c.add(invErrors, a.At, "%s: UNAVAILABLE without a retryAfter of at least 1 s: %v", a.Client, a.RetryAfter)
		case a.Code == "UNAVAILABLE", expectedRefusals[a.Code]:
		default:
			c.add(invErrors, a.At, "%s was answered %s: %s", a.Client, a.Code, a.Message)
		}
	}
	for _, m := range r.mutations {
		if d := m.End.Sub(m.Start); d > 15*time.Second {
			c.add(invErrors, m.Start, "%s by %s took %v (%s %s)", m.Op, m.Client, d.Round(time.Millisecond), m.Outcome, m.Code)
		}
		if m.Outcome == unknown && strings.Contains(m.Message, "Timeout") {
			c.add(invErrors, m.Start, "%s by %s got no answer: %s", m.Op, m.Client, m.Message)
		}
	}
}

// readFigures reads, as the admin, analytics' summary of every ledger day and accounting's
// management earnings over them.
func readFigures(ctx context.Context, admin *actor, sn *snapshot, today string) (map[string]summary, map[string]int64, error) {
	days := ledgerDays(sn)
	if !slices.Contains(days, today) {
		days = append(days, today)
	}
	sums := map[string]summary{}
	for _, d := range days {
		data, err := admin.query(ctx, admin.gw, `query($d: Date) { analyticsSummary(date: $d) { managementEarnings negativeBalanceCount } }`, map[string]any{"d": d})
		if err != nil {
			return nil, nil, err
		}
		var s struct {
			ManagementEarnings   string
			NegativeBalanceCount int
		}
		if err := decode(data, "analyticsSummary", &s); err != nil {
			return nil, nil, err
		}
		earned, err := money.Parse(s.ManagementEarnings)
		if err != nil {
			return nil, nil, err
		}
		sums[d] = summary{Earnings: int64(earned), Negative: s.NegativeBalanceCount}
	}
	data, err := admin.query(ctx, admin.gw, `query($f: Date!, $t: Date!) { managementEarnings(from: $f, to: $t) { date managementEarnings } }`,
		map[string]any{"f": days[0], "t": days[len(days)-1]})
	if err != nil {
		return nil, nil, err
	}
	var list []struct{ Date, ManagementEarnings string }
	if err := decode(data, "managementEarnings", &list); err != nil {
		return nil, nil, err
	}
	earnings := map[string]int64{}
	for _, d := range list {
		v, err := money.Parse(d.ManagementEarnings)
		if err != nil {
			return nil, nil, err
		}
		earnings[d.Date] = int64(v)
	}
	return sums, earnings, nil
}

// today is the current business day (ATES_TIMEZONE is UTC in the suite).
func today() string { return calendar.DateOf(time.Now(), time.UTC).String() }
