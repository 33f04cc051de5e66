package accounting_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync/atomic"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/uberpopug/ates/services/accounting"
	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/bus/rabbitmq"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/storage/storagetest"
	"github.com/uberpopug/ates/services/testenv"
)

// accountingQueue is the durable queue accounting's replicas compete on.
const accountingQueue = "accounting"

// rabbitTopology is a test's own exchange and queue prefix on the shared broker.
type rabbitTopology struct {
	url, exchange string
}

// mustRabbitTopology names an exchange and queue prefix for the test and deletes them, with the
// accounting queue, when it ends (after the transports it opened are closed).
func mustRabbitTopology(tb testing.TB) rabbitTopology {
	tb.Helper()
	u := testenv.RequireRabbitMQ(tb)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	top := rabbitTopology{url: u, exchange: "ates.test.accounting." + hex.EncodeToString(b[:])}
	tb.Cleanup(func() { deleteRabbitTopology(tb, top.url, top.exchange, top.exchange+"."+accountingQueue) })
	return top
}

// transport connects a transport on the topology, closed when the test ends.
func (top rabbitTopology) transport(tb testing.TB) *rabbitmq.Transport {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr, err := rabbitmq.New(ctx, rabbitmq.Config{
		URL: top.url, Exchange: top.exchange, QueuePrefix: top.exchange + ".", Logger: testLogger(tb),
	})
	if err != nil {
		tb.Fatalf("connecting to RabbitMQ: %v", err)
	}
	tb.Cleanup(func() {
		if err := tr.Close(); err != nil {
			tb.Errorf("closing the transport: %v", err)
		}
	})
	return tr
}

// deleteRabbitTopology removes a test's exchange and durable queue.
func deleteRabbitTopology(tb testing.TB, url, exchange, queue string) {
	tb.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		tb.Logf("cleanup: %v", err)
		return
	}
	defer conn.Close()
	for _, del := range []func(*amqp.Channel) error{
		func(ch *amqp.Channel) error { _, err := ch.QueueDelete(queue, false, false, false); return err },
		func(ch *amqp.Channel) error { return ch.ExchangeDelete(exchange, false, false) },
	} {
		ch, err := conn.Channel()
		if err != nil {
			tb.Logf("cleanup: %v", err)
			return
		}
		if err := del(ch); err != nil {
			tb.Logf("cleanup: %v", err)
		}
		_ = ch.Close()
	}
}

// counted wraps a handler and counts the deliveries it acknowledged.
func counted(h bus.Handler, acked *atomic.Int64) bus.Handler {
	return func(ctx context.Context, d bus.Delivery) error {
		err := h(ctx, d)
		if err == nil {
			acked.Add(1)
		}
		return err
	}
}

// waitFor polls until cond holds or the timeout passes.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// messages returns the events as bus messages.
func messages(tb testing.TB, events []event.Envelope) []bus.Message {
	tb.Helper()
	out := make([]bus.Message, len(events))
	for i, e := range events {
		out[i] = mustDelivery(tb, e).Message
	}
	return out
}

// TestRabbitMQCompetingReplicas: R-ACC-4, R-EVT-5, R-OPS-2 — a scenario's events, scrambled
// and with duplicates, published through RabbitMQ to accounting's durable queue, consumed by two
// competing replicas (each with several handlers) on PostgreSQL: exactly the right entries and
// balances.
func TestRabbitMQCompetingReplicas(t *testing.T) {
	t.Parallel()
	top := mustRabbitTopology(t)
	db := storagetest.MustOpen(t, dialect.Postgres)
	h := MustService(t, db)
	_, second := h.mustReplica(t, mustReplicaPool(t, db), newLockedRand(3, 4))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	publisher := top.transport(t)
	if err := publisher.Declare(ctx, bus.Queue{Name: accountingQueue, Topics: accounting.Topics}); err != nil {
		t.Fatal(err)
	}
	var acked1, acked2 atomic.Int64
	sub := bus.Subscription{Queue: accountingQueue, Topics: accounting.Topics, Concurrency: 4, Prefetch: 8}
	c1, err := top.transport(t).Subscribe(ctx, sub, counted(h.handle, &acked1))
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Stop()
	c2, err := top.transport(t).Subscribe(ctx, sub, counted(second, &acked2))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Stop()

	s := newScenario(t, 5, 40, 2026)
	// Scrambled, then every third event published again later, and a few a third time.
	events := shuffled(s.Events, 11)
	for i, e := range shuffled(s.Events, 12) {
		if i%3 == 0 {
			events = append(events, e)
		}
		if i%10 == 0 {
			events = append(events, e)
		}
	}
	msgs := messages(t, events)
	for i := 0; i < len(msgs); i += 50 {
		if err := publisher.Publish(ctx, msgs[i:min(i+50, len(msgs))]...); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 45*time.Second, "every delivery acknowledged", func() bool {
		return acked1.Load()+acked2.Load() >= int64(len(msgs))
	})
	c1.Stop()
	c2.Stop()

	if got := acked1.Load() + acked2.Load(); got != int64(len(msgs)) {
		t.Errorf("%d deliveries acknowledged, %d published", got, len(msgs))
	}
	if acked1.Load() == 0 || acked2.Load() == 0 {
		t.Errorf("replicas acknowledged %d and %d deliveries: they did not compete", acked1.Load(), acked2.Load())
	}
	h.mustNoDeadLetters(t)
	s.mustApplied(t, h)
	if n := h.mustCount(t, `SELECT COUNT(*) FROM processed_events WHERE consumer = $1`, accounting.ConsumerName); n != len(s.Events) {
		t.Errorf("processed events = %d, want %d unique", n, len(s.Events))
	}
	t.Logf("%d messages (%d unique events, %d entries): replica 1 acknowledged %d, replica 2 %d",
		len(msgs), len(s.Events), len(s.Money), acked1.Load(), acked2.Load())
}
