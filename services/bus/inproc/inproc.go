// Package inproc is the in-process event transport of the embedded default (R-OPS-1).
//
// It keeps queues in memory, so durability comes from the outbox: Publish returns only when
// every queue the message was routed to has had it acknowledged by a consumer, i.e. after the
// consuming context committed. A crash before that leaves the outbox row unsent and the relay
// publishes it again; consumers' inboxes drop the duplicate. That gives the same outbox and
// idempotency guarantees as RabbitMQ, at the price of publish latency equal to consumption.
package inproc

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/bus"
)

// ErrClosed is returned by a closed bus.
var ErrClosed = errors.New("inproc: bus closed")

// Bus is an in-process bus.Transport.
type Bus struct {
	mu     sync.Mutex
	queues map[string]*queue
	closed bool
}

var _ bus.Transport = (*Bus)(nil)

// New returns an empty bus.
func New() *Bus { return &Bus{queues: map[string]*queue{}} }

type item struct {
	msg         bus.Message
	redelivered bool
	// publishers waiting for this item's acknowledgement; a republished message that is still
	// pending joins the pending item instead of queueing a second copy.
	waiters []*tracker
}

// tracker counts the acknowledgements one Publish call still waits for.
type tracker struct {
	mu        sync.Mutex
	remaining int
	done      chan struct{}
}

// newTracker starts with one hold for the publisher itself, released by seal once every
// message is routed, so acknowledgements arriving meanwhile cannot finish it early.
func newTracker() *tracker { return &tracker{remaining: 1, done: make(chan struct{})} }

func (t *tracker) add() {
	t.mu.Lock()
	t.remaining++
	t.mu.Unlock()
}

func (t *tracker) ack() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.remaining--
	if t.remaining == 0 {
		close(t.done)
	}
}

// seal releases the publisher's hold: done closes once every routed copy is acknowledged.
func (t *tracker) seal() { t.ack() }

func (it *item) ack() {
	for _, w := range it.waiters {
		w.ack()
	}
}

type queue struct {
	name    string
	private bool
	topics  map[string]bool
	pending []*item
	queued  map[string]*item // pending items by message id
	signal  chan struct{}    // closed and replaced when items arrive
}

func (q *queue) matches(topic string) bool {
	for p := range q.topics {
		if bus.TopicMatches(p, topic) {
			return true
		}
	}
	return false
}

// pendingItem returns the queued, not yet delivered, item of a message id; callers hold b.mu.
func (q *queue) pendingItem(id string) *item {
	if id == "" {
		return nil
	}
	return q.queued[id]
}

// byID indexes a queued item by its message id; callers hold b.mu.
func (q *queue) byID(it *item) {
	if it.msg.ID != "" {
		q.queued[it.msg.ID] = it
	}
}

// unindex forgets a dequeued item; callers hold b.mu.
func (q *queue) unindex(it *item) {
	if q.queued[it.msg.ID] == it {
		delete(q.queued, it.msg.ID)
	}
}

// wake tells waiting consumers there is work; callers hold b.mu.
func (q *queue) wake() {
	close(q.signal)
	q.signal = make(chan struct{})
}

// Declare creates durable queues and bindings.
func (b *Bus) Declare(_ context.Context, queues ...bus.Queue) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	for _, q := range queues {
		b.declareLocked(q.Name, false, q.Topics)
	}
	return nil
}

func (b *Bus) declareLocked(name string, private bool, topics []string) *queue {
	q, ok := b.queues[name]
	if !ok {
		q = &queue{name: name, private: private, topics: map[string]bool{}, queued: map[string]*item{}, signal: make(chan struct{})}
		b.queues[name] = q
	}
	for _, t := range topics {
		q.topics[t] = true
	}
	return q
}

// Publish routes each message to every matching queue and waits until each has been acknowledged.
func (b *Bus) Publish(ctx context.Context, msgs ...bus.Message) error {
	t := newTracker()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	for _, m := range msgs {
		for _, q := range b.queues {
			if !q.matches(m.Topic) {
				continue
			}
			t.add()
			if it := q.pendingItem(m.ID); it != nil {
				it.waiters = append(it.waiters, t)
				continue
			}
			it := &item{msg: m, waiters: []*tracker{t}}
			q.pending = append(q.pending, it)
			q.byID(it)
			q.wake()
		}
	}
	b.mu.Unlock()
	t.seal()
	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("inproc: waiting for consumers to acknowledge: %w", ctx.Err())
	}
}

// Subscribe starts consuming the subscription's queue.
func (b *Bus) Subscribe(ctx context.Context, s bus.Subscription, h bus.Handler) (bus.Consumer, error) {
	s = s.Normalize()
	s.Batch = 1
	return b.subscribe(ctx, s, func(ctx context.Context, ds []bus.Delivery) error { return h(ctx, ds[0]) })
}

// SubscribeBatch starts consuming the subscription's queue in batches: each of Concurrency
// workers takes what is queued, up to Batch messages, and acknowledges or requeues them together.
func (b *Bus) SubscribeBatch(ctx context.Context, s bus.Subscription, h bus.BatchHandler) (bus.Consumer, error) {
	return b.subscribe(ctx, s.NormalizeBatch(), h)
}

func (b *Bus) subscribe(ctx context.Context, s bus.Subscription, h bus.BatchHandler) (bus.Consumer, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	name, private := s.Queue, s.Queue == ""
	if private {
		name = "private." + uuid.NewString()
	}
	q := b.declareLocked(name, private, s.Topics)
	b.mu.Unlock()

	abortCtx, abort := context.WithCancel(ctx)
	c := &consumer{bus: b, q: q, batch: s.Batch, stopping: make(chan struct{}), abort: abort}
	handlerCtx := bus.WithStopping(abortCtx, c.stopping)
	for range s.Concurrency {
		c.wg.Add(1)
		go c.work(handlerCtx, h)
	}
	go func() {
		<-abortCtx.Done()
		c.stop() // an aborted consumer also releases its private queue
	}()
	return c, nil
}

type consumer struct {
	bus      *Bus
	q        *queue
	batch    int
	wg       sync.WaitGroup
	once     sync.Once
	stopping chan struct{}
	abort    context.CancelFunc
}

// Stop stops taking deliveries and waits for the running handlers.
func (c *consumer) Stop() {
	c.stop()
	c.abort()
}

func (c *consumer) stop() {
	c.once.Do(func() {
		close(c.stopping)
		c.wg.Wait()
		if c.q.private {
			c.bus.mu.Lock()
			delete(c.bus.queues, c.q.name)
			// Nobody will consume what is left: release its publishers.
			for _, it := range c.q.pending {
				it.ack()
			}
			c.q.pending, c.q.queued = nil, nil
			c.bus.mu.Unlock()
		}
	})
}

func (c *consumer) work(ctx context.Context, h bus.BatchHandler) {
	defer c.wg.Done()
	for {
		items, ok := c.take(ctx)
		if !ok {
			return
		}
		ds := make([]bus.Delivery, len(items))
		for i, it := range items {
			ds[i] = bus.Delivery{Message: it.msg, Redelivered: it.redelivered}
		}
		// The handler keeps running on Stop (graceful) but sees an abort.
		err := h(ctx, ds)
		if err == nil && ctx.Err() == nil {
			for _, it := range items {
				it.ack()
			}
			continue
		}
		c.bus.mu.Lock()
		for _, it := range items {
			it.redelivered = true
			c.q.byID(it)
		}
		c.q.pending = append(items, c.q.pending...)
		c.q.wake()
		c.bus.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
	}
}

// take waits for queued items and takes up to a batch of them, or reports false when the
// consumer stops.
func (c *consumer) take(ctx context.Context) ([]*item, bool) {
	for {
		c.bus.mu.Lock()
		select {
		case <-c.stopping:
			c.bus.mu.Unlock()
			return nil, false
		default:
		}
		if n := min(len(c.q.pending), c.batch); n > 0 {
			items := make([]*item, n)
			copy(items, c.q.pending)
			clear(c.q.pending[:n])
			c.q.pending = c.q.pending[n:]
			for _, it := range items {
				c.q.unindex(it)
			}
			c.bus.mu.Unlock()
			return items, true
		}
		signal := c.q.signal
		c.bus.mu.Unlock()
		select {
		case <-signal:
		case <-c.stopping:
			return nil, false
		case <-ctx.Done():
			return nil, false
		}
	}
}

// Close stops accepting publications and subscriptions.
func (b *Bus) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}
