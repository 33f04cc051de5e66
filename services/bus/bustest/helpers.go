package bustest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/bus"
)

// scope names one test's topics and queues, so tests do not see each other's messages.
type scope struct{ id string }

func newScope(tb testing.TB) scope {
	tb.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		tb.Fatalf("random scope: %v", err)
	}
	return scope{id: "t" + hex.EncodeToString(b)}
}

// topic is a routing key (or pattern) under the scope's leading word.
func (s scope) topic(words ...string) string {
	return strings.Join(append([]string{s.id}, words...), ".")
}

// queue is a durable queue name unique to the scope.
func (s scope) queue(name string) string { return "bustest." + s.id + "." + name }

// testContext is cancelled when the test ends or Timeout passes.
func testContext(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), Timeout)
	tb.Cleanup(cancel)
	return ctx
}

// message is a new message with a fresh id.
func message(topic string) bus.Message {
	id := uuid.NewString()
	return bus.Message{ID: id, Topic: topic, Body: fmt.Appendf(nil, `{"id":%q}`, id)}
}

// messages returns n new messages on topic.
func messages(topic string, n int) []bus.Message {
	out := make([]bus.Message, n)
	for i := range out {
		out[i] = message(topic)
	}
	return out
}

func ids(msgs []bus.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

// publishAsync publishes in a goroutine (the in-process Publish waits for consumers) and
// reports Publish's result.
func publishAsync(ctx context.Context, tr bus.Transport, msgs ...bus.Message) <-chan error {
	done := make(chan error, 1)
	go func() { done <- tr.Publish(ctx, msgs...) }()
	return done
}

// awaitPublished fails the test unless the publication reports nil.
func awaitPublished(ctx context.Context, tb testing.TB, done <-chan error) {
	tb.Helper()
	select {
	case err := <-done:
		if err != nil {
			tb.Fatalf("Publish: %v", err)
		}
	case <-ctx.Done():
		tb.Fatalf("Publish did not return: %v", ctx.Err())
	}
}

// mustPublish publishes synchronously; use it only when consumers are running.
func mustPublish(ctx context.Context, tb testing.TB, tr bus.Transport, msgs ...bus.Message) {
	tb.Helper()
	if err := tr.Publish(ctx, msgs...); err != nil {
		tb.Fatalf("Publish: %v", err)
	}
}

// mustSubscribe subscribes and stops the consumer when the test ends.
func mustSubscribe(ctx context.Context, tb testing.TB, tr bus.Transport, s bus.Subscription, h bus.Handler) bus.Consumer {
	tb.Helper()
	c, err := tr.Subscribe(ctx, s, h)
	if err != nil {
		tb.Fatalf("Subscribe(%+v): %v", s, err)
	}
	tb.Cleanup(c.Stop)
	return c
}

// mustDeclare declares durable queues.
func mustDeclare(ctx context.Context, tb testing.TB, tr bus.Transport, qs ...bus.Queue) {
	tb.Helper()
	if err := tr.Declare(ctx, qs...); err != nil {
		tb.Fatalf("Declare: %v", err)
	}
}

// recorder keeps the deliveries a handler saw, in order.
type recorder struct {
	mu      sync.Mutex
	got     []bus.Delivery
	changed chan struct{} // closed and replaced on every delivery
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) add(d bus.Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, d)
	close(r.changed)
	r.changed = make(chan struct{})
}

// handler records every delivery and acknowledges it.
func (r *recorder) handler() bus.Handler {
	return func(_ context.Context, d bus.Delivery) error {
		r.add(d)
		return nil
	}
}

func (r *recorder) deliveries() []bus.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bus.Delivery(nil), r.got...)
}

// waitFor waits until done holds for the deliveries so far, and returns them.
func (r *recorder) waitFor(ctx context.Context, tb testing.TB, what string, done func([]bus.Delivery) bool) []bus.Delivery {
	tb.Helper()
	for {
		r.mu.Lock()
		got, changed := append([]bus.Delivery(nil), r.got...), r.changed
		r.mu.Unlock()
		if done(got) {
			return got
		}
		select {
		case <-changed:
		case <-ctx.Done():
			tb.Fatalf("waiting for %s: %v (%d deliveries so far)", what, ctx.Err(), len(got))
			return nil
		}
	}
}

// waitIDs waits until every id was delivered at least once.
func (r *recorder) waitIDs(ctx context.Context, tb testing.TB, want ...string) []bus.Delivery {
	tb.Helper()
	return r.waitFor(ctx, tb, fmt.Sprintf("%d message ids", len(want)), func(got []bus.Delivery) bool {
		return len(missing(got, want)) == 0
	})
}

// missing lists the ids of want not among the deliveries.
func missing(got []bus.Delivery, want []string) []string {
	seen := make(map[string]bool, len(got))
	for _, d := range got {
		seen[d.ID] = true
	}
	var out []string
	for _, id := range want {
		if !seen[id] {
			out = append(out, id)
		}
	}
	return out
}

// assertExactlyOnce checks that the deliveries are exactly the messages, each once, unchanged and
// not marked redelivered.
func assertExactlyOnce(tb testing.TB, what string, got []bus.Delivery, want []bus.Message) {
	tb.Helper()
	byID := make(map[string]bus.Message, len(want))
	for _, m := range want {
		byID[m.ID] = m
	}
	count := map[string]int{}
	for _, d := range got {
		count[d.ID]++
		m, ok := byID[d.ID]
		switch {
		case !ok:
			tb.Errorf("%s: unexpected delivery %s on %q", what, d.ID, d.Topic)
		case d.Topic != m.Topic || !bytes.Equal(d.Body, m.Body):
			tb.Errorf("%s: delivery %s = (%q, %s), published (%q, %s)", what, d.ID, d.Topic, d.Body, m.Topic, m.Body)
		case d.Redelivered:
			tb.Errorf("%s: delivery %s marked redelivered without a failure", what, d.ID)
		}
	}
	for _, m := range want {
		if n := count[m.ID]; n != 1 {
			tb.Errorf("%s: message %s on %q delivered %d times, want once", what, m.ID, m.Topic, n)
		}
	}
}
