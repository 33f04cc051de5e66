package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/uberpopug/ates/services/analytics"
)

// runAnalytics is `ates analytics rebuild` (R-AN-4): it empties analytics' read models and
// replays the events they are built from out of the producers' outboxes, which keep every event
// they produced. It can run beside a live worker: replayed events are recorded in analytics'
// inbox, so the live consumer skips them, and applying is order-independent. It needs the
// databases only, not RabbitMQ.
func runAnalytics(ctx context.Context, cfg Config, log *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) != 1 || args[0] != "rebuild" {
		return errors.New("analytics: want `ates analytics rebuild`")
	}
	// The rebuild reads the databases only: it publishes nothing and consumes nothing, so it
	// needs no broker — an in-process bus stands in for RabbitMQ.
	cfg.AMQPURL = ""
	a, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.close()
	st, err := a.analytics.Rebuild(ctx,
		analytics.OutboxEvents(ctx, a.dbs["auth"].SQL, a.dbs["auth"].Dialect, analytics.Topics),
		analytics.OutboxEvents(ctx, a.dbs["tasks"].SQL, a.dbs["tasks"].Dialect, analytics.Topics),
		analytics.OutboxEvents(ctx, a.dbs["accounting"].SQL, a.dbs["accounting"].Dialect, analytics.Topics),
	)
	if err != nil {
		return fmt.Errorf("analytics rebuild: %w", err)
	}
	fmt.Fprintf(stdout, "analytics rebuilt: %d events read, %d applied, %d duplicates, %d dead-lettered\n",
		st.Events, st.Applied, st.Duplicates, st.DeadLettered)
	return nil
}
