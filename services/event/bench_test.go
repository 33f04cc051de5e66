package event_test

import (
	"encoding/json"
	"testing"

	"github.com/uberpopug/ates/services/event"
)

// BenchmarkParse measures decoding and validating one stored envelope (R-EVT-2), the cost every
// produced and every consumed event pays.
func BenchmarkParse(b *testing.B) {
	reg := event.MustDefaultRegistry()
	for _, key := range []string{"balance.changed/1", "task.assigned/1", "task.created/2"} {
		e := mustEnvelope(b, key, validData[key])
		raw, err := json.Marshal(e)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(key, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := reg.Parse(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
