package rabbitmq

import (
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/bus/rabbitmq/amqptest"
	"github.com/uberpopug/ates/services/testenv"
)

// queueExists asks the broker whether the queue is there.
func queueExists(tb testing.TB, url, name string) bool {
	tb.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		tb.Fatal(err)
	}
	defer closeChannel(ch)
	_, err = ch.QueueDeclarePassive(name, true, false, false, false, nil)
	return err == nil
}

// TestFeedAfterTransportRestart: a transport started anew knows nothing of the feeds before it;
// it asks the broker. A feed whose queue outlived the old transport is resumed with what was
// published meanwhile and no gap; one whose queue is gone is reported as a gap before the first
// delivery (R-REL-1). Stop deletes the feed's queue.
func TestFeedAfterTransportRestart(t *testing.T) {
	url := testenv.RequireRabbitMQ(t)
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	cfg := testConfig(t, url)
	publisher := mustNew(t, cfg, url)
	const feed = "gateway.instance-1.balances"
	queue := cfg.QueuePrefix + "feed." + feed
	sub := func(tr *Transport, gaps *atomic.Int32, got *seen) bus.Consumer {
		c, err := tr.Subscribe(ctx, bus.Subscription{Feed: feed, Topics: []string{"balance.*"}, OnGap: func() { gaps.Add(1) }}, got.handler)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	var gaps atomic.Int32
	old := mustNew(t, cfg, url)
	sub(old, &gaps, newSeen())
	if gaps.Load() > 1 {
		t.Fatalf("a new feed reported %d gaps, want at most one", gaps.Load())
	}
	if err := old.Close(); err != nil { // the process dies: its consumers are aborted, not stopped
		t.Fatal(err)
	}
	if !queueExists(t, url, queue) {
		t.Fatal("the feed's queue went with its transport")
	}
	meanwhile := testMessages("balance.changed", 5)
	if err := publisher.Publish(ctx, meanwhile...); err != nil {
		t.Fatal(err)
	}

	gaps.Store(0)
	got := newSeen()
	renewed := mustNew(t, cfg, url)
	c := sub(renewed, &gaps, got)
	got.wait(ctx, t, msgIDs(meanwhile))
	if n := gaps.Load(); n != 0 {
		t.Errorf("a feed whose queue kept every message reported %d gaps", n)
	}
	c.Stop()
	if queueExists(t, url, queue) {
		t.Fatal("Stop left the feed's queue behind")
	}

	gaps.Store(0)
	third := mustNew(t, cfg, url)
	got = newSeen()
	c = sub(third, &gaps, got)
	defer c.Stop()
	first := testMessage("balance.changed")
	if err := publisher.Publish(ctx, first); err != nil {
		t.Fatal(err)
	}
	got.wait(ctx, t, []string{first.ID})
	if n := gaps.Load(); n != 1 {
		t.Errorf("a feed whose queue was gone reported %d gaps before its first delivery, want 1", n)
	}
}

// TestFeedSurvivesBrokerRestart: a feed's queue is durable, so a broker restart (a throwaway
// node of the test's own) loses neither the queue nor what is published before the consumer
// is back, and reports no gap (R-REL-1).
func TestFeedSurvivesBrokerRestart(t *testing.T) {
	t.Parallel()
	node := amqptest.StartNode(t)
	ctx := testContext(t, 3*time.Minute)
	cfg := testConfig(t, node.URL())
	publisher := mustNew(t, cfg, node.URL())
	slow := cfg // the subscriber reconnects on the production schedule, after the publisher
	slow.ReconnectDelay, slow.MaxReconnectDelay = 0, 0
	subscriber := mustNew(t, slow, node.URL())

	var gaps atomic.Int32
	got := newSeen()
	c, err := subscriber.Subscribe(ctx, bus.Subscription{Feed: "gateway.restart.balances", Topics: []string{"balance.*"},
		OnGap: func() { gaps.Add(1) }}, got.handler)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	before := testMessages("balance.changed", 5)
	if err := publisher.Publish(ctx, before...); err != nil {
		t.Fatal(err)
	}
	got.wait(ctx, t, msgIDs(before))
	startGaps := gaps.Load()

	node.Restart(t)
	after := testMessages("balance.changed", 5)
	if err := publisher.Publish(ctx, after...); err != nil { // waits for its reconnect
		t.Fatal(err)
	}
	got.wait(ctx, t, msgIDs(after))
	if n := gaps.Load() - startGaps; n != 0 {
		t.Errorf("%d gaps reported across a broker restart that kept the feed's queue", n)
	}
}
