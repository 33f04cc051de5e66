package rabbitmq

import (
	"context"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/uberpopug/ates/services/bus"
)

// pubChannel is a confirm-mode channel and the connection it belongs to.
type pubChannel struct {
	conn *amqp.Connection
	ch   *amqp.Channel
}

// Publish sends the messages as persistent messages and returns nil once the broker confirmed all
// of them. Messages of one topic travel together, up to Config.BatchSize in one AMQP message (a
// CloudEvents batch, see cloudevents.go; runs.go says which). They are all in flight at once; a refusal, a lost connection or
// ctx ending first is an error, after which some messages may still have been delivered (publish
// again: duplicates are expected, losses are not). While the broker is unreachable Publish waits
// for the reconnect until ctx is done.
func (t *Transport) Publish(ctx context.Context, msgs ...bus.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rabbitmq: publish: %w", err)
	}
	conn, err := t.waitConn(ctx)
	if err != nil {
		return fmt.Errorf("rabbitmq: publish: %w", err)
	}
	if len(msgs) == 0 {
		return nil
	}
	pc, err := t.takeChannel(conn)
	if err != nil {
		return err
	}
	runs := batchRuns(msgs, t.cfg.BatchSize, t.cfg.BatchBytes)
	now := time.Now()
	confirms := make([]*amqp.DeferredConfirmation, 0, len(runs))
	for _, run := range runs {
		dc, err := pc.ch.PublishWithDeferredConfirmWithContext(ctx, t.cfg.Exchange, run[0].Topic, false, false, batchPublishing(run, now))
		if err == nil && dc == nil {
			err = fmt.Errorf("channel not in confirm mode")
		}
		if err != nil {
			closeChannel(pc.ch)
			return fmt.Errorf("rabbitmq: publishing %d messages from %s on: %w", len(run), run[0].ID, err)
		}
		confirms = append(confirms, dc)
	}
	nacked := 0
	for i, dc := range confirms {
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			closeChannel(pc.ch)
			return fmt.Errorf("rabbitmq: waiting for the broker to confirm %d of %d AMQP messages: %w", len(confirms)-i, len(confirms), err)
		}
		if !ok {
			nacked += len(runs[i])
		}
	}
	if nacked > 0 {
		if pc.ch.IsClosed() {
			// The client nacks what is outstanding when the channel or connection goes.
			return fmt.Errorf("rabbitmq: the connection was lost before the broker confirmed %d of %d messages", nacked, len(msgs))
		}
		t.putChannel(pc)
		return fmt.Errorf("rabbitmq: the broker refused (nacked) %d of %d messages", nacked, len(msgs))
	}
	t.putChannel(pc)
	return nil
}

// takeChannel returns an idle confirm-mode channel of conn, or opens one.
func (t *Transport) takeChannel(conn *amqp.Connection) (*pubChannel, error) {
	var stale []*pubChannel
	var pc *pubChannel
	t.mu.Lock()
	for len(t.idle) > 0 && pc == nil {
		last := t.idle[len(t.idle)-1]
		t.idle = t.idle[:len(t.idle)-1]
		if last.conn == conn && !last.ch.IsClosed() {
			pc = last
		} else {
			stale = append(stale, last)
		}
	}
	t.mu.Unlock()
	for _, s := range stale {
		closeChannel(s.ch)
	}
	if pc != nil {
		return pc, nil
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: opening a publishing channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		closeChannel(ch)
		return nil, fmt.Errorf("rabbitmq: enabling publisher confirms: %w", err)
	}
	return &pubChannel{conn: conn, ch: ch}, nil
}

// putChannel keeps a healthy channel for later calls, or closes it.
func (t *Transport) putChannel(pc *pubChannel) {
	t.mu.Lock()
	keep := !t.closed && t.conn == pc.conn && !pc.ch.IsClosed() && len(t.idle) < t.cfg.IdlePublishChannels
	if keep {
		t.idle = append(t.idle, pc)
	}
	t.mu.Unlock()
	if !keep {
		closeChannel(pc.ch)
	}
}
