package outbox

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Prometheus metrics of the relay, by context (R-OPS-4).
var (
	publishedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ates_events_published_total",
		Help: "Events the outbox relay published to the bus and marked sent (R-EVT-4, R-OPS-4).",
	}, []string{"context"})
	lagEvents = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ates_outbox_lag_events",
		Help: "Committed outbox events not yet published (R-EVT-4, R-OPS-4).",
	}, []string{"context"})
	announcedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ates_outbox_announcements_total",
		Help: "NOTIFYs sent to wake another process's active outbox relay after commits of this process (R-EVT-4).",
	}, []string{"context"})
	readsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ates_outbox_reads_total",
		Help: "Reads of unsent rows by the outbox relay, empty ones included: the relay's load on its database (R-EVT-4, R-OPS-4).",
	}, []string{"context"})
	publishErrorsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ates_outbox_publish_errors_total",
		Help: "Failed attempts of the outbox relay to publish a batch; the batch is retried (R-EVT-4, R-OPS-4).",
	}, []string{"context"})
)
