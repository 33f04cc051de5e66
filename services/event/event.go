// Package event is the envelope every event travels in (R-EVT-1) and the schema registry that
// validates it on produce and on consume (R-EVT-2). The registry is the folder schemas/: the
// envelope's schema, and one JSON Schema file per event name and version,
// schemas/<name>/<version>.json, describing the envelope's data.
package event

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/uberpopug/ates/services/ids"
)

// Envelope is an event as stored in an outbox and carried on the bus (R-EVT-1).
type Envelope struct {
	ID            string          `json:"eventId"`
	Name          string          `json:"eventName"`
	Version       int             `json:"eventVersion"`
	Time          time.Time       `json:"eventTime"`
	Producer      string          `json:"producer"`
	CorrelationID string          `json:"correlationId"`
	Data          json.RawMessage `json:"data"`
}

// New builds an envelope with a fresh id for data, taking the correlation id from ctx (or the
// event's own id when the context has none). It does not validate: the registry does.
func New(ctx context.Context, producer, name string, version int, at time.Time, data any) (Envelope, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Envelope{}, fmt.Errorf("event %s v%d: encoding data: %w", name, version, err)
	}
	id := ids.NewString()
	corr := CorrelationID(ctx)
	if corr == "" {
		corr = id
	}
	return Envelope{
		ID: id, Name: name, Version: version, Time: at.UTC(),
		Producer: producer, CorrelationID: corr, Data: raw,
	}, nil
}

// DecodeData unmarshals the envelope's data into v.
func (e Envelope) DecodeData(v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("event %s v%d %s: decoding data: %w", e.Name, e.Version, e.ID, err)
	}
	return nil
}

type correlationKey struct{}

// WithCorrelationID returns a context whose events carry the correlation id.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// CorrelationID returns the context's correlation id, or "".
func CorrelationID(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}
