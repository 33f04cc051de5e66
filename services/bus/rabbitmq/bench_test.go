package rabbitmq

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/testenv"
)

// BenchmarkPublishConsume measures end-to-end throughput: b.N persistent messages published in
// confirmed batches, until a no-op consumer has acknowledged them all.
func BenchmarkPublishConsume(b *testing.B) {
	benchPublishConsume(b, 500, bus.Subscription{Prefetch: 512, Concurrency: 4})
}

// benchPublishConsume publishes b.N messages in batches of batchSize to a queue consumed with sub's
// prefetch and concurrency, and reports the throughput.
func benchPublishConsume(b *testing.B, batchSize int, sub bus.Subscription) {
	b.Helper()
	url := testenv.RequireRabbitMQ(b)
	ctx, cancel := context.WithTimeout(b.Context(), 5*time.Minute)
	defer cancel()
	cfg := testConfig(b, url)
	cfg.Logger = slog.New(slog.NewTextHandler(b.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	tr := mustNew(b, cfg, url)

	var acked atomic.Int64
	all := make(chan struct{})
	sub.Queue, sub.Topics = "bench", []string{"bench.#"}
	c, err := tr.Subscribe(ctx, sub,
		func(context.Context, bus.Delivery) error {
			if acked.Add(1) == int64(b.N) {
				close(all)
			}
			return nil
		})
	if err != nil {
		b.Fatalf("Subscribe: %v", err)
	}
	defer c.Stop()
	msgs := testMessages("bench.event.created", b.N)

	b.ResetTimer()
	start := time.Now()
	for i := 0; i < len(msgs); i += batchSize {
		if err := tr.Publish(ctx, msgs[i:min(i+batchSize, len(msgs))]...); err != nil {
			b.Fatalf("Publish: %v", err)
		}
	}
	published := time.Since(start)
	select {
	case <-all:
	case <-ctx.Done():
		b.Fatalf("only %d of %d messages acknowledged: %v", acked.Load(), b.N, ctx.Err())
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(b.N)/published.Seconds(), "published-msgs/s")
}
