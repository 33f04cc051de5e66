package bustest

import (
	"context"
	"errors"
	"testing"

	"github.com/uberpopug/ates/services/bus"
)

// testPublishTakesResponsibility: Publish reports nil only for messages the transport took on. A
// message no queue wants is dropped and confirmed; one that could not be handed over in time is
// an error, never nil; one reported nil reaches its consumer.
func testPublishTakesResponsibility(t *testing.T, tr bus.Transport) {
	ctx := testContext(t)
	s := newScope(t)

	if err := tr.Publish(ctx, message(s.topic("nobody", "listens"))); err != nil {
		t.Errorf("Publish of a message no queue is bound for: %v, want nil (dropped and confirmed)", err)
	}
	if err := tr.Publish(ctx); err != nil {
		t.Errorf("Publish of no messages: %v", err)
	}

	mustDeclare(ctx, t, tr, bus.Queue{Name: s.queue("unconsumed"), Topics: []string{s.topic("held")}})
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	err := tr.Publish(cancelled, message(s.topic("held")))
	if err == nil {
		t.Error("Publish with a cancelled context reported nil, want an error")
	} else if !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a cancelled context: %v, want it to wrap context.Canceled", err)
	}

	r := newRecorder()
	mustSubscribe(ctx, t, tr, bus.Subscription{Queue: s.queue("consumed"), Topics: []string{s.topic("taken")}}, r.handler())
	m := message(s.topic("taken"))
	mustPublish(ctx, t, tr, m)
	assertExactlyOnce(t, "consumer", r.waitIDs(ctx, t, m.ID), []bus.Message{m})
}

// testClosedTransportRefuses: a closed transport refuses further work with errors, and closing
// again is harmless.
func testClosedTransportRefuses(t *testing.T, tr bus.Transport) {
	ctx := testContext(t)
	s := newScope(t)
	if err := tr.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := tr.Publish(ctx, message(s.topic("late"))); err == nil {
		t.Error("Publish after Close reported nil, want an error")
	}
	if err := tr.Declare(ctx, bus.Queue{Name: s.queue("late"), Topics: []string{s.topic("late")}}); err == nil {
		t.Error("Declare after Close reported nil, want an error")
	}
	c, err := tr.Subscribe(ctx, bus.Subscription{Topics: []string{s.topic("late")}}, newRecorder().handler())
	if err == nil {
		c.Stop()
		t.Error("Subscribe after Close reported nil, want an error")
	}
	if err := tr.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
