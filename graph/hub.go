package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/graph/model"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/money"
	"github.com/uberpopug/ates/services/tasks"
)

// maxSubscriberLag is how many pushes may wait for one subscriber before it is dropped. A
// burst — a shuffle reassigning hundreds of open tasks at once, seen by an accountant following
// every account — is absorbed; a subscriber that stopped reading is not kept forever. The
// waiting pushes are shared by all subscribers, so a lagging one costs 8 bytes per push.
const maxSubscriberLag = 4096

// Hub fans balance changes out to the gateway's subscribers (R-ACC-10). It is fed by the
// gateway's own subscription to balance.changed events — never by polling a database — and
// never blocks its feed: every subscriber has a bounded queue; a subscriber that lets
// maxSubscriberLag pushes pile up is dropped (its subscription ends) and logged. Subscribers
// leave when their context ends.
//
// An idle subscriber costs no goroutine: when pushes start waiting, the hub asks a taker to
// drain the queue (see pushTaker); the taker runs until the queue is empty and stops.
type Hub struct {
	log  *slog.Logger
	mu   sync.RWMutex
	subs map[*hubSubscriber]struct{}

	seenMu sync.Mutex
	seen   map[uuid.UUID]int64 // per account, the ledger sequence of the last entry pushed
}

// A pushTaker takes a subscription's pushes on its own goroutine, started only while pushes
// wait. The WebSocket transport is one: it puts itself in the subscription's context. take is
// called once, before any push; it returns ready, which the hub calls (never concurrently with
// a running taker) when pushes or the subscription's end wait. The taker then calls step until
// it reports false; after each true step one receive on the subscription's channel returns at
// once — the next push, or the closed channel when the subscription ended.
type pushTaker interface {
	take(step func() bool) (ready func())
}

type pushTakerKey struct{}

func withPushTaker(ctx context.Context, t pushTaker) context.Context {
	return context.WithValue(ctx, pushTakerKey{}, t)
}

type hubSubscriber struct {
	account *uuid.UUID                // nil: every account
	out     chan *model.BalanceChange // holds at most the push being taken
	ready   func()

	mu     sync.Mutex
	queue  []*model.BalanceChange // waiting, oldest first
	taking bool                   // a taker runs; ready is not called until it stops
	left   bool                   // left the hub: what waits is dropped and out is closed
	closed bool                   // out is closed
}

// NewHub returns an empty hub.
func NewHub(log *slog.Logger) *Hub {
	return &Hub{log: log, subs: map[*hubSubscriber]struct{}{}, seen: map[uuid.UUID]int64{}}
}

// Subscribe returns the pushes for one account (or all, with nil), in the order they were
// published, until ctx ends or the subscriber falls behind; then the channel is closed. With a
// pushTaker in ctx the taker reads the channel as described there; otherwise a goroutine hands
// the pushes over to whoever reads the returned channel, at the reader's pace.
func (h *Hub) Subscribe(ctx context.Context, account *uuid.UUID) <-chan *model.BalanceChange {
	s := &hubSubscriber{account: account, out: make(chan *model.BalanceChange, 1)}
	var pushes <-chan *model.BalanceChange = s.out
	if t, ok := ctx.Value(pushTakerKey{}).(pushTaker); ok {
		s.ready = t.take(s.step)
	} else {
		relay := make(chan *model.BalanceChange)
		wake := make(chan struct{}, 1)
		s.ready = func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
		go h.relay(ctx, s, wake, relay)
		pushes = relay
	}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	context.AfterFunc(ctx, func() { h.remove(s) })
	return pushes
}

// relay is the taker of a subscriber without a pushTaker: it hands each push to relay and
// closes relay when the subscription ended, after the subscriber left the hub.
func (h *Hub) relay(ctx context.Context, s *hubSubscriber, wake <-chan struct{}, relay chan<- *model.BalanceChange) {
	defer close(relay)
	defer h.remove(s)
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
func (s *hubSubscriber) step() bool {
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
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.out <- c
		return true
	}
	s.taking = false
	s.queue = nil
	return false
}

// wake claims the taker's turn under s.mu; the caller calls ready, outside the lock, when it
// returns true.
func (s *hubSubscriber) wake() bool {
	if s.taking {
		return false
	}
	s.taking = true
	return true
}

// enqueue queues a push without waiting; false when the subscriber is too far behind.
func (s *hubSubscriber) enqueue(c *model.BalanceChange) bool {
	s.mu.Lock()
	if s.left || len(s.queue) >= maxSubscriberLag {
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

// remove takes the subscriber out of the hub, drops what waits for it and lets its taker close
// its channel; it reports whether it was still in.
func (h *Hub) remove(s *hubSubscriber) bool {
	h.mu.Lock()
	_, in := h.subs[s]
	delete(h.subs, s)
	h.mu.Unlock()
	s.mu.Lock()
	s.left = true
	s.queue = nil
	wake := s.wake()
	s.mu.Unlock()
	if wake {
		s.ready()
	}
	return in
}

// Publish pushes a change to every interested subscriber without waiting for any.
func (h *Hub) Publish(accountID uuid.UUID, c *model.BalanceChange) {
	var slow []*hubSubscriber
	h.mu.RLock()
	for s := range h.subs {
		if s.account != nil && *s.account != accountID {
			continue
		}
		if !s.enqueue(c) {
			slow = append(slow, s)
		}
	}
	h.mu.RUnlock()
	for _, s := range slow {
		if h.remove(s) {
			account := "all"
			if s.account != nil {
				account = s.account.String()
			}
			h.log.Warn("dropping a balance subscriber that cannot keep up", "following", account, "waiting_pushes", maxSubscriberLag)
		}
	}
}

// Subscribers returns how many subscribers are connected.
func (h *Hub) Subscribers() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.subs)
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
