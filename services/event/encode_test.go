package event_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/uberpopug/ates/services/event"
)

// plainEnvelope is event.Envelope without its methods (a defined type has none of its
// underlying type's): json.Marshal encodes it by reflection, as the envelope was encoded before
// it had an encoder of its own.
type plainEnvelope event.Envelope

// checkAppendJSON: AppendJSON writes the bytes encoding/json writes for the envelope (R-EVT-1),
// so stored and published events do not change with the encoder.
func checkAppendJSON(t *testing.T, e event.Envelope) {
	t.Helper()
	want, werr := json.Marshal(plainEnvelope(e))
	got, gerr := e.AppendJSON([]byte("prefix"))
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("AppendJSON error %v, encoding/json error %v", gerr, werr)
	}
	if werr != nil {
		return
	}
	if string(got) != "prefix"+string(want) {
		t.Fatalf("AppendJSON wrote\n%s\nencoding/json\n%s", got, want)
	}
	if m, err := json.Marshal(e); err != nil || string(m) != string(want) {
		t.Fatalf("json.Marshal through MarshalJSON wrote\n%s (%v)\nwant\n%s", m, err, want)
	}
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	for key, data := range validData {
		checkAppendJSON(t, mustEnvelope(t, key, data))
	}
	e := mustEnvelope(t, "task.assigned/1", validData["task.assigned/1"])
	odd := []func(e *event.Envelope){
		func(e *event.Envelope) { e.Producer = `tasks "<b>" & \ é` + "\u2028\x01" },
		func(e *event.Envelope) { e.CorrelationID = "bad utf-8 \xff" },
		func(e *event.Envelope) { e.Data = nil },
		func(e *event.Envelope) {
			e.Time = time.Date(2026, 12, 4, 15, 0, 0, 123456789, time.FixedZone("x", 3600))
		},
		func(e *event.Envelope) { e.Time = time.Time{} },
		func(e *event.Envelope) { e.Version = -7 },
	}
	for _, mutate := range odd {
		c := e
		mutate(&c)
		checkAppendJSON(t, c)
	}
}

func TestAppendJSONRefusesYearsJSONCannotHold(t *testing.T) {
	e := mustEnvelope(t, "task.assigned/1", validData["task.assigned/1"])
	e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := e.AppendJSON(nil); err == nil {
		t.Fatal("year 10000 encoded")
	}
}

// FuzzAppendJSON: for any strings in the envelope, AppendJSON agrees with encoding/json.
func FuzzAppendJSON(f *testing.F) {
	f.Add("0190a4b2-0000-7000-8000-000000000001", "task.assigned", "tasks", "c", int64(1700000000123456789))
	f.Add("x", `a"b\c`, "<&>", strings.Repeat("é", 3), int64(0))
	data := json.RawMessage(`{"k":[1,2,{"v":null}]}`)
	f.Fuzz(func(t *testing.T, id, name, producer, corr string, nanos int64) {
		checkAppendJSON(t, event.Envelope{
			ID: id, Name: name, Version: 1, Time: time.Unix(0, nanos).UTC(),
			Producer: producer, CorrelationID: corr, Data: data,
		})
	})
}
