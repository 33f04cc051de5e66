package accounting_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
)

// moneyEvent is an assignment or completion of a scenario and the entry it must produce.
type moneyEvent struct {
	EventID string
	Task    uuid.UUID
	Account uuid.UUID
	Type    string // FEE or REWARD
	At      time.Time
}

// scenario is a stream of events of several popugs and tasks, as the tracker and auth would
// publish them, with the entries it must produce (R-ACC-2, R-ACC-4).
type scenario struct {
	Accounts []uuid.UUID
	Tasks    []uuid.UUID
	Labels   map[uuid.UUID]string
	Events   []event.Envelope
	Money    []moneyEvent
}

// newScenario draws a stream from seed: every account is created; every task is created,
// assigned one to three times (a shuffle may land on the same popug) and completed by its last
// assignee two times out of three. The first account is "hot": half of all assignments go to it.
// Events are spread over three days from start.
func newScenario(tb testing.TB, accounts, tasks int, seed uint64) *scenario {
	tb.Helper()
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	s := &scenario{Labels: map[uuid.UUID]string{}}
	at := func() time.Time { return start.Add(-24*time.Hour + time.Duration(r.IntN(72*60))*time.Minute) }
	for i := range accounts {
		id := uuid.New()
		s.Accounts = append(s.Accounts, id)
		s.Events = append(s.Events, accountCreated(tb, id, fmt.Sprintf("popug_%d", i), identity.Worker, start.Add(-48*time.Hour)))
	}
	pick := func() uuid.UUID {
		if r.IntN(2) == 0 {
			return s.Accounts[0]
		}
		return s.Accounts[r.IntN(len(s.Accounts))]
	}
	for i := range tasks {
		id := uuid.New()
		s.Tasks = append(s.Tasks, id)
		jira, title := fmt.Sprintf("UBERPOP-%d", 100+i), fmt.Sprintf("Task number %d", i)
		s.Labels[id] = jira + " " + title
		s.Events = append(s.Events, taskCreated(tb, id, strp(jira), title, start.Add(-48*time.Hour)))
		var last uuid.UUID
		for range 1 + r.IntN(3) {
			last = pick()
			when := at()
			e := taskAssigned(tb, id, last, when)
			s.Events = append(s.Events, e)
			s.Money = append(s.Money, moneyEvent{EventID: e.ID, Task: id, Account: last, Type: "FEE", At: when})
		}
		if r.IntN(3) > 0 {
			when := at()
			e := taskCompleted(tb, id, last, when)
			s.Events = append(s.Events, e)
			s.Money = append(s.Money, moneyEvent{EventID: e.ID, Task: id, Account: last, Type: "REWARD", At: when})
		}
	}
	return s
}

// mustApplied checks the database holds exactly the scenario's entries: one per money event,
// for the right account, amount and business day, and balances that are their sums.
func (s *scenario) mustApplied(tb testing.TB, h *harness) {
	tb.Helper()
	l := h.mustConsistent(tb)
	prices := h.mustPrices(tb)
	want := map[uuid.UUID]int64{}
	for _, m := range s.Money {
		es := l.BySource(m.EventID)
		if len(es) != 1 {
			tb.Errorf("%s of task %s: %d entries, want exactly 1 (R-ACC-4)", m.Type, m.Task, len(es))
			continue
		}
		p, ok := prices[m.Task]
		if !ok {
			tb.Errorf("task %s has no price", m.Task)
			continue
		}
		amount := int64(p.Reward)
		if m.Type == "FEE" {
			amount = -int64(p.Fee)
		}
		want[m.Account] += amount
		e := es[0]
		day := calendar.DateOf(m.At, h.loc).String()
		if e.Account != m.Account || e.Type != m.Type || e.Amount != amount || e.Task != m.Task ||
			e.Day != day || !e.OccurredAt.Equal(m.At) {
			tb.Errorf("entry %+v, want %s %d for %s on %s", e, m.Type, amount, m.Account, day)
		}
	}
	var mine int
	for _, a := range s.Accounts {
		mine += len(l.ByAccount(a))
	}
	if mine != len(s.Money) {
		tb.Errorf("%d entries, want %d (one per assignment and completion)", mine, len(s.Money))
	}
	for _, a := range s.Accounts {
		if got := int64(h.mustBalance(tb, a)); got != want[a] {
			tb.Errorf("balance of %s = %d, want %d", a, got, want[a])
		}
	}
	for _, task := range s.Tasks {
		if _, ok := prices[task]; !ok {
			tb.Errorf("task %s has no price", task)
		}
	}
	// Every task.created arrived: every line of the audit log names its task in full.
	for _, a := range s.Accounts {
		for _, e := range h.mustEntries(tb, a) {
			if label := s.Labels[*e.TaskID]; !strings.HasSuffix(e.Description, " for task "+label) {
				tb.Errorf("audit log line %q, want it to name %q", e.Description, label)
			}
		}
	}
}
