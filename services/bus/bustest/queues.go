package bustest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uberpopug/ates/services/bus"
)

// testDurableQueueKeepsEarlierMessages: a durable queue declared before any consumer keeps what
// is published to it until a consumer comes.
func testDurableQueueKeepsEarlierMessages(t *testing.T, tr bus.Transport) {
	ctx := testContext(t)
	s := newScope(t)
	q := s.queue("kept")
	mustDeclare(ctx, t, tr, bus.Queue{Name: q, Topics: []string{s.topic("#")}})

	msgs := messages(s.topic("early", "event"), 10)
	published := publishAsync(ctx, tr, msgs...)
	// A transport whose Publish returns on the broker's confirmation finishes here, so the
	// messages wait with no consumer at all; the in-process one waits for the consumer below.
	select {
	case err := <-published:
		if err != nil {
			t.Fatalf("Publish before any consumer: %v", err)
		}
		published = nil
	case <-time.After(300 * time.Millisecond):
	}

	r := newRecorder()
	// No topics: the consumer relies on the bindings declared earlier.
	mustSubscribe(ctx, t, tr, bus.Subscription{Queue: q}, r.handler())
	got := r.waitIDs(ctx, t, ids(msgs)...)
	if published != nil {
		awaitPublished(ctx, t, published)
	}
	assertExactlyOnce(t, "late consumer", got, msgs)
}

// testCompetingConsumers: consumers of one durable queue share its messages: each message goes to
// exactly one of them, and all of them take part.
func testCompetingConsumers(t *testing.T, tr bus.Transport) {
	ctx := testContext(t)
	s := newScope(t)
	q := s.queue("shared")
	const consumers = 3

	// Every handler holds its first message until all consumers hold one: with one handler
	// each, that needs every consumer to have been given a message.
	var holding atomic.Int32
	allHolding := make(chan struct{})
	var once sync.Once
	all := newRecorder()
	each := make([]*recorder, consumers)
	for i := range consumers {
		each[i] = newRecorder()
		h := func(ctx context.Context, d bus.Delivery) error {
			if holding.Add(1) == consumers {
				once.Do(func() { close(allHolding) })
			}
			defer holding.Add(-1)
			select {
			case <-allHolding:
			case <-ctx.Done():
				return ctx.Err()
			}
			each[i].add(d)
			all.add(d)
			return nil
		}
		mustSubscribe(ctx, t, tr, bus.Subscription{Queue: q, Topics: []string{s.topic("work")}, Prefetch: 1, Concurrency: 1}, h)
	}

	msgs := messages(s.topic("work"), 300)
	published := publishAsync(ctx, tr, msgs...)
	select {
	case <-allHolding:
	case <-ctx.Done():
		t.Fatalf("the %d consumers of one queue never held a message each at the same time", consumers)
	}
	got := all.waitIDs(ctx, t, ids(msgs)...)
	awaitPublished(ctx, t, published)

	assertExactlyOnce(t, "competing consumers together", got, msgs)
	total := 0
	for i, r := range each {
		n := len(r.deliveries())
		if n == 0 {
			t.Errorf("consumer %d got no message", i)
		}
		total += n
	}
	if total != len(msgs) {
		t.Errorf("consumers handled %d messages in all, want %d", total, len(msgs))
	}
}

// testOrderWithConcurrencyOne: one consumer with one handler sees messages in publication order.
func testOrderWithConcurrencyOne(t *testing.T, tr bus.Transport) {
	ctx := testContext(t)
	s := newScope(t)
	r := newRecorder()
	mustSubscribe(ctx, t, tr, bus.Subscription{Queue: s.queue("ordered"), Topics: []string{s.topic("seq", "*")}, Concurrency: 1}, r.handler())

	var msgs []bus.Message
	for range 10 {
		batch := messages(s.topic("seq", "step"), 20)
		mustPublish(ctx, t, tr, batch...)
		msgs = append(msgs, batch...)
	}
	got := r.waitIDs(ctx, t, ids(msgs)...)
	assertExactlyOnce(t, "ordered consumer", got, msgs)
	for i := range min(len(got), len(msgs)) {
		if got[i].ID != msgs[i].ID {
			t.Fatalf("delivery %d is %s, want %s: order not preserved", i, got[i].ID, msgs[i].ID)
		}
	}
}

// testOrderPerKeyAcrossTopics: a consumer of one queue with concurrency 1 gets each key's
// messages in the order published, whatever their topics, while messages of different keys
// published together may be reordered between each other (RabbitMQ batches each topic's).
func testOrderPerKeyAcrossTopics(t *testing.T, tr bus.Transport) {
	ctx := testContext(t)
	s := newScope(t)
	r := newRecorder()
	mustSubscribe(ctx, t, tr, bus.Subscription{Queue: s.queue("keyed"), Topics: []string{s.topic("task", "*")}, Concurrency: 1}, r.handler())

	var msgs []bus.Message
	keyOf := map[string]string{}
	for b := range 5 {
		var batch []bus.Message
		for i := range 20 {
			key := fmt.Sprintf("task-%d", (b*20+i)%7) // keys recur across the batch
			for _, step := range []string{"completed", "updated", "assigned"} {
				m := message(s.topic("task", step))
				m.Key = key
				keyOf[m.ID] = key
				batch = append(batch, m)
			}
		}
		mustPublish(ctx, t, tr, batch...)
		msgs = append(msgs, batch...)
	}
	got := r.waitIDs(ctx, t, ids(msgs)...)
	assertExactlyOnce(t, "keyed consumer", got, msgs)
	want := map[string][]string{} // by key, ids in publish order
	for _, m := range msgs {
		want[m.Key] = append(want[m.Key], m.ID)
	}
	gotByKey := map[string][]string{}
	for _, d := range got {
		gotByKey[keyOf[d.ID]] = append(gotByKey[keyOf[d.ID]], d.ID)
	}
	for key, ids := range want {
		if !slices.Equal(gotByKey[key], ids) {
			t.Fatalf("key %s: delivered %v, published %v: a key's order not preserved", key, gotByKey[key], ids)
		}
	}
}

// testThousandMessages: a thousand messages from concurrent publishers all arrive, once each.
func testThousandMessages(t *testing.T, tr bus.Transport) {
	ctx := testContext(t)
	s := newScope(t)
	r := newRecorder()
	mustSubscribe(ctx, t, tr, bus.Subscription{Queue: s.queue("volume"), Topics: []string{s.topic("bulk", "#")}, Prefetch: 32, Concurrency: 4}, r.handler())

	const publishers, perPublisher, batch = 4, 250, 50
	msgs := messages(s.topic("bulk", "item"), publishers*perPublisher)
	errs := make(chan error, publishers)
	for p := range publishers {
		mine := msgs[p*perPublisher : (p+1)*perPublisher]
		go func() {
			for i := 0; i < len(mine); i += batch {
				if err := tr.Publish(ctx, mine[i:min(i+batch, len(mine))]...); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range publishers {
		awaitPublished(ctx, t, errs)
	}
	assertExactlyOnce(t, "consumer", r.waitIDs(ctx, t, ids(msgs)...), msgs)
}
