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

// subscriberBuffer is how many pushes a subscriber may lag behind before it is dropped.
const subscriberBuffer = 64

// Hub fans balance changes out to the gateway's subscribers (R-ACC-10). It is fed by the
// gateway's own subscription to balance.changed events — never by polling a database — and
// never blocks its feed: a subscriber whose buffer is full is dropped (its subscription ends)
// and logged. Subscribers leave when their context ends.
type Hub struct {
	log  *slog.Logger
	mu   sync.RWMutex
	subs map[*hubSubscriber]struct{}
}

type hubSubscriber struct {
	account *uuid.UUID // nil: every account
	ch      chan *model.BalanceChange
	once    sync.Once
}

func (s *hubSubscriber) close() { s.once.Do(func() { close(s.ch) }) }

// NewHub returns an empty hub.
func NewHub(log *slog.Logger) *Hub {
	return &Hub{log: log, subs: map[*hubSubscriber]struct{}{}}
}

// Subscribe returns the pushes for one account (or all, with nil) until ctx ends or the
// subscriber falls behind; then the channel is closed.
func (h *Hub) Subscribe(ctx context.Context, account *uuid.UUID) <-chan *model.BalanceChange {
	s := &hubSubscriber{account: account, ch: make(chan *model.BalanceChange, subscriberBuffer)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	go func() {
		<-ctx.Done()
		h.remove(s)
	}()
	return s.ch
}

func (h *Hub) remove(s *hubSubscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
	s.close()
}

// Publish pushes a change to every interested subscriber without waiting for any.
func (h *Hub) Publish(accountID uuid.UUID, c *model.BalanceChange) {
	var slow []*hubSubscriber
	h.mu.RLock()
	for s := range h.subs {
		if s.account != nil && *s.account != accountID {
			continue
		}
		select {
		case s.ch <- c:
		default:
			slow = append(slow, s)
		}
	}
	h.mu.RUnlock()
	for _, s := range slow {
		h.log.Warn("dropping a balance subscriber that cannot keep up", "buffer", subscriberBuffer)
		h.remove(s)
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
