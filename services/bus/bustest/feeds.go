package bustest

import (
	"context"
	"sync"
	"testing"

	"github.com/uberpopug/ates/services/bus"
)

// FeedRig is what the feed cases run on: a transport that publishes, one that subscribes (they
// may be the same), and the outages the subscriber's transport can be put through.
type FeedRig struct {
	Publisher, Subscriber bus.Transport
	// Cut severs the subscriber's connection to its broker and keeps it away until restore is
	// called; nil for a transport without a broker.
	Cut func(t *testing.T) (restore func())
	// DeleteFeedQueue deletes a feed's queue behind its consumer's back, as an expiry or a
	// broker that lost its data does; nil for a transport without a broker.
	DeleteFeedQueue func(t *testing.T, feed string)
}

// RunFeeds runs the contract of feeds (bus.Subscription.Feed and OnGap, R-REL-1). newRig
// returns a fresh rig per case and registers its cleanup.
func RunFeeds(t *testing.T, newRig func(t *testing.T) FeedRig) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, rig FeedRig)
	}{
		{"FeedGetsEveryMessage", testFeedGetsEveryMessage},
		{"FeedKeepsMessagesWhileDisconnected", testFeedKeepsMessagesWhileDisconnected},
		{"FeedReportsGapWhenQueueLost", testFeedReportsGapWhenQueueLost},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newRig(t))
		})
	}
}

// gapRecorder records OnGap calls into the same sequence as the deliveries, so a test sees
// whether a gap came before a delivery.
type gapRecorder struct {
	*recorder
	mu   sync.Mutex
	gaps []int // for each OnGap call, how many deliveries preceded it
}

func newGapRecorder() *gapRecorder { return &gapRecorder{recorder: newRecorder()} }

func (g *gapRecorder) onGap() {
	n := len(g.deliveries())
	g.mu.Lock()
	g.gaps = append(g.gaps, n)
	g.mu.Unlock()
	// Wake waiters on the recorder.
	g.recorder.mu.Lock()
	close(g.recorder.changed)
	g.recorder.changed = make(chan struct{})
	g.recorder.mu.Unlock()
}

func (g *gapRecorder) gapsSeen() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.gaps...)
}

// waitGaps waits until at least n gaps were reported.
func (g *gapRecorder) waitGaps(ctx context.Context, tb testing.TB, n int) {
	tb.Helper()
	g.waitFor(ctx, tb, "a reported gap", func([]bus.Delivery) bool { return len(g.gapsSeen()) >= n })
}

// subscribeFeed subscribes a feed named for the test and waits for its initial gap report, if
// the transport makes one (at most one, before any delivery).
func subscribeFeed(ctx context.Context, t *testing.T, rig FeedRig, s scope) (*gapRecorder, string) {
	t.Helper()
	g := newGapRecorder()
	feed := "bustest." + s.id + ".feed"
	mustSubscribe(ctx, t, rig.Subscriber, bus.Subscription{Feed: feed, Topics: []string{s.topic("#")}, OnGap: g.onGap}, g.handler())
	return g, feed
}

// checkStartGaps: a feed reports at most one gap of its own start, before any delivery.
func checkStartGaps(t *testing.T, g *gapRecorder) int {
	t.Helper()
	gaps := g.gapsSeen()
	if len(gaps) > 1 || (len(gaps) == 1 && gaps[0] != 0) {
		t.Errorf("gaps reported after %v deliveries; a feed that lost nothing reports at most one gap, at its start", gaps)
	}
	return len(gaps)
}

// testFeedGetsEveryMessage: a feed gets every message published to its topics, once.
func testFeedGetsEveryMessage(t *testing.T, rig FeedRig) {
	ctx := testContext(t)
	s := newScope(t)
	g, _ := subscribeFeed(ctx, t, rig, s)
	msgs := messages(s.topic("balance", "changed"), 50)
	published := publishAsync(ctx, rig.Publisher, msgs...)
	got := g.waitIDs(ctx, t, ids(msgs)...)
	awaitPublished(ctx, t, published)
	assertExactlyOnce(t, "feed", got, msgs)
	checkStartGaps(t, g)
}

// testFeedKeepsMessagesWhileDisconnected: what is published while the feed's consumer has lost
// its connection reaches it once the connection is back, and no gap is reported (R-REL-1).
func testFeedKeepsMessagesWhileDisconnected(t *testing.T, rig FeedRig) {
	ctx := testContext(t)
	s := newScope(t)
	g, _ := subscribeFeed(ctx, t, rig, s)
	before := messages(s.topic("account", "updated"), 10)
	published := publishAsync(ctx, rig.Publisher, before...)
	g.waitIDs(ctx, t, ids(before)...)
	awaitPublished(ctx, t, published)
	startGaps := checkStartGaps(t, g)

	restore := func() {}
	if rig.Cut != nil {
		restore = rig.Cut(t)
	}
	during := messages(s.topic("account", "updated"), 20)
	published = publishAsync(ctx, rig.Publisher, during...)
	if rig.Cut != nil {
		// A broker confirms them into the queue while the consumer is away.
		awaitPublished(ctx, t, published)
		published = nil
	}
	restore()
	got := g.waitIDs(ctx, t, ids(during)...)
	if published != nil {
		awaitPublished(ctx, t, published)
	}
	// At least once: a message the broker was handing over as the connection died comes
	// again, marked redelivered.
	if lost := missing(got, ids(append(before, during...))); len(lost) > 0 {
		t.Errorf("%d messages never delivered across a lost connection, e.g. %s", len(lost), lost[0])
	}
	if gaps := g.gapsSeen(); len(gaps) != startGaps {
		t.Errorf("gaps reported after %v deliveries, though the feed's queue kept every message", gaps[startGaps:])
	}
}

// testFeedReportsGapWhenQueueLost: when the feed's queue is lost behind its consumer's back (it
// expired, the broker lost it), the consumer re-attaches to a new queue and OnGap is called
// before the next delivery; what is published afterwards arrives (R-REL-1). A transport
// without a broker loses nothing and reports nothing.
func testFeedReportsGapWhenQueueLost(t *testing.T, rig FeedRig) {
	ctx := testContext(t)
	s := newScope(t)
	g, feed := subscribeFeed(ctx, t, rig, s)
	first := message(s.topic("balance", "changed"))
	awaitPublished(ctx, t, publishAsync(ctx, rig.Publisher, first))
	g.waitIDs(ctx, t, first.ID)
	startGaps := checkStartGaps(t, g)
	if rig.DeleteFeedQueue == nil {
		return // no broker: nothing can be lost, and no gap is reported (checked above)
	}

	rig.DeleteFeedQueue(t, feed)
	g.waitGaps(ctx, t, startGaps+1)
	after := message(s.topic("balance", "changed"))
	awaitPublished(ctx, t, publishAsync(ctx, rig.Publisher, after))
	got := g.waitIDs(ctx, t, after.ID)
	gaps := g.gapsSeen()
	if len(gaps) != startGaps+1 {
		t.Fatalf("gaps reported after %v deliveries, want one after the queue was lost", gaps)
	}
	for i, d := range got {
		if d.ID == after.ID && i < gaps[startGaps] {
			t.Errorf("the message after the loss was delivered before the gap was reported")
		}
	}
}
