package accounting_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// constRand draws the same number every time, so two databases fed the same events price every
// task alike, whatever order they draw in.
type constRand int

func (c constRand) IntN(n int) int { return int(c) % n }

// eventStream is a day of work as the task tracker and auth publish it: accounts, tasks created
// (v1 and v2, some with Jira ids) and assigned, reshuffled, described again, completed; then
// redeliveries, and some money events ahead of their task's creation (R-ACC-4).
func eventStream(tb testing.TB, seed uint64) []event.Envelope {
	r := rand.New(rand.NewPCG(seed, 7))
	at := start
	tick := func() time.Time { at = at.Add(time.Duration(r.IntN(90)+1) * time.Minute); return at }
	var popugs []uuid.UUID
	var es []event.Envelope
	for i := range 5 {
		id := uuid.New()
		popugs = append(popugs, id)
		es = append(es, accountCreated(tb, id, fmt.Sprintf("popug%d", i), identity.Worker, tick()))
	}
	pick := func() uuid.UUID { return popugs[r.IntN(len(popugs))] }
	type open struct{ task, assignee uuid.UUID }
	var tasks []open
	var early []event.Envelope // money events delivered before their task's creation
	for i := range 60 {
		switch k := r.IntN(10); {
		case k < 4 || len(tasks) == 0:
			t := open{uuid.New(), pick()}
			var created event.Envelope
			switch i % 3 {
			case 0:
				created = taskCreatedV1(tb, t.task, fmt.Sprintf("[UBERPOP-%d] - Task %d", i, i), tick())
			case 1:
				created = taskCreated(tb, t.task, strp(fmt.Sprintf("UBERPOP-%d", i)), fmt.Sprintf("Task %d", i), tick())
			default:
				created = taskCreated(tb, t.task, nil, fmt.Sprintf("Task %d", i), tick())
			}
			assigned := taskAssigned(tb, t.task, t.assignee, at)
			if r.IntN(5) == 0 {
				early = append(early, assigned)
				es = append(es, assigned, created)
			} else {
				es = append(es, created, assigned)
			}
			tasks = append(tasks, t)
		case k < 6:
			for j := range tasks {
				tasks[j].assignee = pick()
				es = append(es, taskAssigned(tb, tasks[j].task, tasks[j].assignee, tick()))
			}
		case k < 7:
			t := tasks[r.IntN(len(tasks))]
			es = append(es, mustEvent(tb, "tasks", contract.TaskUpdated, 1, tick(), contract.TaskUpdatedV1{
				TaskID: t.task.String(), Title: fmt.Sprintf("Renamed %d", i), Description: "d", Status: "OPEN", CreatedAt: at,
			}))
		default:
			j := r.IntN(len(tasks))
			es = append(es, taskCompleted(tb, tasks[j].task, tasks[j].assignee, tick()))
			tasks = append(tasks[:j], tasks[j+1:]...)
		}
	}
	// Account changes out of order: the newest version wins.
	es = append(es,
		accountEvent(tb, contract.AccountUpdated, popugs[0], "renamed3", identity.Manager, 3, tick()),
		accountEvent(tb, contract.AccountUpdated, popugs[0], "renamed2", identity.Worker, 2, tick()),
		accountEvent(tb, contract.AccountUpdated, popugs[1], "renamed", identity.Accountant, 2, tick()),
		taskAssigned(tb, tasks[0].task, popugs[0], tick()),
	)
	// Redeliveries of earlier events.
	for range 15 {
		es = append(es, es[r.IntN(len(es))])
	}
	return append(es, early...)
}

// batches cuts events into consecutive batches of random sizes (1 to 40).
func batches(es []event.Envelope, seed uint64) [][]event.Envelope {
	r := rand.New(rand.NewPCG(seed, 11))
	var out [][]event.Envelope
	for len(es) > 0 {
		n := min(len(es), 1+r.IntN(40))
		out = append(out, es[:n])
		es = es[n:]
	}
	return out
}

func deliverBatch(tb testing.TB, h bus.BatchHandler, es []event.Envelope) {
	tb.Helper()
	ds := make([]bus.Delivery, len(es))
	for i, e := range es {
		ds[i] = mustDelivery(tb, e)
	}
	if err := h(context.Background(), ds); err != nil {
		tb.Fatalf("batch of %d refused: %v", len(es), err)
	}
}

// entryView is an entry and its balance.changed event, as comparable across databases.
type entryView struct {
	Account, Type, Day, Description string
	Amount, BalanceAfter            int64
	Task                            uuid.UUID
	At                              time.Time
}

func (h *harness) mustEntriesBySource(tb testing.TB) map[string]entryView {
	tb.Helper()
	l := h.mustConsistent(tb)
	desc := map[string]string{}
	for _, r := range h.mustOutbox(tb, contract.BalanceChanged) {
		d := decode[contract.BalanceChangedV1](tb, r.Envelope)
		desc[d.EntryID] = d.Description
	}
	out := map[string]entryView{}
	for _, e := range l.Entries {
		out[e.Source] = entryView{
			Account: e.Account.String(), Type: e.Type, Day: e.Day, Description: desc[e.ID.String()],
			Amount: e.Amount, BalanceAfter: e.BalanceAfter, Task: e.Task, At: e.OccurredAt,
		}
	}
	return out
}

// R-ACC-2, R-ACC-3, R-ACC-4, R-EVT-5: applying events in batches (ApplyBatch, one transaction
// per batch) leaves exactly the ledger that applying them one by one leaves: the same entries
// with the same amounts, balances after, days and descriptions, the same balances, one
// task.priced per task and one balance.changed per entry.
func TestApplyBatchMatchesEventByEvent(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2, 3} {
		es := eventStream(t, seed)
		storagetest.Each(t, func(t *testing.T, db *storage.DB) {
			single := MustService(t, db, withRand(constRand(3)))
			single.deliver(t, es...)
			want := single.mustEntriesBySource(t)

			batched := MustService(t, storagetest.MustOpen(t, db.Dialect), withRand(constRand(3)))
			h := batched.mustBatchReplica(t, batched.db, constRand(3))
			for _, b := range batches(es, seed) {
				deliverBatch(t, h, b)
			}
			batched.mustNoDeadLetters(t)
			got := batched.mustEntriesBySource(t)

			if len(got) != len(want) {
				t.Errorf("seed %d: %d entries in batches, %d one by one", seed, len(got), len(want))
			}
			for src, w := range want {
				if g, ok := got[src]; !ok {
					t.Errorf("seed %d: no entry for event %s in batches; one by one: %+v", seed, src, w)
				} else if g != w {
					t.Errorf("seed %d: event %s:\n in batches %+v\n one by one %+v", seed, src, g, w)
				}
			}
			if g, w := batched.mustAccounts(t), single.mustAccounts(t); fmt.Sprint(g) != fmt.Sprint(w) {
				t.Errorf("seed %d: accounts in batches\n%v\none by one\n%v", seed, g, w)
			}
			if n := batched.mustCount(t, `SELECT COUNT(*) FROM tasks WHERE described`); n != single.mustCount(t, `SELECT COUNT(*) FROM tasks WHERE described`) {
				t.Errorf("seed %d: %d described tasks in batches, %d one by one", seed, n, single.mustCount(t, `SELECT COUNT(*) FROM tasks WHERE described`))
			}
		})
	}
}

// R-ACC-3, R-ACC-4: two replicas applying overlapping batches at once — the same accounts and
// tasks, some events delivered to both — apply each event once and keep every balance equal
// to the sum of its entries; their row locks, taken in id order, do not deadlock them into
// the one-by-one path (which would be correct, only slower).
func TestApplyBatchConcurrentReplicas(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		es := eventStream(t, 42)
		handlers := []bus.BatchHandler{h.mustBatchReplica(t, db, newLockedRand(1, 2)), h.mustBatchReplica(t, mustReplicaPool(t, db), newLockedRand(3, 4))}
		var wg sync.WaitGroup
		for i, handle := range handlers {
			wg.Go(func() {
				// Each replica gets two thirds of the events, in order; a third goes to both.
				var mine []event.Envelope
				for j, e := range es {
					if j%3 != i {
						mine = append(mine, e)
					}
				}
				for _, b := range batches(mine, uint64(i)) {
					deliverBatch(t, handle, b)
				}
			})
		}
		wg.Wait()
		h.mustNoDeadLetters(t)
		l := h.mustConsistent(t)
		sources := map[string]int{}
		for _, e := range l.Entries {
			sources[e.Source]++
		}
		money := map[string]bool{}
		for _, e := range es {
			if e.Name == contract.TaskAssigned || e.Name == contract.TaskCompleted {
				money[e.ID] = true
			}
		}
		if len(sources) != len(money) {
			t.Errorf("%d events have entries, %d money events were delivered", len(sources), len(money))
		}
		for src, n := range sources {
			if n != 1 || !money[src] {
				t.Errorf("event %s: %d entries", src, n)
			}
		}
	})
}

// mustAccounts lists the billing accounts: replica fields, version and balance, in id order.
func (h *harness) mustAccounts(tb testing.TB) []string {
	tb.Helper()
	rows, err := h.db.SQL.Query(`SELECT public_id, username, email, full_name, role, active, version, balance FROM accounts ORDER BY public_id`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, username, email, name, role string
		var active bool
		var version, balance int64
		if err := rows.Scan(&id, &username, &email, &name, &role, &active, &version, &balance); err != nil {
			tb.Fatal(err)
		}
		out = append(out, fmt.Sprint(id, username, email, name, role, active, version, balance))
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// R-ACC-3: a task.updated that repeats the task's stored description — every completion sends
// one — leaves the task's row as it is, one event at a time and in batches: on PostgreSQL the
// row keeps its version (xmin), so no batch holds its lock for nothing. A new description is
// stored.
func TestRepeatedDescriptionIsNotWritten(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		for _, batched := range []bool{false, true} {
			h := MustService(t, storagetest.MustOpen(t, db.Dialect))
			deliver := h.deliver
			if batched {
				handle := h.mustBatchReplica(t, h.db, constRand(3))
				deliver = func(tb testing.TB, es ...event.Envelope) { deliverBatch(tb, handle, es) }
			}
			task, at := uuid.New(), time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
			jira := strp("UBERPOP-7")
			deliver(t, taskCreated(t, task, jira, "Fix the beak", at))
			updated := func(title, description string) event.Envelope {
				done := at.Add(time.Hour)
				return mustEvent(t, "tasks", contract.TaskUpdated, 1, done, contract.TaskUpdatedV1{
					TaskID: task.String(), Title: title, JiraID: jira, Description: description,
					Status: contract.TaskDone, CreatedAt: at, CompletedAt: &done,
				})
			}
			version := func() string {
				if db.Dialect != "postgres" {
					return "" // SQLite has no row versions to compare
				}
				var v string
				if err := h.db.SQL.QueryRow(`SELECT xmin::text FROM tasks WHERE public_id = $1`, task.String()).Scan(&v); err != nil {
					t.Fatal(err)
				}
				return v
			}
			description := func() string {
				var d string
				if err := h.db.SQL.QueryRow(h.q(`SELECT description FROM tasks WHERE public_id = $1`), task.String()).Scan(&d); err != nil {
					t.Fatal(err)
				}
				return d
			}
			before := version()
			deliver(t, updated("Fix the beak", "Description of Fix the beak"))
			if after := version(); after != before {
				t.Errorf("batched %v: a repeated description rewrote the task (xmin %s → %s)", batched, before, after)
			}
			deliver(t, updated("Fix the beak", "Now with a new description"))
			if d := description(); d != "Now with a new description" {
				t.Errorf("batched %v: description %q after a new one", batched, d)
			}
			if db.Dialect == "postgres" && version() == before {
				t.Errorf("batched %v: a new description left the row's version as it was", batched)
			}
			h.mustNoDeadLetters(t)
		}
	})
}
