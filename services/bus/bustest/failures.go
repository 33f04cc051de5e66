package bustest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/uberpopug/ates/services/bus"
)

// errInduced is what handlers return to have a message redelivered.
var errInduced = errors.New("bustest: induced handler failure")

// testHandlerErrorRedelivers: a handler error puts the message back; it comes again marked
// redelivered, and once acknowledged it does not come a third time.
func testHandlerErrorRedelivers(t *testing.T, tr bus.Transport) {
	ctx := testContext(t)
	s := newScope(t)
	failing := message(s.topic("flaky"))
	r := newRecorder()
	h := func(_ context.Context, d bus.Delivery) error {
		r.add(d)
		if d.ID == failing.ID && !d.Redelivered {
			return errInduced
		}
		return nil
	}
	mustSubscribe(ctx, t, tr, bus.Subscription{Queue: s.queue("retry"), Topics: []string{s.topic("#")}}, h)

	published := publishAsync(ctx, tr, failing)
	r.waitFor(ctx, t, "the failed message's redelivery", func(got []bus.Delivery) bool { return len(got) >= 2 })
	awaitPublished(ctx, t, published)

	// A later message on the same queue proves the acknowledged one is not handed out again.
	sentinel := message(s.topic("after"))
	mustPublish(ctx, t, tr, sentinel)
	got := r.waitIDs(ctx, t, sentinel.ID)

	if len(got) != 3 {
		t.Fatalf("got %d deliveries %v, want the failed message twice then the sentinel", len(got), got)
	}
	if got[0].ID != failing.ID || got[0].Redelivered {
		t.Errorf("first delivery = %s redelivered=%v, want %s not redelivered", got[0].ID, got[0].Redelivered, failing.ID)
	}
	if got[1].ID != failing.ID || !got[1].Redelivered {
		t.Errorf("second delivery = %s redelivered=%v, want %s redelivered", got[1].ID, got[1].Redelivered, failing.ID)
	}
	if got[2].ID != sentinel.ID || got[2].Redelivered {
		t.Errorf("third delivery = %s redelivered=%v, want the sentinel %s not redelivered", got[2].ID, got[2].Redelivered, sentinel.ID)
	}
}

// testConsumerDiesBeforeAck: a consumer aborted (its Subscribe context cancelled) while its handler
// holds a message gives the message back, even if the handler then returns nil; another consumer
// of the queue gets it, redelivered.
func testConsumerDiesBeforeAck(t *testing.T, tr bus.Transport) {
	ctx := testContext(t)
	s := newScope(t)
	q := s.queue("crash")
	sub := bus.Subscription{Queue: q, Topics: []string{s.topic("#")}}

	held := make(chan bus.Delivery, 1)
	dying := func(ctx context.Context, d bus.Delivery) error {
		select {
		case held <- d:
		default:
		}
		<-ctx.Done()
		// Succeeding now is too late: the consumer died before the handler returned, so the
		// message must not be acknowledged.
		return nil
	}
	dieCtx, die := context.WithCancel(ctx)
	defer die()
	mustSubscribe(dieCtx, t, tr, sub, dying)

	m := message(s.topic("job"))
	published := publishAsync(ctx, tr, m)
	select {
	case d := <-held:
		if d.ID != m.ID || d.Redelivered {
			t.Fatalf("dying consumer got %s redelivered=%v, want %s fresh", d.ID, d.Redelivered, m.ID)
		}
	case <-ctx.Done():
		t.Fatalf("the message never reached the first consumer: %v", ctx.Err())
	}

	survivor := newRecorder()
	mustSubscribe(ctx, t, tr, sub, survivor.handler())
	die()

	got := survivor.waitIDs(ctx, t, m.ID)
	awaitPublished(ctx, t, published)
	if len(got) != 1 || !got[0].Redelivered {
		t.Fatalf("survivor got %v, want %s once, marked redelivered", got, m.ID)
	}
	select {
	case d := <-held:
		t.Errorf("the aborted consumer was handed %s after it died", d.ID)
	default:
	}
}

// testStopIsGraceful: Stop waits for the running handler, which completes with a live context and
// is acknowledged: the message is not delivered again.
func testStopIsGraceful(t *testing.T, tr bus.Transport) {
	ctx := testContext(t)
	s := newScope(t)
	q := s.queue("graceful")
	sub := bus.Subscription{Queue: q, Topics: []string{s.topic("#")}}

	started := make(chan bus.Delivery, 1)
	release := make(chan struct{})
	finished := make(chan error, 1) // the handler context's state when the handler ended
	slow := func(hctx context.Context, d bus.Delivery) error {
		select {
		case started <- d:
		default:
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		select {
		case finished <- hctx.Err():
		default:
		}
		return nil
	}
	c := mustSubscribe(ctx, t, tr, sub, slow)

	m := message(s.topic("job"))
	published := publishAsync(ctx, tr, m)
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatalf("the message never reached the consumer: %v", ctx.Err())
	}

	stopped := make(chan struct{})
	go func() { c.Stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("Stop returned while a handler was still running")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case <-stopped:
	case <-ctx.Done():
		t.Fatalf("Stop did not return after the handler did: %v", ctx.Err())
	}
	if err := <-finished; err != nil {
		t.Errorf("the handler's context was cancelled during a graceful stop: %v", err)
	}
	awaitPublished(ctx, t, published)
	c.Stop() // a second Stop is harmless

	// Requeued messages return to the head of the queue, so had the message not been
	// acknowledged the next consumer would get it before the sentinel.
	sentinel := message(s.topic("after"))
	sent := publishAsync(ctx, tr, sentinel)
	next := newRecorder()
	mustSubscribe(ctx, t, tr, sub, next.handler())
	got := next.waitIDs(ctx, t, sentinel.ID)
	awaitPublished(ctx, t, sent)
	assertExactlyOnce(t, "consumer after the graceful stop", got, []bus.Message{sentinel})
}

// testStopReachesWaitingHandler: a handler waiting out a temporary failure learns through
// bus.Stopping that Stop waits for it; it gives up with an error, Stop returns, and the
// message is delivered again to the next consumer (R-OPS-5, R-REL-2).
func testStopReachesWaitingHandler(t *testing.T, tr bus.Transport) {
	ctx := testContext(t)
	s := newScope(t)
	sub := bus.Subscription{Queue: s.queue("waiting"), Topics: []string{s.topic("#")}}

	started := make(chan struct{}, 1)
	waiting := func(hctx context.Context, d bus.Delivery) error {
		select {
		case started <- struct{}{}:
		default:
		}
		select {
		case <-bus.Stopping(hctx):
			return errInduced // the database is still away: hand the message back
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c := mustSubscribe(ctx, t, tr, sub, waiting)
	if bus.Stopping(ctx) != nil {
		t.Fatal("Stopping outside a handler is not nil")
	}
	m := message(s.topic("job"))
	published := publishAsync(ctx, tr, m)
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatalf("the message never reached the consumer: %v", ctx.Err())
	}
	stopped := make(chan struct{})
	go func() { c.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done():
		t.Fatalf("Stop did not return: the waiting handler was never told (%v)", ctx.Err())
	}

	next := newRecorder()
	mustSubscribe(ctx, t, tr, sub, next.handler())
	got := next.waitIDs(ctx, t, m.ID)
	awaitPublished(ctx, t, published)
	if len(got) != 1 || !got[0].Redelivered {
		t.Fatalf("next consumer got %v, want %s once, redelivered", got, m.ID)
	}
}
