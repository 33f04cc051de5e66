// Package bus defines the transport that carries events between contexts (R-EVT-4, R-EVT-5).
// Two implementations satisfy it and pass the same contract suite (bus/bustest): in-process
// (bus/inproc, the embedded default) and RabbitMQ (bus/rabbitmq, when ATES_AMQP_URL is set).
//
// Semantics, for both:
//   - Publish returns nil only once the transport has taken responsibility for every message
//     (RabbitMQ: publisher confirms of persistent messages; in-process: every bound queue's
//     consumer acknowledged it). Only then may the outbox mark rows sent.
//   - Messages are routed by Topic (the event name) to every queue bound with a matching
//     pattern, with topic-exchange rules: words separated by '.', '*' matches one word, '#'
//     zero or more. A message that matches no queue is dropped (and confirmed).
//   - A durable queue (Subscription.Queue set) is shared: its consumers compete, each message
//     goes to one of them. A private subscription (Queue empty) gets its own exclusive queue
//     that lives as long as the consumer: every private subscriber sees every message.
//   - A feed (Subscription.Feed set) is a private subscription whose queue outlives its
//     consumer's connection: named by the feed, durable, expiring only when unused for long, so
//     a consumer that reconnects gets what was published meanwhile. Whenever a subscription's
//     queue may have lost messages — the transport had to create it when the consumer
//     (re)attached — OnGap is called before the next delivery (R-REL-1).
//   - A queue with one consumer gets the messages of one Publish call in their order, except
//     that messages of different Keys may be reordered between each other (RabbitMQ batches the
//     messages of a topic together); each key's messages keep their order.
//   - The handler's nil return acknowledges the message; an error, or the consumer stopping
//     before the handler returned, puts it back for redelivery (Delivery.Redelivered set).
//   - Stop lets running handlers finish, and tells them it is waiting: Stopping(ctx) of a
//     handler's context closes. A handler that is only waiting (for a database to come back)
//     gives up then and returns an error, so its delivery is redelivered later and Stop is not
//     held up by an outage (R-OPS-5, R-REL-2).
//     A transport may carry messages published together as one unit (RabbitMQ's CloudEvents batches): a
//     redelivery then brings back the unit's other messages too. Consumers are idempotent
//     (inboxes), so at-least-once is the contract; exactly-once effect is theirs.
package bus

import (
	"context"
	"strings"
	"time"
)

// Message is one event on the wire.
type Message struct {
	// ID is the event id, unique per event.
	ID string
	// Topic is the routing key: the event name, e.g. "account.created".
	Topic string
	// Body is the event envelope as JSON.
	Body []byte
	// Key names the aggregate the message is about (the outbox's aggregate key: an account or
	// task id). A transport may reorder messages published together only across keys: the
	// messages of one key, and every message without a key, keep the order they were given in.
	// It is the transport's to use: consumers must not rely on it (RabbitMQ does not carry it).
	Key string
}

// Delivery is a message handed to a consumer.
type Delivery struct {
	Message
	// Redelivered is set when the message was handed out before and not acknowledged.
	Redelivered bool
}

// stoppingKey is the context key of the channel Stopping returns.
type stoppingKey struct{}

// WithStopping returns ctx carrying stopping, the channel a transport closes when the consumer
// whose handlers get ctx is asked to stop. Transports call it; handlers read it with Stopping.
func WithStopping(ctx context.Context, stopping <-chan struct{}) context.Context {
	return context.WithValue(ctx, stoppingKey{}, stopping)
}

// Stopping returns the channel that closes when the consumer running the handler that got ctx
// is stopping (Consumer.Stop): a handler waiting out a temporary failure gives up then and
// returns an error (R-OPS-5). Outside a handler it returns nil, which never closes.
func Stopping(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(stoppingKey{}).(<-chan struct{})
	return ch
}

// Handler processes one delivery; nil acknowledges it, an error requeues it.
type Handler func(ctx context.Context, d Delivery) error

// BatchHandler processes deliveries taken together, at most Subscription.Batch of them, in the
// order the queue handed them out; nil acknowledges every one (RabbitMQ: one multiple-ack), an
// error requeues every one.
type BatchHandler func(ctx context.Context, ds []Delivery) error

// Queue is a durable queue and the topic patterns bound to it.
type Queue struct {
	Name   string
	Topics []string
}

// Subscription describes what a consumer reads.
type Subscription struct {
	// Queue is the durable queue to consume; empty for a private, exclusive, auto-deleted queue.
	Queue string
	// Topics are the binding patterns; for a durable queue they are declared (idempotently).
	Topics []string
	// Prefetch bounds the unacknowledged deliveries held by this consumer (default 64).
	Prefetch int
	// Concurrency is how many handler calls run at once (default 1).
	Concurrency int
	// Batch bounds the deliveries one BatchHandler call gets (SubscribeBatch; default 100). A
	// batch is what the queue holds when the handler is free, without waiting for more.
	Batch int
	// Feed, on a private subscription (Queue empty), names a feed of this process that survives
	// reconnects (R-REL-1): its purpose and the process instance, e.g. "gateway.<instance>.balances",
	// unique to the process. The transport keeps its queue across lost connections and broker
	// restarts (RabbitMQ: a durable queue named after the feed, neither exclusive nor auto-deleted,
	// expiring when unused for rabbitmq.Config.FeedExpiry), so what is published while the
	// consumer is away waits for it; Stop deletes the queue. The in-process bus has no broker to
	// lose: a feed is a private subscription there.
	Feed string
	// OnGap, when set, is called whenever the subscription's queue may have lost messages: the
	// transport had to create it when the consumer attached or re-attached (it expired, the
	// broker lost it, a private queue is new after every reconnect). It is called from the
	// consumer, before the next delivery is handed over, and must not block for long. The first
	// attachment counts too: a brand-new process's feed reports one gap before anything is
	// delivered, since a transport cannot tell it from a queue lost while it kept no memory of
	// it — with nobody subscribed yet, harmless. The in-process bus never loses messages and
	// never calls it.
	OnGap func()
	// Linger is how long a batch waits for more deliveries after its first (SubscribeBatch on
	// RabbitMQ; default DefaultLinger). A consumer whose results nobody waits for, such as a
	// read model, may wait longer: larger batches cost less per event. The in-process bus hands
	// over what is queued without waiting.
	Linger time.Duration
}

// Consumer is a running subscription.
type Consumer interface {
	// Stop stops taking deliveries, waits for running handlers and returns; deliveries not
	// acknowledged go back to the queue.
	Stop()
}

// Transport publishes and consumes messages.
type Transport interface {
	// Declare creates durable queues and their bindings, so messages published before a
	// consumer starts are kept for it.
	Declare(ctx context.Context, queues ...Queue) error
	// Publish hands the messages over; see the package comment for when it returns nil.
	Publish(ctx context.Context, msgs ...Message) error
	// Subscribe declares and binds the subscription's queue, then consumes it in the background
	// until ctx is cancelled (stop without waiting: unacknowledged deliveries are redelivered)
	// or Stop is called. It returns once the queue is bound.
	Subscribe(ctx context.Context, s Subscription, h Handler) (Consumer, error)
	// SubscribeBatch is Subscribe handing deliveries over in batches: each of Concurrency
	// workers takes up to Batch deliveries at a time and has them all acknowledged or requeued
	// together. Prefetch is raised so that every worker can hold two batches (NormalizeBatch).
	SubscribeBatch(ctx context.Context, s Subscription, h BatchHandler) (Consumer, error)
	// Close releases the transport's resources.
	Close() error
}

// Link is implemented by a transport that depends on a connection to a broker (RabbitMQ).
type Link interface {
	// Connected reports whether the transport holds a live connection now, and returns a
	// channel that is closed at its next change (lost, or replaced by a new one).
	Connected() (up bool, changed <-chan struct{})
}

// Connected reports t's connection (Link); a transport without a broker (in-process) is always
// connected and its channel is nil, which never closes (R-REL-3).
func Connected(t Transport) (up bool, changed <-chan struct{}) {
	if l, ok := t.(Link); ok {
		return l.Connected()
	}
	return true, nil
}

// Normalize fills the subscription's defaults.
func (s Subscription) Normalize() Subscription {
	if s.Prefetch <= 0 {
		s.Prefetch = 64
	}
	if s.Concurrency <= 0 {
		s.Concurrency = 1
	}
	if s.Prefetch < s.Concurrency {
		s.Prefetch = s.Concurrency
	}
	if s.Batch <= 0 {
		s.Batch = 1
	}
	return s
}

// DefaultBatch is the batch size of SubscribeBatch when the subscription sets none.
const DefaultBatch = 100

// DefaultLinger is Subscription.Linger when the subscription sets none: the client library
// hands deliveries over one by one through a goroutine, so what has already arrived is not all
// visible at once. A quiet queue pays it once per event; a busy one fills batches well before.
const DefaultLinger = 2 * time.Millisecond

// NormalizeBatch fills the defaults of a batch subscription: Batch (default DefaultBatch),
// Linger (DefaultLinger), and a prefetch that lets every worker take a whole batch while the
// next one arrives.
func (s Subscription) NormalizeBatch() Subscription {
	if s.Batch <= 0 {
		s.Batch = DefaultBatch
	}
	if s.Linger <= 0 {
		s.Linger = DefaultLinger
	}
	s = s.Normalize()
	if want := 2 * s.Batch * s.Concurrency; s.Prefetch < want {
		s.Prefetch = want
	}
	return s
}

// TopicMatches reports whether a routing key matches a binding pattern under topic-exchange
// rules ('*' one word, '#' zero or more words).
func TopicMatches(pattern, topic string) bool {
	return matchWords(words(pattern), words(topic))
}

// words splits a key into its words. As on RabbitMQ, the empty key has none (so '*' does not
// match it), while "a..b" has an empty middle word.
func words(key string) []string {
	if key == "" {
		return nil
	}
	return strings.Split(key, ".")
}

func matchWords(p, t []string) bool {
	for len(p) > 0 {
		switch p[0] {
		case "#":
			if len(p) == 1 {
				return true
			}
			for i := 0; i <= len(t); i++ {
				if matchWords(p[1:], t[i:]) {
					return true
				}
			}
			return false
		case "*":
			if len(t) == 0 {
				return false
			}
		default:
			if len(t) == 0 || t[0] != p[0] {
				return false
			}
		}
		p, t = p[1:], t[1:]
	}
	return len(t) == 0
}
