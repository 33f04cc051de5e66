package outbox

import (
	"time"

	dto "github.com/prometheus/client_model/go"
)

// SelectQuery is the relay's read of the oldest unsent rows, for plan tests.
func (r *Relay) SelectQuery() (string, []any) { return r.selectQuery, r.selectArgs }

// Reads is how many reads of unsent rows the relays of a context made (ates_outbox_reads_total).
func Reads(context string) int {
	var m dto.Metric
	if err := readsTotal.WithLabelValues(context).Write(&m); err != nil {
		panic(err)
	}
	return int(m.GetCounter().GetValue())
}

// Announced is how many announcements the relays of a context sent (ates_outbox_announcements_total).
func Announced(context string) int {
	var m dto.Metric
	if err := announcedTotal.WithLabelValues(context).Write(&m); err != nil {
		panic(err)
	}
	return int(m.GetCounter().GetValue())
}

// AnnounceSpacing is announceSpacing.
const AnnounceSpacing = announceSpacing

// Mark is the id the running relay's reads start from (0 before it marked anything sent).
func (r *Relay) Mark() int64 { return r.mark.Load() }

// FromQuery is the relay's read of the oldest unsent rows from id mark on, for plan tests.
func (r *Relay) FromQuery(mark int64) (string, []any) { return r.fromQuery(mark) }

// FullReadEvery is fullReadEvery.
const FullReadEvery = fullReadEvery

// SettledIdles is how many times the relay began to wait with nothing left to do: no wake-up
// pending and, on PostgreSQL, LISTEN in place. Until woken or polled, it reads nothing more.
func (r *Relay) SettledIdles() int64 { return r.settledIdles.Load() }

// SetNow sets the clock of the rows' created_at.
func (w *Writer) SetNow(now func() time.Time) { w.now = now }
