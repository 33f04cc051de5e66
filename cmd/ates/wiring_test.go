package main

import (
	"context"
	"errors"
	"testing"

	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/bus/rabbitmq"
)

// TestNotifyAfter checks that a consumer wakes its relay after a batch it handled that stored
// events, and only then.
func TestNotifyAfter(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		err    error
		stored uint64
		notify int
	}{
		"handled, events stored": {nil, 2, 1},
		"handled, none stored":   {nil, 0, 0},
		"failed":                 {errors.New("boom"), 2, 0},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var taken uint64
			notified, handled := 0, 0
			h := notifyAfter(func(context.Context, []bus.Delivery) error {
				handled++
				taken += tc.stored
				return tc.err
			}, func() uint64 { return taken }, func() { notified++ })
			if err := h(context.Background(), []bus.Delivery{{}}); !errors.Is(err, tc.err) {
				t.Fatalf("handler error %v, want %v", err, tc.err)
			}
			if handled != 1 || notified != tc.notify {
				t.Fatalf("handled %d times, notified %d times; want 1 and %d", handled, notified, tc.notify)
			}
		})
	}
}

// TestQueuePrefix checks that stacks on different exchanges get different durable queues, and
// that the default exchange keeps the historical names.
func TestQueuePrefix(t *testing.T) {
	t.Parallel()
	for exchange, want := range map[string]string{
		"": "ates.accounting", rabbitmq.DefaultExchange: "ates.accounting", "ates_run_1": "ates_run_1.ates.accounting",
	} {
		if got := queuePrefix(exchange) + queueName("accounting"); got != want {
			t.Errorf("exchange %q: queue %q, want %q", exchange, got, want)
		}
	}
}
