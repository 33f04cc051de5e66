package rabbitmq

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/uberpopug/ates/services/bus"
)

// mustBatchSchema compiles testdata/cloudevents-batch.schema.json: the CloudEvents 1.0 JSON
// batch format's rules (required attributes, their types and formats, attribute names of
// lowercase letters and digits, extension values of the JSON types an attribute may have), and
// what aTES events always carry (time, datacontenttype application/json, data).
func mustBatchSchema(tb testing.TB) *jsonschema.Schema {
	tb.Helper()
	raw, err := os.ReadFile("testdata/cloudevents-batch.schema.json")
	if err != nil {
		tb.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		tb.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("mem:///cloudevents-batch.json", doc); err != nil {
		tb.Fatal(err)
	}
	s, err := c.Compile("mem:///cloudevents-batch.json")
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// TestBatchIsCloudEvents: a batch of aTES events is a CloudEvents 1.0 batch (the schema of the
// specification's rules), and each event's attributes say what its envelope said, read with
// nothing but encoding/json (R-EVT-1).
func TestBatchIsCloudEvents(t *testing.T) {
	t.Parallel()
	msgs := testEnvelopes(t, "task.assigned", 3)
	p := batchPublishing(msgs, time.Now())
	if p.ContentType != "application/cloudevents-batch+json" {
		t.Fatalf("content type %q, want application/cloudevents-batch+json", p.ContentType)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(p.Body))
	if err != nil {
		t.Fatal(err)
	}
	if err := mustBatchSchema(t).Validate(doc); err != nil {
		t.Fatalf("the batch is not a CloudEvents batch: %v\n%s", err, p.Body)
	}
	var got []map[string]json.RawMessage
	if err := json.Unmarshal(p.Body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(msgs) {
		t.Fatalf("%d events in the batch, want %d", len(got), len(msgs))
	}
	for i, ce := range got {
		var env map[string]json.RawMessage
		if err := json.Unmarshal(msgs[i].Body, &env); err != nil {
			t.Fatal(err)
		}
		for attr, member := range map[string]string{
			"id": "eventId", "type": "eventName", "source": "producer", "time": "eventTime",
			"eventversion": "eventVersion", "correlationid": "correlationId", "data": "data",
		} {
			if !bytes.Equal(ce[attr], env[member]) {
				t.Errorf("event %d: %s = %s, want the envelope's %s %s", i, attr, ce[attr], member, env[member])
			}
		}
		if string(ce["specversion"]) != `"1.0"` || string(ce["datacontenttype"]) != `"application/json"` {
			t.Errorf("event %d: specversion %s, datacontenttype %s", i, ce["specversion"], ce["datacontenttype"])
		}
	}

	// The schema can fail: an event without time, or with an upper-case attribute, is refused.
	for _, bad := range []string{
		strings.Replace(string(p.Body), `"time":`, `"timestamp":`, 1),
		strings.Replace(string(p.Body), `"correlationid":`, `"correlationId":`, 1),
		strings.Replace(string(p.Body), `"specversion":"1.0"`, `"specversion":"0.3"`, 1),
	} {
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		if mustBatchSchema(t).Validate(doc) == nil {
			t.Errorf("the schema accepts %.200s…", bad)
		}
	}
}

// TestBatchRoundTrip: every message comes out of a batch as it went in — aTES envelopes byte for
// byte (escapes and all), other bodies as JSON data or base64, an empty body empty.
func TestBatchRoundTrip(t *testing.T) {
	t.Parallel()
	msgs := testEnvelopes(t, "task.assigned", 3)
	odd := func(body string) bus.Message {
		m := testMessage("task.assigned")
		m.Body = []byte(body)
		return m
	}
	mismatched := testEnvelopes(t, "task.assigned", 1)[0]
	mismatched.ID = "not-the-event-id" // the envelope cannot carry the message id: generic data
	msgs = append(msgs,
		odd(`{"id":"x"}`),
		odd(" [1, 2,\n {\"a\": null}] "),
		odd("not JSON at all \x00\xff"),
		odd(""),
		odd(`{"eventId":"x","eventName":"task.assigned"}`),
		mismatched,
		odd(`{"eventId":"`+"\u00e9"+`","eventName":"task.assigned","eventVersion":"1","eventTime":"t","producer":"p","correlationId":"c","data":{}}`),
	)
	p := batchPublishing(msgs, time.Now())
	if !json.Valid(p.Body) {
		t.Fatalf("the batch is not JSON: %s", p.Body)
	}
	elems, err := unbatch("task.assigned", p.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(elems) != len(msgs) {
		t.Fatalf("%d elements, want %d", len(elems), len(msgs))
	}
	for i, e := range elems {
		if e.err != nil || !sameMessage(e.msg, msgs[i]) {
			t.Errorf("element %d = %s %s %q (%v), want %s %s %q", i, e.msg.Topic, e.msg.ID, e.msg.Body, e.err, msgs[i].Topic, msgs[i].ID, msgs[i].Body)
		}
	}
	var raw []map[string]any
	if err := json.Unmarshal(p.Body, &raw); err != nil {
		t.Fatal(err)
	}
	for i, ce := range raw {
		_, aTES := ce["eventversion"]
		if want := i < 3; aTES != want {
			t.Errorf("element %d carries eventversion: %v, want %v (only envelopes map onto attributes)", i, aTES, want)
		}
	}
}

// TestMalformedBatchElements: an element that is not a readable CloudEvent comes out alone,
// with its error and its bytes as they are (and its id when it has one), so the consumer
// dead-letters that element only; its neighbours read as usual.
func TestMalformedBatchElements(t *testing.T) {
	t.Parallel()
	good := testEnvelopes(t, "task.assigned", 2)
	p := batchPublishing(good, time.Now())
	var pair []json.RawMessage
	if err := json.Unmarshal(p.Body, &pair); err != nil {
		t.Fatal(err)
	}
	aTES := string(pair[0])
	for _, tc := range []struct {
		name, elem, id string
	}{
		{"not an object", `"task.assigned"`, ""},
		{"an array", `[1,2]`, ""},
		{"no specversion", strings.Replace(aTES, `"specversion":"1.0",`, ``, 1), good[0].ID},
		{"another specversion", strings.Replace(aTES, `"specversion":"1.0"`, `"specversion":"0.3"`, 1), good[0].ID},
		{"no id", `{"specversion":"1.0","source":"tasks","type":"task.assigned","data":{}}`, ""},
		{"an empty id", `{"specversion":"1.0","id":"","source":"tasks","type":"task.assigned","data":{}}`, ""},
		{"a numeric id", `{"specversion":"1.0","id":7,"source":"tasks","type":"task.assigned","data":{}}`, ""},
		{"id twice", `{"specversion":"1.0","id":"a","id":"b","source":"tasks","type":"task.assigned","data":{}}`, "a"},
		{"no source", `{"specversion":"1.0","id":"a","type":"task.assigned","data":{}}`, "a"},
		{"no type", `{"specversion":"1.0","id":"a","source":"tasks","data":{}}`, "a"},
		{"eventversion as a string", strings.Replace(aTES, `"eventversion":1`, `"eventversion":"1"`, 1), good[0].ID},
		{"eventversion a fraction", strings.Replace(aTES, `"eventversion":1`, `"eventversion":1.5`, 1), good[0].ID},
		{"an aTES event without time", strings.Replace(aTES, `"time":`, `"when":`, 1), good[0].ID},
		{"an aTES event without correlationid", strings.Replace(aTES, `"correlationid":`, `"corr":`, 1), good[0].ID},
		{"an aTES event without data", strings.Replace(aTES, `"data":`, `"payload":`, 1), good[0].ID},
		{"an aTES event of XML", strings.Replace(aTES, `"datacontenttype":"application/json"`, `"datacontenttype":"application/xml"`, 1), good[0].ID},
		{"data and data_base64", `{"specversion":"1.0","id":"a","source":"s","type":"t","data":{},"data_base64":"e30="}`, "a"},
		{"data_base64 that is not base64", `{"specversion":"1.0","id":"a","source":"s","type":"t","data_base64":"%%%"}`, "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := "[" + string(pair[0]) + ",\n  " + tc.elem + "\n," + string(pair[1]) + "]"
			elems, err := unbatch("task.assigned", []byte(body))
			if err != nil {
				t.Fatalf("the batch is unreadable: %v", err)
			}
			if len(elems) != 3 {
				t.Fatalf("%d elements, want 3", len(elems))
			}
			for i, want := range map[int]bus.Message{0: good[0], 2: good[1]} {
				if elems[i].err != nil || !sameMessage(elems[i].msg, want) {
					t.Errorf("neighbour %d = %+v (%v), want it read as usual", i, elems[i].msg, elems[i].err)
				}
			}
			bad := elems[1]
			if bad.err == nil {
				t.Fatalf("read as %s %s %q, want an error", bad.msg.Topic, bad.msg.ID, bad.msg.Body)
			}
			if string(bad.msg.Body) != tc.elem || bad.msg.Topic != "task.assigned" || bad.msg.ID != tc.id {
				t.Errorf("the malformed element came out as %s %q %q, want task.assigned %q and its bytes %q", bad.msg.Topic, bad.msg.ID, bad.msg.Body, tc.id, tc.elem)
			}
		})
	}
	for _, body := range []string{``, `[`, `{}`, `[]`, `"a"`, `[{"a":1},]`} {
		if elems, err := unbatch("t", []byte(body)); err == nil {
			t.Errorf("unbatch(%q) = %v, want an error", body, elems)
		}
	}
}

// TestForeignBatchesRead: a batch written by another CloudEvents producer — white space, other
// extensions, attributes in another order, base64 data — reads as its events' data.
func TestForeignBatchesRead(t *testing.T) {
	t.Parallel()
	body := `[
	  {"type": "com.example.ping", "specversion": "1.0", "source": "https://example.com/x",
	   "id": "p-1", "traceparent": "00-ab-cd-01", "data": {"n": 1}},
	  {"specversion": "1.0", "id": "p-2", "source": "/x", "type": "com.example.ping",
	   "datacontenttype": "application/octet-stream", "data_base64": "AAEC"},
	  {"specversion": "1.0", "id": "p\u002d3", "source": "/x", "type": "com.example.ping"}
	]`
	elems, err := unbatch("com.example.ping", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := []bus.Message{
		{ID: "p-1", Topic: "com.example.ping", Body: []byte(`{"n": 1}`)},
		{ID: "p-2", Topic: "com.example.ping", Body: []byte{0, 1, 2}},
		{ID: "p-3", Topic: "com.example.ping"},
	}
	var got []bus.Message
	for _, e := range elems {
		if e.err != nil {
			t.Errorf("%v", e.err)
		}
		got = append(got, e.msg)
	}
	if !slices.EqualFunc(got, want, sameMessage) {
		t.Errorf("read %+v, want %+v", got, want)
	}
}

// FuzzUnbatch: whatever the body, unbatch never panics; an element it cannot read comes out as
// bytes of the body; and the messages it reads, batched again, read back the same.
func FuzzUnbatch(f *testing.F) {
	f.Add(batchPublishing(testMessages("t", 3), time.Now()).Body)
	f.Add([]byte(`[{"specversion":"1.0","id":"a\"b","source":"s","type":"t","eventversion":2,"time":"x","correlationid":"","data":[{"a":"}"}]}]`))
	f.Add([]byte(`[{"specversion":"1.0","id":"a","source":"s","type":"t","data_base64":"AAEC"}, 3]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		elems, err := unbatch("t", body)
		if err != nil {
			return
		}
		var msgs []bus.Message
		for _, e := range elems {
			if e.err != nil {
				if !bytes.Contains(body, e.msg.Body) {
					t.Fatalf("a malformed element %q that is not in the body", e.msg.Body)
				}
				continue
			}
			msgs = append(msgs, e.msg)
		}
		if len(msgs) < 2 {
			return // a lone message is published as itself
		}
		p := batchPublishing(msgs, time.Now())
		round, err := unbatch("t", p.Body)
		if err != nil {
			t.Fatalf("batching %d read messages again does not read back: %v\n%s", len(msgs), err, p.Body)
		}
		for i, e := range round {
			if e.err != nil || !sameMessage(e.msg, msgs[i]) {
				t.Fatalf("element %d batched again reads %+v (%v), want %+v", i, e.msg, e.err, msgs[i])
			}
		}
	})
}

// BenchmarkBatchCodec: the CPU a relay batch of 32 events costs to write and to read, as a
// CloudEvents batch and as the pack it replaced.
func BenchmarkBatchCodec(b *testing.B) {
	msgs := testEnvelopes(b, "task.assigned", DefaultBatchSize)
	now := time.Now()
	batch := batchPublishing(msgs, now).Body
	b.Run("cloudevents/write", func(b *testing.B) {
		for b.Loop() {
			batchPublishing(msgs, now)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/event")
	})
	b.Run("cloudevents/read", func(b *testing.B) {
		for b.Loop() {
			if _, err := unbatch("task.assigned", batch); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/event")
	})
	pack := packBody(msgs)
	b.Run("pack/write", func(b *testing.B) {
		for b.Loop() {
			packBody(msgs)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/event")
	})
	b.Run("pack/read", func(b *testing.B) {
		for b.Loop() {
			if _, err := unpack("task.assigned", pack); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/event")
	})
	b.Logf("bytes per batch of %d: CloudEvents %d, pack %d", len(msgs), len(batch), len(pack))
}

// FuzzValidJSON: validJSON answers as json.Valid does, whatever the bytes.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{
		`{"a":[1,-0.5e+3,true,false,null,"\u00e9\n"]}`, `[]`, `{}`, ` 1 `, `01`, `-`, `1.`, `1e`, `"\x"`,
		"\"\x01\"", `{"a" 1}`, `[1,]`, `{"a":1,}`, `nul`, "\"\xff\"", `[[[[]]]]`, `"\ud800"`,
	} {
		f.Add([]byte(s))
	}
	f.Add(batchPublishing(testMessages("t", 3), time.Now()).Body)
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}

// TestValidJSONDepth: nesting is limited as encoding/json limits it.
func TestValidJSONDepth(t *testing.T) {
	t.Parallel()
	for _, n := range []int{maxDepth, maxDepth + 1} {
		b := []byte(strings.Repeat("[", n) + strings.Repeat("]", n))
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Errorf("depth %d: validJSON %v, json.Valid %v", n, got, want)
		}
	}
}
