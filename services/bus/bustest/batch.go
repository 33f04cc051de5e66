package bustest

import (
	"context"
	"sync"
	"testing"

	"github.com/uberpopug/ates/services/bus"
)

// testBatchDeliversEveryMessageOnce: batch consumers on one queue get every message exactly
// once, in batches of at most Batch, and acknowledging a batch acknowledges all of it
// (RabbitMQ: one multiple-ack per batch).
func testBatchDeliversEveryMessageOnce(t *testing.T, tr bus.Transport) {
	ctx := testContext(t)
	s := newScope(t)
	const batch = 16
	r := newRecorder()
	var mu sync.Mutex
	largest := 0
	c, err := tr.SubscribeBatch(ctx, bus.Subscription{Queue: s.queue("batch"), Topics: []string{s.topic("#")}, Concurrency: 3, Batch: batch},
		func(_ context.Context, ds []bus.Delivery) error {
			mu.Lock()
			largest = max(largest, len(ds))
			mu.Unlock()
			for _, d := range ds {
				r.add(d)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	msgs := messages(s.topic("job"), 500)
	mustPublish(ctx, t, tr, msgs...)
	got := r.waitIDs(ctx, t, ids(msgs)...)
	assertExactlyOnce(t, "batch deliveries", got, msgs)

	// Nothing comes again: a later message is the only new delivery.
	sentinel := message(s.topic("after"))
	mustPublish(ctx, t, tr, sentinel)
	got = r.waitIDs(ctx, t, sentinel.ID)
	if len(got) != len(msgs)+1 {
		t.Errorf("%d deliveries after the sentinel, want %d: acknowledged messages came again", len(got), len(msgs)+1)
	}
	mu.Lock()
	defer mu.Unlock()
	if largest > batch {
		t.Errorf("a batch of %d deliveries, want at most %d", largest, batch)
	}
}

// testBatchErrorRequeuesTheBatch: a batch handler's error puts every message of the batch back;
// they come again marked redelivered, and are not handed out a third time once acknowledged.
func testBatchErrorRequeuesTheBatch(t *testing.T, tr bus.Transport) {
	ctx := testContext(t)
	s := newScope(t)
	msgs := messages(s.topic("job"), 5)
	r := newRecorder()
	var mu sync.Mutex
	var failedBatch []string
	c, err := tr.SubscribeBatch(ctx, bus.Subscription{Queue: s.queue("batchretry"), Topics: []string{s.topic("#")}, Batch: 10},
		func(_ context.Context, ds []bus.Delivery) error {
			for _, d := range ds {
				r.add(d)
			}
			mu.Lock()
			defer mu.Unlock()
			if failedBatch == nil {
				for _, d := range ds {
					failedBatch = append(failedBatch, d.ID)
				}
				return errInduced
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	published := publishAsync(ctx, tr, msgs...)
	r.waitFor(ctx, t, "the failed batch redelivered and every message delivered", func(got []bus.Delivery) bool {
		mu.Lock()
		defer mu.Unlock()
		again := map[string]bool{}
		for _, d := range got {
			if d.Redelivered {
				again[d.ID] = true
			}
		}
		for _, id := range failedBatch {
			if !again[id] {
				return false
			}
		}
		return failedBatch != nil && len(missing(got, ids(msgs))) == 0
	})
	awaitPublished(ctx, t, published)
	sentinel := message(s.topic("after"))
	mustPublish(ctx, t, tr, sentinel)
	got := r.waitIDs(ctx, t, sentinel.ID)
	if want := len(msgs) + 1 + len(failedBatch); len(got) != want {
		t.Errorf("%d deliveries, want %d (every message, the failed batch again, the sentinel): acknowledged messages came again", len(got), want)
	}
}

// testBatchConsumerDiesBeforeAck: a batch consumer aborted while it holds a batch gives every
// message of it back, even if the handler then returns nil; another consumer gets them.
func testBatchConsumerDiesBeforeAck(t *testing.T, tr bus.Transport) {
	ctx := testContext(t)
	s := newScope(t)
	sub := bus.Subscription{Queue: s.queue("batchcrash"), Topics: []string{s.topic("#")}, Batch: 50}
	held := make(chan []bus.Delivery, 1)
	dieCtx, die := context.WithCancel(ctx)
	defer die()
	dying, err := tr.SubscribeBatch(dieCtx, sub, func(ctx context.Context, ds []bus.Delivery) error {
		select {
		case held <- ds:
		default:
		}
		<-ctx.Done()
		return nil // too late: the consumer died before the handler returned
	})
	if err != nil {
		t.Fatal(err)
	}
	defer dying.Stop()
	msgs := messages(s.topic("job"), 3)
	published := publishAsync(ctx, tr, msgs...)
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatal("the dying consumer never got a batch")
	}
	die()

	r := newRecorder()
	c, err := tr.SubscribeBatch(ctx, sub, func(_ context.Context, ds []bus.Delivery) error {
		for _, d := range ds {
			r.add(d)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	r.waitIDs(ctx, t, ids(msgs)...)
	awaitPublished(ctx, t, published)
}
