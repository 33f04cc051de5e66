package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/google/uuid"
	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/uberpopug/ates/graph/model"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/money"
	"github.com/uberpopug/ates/services/tasks"
)

// Followers that fall behind are ended rather than followed forever: a feed keeps at most this
// many pushes waiting for one subscriber. A burst — a shuffle reassigning thousands of open
// tasks, seen by an accountant following every account — is absorbed up to it; a follower
// further behind gets RESYNC and refetches (R-LIVE-1, R-REL-1). The waiting pushes are shared by
// all subscribers, so a lagging one costs 8 bytes per push.
const (
	maxBalanceLag = 4096
	maxTaskLag    = 256
)

// Hub fans events out to the gateway's subscribers: balance changes (R-ACC-10) and task board
// changes (R-LIVE-1). It is fed by the gateway's own subscriptions to the events — never by
// polling a database — and never blocks its feeds: every subscriber has a bounded queue, and a
// subscriber that lets too many pushes pile up is ended with RESYNC and logged. Subscribers
// leave when their context ends.
//
// An idle subscriber costs no goroutine: when pushes start waiting, the hub asks a taker to
// drain the queue (see pushTaker); the taker runs until the queue is empty and stops.
type Hub struct {
	log      *slog.Logger
	balances *feed[*model.BalanceChange]
	tasks    *feed[*model.TaskChange]

	seenMu sync.Mutex
	seen   map[uuid.UUID]int64              // per account, the ledger sequence of the last entry pushed
	recent *simplelru.LRU[string, struct{}] // task events pushed lately, by event id
}

// A pushTaker takes a subscription's pushes on its own goroutine, started only while pushes
// wait. The WebSocket transport is one: it puts itself in the subscription's context. take is
// called once, before any push; it returns ready, which the hub calls (never concurrently with
// a running taker) when pushes or the subscription's end wait. The taker then calls step until
// it reports false; after each true step one receive on the subscription's channel returns at
// once — the next push, or the closed channel when the subscription ended, and ended then
// tells why: nil when its context ended, the error to send (RESYNC) when the hub ended it.
type pushTaker interface {
	take(step func() bool, ended func() error) (ready func())
}

type pushTakerKey struct{}

func withPushTaker(ctx context.Context, t pushTaker) context.Context {
	return context.WithValue(ctx, pushTakerKey{}, t)
}

// NewHub returns an empty hub.
func NewHub(log *slog.Logger) *Hub {
	return &Hub{
		log:      log,
		balances: newFeed[*model.BalanceChange](log, "balance", maxBalanceLag),
		tasks:    newFeed[*model.TaskChange](log, "task board", maxTaskLag),
		seen:     map[uuid.UUID]int64{},
		recent:   mustLRU(recentEvents),
	}
}

func mustLRU(size int) *simplelru.LRU[string, struct{}] {
	l, err := simplelru.NewLRU[string, struct{}](size, nil)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return l
}

// Subscribe returns the balance pushes for one account (or all, with nil), in the order they
// were published, until ctx ends or the subscriber falls behind; then the channel is closed.
// With a pushTaker in ctx the taker reads the channel as described there; otherwise a goroutine
// hands the pushes over to whoever reads the returned channel, at the reader's pace.
func (h *Hub) Subscribe(ctx context.Context, account *uuid.UUID) <-chan *model.BalanceChange {
	key := ""
	if account != nil {
		key = account.String()
	}
	return h.balances.subscribe(ctx, key)
}

// Publish pushes a balance change to every subscriber following its account, without waiting
// for any.
func (h *Hub) Publish(accountID uuid.UUID, c *model.BalanceChange) {
	h.balances.publish(c, accountID.String())
}

// SubscribeTasks returns the task board changes of the tasks an assignee holds or held (or of
// every task, with nil), as Subscribe does for balances (R-LIVE-1).
func (h *Hub) SubscribeTasks(ctx context.Context, assignee *uuid.UUID) <-chan *model.TaskChange {
	key := ""
	if assignee != nil {
		key = assignee.String()
	}
	return h.tasks.subscribe(ctx, key)
}

// PublishTask pushes a task board change to every subscriber following every task, its
// assignee or its previous assignee.
func (h *Hub) PublishTask(c *model.TaskChange) {
	if c.PreviousAssigneeID != nil && *c.PreviousAssigneeID != c.AssigneeID {
		h.tasks.publish(c, c.AssigneeID, *c.PreviousAssigneeID)
		return
	}
	h.tasks.publish(c, c.AssigneeID)
}

// Subscribers returns how many balance subscribers are connected.
func (h *Hub) Subscribers() int { return h.balances.len() }

// TaskSubscribers returns how many task board subscribers are connected.
func (h *Hub) TaskSubscribers() int { return h.tasks.len() }

// ResyncBalances ends every balance subscription with RESYNC: the gateway may have missed
// balance changes (its feed's queue was lost), so every follower refetches (R-REL-1).
func (h *Hub) ResyncBalances(why string) { h.balances.resyncAll(why) }

// ResyncTasks ends every task board subscription with RESYNC, for the same reason.
func (h *Hub) ResyncTasks(why string) { h.tasks.resyncAll(why) }

// feed fans one kind of push out to the subscribers following it. A subscriber follows a key
// (an account) or every key ("").
type feed[T any] struct {
	log    *slog.Logger
	name   string
	maxLag int
	mu     sync.RWMutex
	subs   map[*subscriber[T]]struct{}
}

func newFeed[T any](log *slog.Logger, name string, maxLag int) *feed[T] {
	return &feed[T]{log: log, name: name, maxLag: maxLag, subs: map[*subscriber[T]]struct{}{}}
}

// subscriber is one subscription of a feed. Its states: taking (a taker drains the queue),
// left (it left the feed: what waits is dropped and out is closed by the taker), closed.
type subscriber[T any] struct {
	key   string
	out   chan T // holds at most the push being taken
	ready func()

	mu     sync.Mutex
	queue  []T  // waiting, oldest first
	taking bool // a taker runs; ready is not called until it stops
	left   bool // left the feed: what waits is dropped and out is closed
	closed bool // out is closed
	// reason is why the feed ended the subscription (RESYNC); nil when its context ended.
	reason error
}

func (f *feed[T]) subscribe(ctx context.Context, key string) <-chan T {
	s := &subscriber[T]{key: key, out: make(chan T, 1)}
	var pushes <-chan T = s.out
	if t, ok := ctx.Value(pushTakerKey{}).(pushTaker); ok {
		s.ready = t.take(s.step, s.ended)
	} else {
		relay := make(chan T)
		wake := make(chan struct{}, 1)
		s.ready = func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
		go f.relay(ctx, s, wake, relay)
		pushes = relay
	}
	f.mu.Lock()
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	context.AfterFunc(ctx, func() { f.remove(s, nil) })
	return pushes
}

// relay is the taker of a subscriber without a pushTaker: it hands each push to relay and
// closes relay when the subscription ended, after the subscriber left the feed.
func (f *feed[T]) relay(ctx context.Context, s *subscriber[T], wake <-chan struct{}, relay chan<- T) {
	defer close(relay)
	defer f.remove(s, nil)
	for {
		select {
		case <-wake:
		case <-ctx.Done():
			return
		}
		for s.step() {
			c, ok := <-s.out
			if !ok {
				return
			}
			select {
			case relay <- c:
			case <-ctx.Done():
				return
			}
		}
	}
}

// step puts the next waiting push in out, or closes out once the subscriber left, and reports
// whether it did; when nothing waits the taker stops (false) until ready is called again. The
// send never blocks: the taker received the previous push before stepping again.
func (s *subscriber[T]) step() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
	case s.left:
		close(s.out)
		s.closed = true
		return true
	case len(s.queue) > 0:
		c := s.queue[0]
		var zero T
		s.queue[0] = zero
		s.queue = s.queue[1:]
		s.out <- c
		return true
	}
	s.taking = false
	s.queue = nil
	return false
}

// ended tells why the subscription ended: the RESYNC error when the feed ended it.
func (s *subscriber[T]) ended() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

// wake claims the taker's turn under s.mu; the caller calls ready, outside the lock, when it
// returns true.
func (s *subscriber[T]) wake() bool {
	if s.taking {
		return false
	}
	s.taking = true
	return true
}

// enqueue queues a push without waiting; false when the subscriber is too far behind.
func (s *subscriber[T]) enqueue(c T, maxLag int) bool {
	s.mu.Lock()
	if s.left || len(s.queue) >= maxLag {
		s.mu.Unlock()
		return s.left
	}
	s.queue = append(s.queue, c)
	wake := s.wake()
	s.mu.Unlock()
	if wake {
		s.ready()
	}
	return true
}

// remove takes the subscriber out of the feed, drops what waits for it and lets its taker close
// its channel, recording reason; it reports whether it was still in.
func (f *feed[T]) remove(s *subscriber[T], reason error) bool {
	f.mu.Lock()
	_, in := f.subs[s]
	delete(f.subs, s)
	f.mu.Unlock()
	s.mu.Lock()
	if !s.left {
		s.reason = reason
	}
	s.left = true
	s.queue = nil
	wake := s.wake()
	s.mu.Unlock()
	if wake {
		s.ready()
	}
	return in
}

// publish queues a push for every subscriber following one of keys or every key, without
// waiting for any; a subscriber too far behind is ended with RESYNC.
func (f *feed[T]) publish(c T, keys ...string) {
	var slow []*subscriber[T]
	f.mu.RLock()
	for s := range f.subs {
		if s.key != "" && !slices.Contains(keys, s.key) {
			continue
		}
		if !s.enqueue(c, f.maxLag) {
			slow = append(slow, s)
		}
	}
	f.mu.RUnlock()
	for _, s := range slow {
		if f.remove(s, errs.E(errs.Resync, "the live %s updates fell too far behind; fetch the current state and subscribe again", f.name)) {
			following := s.key
			if following == "" {
				following = "all"
			}
			f.log.Warn("ending a subscriber that cannot keep up", "feed", f.name, "following", following, "waiting_pushes", f.maxLag)
		}
	}
}

// resyncAll ends every subscription with RESYNC.
func (f *feed[T]) resyncAll(why string) {
	f.mu.RLock()
	all := make([]*subscriber[T], 0, len(f.subs))
	for s := range f.subs {
		all = append(all, s)
	}
	f.mu.RUnlock()
	for _, s := range all {
		f.remove(s, errs.E(errs.Resync, "the live %s updates may have missed changes (%s); fetch the current state and subscribe again", f.name, why))
	}
	if len(all) > 0 {
		f.log.Warn("ending every subscriber with RESYNC", "feed", f.name, "subscribers", len(all), "why", why)
	}
}

func (f *feed[T]) len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.subs)
}

// fresh reports whether an account's entry of sequence seq comes after every one pushed so
// far, and remembers it. A balance.changed event delivered again — the accounting relay
// republishes what the broker did not confirm — is then not pushed twice. An entry without a
// sequence (0) is always pushed.
func (h *Hub) fresh(account uuid.UUID, seq int64) bool {
	if seq <= 0 {
		return true
	}
	h.seenMu.Lock()
	defer h.seenMu.Unlock()
	if seq <= h.seen[account] {
		return false
	}
	h.seen[account] = seq
	return true
}

// PublishBalanceChange pushes a balance.changed event to the hub's subscribers, once per
// ledger entry (an account's entries are published in sequence order); its push looks its task
// up when it is sent.
func PublishBalanceChange(h *Hub, e event.Envelope) error {
	return PublishBalanceChanges(context.Background(), h, nil, []event.Envelope{e})
}

// TaskGetter looks tasks up by public id, one result or error per id (tasks.Service.GetMany).
type TaskGetter interface {
	GetMany(ctx context.Context, ids []uuid.UUID) ([]tasks.Task, []error)
}

// PublishBalanceChanges pushes a batch of balance.changed events in order, once per ledger
// entry (an account's entries are published in sequence order). While anyone is subscribed,
// the tasks of the entries to push are first looked up with one query (tg, when not nil), and
// each push carries its task as found then: a subscriber taking many pushes in a row — a
// follower of every account during a burst — needs no query per push, where one after another
// they made it fall behind and be dropped. A task the lookup did not find, or a failed lookup,
// leaves the push to look its task up when it is sent. The events that cannot be read reach
// nobody and are returned, joined.
func PublishBalanceChanges(ctx context.Context, h *Hub, tg TaskGetter, es []event.Envelope) error {
	type change struct {
		account uuid.UUID
		task    uuid.UUID // uuid.Nil: none
		c       *model.BalanceChange
	}
	var errList []error
	changes := make([]change, 0, len(es))
	for _, e := range es {
		account, seq, c, err := balanceChange(e)
		if err != nil {
			errList = append(errList, err)
			continue
		}
		if !h.fresh(account, seq) {
			continue // delivered again, or older than an entry pushed already
		}
		ch := change{account: account, c: c}
		if c.Entry.TaskID != nil {
			ch.task, _ = uuid.Parse(*c.Entry.TaskID) // unreadable: looked up (and refused) when sent
		}
		changes = append(changes, ch)
	}
	if tg != nil && h.Subscribers() > 0 {
		var ids []uuid.UUID
		seen := map[uuid.UUID]bool{uuid.Nil: true}
		for _, ch := range changes {
			if !seen[ch.task] {
				seen[ch.task] = true
				ids = append(ids, ch.task)
			}
		}
		if len(ids) > 0 {
			found, lookupErrs := tg.GetMany(ctx, ids)
			byID := make(map[uuid.UUID]*model.Task, len(ids))
			for i, t := range found {
				if lookupErrs[i] == nil {
					byID[ids[i]] = taskModel(t)
				}
			}
			for _, ch := range changes {
				ch.c.Entry.FoundTask = byID[ch.task]
			}
		}
	}
	for _, ch := range changes {
		h.Publish(ch.account, ch.c)
	}
	return errors.Join(errList...)
}

// balanceChange reads a balance.changed event as the push it makes.
func balanceChange(e event.Envelope) (account uuid.UUID, seq int64, c *model.BalanceChange, err error) {
	var d contract.BalanceChangedV1
	if err := e.DecodeData(&d); err != nil {
		return uuid.Nil, 0, nil, err
	}
	account, err = uuid.Parse(d.AccountID)
	if err != nil {
		return uuid.Nil, 0, nil, fmt.Errorf("balance event %s: account id: %w", e.ID, err)
	}
	day, err := calendar.Parse(d.Day)
	if err != nil {
		return uuid.Nil, 0, nil, fmt.Errorf("balance event %s: %w", e.ID, err)
	}
	return account, d.Sequence, &model.BalanceChange{
		AccountID: d.AccountID,
		Balance:   money.Cents(d.BalanceAfter),
		Entry: &model.LedgerEntry{
			ID: d.EntryID, Type: model.LedgerEntryType(d.Type), Amount: money.Cents(d.Amount),
			BalanceAfter: money.Cents(d.BalanceAfter), Description: d.Description, TaskID: d.TaskID,
			OccurredAt: d.OccurredAt.UTC(), Day: day,
		},
	}, nil
}

// PublishTaskChanges pushes a batch of task events (task.assigned, task.completed) to the
// task board's followers in order (R-LIVE-1). While anyone follows the board, the batch's tasks
// are looked up with one query (tg, when not nil) and each push carries its task as found then;
// a task not found is looked up when its push is sent. When the lookup fails, every follower
// ends with RESYNC instead of getting pushes without their tasks. An event seen before (the relay
// republishes what the broker did not confirm) is not pushed again. Events of other names are
// ignored; the ones that cannot be read reach nobody and are returned, joined.
func PublishTaskChanges(ctx context.Context, h *Hub, tg TaskGetter, es []event.Envelope) error {
	var errList []error
	changes := make([]*model.TaskChange, 0, len(es))
	for _, e := range es {
		c, err := taskChange(e)
		if err != nil {
			errList = append(errList, err)
			continue
		}
		if c == nil || !h.firstTime(e.ID) {
			continue
		}
		changes = append(changes, c)
	}
	if tg != nil && len(changes) > 0 && h.TaskSubscribers() > 0 {
		var ids []uuid.UUID
		seen := map[string]bool{}
		for _, c := range changes {
			if id, err := uuid.Parse(c.TaskID); err == nil && !seen[c.TaskID] {
				seen[c.TaskID] = true
				ids = append(ids, id)
			}
		}
		found, lookupErrs := tg.GetMany(ctx, ids)
		byID := make(map[string]*model.Task, len(ids))
		for i, t := range found {
			switch err := lookupErrs[i]; {
			case err == nil:
				byID[ids[i].String()] = taskModel(t)
			case !errs.Is(err, errs.NotFound):
				// The task tracker's database did not answer: these pushes could only carry
				// errors, so the followers refetch once it answers again (R-REL-1).
				h.ResyncTasks("the task tracker's database did not answer the feed")
				return errors.Join(errList...)
			}
		}
		for _, c := range changes {
			c.FoundTask = byID[c.TaskID]
		}
	}
	for _, c := range changes {
		h.PublishTask(c)
	}
	return errors.Join(errList...)
}

// taskChange reads a task event as the board change it makes; nil for events of other names.
func taskChange(e event.Envelope) (*model.TaskChange, error) {
	switch e.Name {
	case contract.TaskAssigned:
		var d contract.TaskAssignedV1
		if err := e.DecodeData(&d); err != nil {
			return nil, err
		}
		c := &model.TaskChange{Kind: model.TaskChangeKindCreated, TaskID: d.TaskID, AssigneeID: d.AssigneeID, OccurredAt: d.AssignedAt.UTC()}
		if d.Reason == contract.AssignedOnShuffle {
			c.Kind, c.PreviousAssigneeID = model.TaskChangeKindReassigned, d.PreviousAssigneeID
		}
		return c, nil
	case contract.TaskCompleted:
		var d contract.TaskCompletedV1
		if err := e.DecodeData(&d); err != nil {
			return nil, err
		}
		return &model.TaskChange{Kind: model.TaskChangeKindCompleted, TaskID: d.TaskID, AssigneeID: d.AssigneeID, OccurredAt: d.CompletedAt.UTC()}, nil
	}
	return nil, nil
}

// recentEvents is how many task event ids the hub remembers to push each once.
const recentEvents = 65536

// firstTime reports whether an event has not been pushed before, remembering it.
func (h *Hub) firstTime(id string) bool {
	h.seenMu.Lock()
	defer h.seenMu.Unlock()
	if h.recent.Contains(id) {
		return false
	}
	h.recent.Add(id, struct{}{})
	return true
}
