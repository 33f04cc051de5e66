package accounting_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/accountingdb"
	"github.com/uberpopug/ates/ent/accountingdb/account"
	enttask "github.com/uberpopug/ates/ent/accountingdb/task"
	"github.com/uberpopug/ates/services/accounting"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/money"
	"github.com/uberpopug/ates/services/page"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// mustBillingAccount reads accounting's replica of an account.
func (h *harness) mustBillingAccount(tb testing.TB, id uuid.UUID) *accountingdb.Account {
	tb.Helper()
	a, err := h.client.Account.Query().Where(account.PublicID(id)).Only(context.Background())
	if err != nil {
		tb.Fatalf("billing account %s: %v", id, err)
	}
	return a
}

// mustEntries lists an account's whole audit log, newest first, as an admin sees it, page by
// page.
func (h *harness) mustEntries(tb testing.TB, id uuid.UUID) []accounting.Entry {
	tb.Helper()
	var out []accounting.Entry
	req := page.Request{First: page.MaxFirst}
	for {
		p, err := h.svc.Entries(context.Background(), actor(identity.Admin), id, nil, req)
		if err != nil {
			tb.Fatalf("Entries(%s): %v", id, err)
		}
		out = append(out, p.Items...)
		if !p.HasNext {
			return out
		}
		req.After = p.Keys[len(p.Keys)-1]
	}
}

// descriptions lists the entries' audit-log lines.
func descriptions(es []accounting.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Description
	}
	return out
}

// TestAccountCreatedOpensBillingAccount: R-ACC-5 — account.created opens a billing account at
// 0.00 with no entry; account.updated keeps the replica current by version and never touches
// the balance; a stale update is ignored.
func TestAccountCreatedOpensBillingAccount(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		popug := uuid.New()
		h.deliver(t, accountCreated(t, popug, "popug_one", identity.Worker, start))

		got, err := h.svc.Account(ctx, as(popug, identity.Worker), popug)
		if err != nil {
			t.Fatal(err)
		}
		if got != (accounting.BillingAccount{AccountID: popug}) {
			t.Errorf("Account = %+v, want balance 0.00 and nothing earned", got)
		}
		all, err := h.svc.Accounts(ctx, actor(identity.Accountant), page.Request{First: 10})
		if err != nil {
			t.Fatal(err)
		}
		if all.TotalCount != 1 || len(all.Items) != 1 || all.Items[0] != (accounting.BillingAccount{AccountID: popug}) {
			t.Errorf("Accounts = %+v, want the one account at 0.00", all)
		}
		r := h.mustBillingAccount(t, popug)
		if r.Username != "popug_one" || r.Role != "WORKER" || r.Version != 1 || r.Balance != 0 || !r.Active {
			t.Errorf("replica = %+v", r)
		}

		h.deliver(t,
			accountEvent(t, contract.AccountUpdated, popug, "popug_one", identity.Accountant, 3, start.Add(time.Hour)),
			accountEvent(t, contract.AccountUpdated, popug, "popug_stale", identity.Manager, 2, start.Add(time.Minute)),
		)
		r = h.mustBillingAccount(t, popug)
		if r.Role != "ACCOUNTANT" || r.Version != 3 || r.Username != "popug_one" || r.Balance != 0 {
			t.Errorf("after a newer and a stale update: replica = %+v, want role ACCOUNTANT at version 3", r)
		}
		l := h.mustConsistent(t)
		if len(l.Entries) != 0 || l.Balances[popug] != 0 || len(l.Balances) != 1 {
			t.Errorf("ledger = %+v, want one empty account", l)
		}
		if n := h.mustCount(t, `SELECT COUNT(*) FROM outbox_events`); n != 0 {
			t.Errorf("account events stored %d events, want none", n)
		}
	})
}

// TestAssignmentAndCompletionPost: R-ACC-2, R-ACC-3, R-ACC-10 — an assignment debits the
// assignee by the task's fee, a completion credits the reward; each is one entry with the
// balance after it and a balance.changed event; the price is the seeded draw (R-ACC-1).
func TestAssignmentAndCompletionPost(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		popug, task := uuid.New(), uuid.New()
		assignedAt, completedAt := start.Add(time.Minute), start.Add(2*time.Hour)
		h.deliver(t,
			accountCreated(t, popug, "popug_one", identity.Worker, start),
			taskCreated(t, task, strp("UBERPOP-42"), "Fix the beak scanner", start),
		)
		p := firstPrice()
		if got := h.mustPrice(t, task); got != p {
			t.Fatalf("price = %+v, want the first seeded draw %+v", got, p)
		}

		assigned := taskAssigned(t, task, popug, assignedAt)
		h.deliver(t, assigned)
		if got := h.mustBalance(t, popug); got != -p.Fee {
			t.Fatalf("balance after the assignment = %v, want -%v", got, p.Fee)
		}
		completed := taskCompleted(t, task, popug, completedAt)
		h.deliver(t, completed)
		if got := h.mustBalance(t, popug); got != p.Reward-p.Fee {
			t.Fatalf("balance after the completion = %v, want %v", got, p.Reward-p.Fee)
		}

		l := h.mustConsistent(t)
		es := l.ByAccount(popug)
		if len(es) != 2 {
			t.Fatalf("entries = %+v, want a fee and a reward", es)
		}
		fee, reward := es[0], es[1]
		if fee.Type != "FEE" || fee.Amount != -int64(p.Fee) || fee.BalanceAfter != -int64(p.Fee) ||
			fee.Source != assigned.ID || !fee.OccurredAt.Equal(assignedAt) || fee.Day != "2026-11-22" || fee.Task != task {
			t.Errorf("fee entry = %+v", fee)
		}
		if reward.Type != "REWARD" || reward.Amount != int64(p.Reward) || reward.BalanceAfter != int64(p.Reward-p.Fee) ||
			reward.Source != completed.ID || !reward.OccurredAt.Equal(completedAt) || reward.Day != "2026-11-22" || reward.Task != task {
			t.Errorf("reward entry = %+v", reward)
		}

		log := h.mustEntries(t, popug)
		wantLog := []string{"Reward for task UBERPOP-42 Fix the beak scanner", "Fee for task UBERPOP-42 Fix the beak scanner"}
		if !slices.Equal(descriptions(log), wantLog) {
			t.Errorf("audit log = %q, want %q", descriptions(log), wantLog)
		}
		if log[0].ID != reward.ID || log[0].Amount != p.Reward || log[0].BalanceAfter != p.Reward-p.Fee || *log[0].TaskID != task ||
			log[1].ID != fee.ID || log[1].Amount != -p.Fee || log[1].Day != mustDate(t, "2026-11-22") || !log[1].OccurredAt.Equal(assignedAt) {
			t.Errorf("audit log = [%s, %s]", describeEntry(log[0]), describeEntry(log[1]))
		}

		changed := h.mustOutbox(t, contract.BalanceChanged)
		if len(changed) != 2 {
			t.Fatalf("%d balance.changed events, want 2", len(changed))
		}
		first := decode[contract.BalanceChangedV1](t, changed[0].Envelope)
		second := decode[contract.BalanceChangedV1](t, changed[1].Envelope)
		if first.Type != "FEE" || first.Amount != -int64(p.Fee) || first.BalanceAfter != -int64(p.Fee) || first.Day != "2026-11-22" ||
			first.Description != "Fee for task UBERPOP-42 Fix the beak scanner" || first.AccountID != popug.String() {
			t.Errorf("first balance.changed = %+v", first)
		}
		if second.Type != "REWARD" || second.Amount != int64(p.Reward) || second.BalanceAfter != int64(p.Reward-p.Fee) ||
			second.Description != "Reward for task UBERPOP-42 Fix the beak scanner" || second.Sequence <= first.Sequence {
			t.Errorf("second balance.changed = %+v (first sequence %d)", second, first.Sequence)
		}
		if !changed[0].Envelope.Time.Equal(assignedAt) {
			t.Errorf("balance.changed time = %v, want the assignment's %v", changed[0].Envelope.Time, assignedAt)
		}

		got, err := h.svc.Account(ctx, as(popug, identity.Worker), popug)
		if err != nil {
			t.Fatal(err)
		}
		if got.Balance != p.Reward-p.Fee || got.EarnedToday != p.Reward-p.Fee {
			t.Errorf("Account = %+v, want balance and earned today %v", got, p.Reward-p.Fee)
		}
	})
}

// TestPriceIsSetOnce: R-ACC-1 — whichever event first names a task prices it; later events
// (shuffles, the same popug drawn again, an update, the completion) never change the price,
// although the random source gives a different draw every time; exactly one task.priced event.
func TestPriceIsSetOnce(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db, withRand(&cyclingRand{}))
		a, b, task := uuid.New(), uuid.New(), uuid.New()
		at := start
		next := func() time.Time { at = at.Add(time.Minute); return at }
		h.deliver(t, taskCreated(t, task, nil, "Sort the seeds", next()))
		// The cycling source's first draws are 1 and 2: fee 11, reward 22 dollars.
		want := accounting.Price{Fee: money.Dollars(11), Reward: money.Dollars(22)}
		if got := h.mustPrice(t, task); got != want {
			t.Fatalf("price = %+v, want %+v", got, want)
		}
		h.deliver(t,
			taskAssigned(t, task, a, next()),
			taskAssigned(t, task, b, next()),
			taskAssigned(t, task, a, next()),
			taskAssigned(t, task, a, next()), // the same popug drawn again still pays (R-TASK-4)
			mustEvent(t, "tasks", contract.TaskUpdated, 1, next(), contract.TaskUpdatedV1{
				TaskID: task.String(), Title: "Sort the seeds again", Description: "d", Status: contract.TaskDone, CreatedAt: start,
			}),
			taskCompleted(t, task, a, next()),
			taskCreated(t, task, nil, "Sort the seeds", next()), // replayed creation under a new event id
		)
		if got := h.mustPrice(t, task); got != want {
			t.Errorf("price after later events = %+v, want it unchanged %+v", got, want)
		}
		l := h.mustConsistent(t)
		if got, want := amounts(l.ByAccount(a)), []int64{-1100, -1100, -1100, 2200}; !slices.Equal(got, want) {
			t.Errorf("entries of a = %v, want %v", got, want)
		}
		if got, want := amounts(l.ByAccount(b)), []int64{-1100}; !slices.Equal(got, want) {
			t.Errorf("entries of b = %v, want %v", got, want)
		}
		if priced := h.mustOutbox(t, contract.TaskPriced); len(priced) != 1 {
			t.Errorf("%d task.priced events, want 1", len(priced))
		} else if d := decode[contract.TaskPricedV1](t, priced[0].Envelope); d.TaskID != task.String() || d.Fee != 1100 || d.Reward != 2200 || priced[0].Key != task.String() {
			t.Errorf("task.priced = %+v keyed %q", d, priced[0].Key)
		}
		if got := h.mustBalance(t, a); got != -3*1100+2200 {
			t.Errorf("balance of a = %v", got)
		}
		// The last description event applied (the replayed creation) names the task.
		if got := h.mustEntries(t, b)[0].Description; got != "Fee for task Sort the seeds" {
			t.Errorf("description = %q", got)
		}
	})
}

// TestPricesOfManyTasksStayInRange: R-ACC-1 — every task priced by the seeded source is within
// the ranges; prices are independent of the popug.
func TestPricesOfManyTasksStayInRange(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		popug := uuid.New()
		var events []event.Envelope
		for i := range 30 {
			events = append(events, taskAssigned(t, uuid.New(), popug, start.Add(time.Duration(i)*time.Second)))
		}
		h.deliver(t, events...)
		l := h.mustConsistent(t)
		prices := h.mustPrices(t)
		if len(prices) != 30 || len(l.Entries) != 30 {
			t.Fatalf("%d tasks priced, %d entries; want 30 each", len(prices), len(l.Entries))
		}
		distinct := map[accounting.Price]bool{}
		var sum int64
		for _, e := range l.Entries {
			p := prices[e.Task]
			distinct[p] = true
			if e.Amount != -int64(p.Fee) {
				t.Errorf("entry %d: amount %d, want -%d", e.Seq, e.Amount, p.Fee)
			}
			sum += e.Amount
		}
		if len(distinct) < 10 {
			t.Errorf("only %d distinct prices among 30 tasks: not drawn per task", len(distinct))
		}
		if got := h.mustBalance(t, popug); int64(got) != sum {
			t.Errorf("balance = %v, want %d", got, sum)
		}
	})
}

// TestDuplicateDeliveryPostsOnce: R-ACC-4, R-EVT-5 — a redelivered, duplicated or replayed
// event produces no second entry, no second event and no balance change.
func TestDuplicateDeliveryPostsOnce(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		popug, task := uuid.New(), uuid.New()
		events := []event.Envelope{
			accountCreated(t, popug, "popug_dup", identity.Worker, start),
			taskCreated(t, task, strp("UBERPOP-1"), "Count the feathers", start),
			taskAssigned(t, task, popug, start.Add(time.Minute)),
			taskCompleted(t, task, popug, start.Add(time.Hour)),
		}
		h.deliver(t, events...)
		p := h.mustPrice(t, task)
		before := h.mustConsistent(t)

		// Redelivered (flag set), duplicated, and the whole stream replayed backwards.
		for _, e := range events[2:] {
			d := mustDelivery(t, e)
			d.Redelivered = true
			for range 3 {
				if err := h.handle(ctx, d); err != nil {
					t.Fatal(err)
				}
			}
		}
		replay := slices.Clone(events)
		slices.Reverse(replay)
		h.deliver(t, replay...)

		after := h.mustConsistent(t)
		if len(after.Entries) != 2 || !slices.Equal(types(after.Entries), []string{"FEE", "REWARD"}) {
			t.Fatalf("entries = %+v, want one FEE and one REWARD", after.Entries)
		}
		if !slices.Equal(after.Entries, before.Entries) {
			t.Errorf("entries changed by duplicates:\nbefore %+v\nafter  %+v", before.Entries, after.Entries)
		}
		if got := h.mustBalance(t, popug); got != p.Reward-p.Fee {
			t.Errorf("balance = %v, want %v", got, p.Reward-p.Fee)
		}
		if n := h.mustCount(t, `SELECT COUNT(*) FROM processed_events WHERE consumer = $1`, accounting.ConsumerName); n != len(events) {
			t.Errorf("processed events = %d, want %d", n, len(events))
		}
		if n := h.mustCount(t, `SELECT COUNT(*) FROM outbox_events`); n != 3 {
			t.Errorf("outbox holds %d events, want 3 (one task.priced, two balance.changed)", n)
		}
	})
}

// TestApplyRefusesASecondEntryForOneEvent: R-ACC-4 — below the inbox, the entry's unique source
// event id refuses a second application of the same event; the failed transaction leaves the
// ledger as it was.
func TestApplyRefusesASecondEntryForOneEvent(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		popug, task := uuid.New(), uuid.New()
		e := taskAssigned(t, task, popug, start)
		apply := func() error {
			return storage.InTx(ctx, h.client.Tx, func(tx *accountingdb.Tx) error { return h.svc.Apply(ctx, tx, e) })
		}
		if err := apply(); err != nil {
			t.Fatal(err)
		}
		if err := apply(); err == nil {
			t.Fatal("applying the same event twice outside the inbox succeeded")
		}
		l := h.mustConsistent(t)
		if len(l.Entries) != 1 || h.mustBalance(t, popug) != -h.mustPrice(t, task).Fee {
			t.Errorf("ledger = %+v", l)
		}
	})
}

// TestOutOfOrderEvents: R-ACC-4 — events arriving before the events they follow still produce
// exactly the right entries; the audit log shows the full task label once task.created arrives.
func TestOutOfOrderEvents(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)

		t.Run("assigned before created", func(t *testing.T) {
			popug, task := uuid.New(), uuid.New()
			h.deliver(t, taskAssigned(t, task, popug, start))
			p := h.mustPrice(t, task)
			if got := descriptions(h.mustEntries(t, popug)); !slices.Equal(got, []string{"Fee for task " + task.String()}) {
				t.Errorf("before task.created: audit log = %q, want the task id", got)
			}
			h.deliver(t, taskCreated(t, task, strp("UBERPOP-7"), "Polish the perch", start.Add(-time.Minute)))
			if got := descriptions(h.mustEntries(t, popug)); !slices.Equal(got, []string{"Fee for task UBERPOP-7 Polish the perch"}) {
				t.Errorf("after task.created: audit log = %q", got)
			}
			h.deliver(t, taskCompleted(t, task, popug, start.Add(time.Hour)))
			want := []string{"Reward for task UBERPOP-7 Polish the perch", "Fee for task UBERPOP-7 Polish the perch"}
			if got := descriptions(h.mustEntries(t, popug)); !slices.Equal(got, want) {
				t.Errorf("audit log = %q, want %q", got, want)
			}
			if got := h.mustPrice(t, task); got != p {
				t.Errorf("task.created changed the price from %+v to %+v", p, got)
			}
			if got := h.mustBalance(t, popug); got != p.Reward-p.Fee {
				t.Errorf("balance = %v, want %v", got, p.Reward-p.Fee)
			}
		})

		t.Run("completed before assigned and created", func(t *testing.T) {
			popug, task := uuid.New(), uuid.New()
			completed := taskCompleted(t, task, popug, start.Add(time.Hour))
			assigned := taskAssigned(t, task, popug, start.Add(time.Minute))
			h.deliver(t, completed)
			p := h.mustPrice(t, task)
			if got := h.mustBalance(t, popug); got != p.Reward {
				t.Errorf("after the completion alone: balance = %v, want +%v", got, p.Reward)
			}
			h.deliver(t, assigned, taskCreated(t, task, nil, "Guard the nest", start))
			es := h.mustConsistent(t).ByAccount(popug)
			if !slices.Equal(types(es), []string{"REWARD", "FEE"}) || !slices.Equal(amounts(es), []int64{int64(p.Reward), -int64(p.Fee)}) ||
				es[0].Source != completed.ID || es[1].Source != assigned.ID {
				t.Errorf("entries = %+v", es)
			}
			want := []string{"Fee for task Guard the nest", "Reward for task Guard the nest"}
			if got := descriptions(h.mustEntries(t, popug)); !slices.Equal(got, want) {
				t.Errorf("audit log = %q, want %q", got, want)
			}
			if got := h.mustBalance(t, popug); got != p.Reward-p.Fee {
				t.Errorf("balance = %v, want %v", got, p.Reward-p.Fee)
			}
		})

		t.Run("account events after task events", func(t *testing.T) {
			popug, task := uuid.New(), uuid.New()
			h.deliver(t, taskCreated(t, task, nil, "Trim the claws", start), taskAssigned(t, task, popug, start))
			p := h.mustPrice(t, task)
			if r := h.mustBillingAccount(t, popug); r.Version != 0 || r.Username != "" || r.Balance != -int64(p.Fee) {
				t.Errorf("billing account opened by the assignment = %+v", r)
			}
			h.deliver(t, accountCreated(t, popug, "late_popug", identity.Worker, start.Add(-time.Hour)))
			r := h.mustBillingAccount(t, popug)
			if r.Version != 1 || r.Username != "late_popug" || r.Role != "WORKER" || r.Balance != -int64(p.Fee) {
				t.Errorf("after the late account.created: %+v, want the replica filled and the balance kept", r)
			}
			// A later update, then a stale one.
			h.deliver(t,
				accountEvent(t, contract.AccountUpdated, popug, "late_popug", identity.Accountant, 3, start),
				accountEvent(t, contract.AccountUpdated, popug, "late_popug", identity.Manager, 2, start),
				accountCreated(t, popug, "late_popug", identity.Worker, start), // replayed under a new id
			)
			if r := h.mustBillingAccount(t, popug); r.Version != 3 || r.Role != "ACCOUNTANT" || r.Balance != -int64(p.Fee) {
				t.Errorf("after stale account events: %+v", r)
			}
			if es := h.mustConsistent(t).ByAccount(popug); len(es) != 1 || es[0].Amount != -int64(p.Fee) {
				t.Errorf("entries = %+v, want the one fee", es)
			}
		})

		t.Run("scrambled streams", func(t *testing.T) {
			s := newScenario(t, 4, 12, 7)
			h.deliver(t, shuffled(s.Events, 99)...)
			s.mustApplied(t, h)
		})
	})
}

// TestTaskCreatedV1TitleIsSplit: R-EVT-3 — a task.created v1 title with a leading "[JIRA-ID]"
// (and an optional dash) is read as that Jira id and the rest of the title.
func TestTaskCreatedV1TitleIsSplit(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		popug := uuid.New()
		tests := []struct {
			e    func(task uuid.UUID) event.Envelope
			jira *string
			want string
		}{
			{func(id uuid.UUID) event.Envelope {
				return taskCreatedV1(t, id, "[UBERPOP-42] - Fix the beak scanner", start)
			},
				strp("UBERPOP-42"), "Fix the beak scanner"},
			{func(id uuid.UUID) event.Envelope { return taskCreatedV1(t, id, "[UBERPOP-43]Feed the chicks", start) },
				strp("UBERPOP-43"), "Feed the chicks"},
			{func(id uuid.UUID) event.Envelope { return taskCreatedV1(t, id, "Water the plants", start) },
				nil, "Water the plants"},
			{func(id uuid.UUID) event.Envelope { return taskCreated(t, id, nil, "Sing at dawn", start) },
				nil, "Sing at dawn"},
		}
		for _, tt := range tests {
			task := uuid.New()
			h.deliver(t, tt.e(task), taskAssigned(t, task, popug, start))
			stored, err := h.client.Task.Query().Where(enttask.PublicID(task)).Only(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if stored.Title != tt.want || !sameString(stored.JiraID, tt.jira) || !stored.Described {
				t.Errorf("stored task = %q %v, want %q %v", stored.Title, stored.JiraID, tt.want, tt.jira)
			}
		}
		want := []string{
			"Fee for task Sing at dawn",
			"Fee for task Water the plants",
			"Fee for task UBERPOP-43 Feed the chicks",
			"Fee for task UBERPOP-42 Fix the beak scanner",
		}
		if got := descriptions(h.mustEntries(t, popug)); !slices.Equal(got, want) {
			t.Errorf("audit log = %q, want %q", got, want)
		}
		h.mustConsistent(t)
	})
}
