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

// BenchmarkEncode compares the envelope's own encoder (what the outbox stores) with
// encoding/json's reflection over the same fields, data re-compacted.
func BenchmarkEncode(b *testing.B) {
	e := mustEnvelope(b, "balance.changed/1", validData["balance.changed/1"])
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = e.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(plainEnvelope(e)); err != nil {
				b.Fatal(err)
			}
		}
	})
	reg := event.MustDefaultRegistry()
	raw, err := e.AppendJSON(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Check", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := reg.Check(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
