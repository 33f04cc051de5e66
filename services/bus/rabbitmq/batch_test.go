package rabbitmq

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/testenv"
)

// TestBatchesOnTheWire: 70 messages of one topic and one of another, published in one call, are
// four AMQP messages in the queue (CloudEvents batches of 32 + 32 + 6, and 1 alone), and a
// consumer handles all 71 once each, in order.
func TestBatchesOnTheWire(t *testing.T) {
	url := testenv.RequireRabbitMQ(t)
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	cfg := testConfig(t, url)
	tr := mustNew(t, cfg, url)
	q := bus.Queue{Name: "batched", Topics: []string{"task.*"}}
	if err := tr.Declare(ctx, q); err != nil {
		t.Fatal(err)
	}
	msgs := append(testMessages("task.assigned", 70), testMessage("task.completed"))
	if err := tr.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	if n := queueDepth(t, url, cfg.QueuePrefix+q.Name); n != 4 {
		t.Errorf("the queue holds %d AMQP messages, want 4 (three batches and a lone message)", n)
	}

	var mu sync.Mutex
	var got []bus.Delivery
	done := make(chan struct{})
	c, err := tr.Subscribe(ctx, bus.Subscription{Queue: q.Name, Topics: q.Topics}, func(_ context.Context, d bus.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, d)
		if len(got) == len(msgs) {
			close(done)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	await(ctx, t, done, "every message delivered")
	c.Stop()
	for i, d := range got {
		if d.ID != msgs[i].ID || d.Topic != msgs[i].Topic || !bytes.Equal(d.Body, msgs[i].Body) || d.Redelivered {
			t.Fatalf("delivery %d = %s %s redelivered=%v, want %s %s fresh", i, d.Topic, d.ID, d.Redelivered, msgs[i].Topic, msgs[i].ID)
		}
	}
	if n := queueDepth(t, url, cfg.QueuePrefix+q.Name); n != 0 {
		t.Errorf("%d AMQP messages back in the queue after the consumer stopped, want every one acknowledged", n)
	}
}

// TestBatchRequeuedWhole: a handler error on the fifth event of a CloudEvents batch requeues the
// batch; its events come again marked redelivered (the four already handled too), every later
// one once. Prefetch 1 keeps the next batch in the queue until the first is settled, so the
// order is known.
func TestBatchRequeuedWhole(t *testing.T) {
	url := testenv.RequireRabbitMQ(t)
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	tr := mustNew(t, testConfig(t, url), url)
	msgs := testMessages("job.run", 40) // a batch of 32, then one of 8
	var mu sync.Mutex
	var got []bus.Delivery
	done := make(chan struct{})
	c, err := tr.Subscribe(ctx, bus.Subscription{Queue: "jobs", Topics: []string{"job.*"}, Prefetch: 1}, func(_ context.Context, d bus.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, d)
		if d.ID == msgs[4].ID && !d.Redelivered {
			return fmt.Errorf("induced failure")
		}
		if d.ID == msgs[len(msgs)-1].ID {
			close(done)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if err := tr.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	await(ctx, t, done, "the last message delivered")
	mu.Lock()
	defer mu.Unlock()
	var want []string
	for _, m := range msgs[:5] {
		want = append(want, m.ID+" fresh")
	}
	for _, m := range msgs[:32] { // the requeued batch, then the next
		want = append(want, m.ID+" again")
	}
	for _, m := range msgs[32:] {
		want = append(want, m.ID+" fresh")
	}
	var have []string
	for _, d := range got {
		have = append(have, d.ID+map[bool]string{false: " fresh", true: " again"}[d.Redelivered])
	}
	if !slices.Equal(have, want) {
		t.Errorf("deliveries:\n%s\nwant:\n%s", strings.Join(have, "\n"), strings.Join(want, "\n"))
	}
}

// TestBatchConsumerSplitsBatches: a batch consumer with Batch 10 gets a CloudEvents batch of 32
// in parts of at most 10, every message once, and acknowledges the AMQP message once its last
// part is handled.
func TestBatchConsumerSplitsBatches(t *testing.T) {
	url := testenv.RequireRabbitMQ(t)
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	cfg := testConfig(t, url)
	tr := mustNew(t, cfg, url)
	msgs := testMessages("job.run", 37)
	var mu sync.Mutex
	var got []string
	largest := 0
	done := make(chan struct{})
	c, err := tr.SubscribeBatch(ctx, bus.Subscription{Queue: "batches", Topics: []string{"job.*"}, Batch: 10}, func(_ context.Context, ds []bus.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		largest = max(largest, len(ds))
		for _, d := range ds {
			got = append(got, d.ID)
		}
		if len(got) == len(msgs) {
			close(done)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	await(ctx, t, done, "every message delivered")
	c.Stop()
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, msgIDs(msgs)) {
		t.Errorf("deliveries %v, want every message once in order", got)
	}
	if largest > 10 {
		t.Errorf("a batch of %d deliveries, want at most 10", largest)
	}
	if n := queueDepth(t, url, cfg.QueuePrefix+"batches"); n != 0 {
		t.Errorf("%d AMQP messages back in the queue after the consumer stopped, want both batches acknowledged", n)
	}
}

// await waits for done; the test fails if ctx ends first.
func await(ctx context.Context, tb testing.TB, done <-chan struct{}, what string) {
	tb.Helper()
	select {
	case <-done:
	case <-ctx.Done():
		tb.Fatalf("waiting for %s: %v", what, ctx.Err())
	}
}

// brokerChannel is a channel on a connection of its own, straight to the broker, closed when
// the test ends.
func brokerChannel(tb testing.TB, url string) *amqp.Channel {
	tb.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		tb.Fatalf("dialling: %v", err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		tb.Fatalf("opening a channel: %v", err)
	}
	return ch
}

// queueDepth is how many messages a queue holds ready for delivery.
func queueDepth(tb testing.TB, url, queue string) int {
	tb.Helper()
	q, err := brokerChannel(tb, url).QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		tb.Fatalf("inspecting queue %s: %v", queue, err)
	}
	return q.Messages
}

// TestBatchLinger: a batch waits Subscription.Linger after its first delivery for more, so
// messages published one by one, 20 ms apart, reach a consumer lingering a second as one batch
// — read models take their events in large batches that way.
func TestBatchLinger(t *testing.T) {
	url := testenv.RequireRabbitMQ(t)
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	tr := mustNew(t, testConfig(t, url), url)
	msgs := testMessages("job.run", 5)
	batches := make(chan []string, len(msgs))
	c, err := tr.SubscribeBatch(ctx, bus.Subscription{Queue: "lingering", Topics: []string{"job.*"}, Batch: 100, Linger: time.Second},
		func(_ context.Context, ds []bus.Delivery) error {
			var ids []string
			for _, d := range ds {
				ids = append(ids, d.ID)
			}
			batches <- ids
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	for _, m := range msgs {
		if err := tr.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case got := <-batches:
		if !slices.Equal(got, msgIDs(msgs)) {
			t.Errorf("first batch %v, want all %d messages in order", got, len(msgs))
		}
	case <-ctx.Done():
		t.Fatal("no batch")
	}
}

// TestForeignConsumerReadsBatches: a consumer that knows nothing of aTES — plain amqp091 and
// encoding/json — reads the events of a relay batch from queues bound as aTES binds its own:
// per event name and per pattern. Each queue gets exactly the events it got when every event
// travelled alone, as CloudEvents whose attributes and data are the envelope's.
func TestForeignConsumerReadsBatches(t *testing.T) {
	url := testenv.RequireRabbitMQ(t)
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	cfg := testConfig(t, url)
	tr := mustNew(t, cfg, url)
	ch := brokerChannel(t, url)
	bound := func(pattern string) string {
		q, err := ch.QueueDeclare("", false, true, true, false, nil)
		if err == nil {
			err = ch.QueueBind(q.Name, pattern, cfg.Exchange, false, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		return q.Name
	}
	byName, byContext, other := bound("task.assigned"), bound("task.#"), bound("account.*")

	assigned := testEnvelopes(t, "task.assigned", 3)
	completed := testEnvelopes(t, "task.completed", 2)
	if err := tr.Publish(ctx, slices.Concat(assigned[:2], completed, assigned[2:])...); err != nil {
		t.Fatal(err)
	}

	// What a foreign consumer decodes: the CloudEvents attributes, and our extensions.
	type cloudEvent struct {
		SpecVersion     string          `json:"specversion"`
		ID              string          `json:"id"`
		Source          string          `json:"source"`
		Type            string          `json:"type"`
		Time            time.Time       `json:"time"`
		DataContentType string          `json:"datacontenttype"`
		Data            json.RawMessage `json:"data"`
		EventVersion    int             `json:"eventversion"`
		CorrelationID   string          `json:"correlationid"`
	}
	type envelope struct {
		EventID, EventName, Producer, CorrelationID string
		EventVersion                                int
		EventTime                                   time.Time
		Data                                        json.RawMessage
	}
	read := func(queue string) (routingKeys []string, events []cloudEvent) {
		for {
			d, ok, err := ch.Get(queue, true)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				return routingKeys, events
			}
			if d.ContentType != "application/cloudevents-batch+json" {
				t.Fatalf("content type %q, want application/cloudevents-batch+json", d.ContentType)
			}
			var batch []cloudEvent
			if err := json.Unmarshal(d.Body, &batch); err != nil {
				t.Fatalf("a batch encoding/json cannot read: %v\n%s", err, d.Body)
			}
			routingKeys = append(routingKeys, d.RoutingKey)
			events = append(events, batch...)
		}
	}
	check := func(queue string, wantKeys []string, want []bus.Message) {
		t.Helper()
		keys, got := read(queue)
		if !slices.Equal(keys, wantKeys) {
			t.Errorf("AMQP messages with routing keys %v, want %v", keys, wantKeys)
		}
		if len(got) != len(want) {
			t.Fatalf("%d events, want %d", len(got), len(want))
		}
		for i, ce := range got {
			var e envelope
			if err := json.Unmarshal(want[i].Body, &e); err != nil {
				t.Fatal(err)
			}
			if ce.SpecVersion != "1.0" || ce.ID != e.EventID || ce.Type != e.EventName || ce.Source != e.Producer ||
				!ce.Time.Equal(e.EventTime) || ce.DataContentType != "application/json" ||
				ce.EventVersion != e.EventVersion || ce.CorrelationID != e.CorrelationID || !bytes.Equal(ce.Data, e.Data) {
				t.Errorf("event %d read as %+v, want the envelope %+v", i, ce, e)
			}
		}
	}
	check(byName, []string{"task.assigned"}, assigned)
	check(byContext, []string{"task.assigned", "task.completed"}, slices.Concat(assigned, completed))
	check(other, nil, nil)
}

// TestMalformedElementHandedOverAlone: a batch whose second event is no readable CloudEvent
// reaches the handler as three deliveries — the first and third events as usual, the second
// as its own bytes (the consumer refuses and dead-letters it) — and the AMQP message is
// acknowledged once all three are handled.
func TestMalformedElementHandedOverAlone(t *testing.T) {
	url := testenv.RequireRabbitMQ(t)
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	cfg := testConfig(t, url)
	tr := mustNew(t, cfg, url)
	q := bus.Queue{Name: "poisoned", Topics: []string{"task.*"}}
	if err := tr.Declare(ctx, q); err != nil {
		t.Fatal(err)
	}
	good := testEnvelopes(t, "task.assigned", 2)
	var pair []json.RawMessage
	if err := json.Unmarshal(batchPublishing(good, time.Now()).Body, &pair); err != nil {
		t.Fatal(err)
	}
	bad := `{"specversion":"1.0","id":"poison-1","source":"tasks","type":"task.assigned","eventversion":"one","data":{}}`
	body := "[" + string(pair[0]) + "," + bad + "," + string(pair[1]) + "]"
	if err := brokerChannel(t, url).PublishWithContext(ctx, cfg.Exchange, "task.assigned", false, false,
		amqp.Publishing{ContentType: "application/cloudevents-batch+json", DeliveryMode: amqp.Persistent, Body: []byte(body)}); err != nil {
		t.Fatal(err)
	}
	want := []bus.Message{good[0], {ID: "poison-1", Topic: "task.assigned", Body: []byte(bad)}, good[1]}
	var mu sync.Mutex
	var got []bus.Message
	done := make(chan struct{})
	c, err := tr.Subscribe(ctx, bus.Subscription{Queue: q.Name, Topics: q.Topics}, func(_ context.Context, d bus.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, d.Message)
		if len(got) == len(want) {
			close(done)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	await(ctx, t, done, "three deliveries")
	c.Stop()
	mu.Lock()
	defer mu.Unlock()
	if !slices.EqualFunc(got, want, sameMessage) {
		t.Errorf("deliveries %+v, want %+v", got, want)
	}
	if n := queueDepth(t, url, cfg.QueuePrefix+q.Name); n != 0 {
		t.Errorf("%d AMQP messages back in the queue, want the batch acknowledged", n)
	}
}

// TestBatchSizeOneSendsEventsAlone: with BatchSize 1 (the rollout's first step, while consumers
// of the earlier version run) every event is an AMQP message of its own in the form every
// version reads: application/json, the event id as message id, the envelope as the body.
func TestBatchSizeOneSendsEventsAlone(t *testing.T) {
	url := testenv.RequireRabbitMQ(t)
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	cfg := testConfig(t, url)
	cfg.BatchSize = 1
	tr := mustNew(t, cfg, url)
	q := bus.Queue{Name: "alone", Topics: []string{"task.*"}}
	if err := tr.Declare(ctx, q); err != nil {
		t.Fatal(err)
	}
	msgs := testEnvelopes(t, "task.assigned", 5)
	if err := tr.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	ch := brokerChannel(t, url)
	for i, m := range msgs {
		d, ok, err := ch.Get(cfg.QueuePrefix+q.Name, true)
		if err != nil || !ok {
			t.Fatalf("AMQP message %d: %v, %v; want one per event", i, ok, err)
		}
		if d.ContentType != "application/json" || d.MessageId != m.ID || d.RoutingKey != m.Topic || !bytes.Equal(d.Body, m.Body) {
			t.Errorf("AMQP message %d: %s id %s key %s %q, want the event alone as application/json", i, d.ContentType, d.MessageId, d.RoutingKey, d.Body)
		}
	}
	if n := queueDepth(t, url, cfg.QueuePrefix+q.Name); n != 0 {
		t.Errorf("%d more AMQP messages, want one per event", n)
	}
}
