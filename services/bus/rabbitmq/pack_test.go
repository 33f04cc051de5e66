package rabbitmq

import (
	"bytes"
	"context"
	"encoding/binary"
	"slices"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/testenv"
)

// packBody is a pack's body as earlier versions of the transport wrote it: for each message its
// id and its body, each preceded by its length as an unsigned varint.
func packBody(msgs []bus.Message) []byte {
	var body []byte
	for _, m := range msgs {
		body = binary.AppendUvarint(body, uint64(len(m.ID)))
		body = append(body, m.ID...)
		body = binary.AppendUvarint(body, uint64(len(m.Body)))
		body = append(body, m.Body...)
	}
	return body
}

func sameMessage(x, y bus.Message) bool {
	return x.ID == y.ID && x.Topic == y.Topic && bytes.Equal(x.Body, y.Body)
}

// TestUnpack: a pack written by an earlier version reads back as its messages; a body that is
// no pack is an error.
func TestUnpack(t *testing.T) {
	t.Parallel()
	msgs := testMessages("task.assigned", 5)
	msgs[2].Body = nil // an empty body survives too
	got, err := unpack("task.assigned", packBody(msgs))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got, msgs, sameMessage) {
		t.Errorf("unpacked %v, want %v", got, msgs)
	}
	for _, bad := range [][]byte{nil, {0x80}, {5, 'a'}, append([]byte{1, 'a', 10}, "short"...), {1, 'a'}} {
		if ms, err := unpack("t", bad); err == nil {
			t.Errorf("unpack(%q) = %v, want an error", bad, ms)
		}
	}
}

// TestMessagesOfADelivery: a tap reading the exchange gets every event of a CloudEvents batch
// and of an old pack, and a lone event as itself; a batch or pack that cannot be read is an
// error.
func TestMessagesOfADelivery(t *testing.T) {
	t.Parallel()
	msgs := testEnvelopes(t, "task.assigned", 3)
	batch := batchPublishing(msgs, time.Now())
	lone := batchPublishing(msgs[:1], time.Now())
	for _, tc := range []struct {
		name string
		d    amqp.Delivery
		want []bus.Message
	}{
		{"a CloudEvents batch", amqp.Delivery{ContentType: batch.ContentType, RoutingKey: "task.assigned", Body: batch.Body}, msgs},
		{"a pack", amqp.Delivery{ContentType: packContentType, RoutingKey: "task.assigned", Body: packBody(msgs)}, msgs},
		{"a lone event", amqp.Delivery{ContentType: lone.ContentType, MessageId: lone.MessageId, RoutingKey: "task.assigned", Body: lone.Body}, msgs[:1]},
	} {
		got, err := Messages(tc.d)
		if err != nil || !slices.EqualFunc(got, tc.want, sameMessage) {
			t.Errorf("Messages of %s = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	for _, d := range []amqp.Delivery{
		{ContentType: packContentType, Body: []byte{0x80}},
		{ContentType: batchContentType, Body: []byte(`{"specversion":"1.0"}`)},
		{ContentType: batchContentType, Body: []byte(`[`)},
		{ContentType: batchContentType, Body: []byte(`[]`)},
	} {
		if ms, err := Messages(d); err == nil {
			t.Errorf("Messages(%s %q) = %v, want an error", d.ContentType, d.Body, ms)
		}
	}
}

// FuzzUnpack: whatever the body, unpack never panics, and the messages it reads, packed again,
// read back as the same messages (a varint in a longer form than the shortest reads the same,
// so the bytes may differ).
func FuzzUnpack(f *testing.F) {
	f.Add(packBody(testMessages("t", 3)))
	f.Add([]byte{0x80, 0x80})
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, err := unpack("t", body)
		if err != nil {
			return
		}
		round, err := unpack("t", packBody(msgs))
		if err != nil {
			t.Fatalf("packing %d unpacked messages again does not read back: %v", len(msgs), err)
		}
		if !slices.EqualFunc(round, msgs, sameMessage) {
			t.Fatalf("packed again and read back: %v, want %v", round, msgs)
		}
	})
}

// TestOldPacksStillDecode: during the rollout a queue holds packs of producers not yet upgraded
// next to CloudEvents batches and lone events; a consumer — one message at a time, or in
// batches — handles every event of all three once, in order, and acknowledges every AMQP
// message.
func TestOldPacksStillDecode(t *testing.T) {
	url := testenv.RequireRabbitMQ(t)
	t.Parallel()
	for _, batched := range []bool{false, true} {
		t.Run(map[bool]string{false: "one by one", true: "in batches"}[batched], func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 30*time.Second)
			cfg := testConfig(t, url)
			tr := mustNew(t, cfg, url)
			q := bus.Queue{Name: "mixed", Topics: []string{"task.*"}}
			if err := tr.Declare(ctx, q); err != nil {
				t.Fatal(err)
			}
			old := testEnvelopes(t, "task.assigned", 5)
			fresh := testEnvelopes(t, "task.assigned", 4)
			lone := testEnvelopes(t, "task.completed", 1)
			ch := brokerChannel(t, url)
			if err := ch.PublishWithContext(ctx, cfg.Exchange, "task.assigned", false, false,
				amqp.Publishing{ContentType: packContentType, DeliveryMode: amqp.Persistent, Body: packBody(old)}); err != nil {
				t.Fatal(err)
			}
			if err := tr.Publish(ctx, fresh...); err != nil {
				t.Fatal(err)
			}
			if err := tr.Publish(ctx, lone...); err != nil {
				t.Fatal(err)
			}
			want := slices.Concat(old, fresh, lone)
			if n := queueDepth(t, url, cfg.QueuePrefix+q.Name); n != 3 {
				t.Errorf("the queue holds %d AMQP messages, want 3 (a pack, a batch, a lone event)", n)
			}

			var mu sync.Mutex
			var got []bus.Message
			done := make(chan struct{})
			take := func(d bus.Delivery) {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, d.Message)
				if len(got) == len(want) {
					close(done)
				}
			}
			sub := bus.Subscription{Queue: q.Name, Topics: q.Topics}
			var c bus.Consumer
			var err error
			if batched {
				c, err = tr.SubscribeBatch(ctx, sub, func(_ context.Context, ds []bus.Delivery) error {
					for _, d := range ds {
						take(d)
					}
					return nil
				})
			} else {
				c, err = tr.Subscribe(ctx, sub, func(_ context.Context, d bus.Delivery) error { take(d); return nil })
			}
			if err != nil {
				t.Fatal(err)
			}
			await(ctx, t, done, "every event delivered")
			c.Stop()
			mu.Lock()
			defer mu.Unlock()
			if !slices.EqualFunc(got, want, sameMessage) {
				t.Errorf("got %d events %v,\nwant %d %v", len(got), got, len(want), want)
			}
			if n := queueDepth(t, url, cfg.QueuePrefix+q.Name); n != 0 {
				t.Errorf("%d AMQP messages back in the queue, want every one acknowledged", n)
			}
		})
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
