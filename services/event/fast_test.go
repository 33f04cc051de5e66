package event_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/uberpopug/ates/services/event"
)

// TestFastPathCoversEverySchema: every schema file of the registry stays inside the fast path's
// subset, so no event silently falls back to the slower general validator (R-EVT-2).
func TestFastPathCoversEverySchema(t *testing.T) {
	if missing := event.MustDefaultRegistry().FastPathMissing(); len(missing) > 0 {
		t.Fatalf("schemas without a fast path: %v", missing)
	}
}

// validEnvelopes returns one stored envelope per registered event, as bytes.
func validEnvelopes(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for key, data := range validData {
		raw, err := json.Marshal(mustEnvelope(t, key, data))
		if err != nil {
			t.Fatal(err)
		}
		out[key] = raw
	}
	return out
}

// checkFastAgrees is the fast path's one rule: what it accepts, the general validator accepts,
// decoded to the same envelope.
func checkFastAgrees(t *testing.T, reg *event.Registry, raw []byte) (fastOK bool) {
	t.Helper()
	fast, ok := reg.ParseFast(raw)
	general, err := reg.ParseGeneral(raw)
	if _, perr := reg.Parse(raw); (reg.Check(raw) == nil) != (perr == nil) {
		t.Fatalf("Check and Parse disagree (Parse: %v):\n%s", perr, raw)
	}
	if !ok {
		return false
	}
	if err != nil {
		t.Fatalf("fast path accepted what the general validator refuses (%v):\n%s", err, raw)
	}
	if !reflect.DeepEqual(fast, general) {
		t.Fatalf("fast path decoded\n%+v\nthe general validator\n%+v", fast, general)
	}
	return true
}

// TestFastPathAcceptsValidEvents: the events our producers write take the fast path (R-EVT-2).
func TestFastPathAcceptsValidEvents(t *testing.T) {
	reg := event.MustDefaultRegistry()
	for key, raw := range validEnvelopes(t) {
		if !checkFastAgrees(t, reg, raw) {
			t.Errorf("%s: the fast path did not accept a valid event:\n%s", key, raw)
		}
	}
}

// TestFastPathNeverAcceptsInvalid mutates valid events field by field (wrong types, broken
// formats, out-of-range numbers, missing and extra members, repeated keys, escapes); whatever
// Parse decides, the fast path never accepts an event the general validator refuses, and every
// invalid event is refused (R-EVT-2).
func TestFastPathNeverAcceptsInvalid(t *testing.T) {
	reg := event.MustDefaultRegistry()
	replacements := []string{
		`null`, `true`, `0`, `-1`, `1.5`, `1e3`, `99999999999999999999`, `""`, `"x"`, `[]`, `{}`,
		`"00000000-0000-0000-0000-00000000000g"`, `"2026-02-30"`, `"2026-02-29"`, `"2024-02-29"`,
		`"2026-13-01"`, `"2026-00-10"`, `"2026-04-31"`, `"2026-11-22T24:00:00Z"`, `"task.assigned.x"`,
		`"2026-11-22T10:00:00+01:00"`, `"2026-11-22T23:59:60Z"`, `"\u0041"`, `"FEE"`, `"fee"`,
		`1500`, `1550`, `5000`, `"[UBERPOP-1] x"`, `"UBERPOP-1"`, `"` + strings.Repeat("é", 201) + `"`,
	}
	refused := 0
	for key, raw := range validEnvelopes(t) {
		var env map[string]json.RawMessage
		if err := json.Unmarshal(raw, &env); err != nil {
			t.Fatal(err)
		}
		var data map[string]json.RawMessage
		if err := json.Unmarshal(env["data"], &data); err != nil {
			t.Fatal(err)
		}
		variants := [][]byte{
			[]byte(strings.Replace(string(raw), `{"eventId"`, `{"eventId":"x","eventId"`, 1)),
			[]byte(strings.Replace(string(raw), `"data":{`, `"data":{"extra":1,`, 1)),
			append(append([]byte{}, raw...), `x`...),
			raw[:len(raw)-1],
		}
		mutate := func(m map[string]json.RawMessage, field string, v json.RawMessage, inData bool) {
			c := map[string]json.RawMessage{}
			for k, x := range m {
				c[k] = x
			}
			if v == nil {
				delete(c, field)
			} else {
				c[field] = v
			}
			e := env
			if inData {
				b, _ := json.Marshal(c)
				e = map[string]json.RawMessage{}
				for k, x := range env {
					e[k] = x
				}
				e["data"] = b
			} else {
				e = c
			}
			b, _ := json.Marshal(e)
			variants = append(variants, b)
		}
		for field := range env {
			mutate(env, field, nil, false)
			for _, r := range replacements {
				mutate(env, field, json.RawMessage(r), false)
			}
		}
		mutate(env, "unknown", json.RawMessage(`1`), false)
		for field := range data {
			mutate(data, field, nil, true)
			for _, r := range replacements {
				mutate(data, field, json.RawMessage(r), true)
			}
		}
		for _, v := range variants {
			checkFastAgrees(t, reg, v)
			if _, err := reg.Parse(v); err != nil {
				refused++
			}
		}
		_ = key
	}
	if refused == 0 {
		t.Fatal("no mutation was refused: the test checks nothing")
	}
}

// FuzzFastPathNeverAcceptsMore: for any input, the fast path accepts only what the general
// validator accepts, decoded identically (R-EVT-2).
func FuzzFastPathNeverAcceptsMore(f *testing.F) {
	for _, raw := range validEnvelopes(f) {
		f.Add(raw)
	}
	reg := event.MustDefaultRegistry()
	f.Fuzz(func(t *testing.T, raw []byte) { checkFastAgrees(t, reg, raw) })
}
