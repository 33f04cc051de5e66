package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/uberpopug/ates/services/backoff"
	"github.com/uberpopug/ates/services/bus"
)

// consumer is a running subscription. It outlives connections: after a loss it opens a new
// channel, declares and binds its queue again and resumes.
type consumer struct {
	t       *Transport
	sub     bus.Subscription
	queue   string // prefixed durable queue name; empty for a private subscription
	feed    string // prefixed queue name of a feed (bus.Subscription.Feed); empty otherwise
	handler bus.Handler
	batch   bus.BatchHandler // instead of handler: one worker taking batches (SubscribeBatch)
	log     *slog.Logger

	ctx      context.Context // handlers' context: cancelled on abort, or once Stop returned
	cancel   context.CancelFunc
	quit     context.Context // cancelled on Stop or abort: stop waiting for connections
	stopQuit context.CancelFunc
	stopping chan struct{} // closed by Stop: take no more deliveries
	stopOnce sync.Once
	done     chan struct{} // closed when the consumer has finished
}

// session is one channel's consumption of the queue.
type session struct {
	ch         *amqp.Channel
	queue      string
	deliveries <-chan amqp.Delivery
	// created is set when the queue had to be created for this session: what was published
	// to it before may be lost (bus.Subscription.OnGap).
	created bool
}

// Subscribe declares and binds the subscription's queue and consumes it in the background; see
// bus.Transport. Prefetch is the channel's QoS, Concurrency the number of handler goroutines.
// After a lost connection the consumer resumes by itself. A private subscription then gets a
// new queue, so what was published while it was away is not delivered to it (OnGap says so); a
// feed's queue waits for it (bus.Subscription.Feed).
func (t *Transport) Subscribe(ctx context.Context, s bus.Subscription, h bus.Handler) (bus.Consumer, error) {
	if h == nil {
		return nil, errors.New("rabbitmq: subscribe: nil handler")
	}
	return t.subscribe(ctx, s.Normalize(), h, nil)
}

// SubscribeBatch consumes in batches; see bus.Transport. Each of Concurrency workers is a
// consumer on its own channel, handling one batch at a time, so that one multiple-ack (or
// multiple-nack) of the batch's last delivery tag settles exactly that batch. A private
// subscription has one worker.
func (t *Transport) SubscribeBatch(ctx context.Context, s bus.Subscription, h bus.BatchHandler) (bus.Consumer, error) {
	if h == nil {
		return nil, errors.New("rabbitmq: subscribe: nil handler")
	}
	if s.Queue == "" {
		s.Concurrency = 1 // each worker would get a private queue, and a copy of everything
	}
	s = s.NormalizeBatch()
	one := s
	one.Concurrency = 1
	one.Prefetch = max(s.Prefetch/s.Concurrency, s.Batch)
	var all consumers
	for range s.Concurrency {
		c, err := t.subscribe(ctx, one, nil, h)
		if err != nil {
			all.Stop()
			return nil, err
		}
		all = append(all, c)
	}
	return all, nil
}

// consumers are a batch subscription's workers.
type consumers []*consumer

func (cs consumers) Stop() {
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(c.Stop)
	}
	wg.Wait()
}

func (t *Transport) subscribe(ctx context.Context, s bus.Subscription, h bus.Handler, bh bus.BatchHandler) (*consumer, error) {
	c := &consumer{t: t, sub: s, handler: h, batch: bh, stopping: make(chan struct{}), done: make(chan struct{})}
	switch {
	case s.Queue != "":
		c.queue = t.cfg.QueuePrefix + s.Queue
	case s.Feed != "":
		c.feed = t.cfg.QueuePrefix + "feed." + s.Feed
	}
	c.log = t.log.With("queue", c.queue+c.feed, "topics", s.Topics)
	c.ctx, c.cancel = context.WithCancel(bus.WithStopping(ctx, c.stopping))
	c.quit, c.stopQuit = context.WithCancel(c.ctx)

	conn, err := t.waitConn(ctx)
	if err != nil {
		c.cancel()
		return nil, fmt.Errorf("rabbitmq: subscribe: %w", err)
	}
	sess, err := c.open(conn)
	if err != nil {
		c.cancel()
		return nil, fmt.Errorf("rabbitmq: subscribe: %w", err)
	}
	if c.queue != "" {
		t.remember(c.queue, s.Topics)
	}
	if !t.register(c) {
		closeChannel(sess.ch)
		c.cancel()
		return nil, ErrClosed
	}
	go c.run(sess)
	return c, nil
}

// Stop stops taking deliveries, waits for the running handlers (whose deliveries are then
// acknowledged or requeued as usual) and hands prefetched deliveries back to the queue. A
// feed's queue is deleted: nobody will read it again (if the broker is away it expires).
func (c *consumer) Stop() {
	first := false
	c.stopOnce.Do(func() {
		first = true
		close(c.stopping)
		c.stopQuit()
	})
	<-c.done
	c.cancel()
	if first && c.feed != "" {
		c.t.deleteQueue(c.feed)
	}
}

// abort stops at once: the channel closes and every unacknowledged delivery goes back.
func (c *consumer) abort() { c.cancel() }

// open sets up a channel consuming the queue.
func (c *consumer) open(conn *amqp.Connection) (*session, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("opening a consumer channel: %w", err)
	}
	sess, err := c.consume(conn, ch)
	if err != nil {
		closeChannel(ch)
		return nil, err
	}
	return sess, nil
}

func (c *consumer) consume(conn *amqp.Connection, ch *amqp.Channel) (*session, error) {
	if err := ch.Qos(c.sub.Prefetch, 0, false); err != nil {
		return nil, fmt.Errorf("setting prefetch %d: %w", c.sub.Prefetch, err)
	}
	name, created := c.queue, false
	switch {
	case c.feed != "":
		var err error
		if created, err = c.t.declareFeed(conn, ch, c.feed, c.sub.Topics); err != nil {
			return nil, err
		}
		name = c.feed
	case name == "":
		q, err := ch.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			return nil, fmt.Errorf("declaring a private queue: %w", err)
		}
		name, created = q.Name, true
		if err := c.t.bind(ch, name, c.sub.Topics); err != nil {
			return nil, err
		}
	default:
		if err := c.t.declareQueue(ch, name, c.sub.Topics); err != nil {
			return nil, err
		}
	}
	deliveries, err := ch.Consume(name, "", false, false, false, false, nil)
	if err != nil {
		return nil, fmt.Errorf("consuming queue %q: %w", name, err)
	}
	return &session{ch: ch, queue: name, deliveries: deliveries, created: created}, nil
}

// declareFeed declares a feed's queue (durable, expiring when unused for FeedExpiry) and binds
// its topics; created reports that it did not exist before (R-REL-1). Whether it existed is
// asked of the broker on a channel of its own (a passive declaration of a missing queue closes
// its channel), never remembered: a transport that restarted knows nothing of its past.
func (t *Transport) declareFeed(conn *amqp.Connection, ch *amqp.Channel, name string, topics []string) (created bool, err error) {
	probe, err := conn.Channel()
	if err != nil {
		return false, fmt.Errorf("opening a channel to look for queue %q: %w", name, err)
	}
	_, err = probe.QueueDeclarePassive(name, true, false, false, false, nil)
	var amqpErr *amqp.Error
	switch {
	case err == nil:
		closeChannel(probe)
	case errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound:
		created = true // the broker closed the probe's channel
	default:
		closeChannel(probe)
		return false, fmt.Errorf("looking for queue %q: %w", name, err)
	}
	args := amqp.Table{amqp.QueueTTLArg: t.cfg.FeedExpiry.Milliseconds()}
	if _, err := ch.QueueDeclare(name, true, false, false, false, args); err != nil {
		return false, fmt.Errorf("declaring feed queue %q: %w", name, err)
	}
	return created, t.bind(ch, name, topics)
}

// deleteQueue deletes a queue if the transport is connected; otherwise it is left to expire.
func (t *Transport) deleteQueue(name string) {
	t.mu.Lock()
	conn := t.conn
	t.mu.Unlock()
	if conn == nil || conn.IsClosed() {
		return
	}
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	defer closeChannel(ch)
	if _, err := ch.QueueDelete(name, false, false, false); err != nil {
		t.log.Warn("deleting a stopped feed's queue; it expires by itself", "queue", name, "err", err)
	}
}

// run serves sessions until the consumer stops, resuming after lost channels.
func (c *consumer) run(sess *session) {
	defer close(c.done)
	defer c.t.unregister(c)
	flaps := backoff.New(c.t.cfg.reconnectPolicy())
	for first := true; ; first = false {
		started := time.Now()
		if sess.created && c.sub.OnGap != nil {
			// Before anything from the new queue is handed over (R-REL-1).
			if !first {
				c.log.Warn("the subscription's queue was created anew: messages published meanwhile may be lost; reporting a gap")
			}
			c.sub.OnGap()
		}
		c.serve(sess)
		// Deliveries not acknowledged (prefetched, or held by an aborted handler) go back now.
		closeChannel(sess.ch)
		if c.quit.Err() != nil {
			return
		}
		c.log.Warn("consumer lost its channel; resuming")
		if time.Since(started) < time.Second {
			// A channel that keeps closing at once (say, the server cancels the consumer
			// again and again) must not make a busy loop.
			if !backoff.Sleep(c.quit, flaps.Next()) {
				return
			}
		} else {
			flaps.Reset()
		}
		if sess = c.reopen(); sess == nil {
			return
		}
		c.log.Info("consumer resumed", "consuming", sess.queue)
	}
}

// serve runs the handler goroutines until the session ends, the consumer stops or it is aborted.
func (c *consumer) serve(sess *session) {
	var wg sync.WaitGroup
	if c.batch != nil {
		wg.Go(func() { c.workBatches(sess) })
	} else {
		for range c.sub.Concurrency {
			wg.Go(func() { c.work(sess) })
		}
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-c.ctx.Done():
		// Aborted: return unacknowledged deliveries without waiting for the handlers.
		closeChannel(sess.ch)
		<-finished
	}
}

// reopen waits for a connection and consumes again; nil means the consumer stopped meanwhile.
func (c *consumer) reopen() *session {
	b := backoff.New(c.t.cfg.reconnectPolicy())
	for {
		conn, err := c.t.waitConn(c.quit)
		if err != nil {
			return nil
		}
		sess, err := c.open(conn)
		if err == nil {
			return sess
		}
		delay := b.Next()
		c.log.Warn("cannot resume consumer; retrying", "retry_in", delay, "err", err)
		if !backoff.Sleep(c.quit, delay) {
			return nil
		}
	}
}

// work handles deliveries one at a time.
func (c *consumer) work(sess *session) {
	for {
		select {
		case <-c.stopping:
			return
		case <-c.ctx.Done():
			return
		case d, ok := <-sess.deliveries:
			if !ok {
				return
			}
			if c.stopped() {
				return // not handled: it goes back to the queue when the channel closes
			}
			c.handle(d)
		}
	}
}

// workBatches hands the deliveries over in batches: the first AMQP delivery is waited for, then
// the batch takes what arrives within the subscription's Linger until it holds Batch bus
// deliveries (a CloudEvents batch counts its events).
func (c *consumer) workBatches(sess *session) {
	var b amqpBatch
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		b.reset()
		select {
		case <-c.stopping:
			return
		case <-c.ctx.Done():
			return
		case d, ok := <-sess.deliveries:
			if !ok {
				return
			}
			b.add(d, c.deliveries(d))
		}
		linger.Reset(c.sub.Linger)
	more:
		for len(b.flat) < c.sub.Batch {
			select {
			case d, ok := <-sess.deliveries:
				if !ok {
					break more
				}
				b.add(d, c.deliveries(d))
			case <-linger.C:
				break more
			}
		}
		linger.Stop()
		if c.stopped() {
			return // not handled: back to the queue when the channel closes
		}
		c.handleBatch(&b)
	}
}

// amqpBatch is what a batch worker took: AMQP deliveries, and the bus deliveries they carry in
// order (several for a CloudEvents batch or a pack).
type amqpBatch struct {
	amqp []amqp.Delivery
	ends []int // ends[i]: how many bus deliveries amqp[0..i] carry
	flat []bus.Delivery
}

// reset empties the batch for the next one. The bus deliveries get a new slice: a handler may
// keep the one it was given.
func (b *amqpBatch) reset() {
	b.amqp, b.ends, b.flat = b.amqp[:0], b.ends[:0], nil
}

func (b *amqpBatch) add(d amqp.Delivery, ds []bus.Delivery) {
	b.amqp = append(b.amqp, d)
	b.flat = append(b.flat, ds...)
	b.ends = append(b.ends, len(b.flat))
}

// handleBatch runs the batch handler on at most Batch bus deliveries at a time (a batch larger
// than that is handed over in parts) and settles AMQP deliveries with multiple-acks of the last
// tag wholly handled: the worker handles one batch at a time on its own channel, so every
// earlier tag is settled already. A handler error requeues every AMQP delivery not yet
// acknowledged — whole AMQP batches, so events of a batch already handled come again (consumers'
// inboxes drop them) — with one multiple-nack. An aborted consumer does neither.
func (c *consumer) handleBatch(b *amqpBatch) {
	settled := 0 // AMQP deliveries acknowledged so far
	for start := 0; start < len(b.flat); {
		end := min(start+c.sub.Batch, len(b.flat))
		err := c.batch(c.ctx, b.flat[start:end:end])
		if c.ctx.Err() != nil {
			return
		}
		if err != nil {
			c.log.Warn("batch handler failed; requeueing the batch", "deliveries", end-start, "err", err)
			if err := b.amqp[len(b.amqp)-1].Nack(true, true); err != nil {
				c.log.Warn("nack failed; the broker redelivers when the channel closes", "err", err)
			}
			return
		}
		done := settled
		for done < len(b.amqp) && b.ends[done] <= end {
			done++
		}
		if done > settled {
			if err := b.amqp[done-1].Ack(true); err != nil {
				c.log.Warn("ack failed; the batch will be redelivered", "deliveries", end-start, "err", err)
			}
			settled = done
		}
		start = end
	}
}

func (c *consumer) stopped() bool {
	select {
	case <-c.stopping:
		return true
	default:
		return c.ctx.Err() != nil
	}
}

// handle runs the handler on each message the delivery carries, in order, and acknowledges
// (all nil) or requeues (at the first error; the whole batch comes again) the delivery; an
// aborted consumer does neither, and the broker redelivers.
func (c *consumer) handle(d amqp.Delivery) {
	for _, bd := range c.deliveries(d) {
		err := c.handler(c.ctx, bd)
		if c.ctx.Err() != nil {
			return
		}
		if err != nil {
			c.log.Warn("handler failed; requeueing", "id", bd.ID, "topic", d.RoutingKey, "redelivered", d.Redelivered, "err", err)
			if err := d.Nack(false, true); err != nil {
				c.log.Warn("nack failed; the broker redelivers when the channel closes", "id", bd.ID, "err", err)
			}
			return
		}
	}
	if err := d.Ack(false); err != nil {
		c.log.Warn("ack failed; the message will be redelivered", "id", d.MessageId, "err", err)
	}
}

// deliveries are the bus deliveries an AMQP delivery carries: itself, or the events of a
// CloudEvents batch or of a pack. A batch or pack that cannot be read at all is handed over
// whole as one delivery, and a batch element that cannot be read as one delivery of its raw
// bytes, so the consumer's handler refuses it and it ends in the dead-letter store — alone,
// the batch's other events handled as usual — rather than blocking the queue.
func (c *consumer) deliveries(d amqp.Delivery) []bus.Delivery {
	elems, err := carried(d)
	if err != nil {
		c.log.Warn("unreadable batch; handing it over as one message", "topic", d.RoutingKey, "content_type", d.ContentType, "bytes", len(d.Body), "err", err)
		return []bus.Delivery{{
			Message:     bus.Message{ID: d.MessageId, Topic: d.RoutingKey, Body: d.Body},
			Redelivered: d.Redelivered,
		}}
	}
	ds := make([]bus.Delivery, len(elems))
	for i, e := range elems {
		if e.err != nil {
			c.log.Warn("unreadable event in a batch; handing it over as it is", "topic", d.RoutingKey, "id", e.msg.ID, "bytes", len(e.msg.Body), "err", e.err)
		}
		ds[i] = bus.Delivery{Message: e.msg, Redelivered: d.Redelivered}
	}
	return ds
}
