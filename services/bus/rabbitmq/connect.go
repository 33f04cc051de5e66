package rabbitmq

import (
	"context"
	"fmt"
	"maps"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/uberpopug/ates/services/backoff"
)

// connect dials until it succeeds or ctx is done, with backoff between attempts.
func (t *Transport) connect(ctx context.Context) (*amqp.Connection, <-chan *amqp.Error, error) {
	b := backoff.New(t.cfg.reconnectPolicy())
	for attempt := 1; ; attempt++ {
		conn, lost, err := t.dial(ctx)
		if err == nil {
			return conn, lost, nil
		}
		delay := b.Next()
		t.log.Warn("cannot connect; retrying", "url", redact(t.cfg.URL), "attempt", attempt, "retry_in", delay, "err", err)
		if !backoff.Sleep(ctx, delay) {
			return nil, nil, fmt.Errorf("rabbitmq: connecting to %s: %w (last attempt: %w)", redact(t.cfg.URL), ctx.Err(), err)
		}
	}
}

// dial opens a connection and declares the topology on it: the exchange and every durable queue
// declared so far, so messages published before consumers resume still find their queues.
func (t *Transport) dial(ctx context.Context) (*amqp.Connection, <-chan *amqp.Error, error) {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName("ates")
	conn, err := amqp.DialConfig(t.cfg.URL, amqp.Config{
		Heartbeat:  t.cfg.Heartbeat,
		Properties: props,
		Dial:       dialer(ctx, t.cfg.DialTimeout),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("dialling: %w", err)
	}
	lost := conn.NotifyClose(make(chan *amqp.Error, 1))
	go t.logBlocked(conn.NotifyBlocked(make(chan amqp.Blocking, 1)))
	if err := t.declareTopology(conn); err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return conn, lost, nil
}

func (t *Transport) declareTopology(conn *amqp.Connection) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("opening a channel to declare the topology: %w", err)
	}
	defer closeChannel(ch)
	if err := ch.ExchangeDeclare(t.cfg.Exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declaring exchange %q: %w", t.cfg.Exchange, err)
	}
	t.mu.Lock()
	queues := maps.Clone(t.queues)
	t.mu.Unlock()
	for name, topics := range queues {
		if err := t.declareQueue(ch, name, topics); err != nil {
			return err
		}
	}
	return nil
}

// supervise replaces the connection whenever it is lost, until the transport closes.
func (t *Transport) supervise(conn *amqp.Connection, lost <-chan *amqp.Error) {
	defer t.supervisor.Done()
	for {
		var reason *amqp.Error
		select {
		case reason = <-lost:
		case <-t.ctx.Done():
			return
		}
		t.dropConn(conn)
		if t.ctx.Err() != nil {
			return
		}
		t.log.Warn("connection lost; reconnecting", "err", reason)
		var err error
		conn, lost, err = t.connect(t.ctx)
		if err != nil {
			return // closed while reconnecting
		}
		if !t.setConn(conn) {
			_ = conn.Close()
			return
		}
		t.log.Info("reconnected")
	}
}

// logBlocked reports the broker's flow control (a resource alarm blocks publishers).
func (t *Transport) logBlocked(blocked <-chan amqp.Blocking) {
	for b := range blocked {
		if b.Active {
			t.log.Warn("broker blocked publishing", "reason", b.Reason)
		} else {
			t.log.Info("broker unblocked publishing")
		}
	}
}
