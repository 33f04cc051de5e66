package inproc_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/bus/bustest"
	"github.com/uberpopug/ates/services/bus/inproc"
)

func TestContract(t *testing.T) {
	t.Parallel()
	bustest.Run(t, func(t *testing.T) bus.Transport {
		b := inproc.New()
		t.Cleanup(func() {
			if err := b.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return b
	})
}

// TestFeedContract: the in-process bus has no broker: a feed loses nothing and reports no gap
// (R-REL-1).
func TestFeedContract(t *testing.T) {
	t.Parallel()
	bustest.RunFeeds(t, func(t *testing.T) bustest.FeedRig {
		b := inproc.New()
		t.Cleanup(func() { _ = b.Close() })
		return bustest.FeedRig{Publisher: b, Subscriber: b}
	})
}

// TestRepublishedMessageIsQueuedOnce: a relay that retries while no consumer is up must not
// pile up copies of the same message in memory.
func TestRepublishedMessageIsQueuedOnce(t *testing.T) {
	t.Parallel()
	b := inproc.New()
	ctx := context.Background()
	if err := b.Declare(ctx, bus.Queue{Name: "q", Topics: []string{"a.b"}}); err != nil {
		t.Fatal(err)
	}
	msg := bus.Message{ID: "m1", Topic: "a.b", Body: []byte("{}")}
	for range 3 { // three relay attempts, each giving up
		short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		if err := b.Publish(short, msg); err == nil {
			t.Fatal("Publish succeeded without a consumer")
		}
		cancel()
	}
	var mu sync.Mutex
	got := map[string]int{}
	c, err := b.Subscribe(ctx, bus.Subscription{Queue: "q", Topics: []string{"a.b"}}, func(_ context.Context, d bus.Delivery) error {
		mu.Lock()
		got[d.ID]++
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	// A later message, published once the consumer runs: Publish returns when it was handled,
	// and the queue hands messages over in order, so every copy of m1 came before it.
	if err := b.Publish(ctx, bus.Message{ID: "m2", Topic: "a.b", Body: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got["m1"] != 1 || got["m2"] != 1 {
		t.Errorf("delivered m1 %d and m2 %d times, want once each", got["m1"], got["m2"])
	}
}
