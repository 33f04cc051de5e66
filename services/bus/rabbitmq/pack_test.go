package rabbitmq

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/testenv"
)

func TestPackRuns(t *testing.T) {
	t.Parallel()
	a, b := testMessages("task.assigned", 70), testMessages("task.completed", 3)
	big := testMessage("task.assigned")
	big.Body = bytes.Repeat([]byte("x"), 5000)
	for _, tc := range []struct {
		name      string
		msgs      []bus.Message
		size, max int
		want      []int // run lengths
	}{
		{"one topic, cut at the pack size", a, 32, DefaultPackBytes, []int{32, 32, 6}},
		{"a topic change starts a run", slices.Concat(a[:5], b, a[5:7]), 32, DefaultPackBytes, []int{5, 3, 2}},
		{"size 1 sends every message alone", a[:3], 1, DefaultPackBytes, []int{1, 1, 1}},
		{"cut at the byte bound", a[:10], 32, 3 * packedLen(a[0]), []int{3, 3, 3, 1}},
		{"a message above the byte bound travels alone", slices.Concat(a[:2], []bus.Message{big}, a[2:4]), 32, 1000, []int{2, 1, 2}},
		{"nothing", nil, 32, DefaultPackBytes, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs := packRuns(tc.msgs, tc.size, tc.max)
			var lens []int
			var joined []bus.Message
			for _, r := range runs {
				lens = append(lens, len(r))
				joined = append(joined, r...)
				for _, m := range r {
					if m.Topic != r[0].Topic {
						t.Errorf("a run mixes topics %s and %s", r[0].Topic, m.Topic)
					}
				}
			}
			if !slices.Equal(lens, tc.want) {
				t.Errorf("run lengths %v, want %v", lens, tc.want)
			}
			if !slices.EqualFunc(joined, tc.msgs, func(x, y bus.Message) bool { return x.ID == y.ID }) {
				t.Error("the runs do not hold the messages in their order")
			}
		})
	}
}

func TestPackRoundTrip(t *testing.T) {
	t.Parallel()
	msgs := testMessages("task.assigned", 5)
	msgs[2].Body = nil // an empty body survives too
	p := packPublishing(msgs)
	if p.ContentType != packContentType || p.DeliveryMode != amqp.Persistent {
		t.Fatalf("pack publishing %q mode %d, want %q persistent", p.ContentType, p.DeliveryMode, packContentType)
	}
	got, err := unpack("task.assigned", p.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got, msgs, func(x, y bus.Message) bool {
		return x.ID == y.ID && x.Topic == y.Topic && bytes.Equal(x.Body, y.Body)
	}) {
		t.Errorf("unpacked %v, want %v", got, msgs)
	}
	single := packPublishing(msgs[:1])
	if single.ContentType != "application/json" || single.MessageId != msgs[0].ID || !bytes.Equal(single.Body, msgs[0].Body) {
		t.Errorf("a lone message is published as %q id %q, want itself as application/json", single.ContentType, single.MessageId)
	}
	for _, bad := range [][]byte{nil, {0x80}, {5, 'a'}, append([]byte{1, 'a', 10}, "short"...), {1, 'a'}} {
		if ms, err := unpack("t", bad); err == nil {
			t.Errorf("unpack(%q) = %v, want an error", bad, ms)
		}
	}
}

// TestMessagesOfADelivery: a tap reading the exchange gets every event of a pack, and a lone
// event as itself.
func TestMessagesOfADelivery(t *testing.T) {
	t.Parallel()
	msgs := testMessages("task.assigned", 3)
	same := func(x, y bus.Message) bool { return x.ID == y.ID && x.Topic == y.Topic && bytes.Equal(x.Body, y.Body) }
	for _, run := range [][]bus.Message{msgs, msgs[:1]} {
		p := packPublishing(run)
		got, err := Messages(amqp.Delivery{ContentType: p.ContentType, MessageId: p.MessageId, RoutingKey: "task.assigned", Body: p.Body})
		if err != nil || !slices.EqualFunc(got, run, same) {
			t.Errorf("Messages of %d published = %v, %v; want them back", len(run), got, err)
		}
	}
	if _, err := Messages(amqp.Delivery{ContentType: packContentType, Body: []byte{0x80}}); err == nil {
		t.Error("an unreadable pack read")
	}
}

// FuzzUnpack: whatever the body, unpack never panics, and the messages it reads, packed again,
// read back as the same messages (a varint in a longer form than the shortest reads the same,
// so the bytes may differ).
func FuzzUnpack(f *testing.F) {
	f.Add(packPublishing(testMessages("t", 3)).Body)
	f.Add([]byte{0x80, 0x80})
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, err := unpack("t", body)
		if err != nil || len(msgs) < 2 { // a lone message is published as itself, not packed
			return
		}
		round, err := unpack("t", packPublishing(msgs).Body)
		if err != nil {
			t.Fatalf("packing %d unpacked messages again does not read back: %v", len(msgs), err)
		}
		if !slices.EqualFunc(round, msgs, func(x, y bus.Message) bool { return x.ID == y.ID && bytes.Equal(x.Body, y.Body) }) {
			t.Fatalf("packed again and read back: %v, want %v", round, msgs)
		}
	})
}

// TestPacksOnTheWire: 70 messages of one topic and one of another, published in one call, are
// four AMQP messages in the queue (32 + 32 + 6, and 1 alone), and a consumer handles all 71
// once each, in order.
func TestPacksOnTheWire(t *testing.T) {
	url := testenv.RequireRabbitMQ(t)
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	cfg := testConfig(t, url)
	tr := mustNew(t, cfg, url)
	q := bus.Queue{Name: "packed", Topics: []string{"task.*"}}
	if err := tr.Declare(ctx, q); err != nil {
		t.Fatal(err)
	}
	msgs := append(testMessages("task.assigned", 70), testMessage("task.completed"))
	if err := tr.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	if n := queueDepth(t, url, cfg.QueuePrefix+q.Name); n != 4 {
		t.Errorf("the queue holds %d AMQP messages, want 4 (three packs and a lone message)", n)
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

// TestPackRequeuedWhole: a handler error on the fifth message of a pack requeues the pack; its
// messages come again marked redelivered (the four already handled too), every later one once.
// Prefetch 1 keeps the next pack in the queue until the first is settled, so the order is known.
func TestPackRequeuedWhole(t *testing.T) {
	url := testenv.RequireRabbitMQ(t)
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	tr := mustNew(t, testConfig(t, url), url)
	msgs := testMessages("job.run", 40) // a pack of 32, then one of 8
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
	for _, m := range msgs[:32] { // the requeued pack, then the next
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

// TestBatchConsumerSplitsPacks: a batch consumer with Batch 10 gets a pack of 32 in parts of at
// most 10, every message once, and acknowledges the pack once its last part is handled.
func TestBatchConsumerSplitsPacks(t *testing.T) {
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
		t.Errorf("%d AMQP messages back in the queue after the consumer stopped, want both packs acknowledged", n)
	}
}

// TestUnreadablePackIsOneDelivery: a pack whose body cannot be read reaches the handler as one
// delivery with the raw body (the consumer then refuses and dead-letters it), and is not stuck.
func TestUnreadablePackIsOneDelivery(t *testing.T) {
	url := testenv.RequireRabbitMQ(t)
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	cfg := testConfig(t, url)
	tr := mustNew(t, cfg, url)
	got := make(chan bus.Delivery, 4)
	c, err := tr.Subscribe(ctx, bus.Subscription{Queue: "odd", Topics: []string{"job.*"}}, func(_ context.Context, d bus.Delivery) error {
		got <- d
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	ch := brokerChannel(t, url)
	body := []byte{0x05, 'a'}
	if err := ch.PublishWithContext(ctx, cfg.Exchange, "job.run", false, false, amqp.Publishing{ContentType: packContentType, MessageId: "odd-1", Body: body}); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		if d.ID != "odd-1" || d.Topic != "job.run" || !bytes.Equal(d.Body, body) {
			t.Errorf("got %s %s %q, want the unreadable pack as it was sent", d.Topic, d.ID, d.Body)
		}
	case <-ctx.Done():
		t.Fatal("the unreadable pack never reached the handler")
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

// TestPackRunsGroupTopicsPerAggregate: a relay batch of interleaved topics — task.completed and
// task.updated of each task, one after the other — travels as one pack per topic, and every
// aggregate's (Key's) messages keep their order; a message without a key keeps its place.
func TestPackRunsGroupTopicsPerAggregate(t *testing.T) {
	t.Parallel()
	keyed := func(topic, key string) bus.Message {
		m := testMessage(topic)
		m.Key = key
		return m
	}
	interleaved := func(tasks int) []bus.Message {
		var msgs []bus.Message
		for i := range tasks {
			k := fmt.Sprint("task-", i)
			msgs = append(msgs, keyed("task.completed", k), keyed("task.updated", k))
		}
		return msgs
	}
	for _, tc := range []struct {
		name string
		msgs []bus.Message
		want []string // the runs' topics and lengths
	}{
		{"interleaved topics of distinct tasks", interleaved(20), []string{"task.completed×20", "task.updated×20"}},
		{"cut at the pack size", interleaved(22), []string{"task.completed×20", "task.updated×20", "task.completed×2", "task.updated×2"}},
		{"an aggregate's later message waits for its earlier one",
			[]bus.Message{keyed("a", "1"), keyed("b", "1"), keyed("a", "1"), keyed("a", "2")}, []string{"a×1", "b×1", "a×2"}},
		{"a message without a key keeps its place",
			[]bus.Message{keyed("a", "1"), keyed("b", ""), keyed("a", "2"), keyed("b", "3")}, []string{"a×1", "b×2", "a×1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs := packRuns(tc.msgs, 20, DefaultPackBytes)
			var got []string
			for _, r := range runs {
				got = append(got, fmt.Sprintf("%s×%d", r[0].Topic, len(r)))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("runs %v, want %v", got, tc.want)
			}
			assertRunsKeepOrder(t, tc.msgs, runs, 20)
		})
	}
	// Random batches: 3 topics, 6 keys and messages without one, random bounds.
	rng := rand.New(rand.NewPCG(7, 11))
	for range 500 {
		msgs := make([]bus.Message, rng.IntN(80))
		for i := range msgs {
			key := ""
			if rng.IntN(8) > 0 {
				key = fmt.Sprint(rng.IntN(6))
			}
			msgs[i] = keyed(fmt.Sprint("t", rng.IntN(3)), key)
		}
		size := 1 + rng.IntN(40)
		assertRunsKeepOrder(t, msgs, packRuns(msgs, size, DefaultPackBytes), size)
	}
}

// assertRunsKeepOrder checks packRuns' promises: every message once, runs of one topic and at
// most size, each key's messages in their order, and every message without a key preceded by
// exactly the messages that preceded it.
func assertRunsKeepOrder(tb testing.TB, msgs []bus.Message, runs [][]bus.Message, size int) {
	tb.Helper()
	var out []bus.Message
	for _, r := range runs {
		if len(r) == 0 || len(r) > size {
			tb.Fatalf("a run of %d messages, want 1 to %d", len(r), size)
		}
		for _, m := range r {
			if m.Topic != r[0].Topic {
				tb.Fatalf("a run mixes topics %s and %s", r[0].Topic, m.Topic)
			}
		}
		out = append(out, r...)
	}
	if len(out) != len(msgs) {
		tb.Fatalf("%d messages in the runs, want %d", len(out), len(msgs))
	}
	pos := map[string]int{}
	for i, m := range out {
		pos[m.ID] = i
	}
	last := map[string]int{}
	for i, m := range msgs {
		p, ok := pos[m.ID]
		if !ok {
			tb.Fatalf("message %d (%s) is in no run", i, m.ID)
		}
		if m.Key == "" {
			for j, before := range msgs {
				if (j < i) != (pos[before.ID] < p) {
					tb.Fatalf("message %d has no key, yet message %d moved across it", i, j)
				}
			}
			continue
		}
		if q, ok := last[m.Key]; ok && q > p {
			tb.Fatalf("key %s: message %d went before an earlier one of its key", m.Key, i)
		}
		last[m.Key] = p
	}
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
