package outbox

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/uberpopug/ates/services/event"
)

func zzEnv() event.Envelope {
	id := uuid.NewString()
	now := time.Now().UTC()
	e, _ := event.New(context.Background(), "auth", "account.created", 1, now, map[string]any{
		"accountId": id, "username": "popug_" + id[:8], "email": "p@example.com", "fullName": "Popug",
		"role": "WORKER", "active": true, "version": 1, "changedAt": now.Format(time.RFC3339Nano)})
	return e
}

func BenchmarkZZParse(b *testing.B) {
	reg := event.MustDefaultRegistry()
	raw, _ := json.Marshal(zzEnv())
	b.Logf("size %d", len(raw))
	for b.Loop() {
		if _, err := reg.Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkZZMarshal(b *testing.B) {
	e := zzEnv()
	for b.Loop() {
		json.Marshal(e)
	}
}

func BenchmarkZZUnmarshalJSON(b *testing.B) {
	raw, _ := json.Marshal(zzEnv())
	for b.Loop() {
		jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	}
}

func BenchmarkZZUnmarshalEnvelope(b *testing.B) {
	raw, _ := json.Marshal(zzEnv())
	for b.Loop() {
		var e event.Envelope
		json.Unmarshal(raw, &e)
	}
}
