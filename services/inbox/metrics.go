package inbox

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Prometheus metrics of the consumers, by consumer name (R-OPS-4).
var (
	consumedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ates_events_consumed_total",
		Help: "Events a consumer applied and committed (R-EVT-5, R-OPS-4).",
	}, []string{"consumer"})
	retriedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ates_events_retried_total",
		Help: "Failed attempts to apply an event that were retried (R-EVT-5, R-OPS-4).",
	}, []string{"consumer"})
	deadLetteredTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ates_events_dead_lettered_total",
		Help: "Events moved to the dead-letter store (R-EVT-2, R-OPS-4).",
	}, []string{"consumer"})
	duplicateTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ates_events_duplicate_total",
		Help: "Deliveries of events already applied, acknowledged without applying them again (R-EVT-5, R-OPS-4).",
	}, []string{"consumer"})
	heldTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ates_events_held_total",
		Help: "Waits of a held delivery (or batch) for a temporary failure to pass; not counted as attempts (R-REL-2, R-OPS-4).",
	}, []string{"consumer"})
	batchFallbackTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ates_event_batches_split_total",
		Help: "Batches whose transaction failed and whose events were then applied one by one (R-EVT-5, R-OPS-4).",
	}, []string{"consumer"})
)
