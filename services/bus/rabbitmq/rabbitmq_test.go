package rabbitmq

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uberpopug/ates/services/backoff"
	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/bus/bustest"
	"github.com/uberpopug/ates/services/bus/rabbitmq/amqptest"
	"github.com/uberpopug/ates/services/testenv"
)

func TestContract(t *testing.T) {
	url := testenv.RequireRabbitMQ(t)
	t.Parallel()
	bustest.Run(t, func(t *testing.T) bus.Transport {
		return mustNew(t, testConfig(t, url), url)
	})
}

// TestFeedContract runs the feed cases with the subscriber reaching the broker through a proxy
// the cases can cut (R-REL-1).
func TestFeedContract(t *testing.T) {
	url := testenv.RequireRabbitMQ(t)
	t.Parallel()
	bustest.RunFeeds(t, func(t *testing.T) bustest.FeedRig {
		p := amqptest.StartProxy(t, url)
		cfg := testConfig(t, url)
		proxied := cfg
		proxied.URL = p.URL(url)
		return bustest.FeedRig{
			Publisher:  mustNew(t, cfg, url),
			Subscriber: mustNew(t, proxied, url),
			Cut: func(t *testing.T) func() {
				p.Drop(time.Hour)
				return p.Allow
			},
			DeleteFeedQueue: func(t *testing.T, feed string) {
				deleteTopology(t, url, "", []string{cfg.QueuePrefix + "feed." + feed})
			},
		}
	})
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"", "http://localhost:5672/", "amqp://host:notaport/"} {
		if _, err := New(t.Context(), Config{URL: raw}); err == nil {
			t.Errorf("New with URL %q: nil error, want a validation error", raw)
		}
	}
}

// TestRedeliveryAfterConsumerConnectionDies: a consumer whose connection dies while its handler
// holds a message does not keep it: the broker hands it, redelivered, to another consumer.
func TestRedeliveryAfterConsumerConnectionDies(t *testing.T) {
	url := testenv.RequireRabbitMQ(t)
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	p := amqptest.StartProxy(t, url)
	cfg := testConfig(t, url)
	direct := mustNew(t, cfg, url)
	proxied := cfg
	proxied.URL = p.URL(url)
	doomed := mustNew(t, proxied, url)

	sub := bus.Subscription{Queue: "jobs", Topics: []string{"job.*"}}
	held := make(chan bus.Delivery, 1)
	release := make(chan struct{})
	c, err := doomed.Subscribe(ctx, sub, func(ctx context.Context, d bus.Delivery) error {
		select {
		case held <- d:
		default:
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer c.Stop()
	defer close(release) // before Stop, which waits for the handler

	m := testMessage("job.run")
	if err := direct.Publish(ctx, m); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	select {
	case d := <-held:
		if d.ID != m.ID || d.Redelivered {
			t.Fatalf("doomed consumer got %s redelivered=%v, want %s fresh", d.ID, d.Redelivered, m.ID)
		}
	case <-ctx.Done():
		t.Fatal("the message never reached the doomed consumer")
	}

	survivor := newSeen()
	sc, err := direct.Subscribe(ctx, sub, survivor.handler)
	if err != nil {
		t.Fatalf("Subscribe survivor: %v", err)
	}
	defer sc.Stop()
	p.Drop(2 * time.Second) // the doomed consumer's connection dies mid-handler and stays away

	survivor.wait(ctx, t, []string{m.ID})
	survivor.mu.Lock()
	last := survivor.last
	survivor.mu.Unlock()
	if last.ID != m.ID || !last.Redelivered {
		t.Errorf("survivor got %s redelivered=%v, want %s redelivered", last.ID, last.Redelivered, m.ID)
	}
}

// TestNoEventLostWhenConnectionDropsWhilePublishing publishes like the outbox relay (batches,
// retrying a batch until Publish reports nil) while the publisher's connection is cut, once with
// a batch provably in flight and once at an arbitrary moment: every message must arrive.
func TestNoEventLostWhenConnectionDropsWhilePublishing(t *testing.T) {
	url := testenv.RequireRabbitMQ(t)
	t.Parallel()
	ctx := testContext(t, 45*time.Second)
	p := amqptest.StartProxy(t, url)
	cfg := testConfig(t, url)
	consumerSide := mustNew(t, cfg, url)
	proxied := cfg
	proxied.URL = p.URL(url)
	publisher := mustNew(t, proxied, url)

	got := newSeen()
	if err := consumerSide.Declare(ctx, bus.Queue{Name: "relay", Topics: []string{"evt.#"}}); err != nil {
		t.Fatalf("Declare: %v", err)
	}
	c, err := consumerSide.Subscribe(ctx, bus.Subscription{Queue: "relay", Prefetch: 256, Concurrency: 4}, got.handler)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer c.Stop()

	const total, batchSize, heldBatch = 2000, 100, 5
	msgs := testMessages("evt.happened", total)
	var failures atomic.Int64
	heldFailed := false
	publishBatch := func(i int, batch []bus.Message) {
		for attempt := 1; ; attempt++ {
			if i == heldBatch && attempt == 1 {
				// Nothing reaches the broker and no confirm comes back; then the connection dies.
				p.Hold()
				time.AfterFunc(200*time.Millisecond, func() { p.Drop(300 * time.Millisecond) })
			}
			bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := publisher.Publish(bctx, batch...)
			cancel()
			if err == nil {
				return
			}
			if i == heldBatch && attempt == 1 {
				heldFailed = true
			}
			failures.Add(1)
			t.Logf("batch %d attempt %d: %v (retrying)", i, attempt, err)
			if ctx.Err() != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for i := 0; i*batchSize < total; i++ {
		if i == 12 {
			// An unsynchronised cut while the consumer is still catching up.
			go p.Drop(100 * time.Millisecond)
		}
		if i == heldBatch {
			// Publish returns nil only for confirmed messages; held ones cannot be.
			publishBatch(i, msgs[i*batchSize:(i+1)*batchSize])
			if !heldFailed {
				t.Errorf("Publish of a batch whose connection died before any confirm reported nil")
			}
			continue
		}
		publishBatch(i, msgs[i*batchSize:min((i+1)*batchSize, total)])
	}

	got.wait(ctx, t, msgIDs(msgs))
	if n := p.Accepted(); n < 3 {
		t.Errorf("the publisher connected %d times, want at least 3 (two cuts)", n)
	}
	t.Logf("%d publish attempts failed and were retried; %d connections", failures.Load(), p.Accepted())
}

// TestConsumerResumesAfterConnectionDrop: consumers come back by themselves after their
// connection is cut, the durable one with what was published meanwhile.
func TestConsumerResumesAfterConnectionDrop(t *testing.T) {
	url := testenv.RequireRabbitMQ(t)
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	p := amqptest.StartProxy(t, url)
	cfg := testConfig(t, url)
	publisher := mustNew(t, cfg, url)
	proxied := cfg
	proxied.URL = p.URL(url)
	consumerSide := mustNew(t, proxied, url)

	durable, private := newSeen(), newSeen()
	for _, s := range []struct {
		sub bus.Subscription
		h   bus.Handler
	}{
		{bus.Subscription{Queue: "resume", Topics: []string{"work.#"}}, durable.handler},
		{bus.Subscription{Topics: []string{"hub.*"}}, private.handler},
	} {
		c, err := consumerSide.Subscribe(ctx, s.sub, s.h)
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		defer c.Stop()
	}

	before := testMessages("work.item", 50)
	if err := publisher.Publish(ctx, before...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	durable.wait(ctx, t, msgIDs(before))

	p.Drop(500 * time.Millisecond)
	during := testMessages("work.item", 50)
	if err := publisher.Publish(ctx, during...); err != nil {
		t.Fatalf("Publish during the consumer's outage: %v", err)
	}
	durable.wait(ctx, t, msgIDs(during))

	// A private queue lives and dies with the connection: what matters is that the consumer
	// subscribes again, so probe until a message published after the cut arrives.
	for {
		probe := testMessage("hub.probe")
		if err := publisher.Publish(ctx, probe); err != nil {
			t.Fatalf("Publish probe: %v", err)
		}
		if !backoff.Sleep(ctx, 100*time.Millisecond) {
			t.Fatal("the private subscription did not resume")
		}
		if private.times(probe.ID) > 0 {
			break
		}
	}
	if n := p.Accepted(); n < 2 {
		t.Errorf("the consumer side connected %d times, want at least 2", n)
	}
}

// TestPublishDuringOutage: while the broker is unreachable Publish waits until its context ends
// and reports the failure, then succeeds once the connection is back.
func TestPublishDuringOutage(t *testing.T) {
	url := testenv.RequireRabbitMQ(t)
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	p := amqptest.StartProxy(t, url)
	cfg := testConfig(t, url)
	consumerSide := mustNew(t, cfg, url)
	proxied := cfg
	proxied.URL = p.URL(url)
	publisher := mustNew(t, proxied, url)

	got := newSeen()
	c, err := consumerSide.Subscribe(ctx, bus.Subscription{Queue: "outage", Topics: []string{"evt.*"}}, got.handler)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer c.Stop()

	p.Drop(time.Second)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	lost := testMessage("evt.lost")
	err = publisher.Publish(short, lost)
	cancel()
	if err == nil {
		t.Fatal("Publish while the broker is unreachable reported nil")
	}
	if errors.Is(err, ErrClosed) {
		t.Errorf("Publish during an outage: %v, want a connection or deadline error", err)
	}

	m := testMessage("evt.later")
	if err := publisher.Publish(ctx, m); err != nil {
		t.Fatalf("Publish after the outage: %v", err)
	}
	got.wait(ctx, t, []string{m.ID})
}

// TestTopicMatchesAgreesWithBroker checks bus.TopicMatches (which the in-process bus routes
// with) against the broker's own topic exchange.
func TestTopicMatchesAgreesWithBroker(t *testing.T) {
	url := testenv.RequireRabbitMQ(t)
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	tr := mustNew(t, testConfig(t, url), url)

	patterns := []string{"#", "*", "a", "a.*", "a.#", "#.a", "*.*", "a.*.c", "a.#.c", "#.b.#", "*.#", "#.*", "a.#.*", "#.#", ""}
	topics := []string{"", "a", "b", "a.b", "b.a", "a.b.c", "a.c", "a.b.b.c", "a..c", ".a", "a."}
	const sentinel = "zz.sentinel.zz"
	seenBy := make([]*seen, len(patterns))
	for i, pat := range patterns {
		seenBy[i] = newSeen()
		c, err := tr.Subscribe(ctx, bus.Subscription{Topics: []string{pat, sentinel}}, seenBy[i].handler)
		if err != nil {
			t.Fatalf("Subscribe %q: %v", pat, err)
		}
		defer c.Stop()
	}
	var msgs []bus.Message
	for _, topic := range topics {
		msgs = append(msgs, testMessage(topic))
	}
	end := testMessage(sentinel)
	if err := tr.Publish(ctx, append(msgs, end)...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	for i, pat := range patterns {
		seenBy[i].wait(ctx, t, []string{end.ID}) // the sentinel comes last on each queue
		for _, m := range msgs {
			broker := seenBy[i].times(m.ID) > 0
			if want := bus.TopicMatches(pat, m.Topic); broker != want {
				t.Errorf("pattern %q, topic %q: broker routes=%v, TopicMatches=%v", pat, m.Topic, broker, want)
			}
		}
	}
}
