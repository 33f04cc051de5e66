package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/event"
)

// testConfig is a configuration with an exchange and queue prefix of its own, so tests can share
// the broker and run in parallel, and quick reconnects.
func testConfig(tb testing.TB, url string) Config {
	tb.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		tb.Fatalf("random name: %v", err)
	}
	id := hex.EncodeToString(b)
	return Config{
		URL:               url,
		Exchange:          "ates.test." + id,
		QueuePrefix:       "ates.test." + id + ".",
		Logger:            slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})),
		ReconnectDelay:    50 * time.Millisecond,
		MaxReconnectDelay: 500 * time.Millisecond,
	}
}

// mustNew connects a transport; when the test ends it closes it and deletes the exchange and the
// durable queues it declared. adminURL reaches the broker directly (cfg.URL may be a proxy's).
func mustNew(tb testing.TB, cfg Config, adminURL string) *Transport {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr, err := New(ctx, cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() {
		if err := tr.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
		tr.mu.Lock()
		queues := slices.Collect(maps.Keys(tr.queues))
		tr.mu.Unlock()
		deleteTopology(tb, adminURL, cfg.Exchange, queues)
	})
	return tr
}

// deleteTopology removes what a test declared; each deletion has its own channel, since a
// failure closes the channel.
func deleteTopology(tb testing.TB, url, exchange string, queues []string) {
	tb.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		tb.Errorf("cleanup: dialling: %v", err)
		return
	}
	defer conn.Close()
	do := func(what string, f func(ch *amqp.Channel) error) {
		ch, err := conn.Channel()
		if err != nil {
			tb.Errorf("cleanup: opening a channel: %v", err)
			return
		}
		defer closeChannel(ch)
		if err := f(ch); err != nil {
			tb.Logf("cleanup: deleting %s: %v", what, err)
		}
	}
	for _, q := range queues {
		do("queue "+q, func(ch *amqp.Channel) error { _, err := ch.QueueDelete(q, false, false, false); return err })
	}
	if exchange != "" {
		do("exchange "+exchange, func(ch *amqp.Channel) error { return ch.ExchangeDelete(exchange, false, false) })
	}
}

func testMessage(topic string) bus.Message {
	id := uuid.NewString()
	return bus.Message{ID: id, Topic: topic, Body: fmt.Appendf(nil, `{"id":%q}`, id)}
}

// testEnvelopes returns n aTES events of the name as the outbox relay publishes them: the
// envelope as the outbox writes it (event.Envelope.AppendJSON), keyed by their task.
func testEnvelopes(tb testing.TB, name string, n int) []bus.Message {
	tb.Helper()
	out := make([]bus.Message, n)
	for i := range out {
		task := uuid.NewString()
		e, err := event.New(context.Background(), "tasks", name, 1, time.Now(), map[string]any{
			"taskId": task, "title": fmt.Sprintf("Fix the beak scanner №%d <fast> & \"well\"", i), "priceCents": 1000 + i,
		})
		if err != nil {
			tb.Fatal(err)
		}
		body, err := e.AppendJSON(nil)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = bus.Message{ID: e.ID, Topic: name, Body: body, Key: task}
	}
	return out
}

func testMessages(topic string, n int) []bus.Message {
	out := make([]bus.Message, n)
	for i := range out {
		out[i] = testMessage(topic)
	}
	return out
}

// seen records which message ids a handler got, and how often.
type seen struct {
	mu      sync.Mutex
	count   map[string]int
	last    bus.Delivery
	changed chan struct{}
}

func newSeen() *seen { return &seen{count: map[string]int{}, changed: make(chan struct{})} }

func (s *seen) handler(_ context.Context, d bus.Delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count[d.ID]++
	s.last = d
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

// missing lists the ids not delivered yet.
func (s *seen) missing(ids []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, id := range ids {
		if s.count[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

func (s *seen) times(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count[id]
}

// wait waits until every id was delivered at least once.
func (s *seen) wait(ctx context.Context, tb testing.TB, ids []string) {
	tb.Helper()
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		left := s.missing(ids)
		if len(left) == 0 {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			tb.Fatalf("%d of %d messages never arrived (e.g. %s): %v", len(left), len(ids), left[0], ctx.Err())
		}
	}
}

func msgIDs(msgs []bus.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

func testContext(tb testing.TB, d time.Duration) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), d)
	tb.Cleanup(cancel)
	return ctx
}
