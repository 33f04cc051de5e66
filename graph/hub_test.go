package graph_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/graph"
	"github.com/uberpopug/ates/graph/model"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/money"
	"github.com/uberpopug/ates/services/tasks"
)

// The hub's tests use no I/O: a hub, channels and a log buffer (R-ACC-10).

// hubPushTimeout bounds how long a test waits for something that must happen at once; it
// only turns a hang into a failure, it measures nothing.
const hubPushTimeout = 5 * time.Second

func mustHub(tb testing.TB) (*graph.Hub, *syncBuffer) {
	tb.Helper()
	logs := &syncBuffer{}
	return graph.NewHub(slog.New(slog.NewTextHandler(logs, nil))), logs
}

func change(account uuid.UUID, balance money.Cents) *model.BalanceChange {
	return &model.BalanceChange{
		AccountID: account.String(), Balance: balance,
		Entry: &model.LedgerEntry{ID: uuid.NewString(), Type: model.LedgerEntryTypeFee, Amount: balance, BalanceAfter: balance},
	}
}

// mustReceive returns the next push of ch, failing when none comes or ch is closed.
func mustReceive(tb testing.TB, name string, ch <-chan *model.BalanceChange) *model.BalanceChange {
	tb.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			tb.Fatalf("%s: channel closed, want a push", name)
		}
		return c
	case <-time.After(hubPushTimeout):
		tb.Fatalf("%s: no push", name)
		return nil
	}
}

// mustGet checks that ch delivers exactly want, in order.
func mustGet(tb testing.TB, name string, ch <-chan *model.BalanceChange, want ...*model.BalanceChange) {
	tb.Helper()
	for i, w := range want {
		if got := mustReceive(tb, name, ch); got != w {
			tb.Fatalf("%s: push %d is %+v, want %+v", name, i, got, w)
		}
	}
}

// mustClose drains ch until it is closed and returns how many pushes it still held.
func mustClose(tb testing.TB, name string, ch <-chan *model.BalanceChange) int {
	tb.Helper()
	n := 0
	deadline := time.After(hubPushTimeout)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return n
			}
			n++
		case <-deadline:
			tb.Fatalf("%s: channel not closed (drained %d pushes)", name, n)
			return n
		}
	}
}

func TestHubFansOutByAccount(t *testing.T) {
	t.Parallel()
	h, _ := mustHub(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b, other := uuid.New(), uuid.New(), uuid.New()
	subA1, subA2 := h.Subscribe(ctx, &a), h.Subscribe(ctx, &a)
	subB := h.Subscribe(ctx, &b)
	all := h.Subscribe(ctx, nil)
	if n := h.Subscribers(); n != 4 {
		t.Fatalf("Subscribers() = %d, want 4", n)
	}
	publish := func(account uuid.UUID, balance money.Cents) *model.BalanceChange {
		c := change(account, balance)
		h.Publish(account, c)
		return c
	}
	ca, cb := publish(a, -1500), publish(b, 3200)
	co := publish(other, 100) // nobody follows it but the all-accounts subscriber
	var as []*model.BalanceChange
	for i := range 10 {
		as = append(as, publish(a, money.Cents(i)))
	}
	// Each subscriber's pushes end with a marker of its account: whatever it got that it should
	// not have would come before the marker.
	ma, mb := publish(a, 1), publish(b, 2)
	wantA := append(append([]*model.BalanceChange{ca}, as...), ma)
	mustGet(t, "a1", subA1, wantA...)
	mustGet(t, "a2", subA2, wantA...)
	mustGet(t, "b", subB, cb, mb)
	mustGet(t, "all", all, append(append([]*model.BalanceChange{ca, cb, co}, as...), ma, mb)...)
}

func TestHubDropsSlowSubscriberWithoutBlocking(t *testing.T) {
	t.Parallel()
	h, logs := mustHub(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := uuid.New()
	slow := h.Subscribe(ctx, &a) // never read until the end
	fast := h.Subscribe(ctx, &a)
	other := h.Subscribe(ctx, nil)

	// More pushes than a subscriber may lag behind; every Publish returns although slow never
	// reads.
	const pushes = graph.MaxSubscriberLag + 100
	done := make(chan struct{})
	var fastGot, otherGot int
	go func() {
		defer close(done)
		for i := range pushes {
			h.Publish(a, change(a, money.Cents(i)))
			// fast and other keep up: each push is read before the next one is made.
			if c := <-fast; c == nil || c.Balance != money.Cents(i) {
				return
			}
			fastGot++
			if c := <-other; c == nil || c.Balance != money.Cents(i) {
				return
			}
			otherGot++
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Publish blocked on a subscriber that never reads")
	}
	if fastGot != pushes || otherGot != pushes {
		t.Fatalf("subscribers that keep up got %d and %d of %d pushes", fastGot, otherGot, pushes)
	}

	// The slow subscriber was dropped: its channel is closed (what was still waiting is gone).
	if held := mustClose(t, "slow", slow); held >= pushes {
		t.Errorf("the slow subscriber got all %d pushes, want it dropped", held)
	}
	if n := h.Subscribers(); n != 2 {
		t.Errorf("Subscribers() = %d after dropping the slow one, want 2", n)
	}
	if !strings.Contains(logs.String(), "ending a subscriber that cannot keep up") {
		t.Errorf("dropping a subscriber was not logged:\n%s", logs.String())
	}
	if c := strings.Count(logs.String(), "ending a subscriber that cannot keep up"); c != 1 {
		t.Errorf("the drop was logged %d times, want once:\n%s", c, logs.String())
	}

	// Its context ending later is harmless; the others still get pushes.
	h.Publish(a, change(a, 7))
	if got := mustReceive(t, "fast", fast); got.Balance != 7 {
		t.Errorf("fast got %+v after the drop", got)
	}
	if got := mustReceive(t, "other", other); got.Balance != 7 {
		t.Errorf("other got %+v after the drop", got)
	}
}

// TestHubAbsorbsBursts checks that a burst — many pushes at once, as a shuffle makes — reaches a
// subscriber that reads at its own pace, in order, instead of dropping it.
func TestHubAbsorbsBursts(t *testing.T) {
	t.Parallel()
	h, logs := mustHub(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b := uuid.New(), uuid.New()
	mine, all := h.Subscribe(ctx, &a), h.Subscribe(ctx, nil)
	const burst = graph.MaxSubscriberLag / 2
	for i := range burst {
		h.Publish(a, change(a, money.Cents(i)))
		h.Publish(b, change(b, money.Cents(i)))
	}
	for i := range burst {
		if got := mustReceive(t, "mine", mine); got.Balance != money.Cents(i) {
			t.Fatalf("push %d: balance %d (order lost)", i, got.Balance)
		}
		time.Sleep(time.Microsecond) // a reader with work to do per push
	}
	for i := range 2 * burst {
		if got := mustReceive(t, "all", all); got.Balance != money.Cents(i/2) {
			t.Fatalf("all: push %d: balance %d (order lost)", i, got.Balance)
		}
	}
	if n := h.Subscribers(); n != 2 {
		t.Fatalf("Subscribers() = %d after a burst, want 2", n)
	}
	if strings.Contains(logs.String(), "dropping") {
		t.Fatalf("a burst dropped a subscriber:\n%s", logs.String())
	}
}

func TestHubUnsubscribesWhenContextEnds(t *testing.T) {
	t.Parallel()
	h, _ := mustHub(t)
	a := uuid.New()
	keepCtx, keepCancel := context.WithCancel(context.Background())
	defer keepCancel()
	keep := h.Subscribe(keepCtx, &a)

	ctx, cancel := context.WithCancel(context.Background())
	leaving := h.Subscribe(ctx, &a)
	leavingAll := h.Subscribe(ctx, nil)
	if n := h.Subscribers(); n != 3 {
		t.Fatalf("Subscribers() = %d, want 3", n)
	}
	h.Publish(a, change(a, 1))
	cancel()
	// What was pushed before the end may still be read; then the channel is closed.
	if n := mustClose(t, "leaving", leaving); n > 1 {
		t.Errorf("leaving held %d pushes, want at most 1", n)
	}
	mustClose(t, "leavingAll", leavingAll)
	// remove deletes the subscriber before closing its channel.
	if n := h.Subscribers(); n != 1 {
		t.Fatalf("Subscribers() = %d after a context ended, want 1", n)
	}
	// Publishing after the end neither panics (send on a closed channel) nor reaches it.
	h.Publish(a, change(a, 2))
	if got := mustReceive(t, "keep", keep); got.Balance != 1 {
		t.Fatalf("keep got %+v, want the first push", got)
	}
	if got := mustReceive(t, "keep", keep); got.Balance != 2 {
		t.Fatalf("keep got %+v, want the second push", got)
	}
	keepCancel()
	mustClose(t, "keep", keep)
	if n := h.Subscribers(); n != 0 {
		t.Fatalf("Subscribers() = %d after every context ended, want 0", n)
	}
}

// TestHubConcurrentPublishSubscribeCancel runs publishers, subscribers that read a little and
// leave, and slow subscribers that get dropped, all at once; run with -race. Every
// subscription ends with its channel closed and the hub empty.
func TestHubConcurrentPublishSubscribeCancel(t *testing.T) {
	t.Parallel()
	h, _ := mustHub(t)
	accounts := make([]uuid.UUID, 5)
	for i := range accounts {
		accounts[i] = uuid.New()
	}
	stop := make(chan struct{})
	var publishers sync.WaitGroup
	for p := range 4 {
		publishers.Go(func() {
			r := rand.New(rand.NewPCG(uint64(p), 1))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				a := accounts[r.IntN(len(accounts))]
				h.Publish(a, change(a, money.Cents(i)))
			}
		})
	}
	var subscribers sync.WaitGroup
	errc := make(chan error, 32*10)
	for s := range 32 {
		subscribers.Go(func() {
			r := rand.New(rand.NewPCG(uint64(s), 2))
			for range 10 {
				ctx, cancel := context.WithCancel(context.Background())
				var account *uuid.UUID
				if r.IntN(3) > 0 {
					account = &accounts[r.IntN(len(accounts))]
				}
				ch := h.Subscribe(ctx, account)
				reads := r.IntN(20) // 0: never reads (may be dropped as slow)
				for range reads {
					c, ok := <-ch
					if !ok {
						break // dropped for being slow: allowed
					}
					if account != nil && c.AccountID != account.String() {
						errc <- fmt.Errorf("subscriber of %s got a push for %s", account, c.AccountID)
					}
				}
				cancel()
				deadline := time.After(hubPushTimeout)
			drain:
				for {
					select {
					case _, ok := <-ch:
						if !ok {
							break drain
						}
					case <-deadline:
						errc <- fmt.Errorf("a cancelled subscription's channel was not closed")
						break drain
					}
				}
			}
		})
	}
	subscribers.Wait()
	close(stop)
	publishers.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if n := h.Subscribers(); n != 0 {
		t.Fatalf("Subscribers() = %d after every subscription ended, want 0", n)
	}
}

func TestPublishBalanceChange(t *testing.T) {
	t.Parallel()
	h, _ := mustHub(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	account, task := uuid.New(), uuid.NewString()
	mine, all := h.Subscribe(ctx, &account), h.Subscribe(ctx, nil)
	at := time.Date(2026, 3, 1, 23, 30, 0, 0, time.FixedZone("+02", 2*3600))
	d := contract.BalanceChangedV1{
		EntryID: uuid.NewString(), Sequence: 3, AccountID: account.String(), Type: contract.EntryReward,
		Amount: 3200, BalanceAfter: 1700, TaskID: &task, Description: "Reward for task UBERPOP-7 Polish the beak",
		OccurredAt: at, Day: "2026-03-01",
	}
	e, err := event.New(ctx, "accounting", contract.BalanceChanged, 1, at, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := graph.PublishBalanceChange(h, e); err != nil {
		t.Fatal(err)
	}
	got := mustReceive(t, "mine", mine)
	if got != mustReceive(t, "all", all) {
		t.Error("the all-accounts subscriber got a different push")
	}
	day, err := calendar.Parse("2026-03-01")
	if err != nil {
		t.Fatal(err)
	}
	want := model.BalanceChange{AccountID: account.String(), Balance: 1700}
	if got.AccountID != want.AccountID || got.Balance != want.Balance || got.Entry == nil {
		t.Fatalf("push = %+v, want account %s balance 17.00", got, account)
	}
	en := got.Entry
	if en.ID != d.EntryID || en.Type != model.LedgerEntryTypeReward || en.Amount != 3200 || en.BalanceAfter != 1700 ||
		en.Description != d.Description || en.TaskID == nil || *en.TaskID != task ||
		!en.OccurredAt.Equal(at) || en.OccurredAt.Location() != time.UTC || en.Day != day {
		t.Errorf("entry = %+v (task %v), want the event's entry with its time in UTC", en, en.TaskID)
	}

	// The same entry delivered again is not pushed twice, nor is an older one; another
	// account's entry of the same sequence is.
	again := e
	if err := graph.PublishBalanceChange(h, again); err != nil {
		t.Fatal(err)
	}
	older := d
	older.Sequence, older.EntryID = 2, uuid.NewString()
	e, _ = event.New(ctx, "accounting", contract.BalanceChanged, 1, at, older)
	if err := graph.PublishBalanceChange(h, e); err != nil {
		t.Fatal(err)
	}
	other := d
	other.AccountID = uuid.NewString()
	e, _ = event.New(ctx, "accounting", contract.BalanceChanged, 1, at, other)
	if err := graph.PublishBalanceChange(h, e); err != nil {
		t.Fatal(err)
	}
	if got := mustReceive(t, "all", all); got.AccountID != other.AccountID {
		t.Fatalf("after a repeated and an older entry the all-accounts subscriber got %+v, want only the other account's", got)
	}

	// A payout entry has no task.
	d.Sequence, d.EntryID = 4, uuid.NewString()
	d.Type, d.TaskID, d.Amount, d.BalanceAfter = contract.EntryPayout, nil, -1700, 0
	e, _ = event.New(ctx, "accounting", contract.BalanceChanged, 1, at, d)
	if err := graph.PublishBalanceChange(h, e); err != nil {
		t.Fatal(err)
	}
	if got := mustReceive(t, "mine", mine); got.Entry.TaskID != nil || got.Balance != 0 || got.Entry.Type != model.LedgerEntryTypePayout {
		t.Errorf("payout push = %+v", got.Entry)
	}
	mustReceive(t, "all", all)

	// Malformed data is an error and reaches nobody.
	for name, mutate := range map[string]func(*contract.BalanceChangedV1){
		"account id": func(d *contract.BalanceChangedV1) { d.AccountID = "nope" },
		"day":        func(d *contract.BalanceChangedV1) { d.Day = "2026-02-30" },
	} {
		bad := d
		mutate(&bad)
		e, _ := event.New(ctx, "accounting", contract.BalanceChanged, 1, at, bad)
		if err := graph.PublishBalanceChange(h, e); err == nil {
			t.Errorf("a balance event with a bad %s was accepted", name)
		}
	}
	e.Data = []byte(`{"accountId": 5}`)
	if err := graph.PublishBalanceChange(h, e); err == nil {
		t.Error("undecodable balance event data was accepted")
	}
	// Nothing reached anyone: the next push both get is a good one published after.
	d.Sequence, d.EntryID = 5, uuid.NewString()
	d.Type, d.Amount, d.BalanceAfter = contract.EntryFee, -1000, -1000
	e, _ = event.New(ctx, "accounting", contract.BalanceChanged, 1, at, d)
	if err := graph.PublishBalanceChange(h, e); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]<-chan *model.BalanceChange{"mine": mine, "all": all} {
		if got := mustReceive(t, name, ch); got.Balance != -1000 {
			t.Errorf("%s after bad events got %+v, want the good push after them", name, got)
		}
	}
}

// taskLookups is a task tracker's lookup as the hub sees it: it finds the tasks it holds and
// records every call.
type taskLookups struct {
	mu    sync.Mutex
	held  map[uuid.UUID]tasks.Task
	calls [][]uuid.UUID
}

func (l *taskLookups) GetMany(_ context.Context, ids []uuid.UUID) ([]tasks.Task, []error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, ids)
	out, errList := make([]tasks.Task, len(ids)), make([]error, len(ids))
	for i, id := range ids {
		t, ok := l.held[id]
		if !ok {
			errList[i] = errs.E(errs.NotFound, "no such task")
		}
		out[i] = t
	}
	return out, errList
}

// TestPublishBalanceChangesLooksTasksUpOnce: R-ACC-10 — a batch of balance changes costs one
// task lookup while anyone listens, and none while nobody does; each push carries its task
// as found, a task not found is left to the push's own lookup, and unreadable events reach
// nobody while the rest of the batch is pushed.
func TestPublishBalanceChangesLooksTasksUpOnce(t *testing.T) {
	t.Parallel()
	h, _ := mustHub(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	known, unknown := uuid.New(), uuid.New()
	lookups := &taskLookups{held: map[uuid.UUID]tasks.Task{known: {ID: known, Title: "Polish the beak", Status: tasks.Open}}}
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	seq := int64(0)
	changed := func(task *uuid.UUID) event.Envelope {
		seq++
		d := contract.BalanceChangedV1{
			EntryID: uuid.NewString(), Sequence: seq, AccountID: uuid.NewString(), Type: contract.EntryFee,
			Amount: -1000, BalanceAfter: -1000, Description: "Fee", OccurredAt: at, Day: "2026-03-01",
		}
		if task != nil {
			id := task.String()
			d.TaskID = &id
		} else {
			d.Type = contract.EntryPayout
		}
		e, err := event.New(ctx, "accounting", contract.BalanceChanged, 1, at, d)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	bad := changed(&known)
	bad.Data = []byte(`{"accountId": 5}`)
	batch := []event.Envelope{changed(&known), changed(&unknown), changed(nil), bad, changed(&known)}

	// Nobody listens: no lookup.
	if err := graph.PublishBalanceChanges(ctx, h, lookups, batch[:3]); err != nil {
		t.Fatal(err)
	}
	if len(lookups.calls) != 0 {
		t.Fatalf("%d lookups with nobody subscribed, want none", len(lookups.calls))
	}

	all := h.Subscribe(ctx, nil)
	batch = []event.Envelope{changed(&known), changed(&unknown), changed(nil), bad, changed(&known)}
	if err := graph.PublishBalanceChanges(ctx, h, lookups, batch); err == nil {
		t.Error("the unreadable event was not reported")
	}
	if len(lookups.calls) != 1 || len(lookups.calls[0]) != 2 {
		t.Fatalf("lookups %v, want one of the batch's two tasks", lookups.calls)
	}
	for i, want := range []string{"Polish the beak", "", "", "Polish the beak"} {
		got := mustReceive(t, fmt.Sprint("push ", i), all)
		switch {
		case want != "" && (got.Entry.FoundTask == nil || got.Entry.FoundTask.Title != want || got.Entry.FoundTask.ID != known.String()):
			t.Errorf("push %d carries task %+v, want %q", i, got.Entry.FoundTask, want)
		case want == "" && got.Entry.FoundTask != nil:
			t.Errorf("push %d carries task %+v, want none (not found, or no task)", i, got.Entry.FoundTask)
		}
	}
	select {
	case c := <-all:
		t.Fatalf("an extra push %+v: the unreadable event reached a subscriber", c)
	case <-time.After(50 * time.Millisecond):
	}
}
