// Package rabbitmq is the RabbitMQ bus.Transport (R-OPS-2), used when ATES_AMQP_URL is set.
//
// All events go through one durable topic exchange. A durable queue (bus.Queue,
// bus.Subscription.Queue) is shared by competing consumers; a private subscription gets a
// server-named exclusive auto-delete queue. Messages are persistent and Publish returns nil only
// once the broker confirmed every one (publisher confirms, all of a call in flight at once).
// Consumers acknowledge after the handler returns nil and requeue on error. Messages of one
// topic published in one call travel as one AMQP message, a CloudEvents batch
// (application/cloudevents-batch+json, cloudevents.go) of at most Config.BatchSize messages that
// any consumer of the exchange can read: the broker's cost is per AMQP message. A lone message
// travels as itself (application/json). Consumers also read the packs of earlier versions
// (pack.go). Prefetch counts AMQP messages, so a consumer may hold up to BatchSize times as
// many bus messages.
//
// The transport survives a lost connection: it redials with backoff, re-declares the exchange and
// the durable queues it declared, and resumes its consumers. Publish meanwhile waits for the
// connection (bounded by its context); a publication cut by the loss returns an error, so the
// caller (the outbox relay) retries, and duplicates are dropped by consumers' inboxes.
package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"slices"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/uberpopug/ates/services/bus"
)

// ErrClosed is returned by a closed transport.
var ErrClosed = errors.New("rabbitmq: transport closed")

// Transport is the RabbitMQ bus.Transport. It is safe for concurrent use.
type Transport struct {
	cfg Config
	log *slog.Logger

	ctx        context.Context // cancelled by Close
	cancel     context.CancelFunc
	supervisor sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	conn      *amqp.Connection    // nil while reconnecting
	changed   chan struct{}       // closed and replaced whenever conn changes
	queues    map[string][]string // durable queue (prefixed) → patterns, re-declared on reconnect
	idle      []*pubChannel       // confirm-mode channels of conn, ready for Publish
	consumers map[*consumer]struct{}
}

var _ bus.Transport = (*Transport)(nil)

// New connects to the broker and declares the exchange. It retries with backoff until ctx is done,
// so a caller that must not wait long for the broker passes a deadline.
func New(ctx context.Context, cfg Config) (*Transport, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Transport{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "bus.rabbitmq", "exchange", cfg.Exchange),
		changed:   make(chan struct{}),
		queues:    map[string][]string{},
		consumers: map[*consumer]struct{}{},
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	conn, lost, err := t.connect(ctx)
	if err != nil {
		t.cancel()
		return nil, err
	}
	t.setConn(conn)
	t.supervisor.Add(1)
	go t.supervise(conn, lost)
	return t, nil
}

// Close aborts the consumers (their unacknowledged deliveries go back to their queues), waits for
// their handlers to return, and closes the connection. Closing twice is harmless.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	consumers := slices.Collect(maps.Keys(t.consumers))
	t.mu.Unlock()

	t.cancel()
	for _, c := range consumers {
		c.abort()
	}
	for _, c := range consumers {
		<-c.done
	}
	t.supervisor.Wait()

	t.mu.Lock()
	conn := t.conn
	t.conn, t.idle = nil, nil
	t.mu.Unlock()
	if conn == nil {
		return nil
	}
	if err := conn.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
		return fmt.Errorf("rabbitmq: closing the connection: %w", err)
	}
	return nil
}

// Declare creates durable queues and binds their topics; they are declared again after a reconnect.
func (t *Transport) Declare(ctx context.Context, queues ...bus.Queue) error {
	conn, err := t.waitConn(ctx)
	if err != nil {
		return fmt.Errorf("rabbitmq: declare: %w", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("rabbitmq: declare: opening a channel: %w", err)
	}
	defer closeChannel(ch)
	for _, q := range queues {
		if q.Name == "" {
			return errors.New("rabbitmq: declare: a durable queue needs a name")
		}
		name := t.cfg.QueuePrefix + q.Name
		if err := t.declareQueue(ch, name, q.Topics); err != nil {
			return err
		}
		t.remember(name, q.Topics)
	}
	return nil
}

// declareQueue declares a durable queue and binds the patterns.
func (t *Transport) declareQueue(ch *amqp.Channel, name string, topics []string) error {
	if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
		return fmt.Errorf("rabbitmq: declaring queue %q: %w", name, err)
	}
	return t.bind(ch, name, topics)
}

func (t *Transport) bind(ch *amqp.Channel, queue string, topics []string) error {
	for _, topic := range topics {
		if err := ch.QueueBind(queue, topic, t.cfg.Exchange, false, nil); err != nil {
			return fmt.Errorf("rabbitmq: binding queue %q to %q: %w", queue, topic, err)
		}
	}
	return nil
}

// remember records a durable queue's bindings for re-declaration after a reconnect.
func (t *Transport) remember(queue string, topics []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	known := t.queues[queue]
	for _, topic := range topics {
		if !slices.Contains(known, topic) {
			known = append(known, topic)
		}
	}
	t.queues[queue] = known
}

// Connected reports whether the transport holds a live connection, and returns a channel closed
// at the connection's next change (bus.Link): the outbox relay gives its lock up while it is
// down (R-REL-3).
func (t *Transport) Connected() (bool, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.closed && t.conn != nil && !t.conn.IsClosed(), t.changed
}

var _ bus.Link = (*Transport)(nil)

// waitConn returns the live connection, waiting for a reconnect if need be.
func (t *Transport) waitConn(ctx context.Context) (*amqp.Connection, error) {
	for {
		t.mu.Lock()
		closed, conn, changed := t.closed, t.conn, t.changed
		t.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		if conn != nil && !conn.IsClosed() {
			return conn, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("rabbitmq: waiting for the broker connection: %w", ctx.Err())
		case <-t.ctx.Done():
			return nil, ErrClosed
		}
	}
}

// setConn publishes a new connection; it reports false when the transport closed meanwhile.
func (t *Transport) setConn(conn *amqp.Connection) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conn = conn
	close(t.changed)
	t.changed = make(chan struct{})
	return true
}

// dropConn forgets a lost connection and its idle channels.
func (t *Transport) dropConn(conn *amqp.Connection) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn != conn {
		return
	}
	t.conn, t.idle = nil, nil
	close(t.changed)
	t.changed = make(chan struct{})
}

func (t *Transport) register(c *consumer) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.consumers[c] = struct{}{}
	return true
}

func (t *Transport) unregister(c *consumer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.consumers, c)
}

// closeChannel closes a channel whose outcome no longer matters (a lost connection closed it already).
func closeChannel(ch *amqp.Channel) { _ = ch.Close() }

// redact hides the password of an AMQP URL for logs and errors.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Redacted()
}

// dialer dials with a timeout, cancellation by ctx, and a deadline on the AMQP handshake (which
// the client clears once the connection is open).
func dialer(ctx context.Context, timeout time.Duration) func(network, addr string) (net.Conn, error) {
	return func(network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: timeout}
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	}
}
