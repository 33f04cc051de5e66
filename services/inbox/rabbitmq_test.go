package inbox_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/bus/rabbitmq"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/inbox"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
	"github.com/uberpopug/ates/services/testenv"
)

// cloudEventOf is an envelope as a structured-mode CloudEvent, written with encoding/json the way
// any CloudEvents producer would.
func cloudEventOf(tb testing.TB, e event.Envelope) json.RawMessage {
	tb.Helper()
	b, err := json.Marshal(map[string]any{
		"specversion": "1.0", "id": e.ID, "source": e.Producer, "type": e.Name,
		"time": e.Time.Format(time.RFC3339Nano), "datacontenttype": "application/json",
		"eventversion": e.Version, "correlationid": e.CorrelationID, "data": e.Data,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// mustRabbitTransport connects a RabbitMQ transport on an exchange of the test's own; when the
// test ends it is closed and the exchange and the queue are deleted.
func mustRabbitTransport(tb testing.TB, queue string) (*rabbitmq.Transport, rabbitmq.Config) {
	tb.Helper()
	url := testenv.RequireRabbitMQ(tb)
	var id [6]byte
	if _, err := rand.Read(id[:]); err != nil {
		tb.Fatal(err)
	}
	name := "ates.test.inbox." + hex.EncodeToString(id[:])
	cfg := rabbitmq.Config{URL: url, Exchange: name, QueuePrefix: name + ".", Logger: testLogger(tb)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr, err := rabbitmq.New(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := tr.Close(); err != nil {
			tb.Errorf("closing the transport: %v", err)
		}
		conn, err := amqp.Dial(url)
		if err != nil {
			tb.Logf("cleanup: %v", err)
			return
		}
		defer conn.Close()
		if ch, err := conn.Channel(); err == nil {
			_, _ = ch.QueueDelete(cfg.QueuePrefix+queue, false, false, false)
			_ = ch.ExchangeDelete(cfg.Exchange, false, false)
			_ = ch.Close()
		}
	})
	return tr, cfg
}

// TestMalformedBatchElementDeadLetteredAlone: R-EVT-2, R-EVT-5, R-OPS-2 — through the real
// RabbitMQ, a CloudEvents batch of four account.created events, the second of which is
// malformed (an aTES event without time), the third invalid against its schema: the first and
// fourth are applied once, each of the two others goes to the dead-letter store alone (the
// malformed one as the bytes it came as), and the batch is acknowledged after the commits —
// nothing stays in the queue. Consumed one by one and in batches, on SQLite and PostgreSQL.
func TestMalformedBatchElementDeadLetteredAlone(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		for _, batched := range []bool{false, true} {
			t.Run(map[bool]string{false: "one by one", true: "in batches"}[batched], func(t *testing.T) {
				name := uniqueName("cloudevents")
				c := MustConsumer(t, db, client, name, 3, nil)
				tr, cfg := mustRabbitTransport(t, name)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()

				first, fourth, invalid := MustAccountCreated(t), MustAccountCreated(t), MustAccountCreated(t)
				invalid.Data = json.RawMessage(strings.Replace(string(invalid.Data), `"WORKER"`, `"EMPEROR"`, 1))
				malformed := `{"specversion":"1.0","id":"` + MustAccountCreated(t).ID +
					`","source":"auth","type":"account.created","eventversion":1,"correlationid":"c","data":{}}`
				batch, err := json.Marshal([]json.RawMessage{
					cloudEventOf(t, first), json.RawMessage(malformed), cloudEventOf(t, invalid), cloudEventOf(t, fourth),
				})
				if err != nil {
					t.Fatal(err)
				}

				q := bus.Queue{Name: name, Topics: []string{"account.*"}}
				if err := tr.Declare(ctx, q); err != nil {
					t.Fatal(err)
				}
				conn, err := amqp.Dial(cfg.URL)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				ch, err := conn.Channel()
				if err != nil {
					t.Fatal(err)
				}
				if err := ch.PublishWithContext(ctx, cfg.Exchange, "account.created", false, false, amqp.Publishing{
					ContentType: "application/cloudevents-batch+json", DeliveryMode: amqp.Persistent, Body: batch,
				}); err != nil {
					t.Fatal(err)
				}

				handled := make(chan struct{}, 8)
				var sub bus.Consumer
				s := bus.Subscription{Queue: q.Name, Topics: q.Topics}
				if batched {
					h := c.BatchHandler()
					sub, err = tr.SubscribeBatch(ctx, s, func(ctx context.Context, ds []bus.Delivery) error {
						err := h(ctx, ds)
						for range ds {
							handled <- struct{}{}
						}
						return err
					})
				} else {
					h := c.Handler()
					sub, err = tr.Subscribe(ctx, s, func(ctx context.Context, d bus.Delivery) error {
						err := h(ctx, d)
						handled <- struct{}{}
						return err
					})
				}
				if err != nil {
					t.Fatal(err)
				}
				for range 4 {
					select {
					case <-handled:
					case <-ctx.Done():
						t.Fatal("the batch's four events were not all handled")
					}
				}
				sub.Stop() // waits for the acknowledgement of what was handled

				for _, e := range []event.Envelope{first, fourth} {
					if n := effects(t, db, name, e.ID); n != 1 {
						t.Errorf("event %s applied %d times, want once", e.ID, n)
					}
				}
				if n := effects(t, db, name, ""); n != 2 {
					t.Errorf("%d events applied, want 2", n)
				}
				dead := mustDeadLetters(t, db, name, inbox.StatusDead)
				if len(dead) != 2 {
					t.Fatalf("dead letters %+v, want the malformed and the invalid event", dead)
				}
				byID := map[string]inbox.DeadLetter{}
				for _, l := range dead {
					byID[l.EventID] = l
				}
				var m struct{ ID string }
				if err := json.Unmarshal([]byte(malformed), &m); err != nil {
					t.Fatal(err)
				}
				if l, ok := byID[m.ID]; !ok || string(l.Payload) != malformed || l.Name != "account.created" {
					t.Errorf("dead letter of the malformed event %+v, want its bytes as they came", l)
				}
				if l, ok := byID[invalid.ID]; !ok || !strings.Contains(string(l.Payload), "EMPEROR") || l.Version != 1 {
					t.Errorf("dead letter of the invalid event %+v, want its envelope", l)
				}
				depth, err := ch.QueueDeclarePassive(cfg.QueuePrefix+q.Name, true, false, false, false, nil)
				if err != nil {
					t.Fatal(err)
				}
				if depth.Messages != 0 {
					t.Errorf("%d AMQP messages back in the queue, want the batch acknowledged", depth.Messages)
				}
			})
		}
	})
}
