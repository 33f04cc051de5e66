package outbox_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/uberpopug/ates/services/bus/rabbitmq"
	"github.com/uberpopug/ates/services/storage/storagetest"
	"github.com/uberpopug/ates/services/testenv"
)

// BenchmarkRelayRabbitMQ is BenchmarkRelay on PostgreSQL through the real broker: persistent
// messages, publisher confirms, consumer acknowledgements (R-OPS-2, R-EVT-4, R-EVT-5). The
// relayed events are all of one topic, so the transport sends them as CloudEvents batches
// (rabbitmq.Config.BatchSize); batch=1 sends every event as an AMQP message of its own, as
// traffic whose events all differ in topic travels.
//
//	go test -run '^$' -bench BenchmarkRelayRabbitMQ -benchtime 5x ./services/outbox/
func BenchmarkRelayRabbitMQ(b *testing.B) {
	url := testenv.RequireRabbitMQ(b)
	for _, consumer := range relayConsumers {
		sizes := []int{rabbitmq.DefaultBatchSize}
		if strings.HasPrefix(consumer, "noop") {
			sizes = append(sizes, 1)
		}
		for _, size := range sizes {
			b.Run(fmt.Sprintf("postgres/%s/batch=%d", consumer, size), func(b *testing.B) {
				db := storagetest.MustOpen(b, dialect.Postgres)
				var id [6]byte
				if _, err := rand.Read(id[:]); err != nil {
					b.Fatal(err)
				}
				name := "ates.bench." + hex.EncodeToString(id[:])
				queue := "relay_" + strings.ReplaceAll(consumer, "-", "_")
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				t, err := rabbitmq.New(ctx, rabbitmq.Config{URL: url, Exchange: name, QueuePrefix: name + ".", Logger: testLogger(b), BatchSize: size})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() {
					if err := t.Close(); err != nil {
						b.Errorf("closing the transport: %v", err)
					}
					deleteRabbitTopology(b, url, name, name+"."+queue)
				})
				benchRelay(b, db, t, consumer, queue)
			})
		}
	}
}

// deleteRabbitTopology removes the benchmark's exchange and durable queue.
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
