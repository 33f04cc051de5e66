package bus_test

import (
	"testing"

	"github.com/uberpopug/ates/services/bus"
)

func TestTopicMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, topic string
		want           bool
	}{
		{"account.created", "account.created", true},
		{"account.created", "account.updated", false},
		{"account.created", "account", false},
		{"account.created", "account.created.v2", false},
		{"account", "account.created", false},

		{"account.*", "account.created", true},
		{"account.*", "account", false},
		{"account.*", "account.created.v2", false},
		{"*.created", "task.created", true},
		{"*.created", "created", false},
		{"*", "account", true},
		{"*", "account.created", false},
		{"*.*", "a.b", true},
		{"*.*", "a", false},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a.c", false},
		{"a.*.c", "a..c", true}, // an empty word is still a word

		{"#", "account.created", true},
		{"#", "account", true},
		{"#", "", true},
		{"account.#", "account", true},
		{"account.#", "account.created", true},
		{"account.#", "account.created.v2", true},
		{"account.#", "task.created", false},
		{"#.created", "created", true},
		{"#.created", "task.created", true},
		{"#.created", "a.b.task.created", true},
		{"#.created", "task.created.v2", false},
		{"a.#.c", "a.c", true},
		{"a.#.c", "a.b.c", true},
		{"a.#.c", "a.b.b.c", true},
		{"a.#.c", "a.b.d", false},
		{"#.b.#", "b", true},
		{"#.b.#", "a.b.c", true},
		{"#.b.#", "a.c", false},
		{"#.#", "a.b", true},
		{"*.#", "a", true},
		{"*.#", "a.b.c", true},
		{"#.*", "a.b", true},
		{"a.#.#.b", "a.b", true},
		{"a.#.*", "a", false},
		{"a.#.*", "a.b", true},

		// The empty key has no words, as on RabbitMQ.
		{"", "", true},
		{"", "a", false},
		{"a", "", false},
		{"*", "", false},
		{"*.#", "", false},
		{"#.*", "", false},
		{"#.#", "", true},
	}
	for _, tc := range tests {
		if got := bus.TopicMatches(tc.pattern, tc.topic); got != tc.want {
			t.Errorf("TopicMatches(%q, %q) = %v, want %v", tc.pattern, tc.topic, got, tc.want)
		}
	}
}

func TestSubscriptionNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want bus.Subscription
	}{
		{bus.Subscription{}, bus.Subscription{Prefetch: 64, Concurrency: 1}},
		{bus.Subscription{Prefetch: 8, Concurrency: 2}, bus.Subscription{Prefetch: 8, Concurrency: 2}},
		{bus.Subscription{Prefetch: 2, Concurrency: 8}, bus.Subscription{Prefetch: 8, Concurrency: 8}},
		{bus.Subscription{Prefetch: -1, Concurrency: -1}, bus.Subscription{Prefetch: 64, Concurrency: 1}},
	}
	for _, tc := range tests {
		got := tc.in.Normalize()
		if got.Prefetch != tc.want.Prefetch || got.Concurrency != tc.want.Concurrency {
			t.Errorf("%+v.Normalize() = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}
