package graph

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/graph/model"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/money"
)

// maxSubscriberLag is how many pushes may wait for one subscriber before it is dropped. A
// burst — a shuffle reassigning hundreds of open tasks at once, seen by an accountant following
// every account — is absorbed; a subscriber that stopped reading is not kept forever. The
// waiting pushes are shared by all subscribers, so a lagging one costs 8 bytes per push.
const maxSubscriberLag = 4096

// Hub fans balance changes out to the gateway's subscribers (R-ACC-10). It is fed by the
// gateway's own subscription to balance.changed events — never by polling a database — and
// never blocks its feed: every subscriber has a bounded queue that its own goroutine hands to
// the subscription; a subscriber that lets maxSubscriberLag pushes pile up is dropped (its
// subscription ends) and logged. Subscribers leave when their context ends.
type Hub struct {
	log  *slog.Logger
	mu   sync.RWMutex
	subs map[*hubSubscriber]struct{}
}

type hubSubscriber struct {
	account *uuid.UUID // nil: every account
	out     chan *model.BalanceChange
	wake    chan struct{} // pushes are waiting
	gone    chan struct{} // closed once the subscriber left the hub
	once    sync.Once

	mu    sync.Mutex
	queue []*model.BalanceChange // waiting, oldest first
	lag   int                    // pushes queued and not yet handed over
}

// NewHub returns an empty hub.
func NewHub(log *slog.Logger) *Hub {
	return &Hub{log: log, subs: map[*hubSubscriber]struct{}{}}
}

// Subscribe returns the pushes for one account (or all, with nil), in the order they were
// published, until ctx ends or the subscriber falls behind; then the channel is closed.
func (h *Hub) Subscribe(ctx context.Context, account *uuid.UUID) <-chan *model.BalanceChange {
	s := &hubSubscriber{
		account: account, out: make(chan *model.BalanceChange),
		wake: make(chan struct{}, 1), gone: make(chan struct{}),
	}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	go h.deliver(ctx, s)
	return s.out
}

// deliver hands the subscriber's queued pushes over one by one until it leaves the hub: its
// context ends or it is dropped. It is the only sender on out, and closes it.
func (h *Hub) deliver(ctx context.Context, s *hubSubscriber) {
	defer close(s.out)
	for {
		s.mu.Lock()
		batch := s.queue
		s.queue = nil
		s.mu.Unlock()
		for i, c := range batch {
			select {
			case s.out <- c:
				batch[i] = nil
				s.mu.Lock()
				s.lag--
				s.mu.Unlock()
			case <-s.gone:
				return
			case <-ctx.Done():
				h.remove(s)
				return
			}
		}
		select {
		case <-s.wake:
		case <-s.gone:
			return
		case <-ctx.Done():
			h.remove(s)
			return
		}
	}
}

// enqueue queues a push without waiting; false when the subscriber is too far behind.
func (s *hubSubscriber) enqueue(c *model.BalanceChange) bool {
	s.mu.Lock()
	if s.lag >= maxSubscriberLag {
		s.mu.Unlock()
		return false
	}
	s.queue = append(s.queue, c)
	s.lag++
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return true
}

// remove takes the subscriber out of the hub; it reports whether it was still in.
func (h *Hub) remove(s *hubSubscriber) bool {
	h.mu.Lock()
	_, in := h.subs[s]
	delete(h.subs, s)
	h.mu.Unlock()
	s.once.Do(func() { close(s.gone) })
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

// PublishBalanceChange pushes a balance.changed event to the hub's subscribers.
func PublishBalanceChange(h *Hub, e event.Envelope) error {
	var d contract.BalanceChangedV1
	if err := e.DecodeData(&d); err != nil {
		return err
	}
	account, err := uuid.Parse(d.AccountID)
	if err != nil {
		return fmt.Errorf("balance event %s: account id: %w", e.ID, err)
	}
	day, err := calendar.Parse(d.Day)
	if err != nil {
		return fmt.Errorf("balance event %s: %w", e.ID, err)
	}
	h.Publish(account, &model.BalanceChange{
		AccountID: d.AccountID,
		Balance:   money.Cents(d.BalanceAfter),
		Entry: &model.LedgerEntry{
			ID: d.EntryID, Type: model.LedgerEntryType(d.Type), Amount: money.Cents(d.Amount),
			BalanceAfter: money.Cents(d.BalanceAfter), Description: d.Description, TaskID: d.TaskID,
			OccurredAt: d.OccurredAt.UTC(), Day: day,
		},
	})
	return nil
}
