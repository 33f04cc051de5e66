package rabbitmq

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/uberpopug/ates/services/bus"
)

// Events published together travel as a CloudEvents batch: one AMQP message whose body is the
// batched content mode of CloudEvents 1.0 (a JSON array of structured-mode events), readable by
// any consumer of the exchange with a JSON parser and nothing of aTES. The broker's cost is per
// AMQP message (a persistent message published, confirmed, delivered and acknowledged; figures
// in docs/benchmarks.md), so batching the outbox relay's events multiplies what it carries.
//
// An aTES envelope maps onto a CloudEvent attribute by attribute, and back without loss:
//
//	eventId        id
//	eventName      type (also the AMQP routing key of the batch)
//	eventTime      time (the envelope's text as it is)
//	producer       source
//	eventVersion   eventversion (extension, an integer)
//	correlationId  correlationid (extension)
//	data           data, with datacontenttype application/json
//
// A body that is not such an envelope (or whose eventId differs from the message id) travels
// as generic data: id is the message id, type its topic, source genericSource, time the moment
// of publishing, and the body is data (JSON) or data_base64 (anything else); no eventversion.
//
// A lone event is still sent as itself (content type application/json, message id = the event
// id, the envelope as the body), as before batches.
const batchContentType = "application/cloudevents-batch+json"

// genericSource is the source attribute of a message whose body is not an aTES envelope.
const genericSource = "/ates"

// Attribute values and extension names of the CloudEvents this transport writes.
const (
	specVersion     = "1.0"
	jsonContentType = "application/json"
	extVersion      = "eventversion"
	extCorrelation  = "correlationid"
)

// batchPublishing is the AMQP message of a run: the message itself when it is alone, else a
// CloudEvents batch.
func batchPublishing(run []bus.Message, now time.Time) amqp.Publishing {
	if len(run) == 1 {
		return amqp.Publishing{
			ContentType:  jsonContentType,
			DeliveryMode: amqp.Persistent,
			MessageId:    run[0].ID,
			Body:         run[0].Body,
		}
	}
	size := 2
	for _, m := range run {
		size += batchedLen(m)
	}
	body := make([]byte, 0, size)
	body = append(body, '[')
	for i, m := range run {
		if i > 0 {
			body = append(body, ',')
		}
		body = appendCloudEvent(body, m, now)
	}
	body = append(body, ']')
	return amqp.Publishing{ContentType: batchContentType, DeliveryMode: amqp.Persistent, Body: body}
}

// batchedLen estimates the bytes a message takes in a batch: its id, its body, and the
// attributes' names and punctuation.
func batchedLen(m bus.Message) int {
	return 160 + len(m.ID) + len(m.Topic) + len(m.Body)
}

// envelope is an aTES envelope's members as they are written in a body: strings with their
// quotes, escapes untouched, so that they are copied into a CloudEvent and back unchanged.
type envelope struct {
	id, name, version, time, producer, correlation, data []byte
}

// envelopeOf reads a body as an aTES envelope with the message's id: a JSON object of exactly
// the envelope's seven members, each once, of the types the envelope has. ok is false for
// anything else, which travels as generic data.
func envelopeOf(m bus.Message) (e envelope, ok bool) {
	if len(m.Body) == 0 || m.Body[0] != '{' || !validJSON(m.Body) {
		return e, false
	}
	seen := 0
	ok = members(m.Body, func(key, val []byte) bool {
		var dst *[]byte
		var valid bool
		switch string(key) {
		case "eventId":
			dst, valid = &e.id, isString(val) && string(val[1:len(val)-1]) == m.ID && m.ID != ""
		case "eventName":
			dst, valid = &e.name, isNonEmptyString(val)
		case "eventVersion":
			dst, valid = &e.version, isInteger(val)
		case "eventTime":
			dst, valid = &e.time, isNonEmptyString(val)
		case "producer":
			dst, valid = &e.producer, isNonEmptyString(val)
		case "correlationId":
			dst, valid = &e.correlation, isString(val)
		case "data":
			dst, valid = &e.data, true
		}
		if dst == nil || !valid || *dst != nil {
			return false // an unknown member, a wrong type, or a repeated member
		}
		*dst = val
		seen++
		return true
	})
	return e, ok && seen == 7
}

// appendCloudEvent appends the structured-mode CloudEvent of a message to b.
func appendCloudEvent(b []byte, m bus.Message, now time.Time) []byte {
	if e, ok := envelopeOf(m); ok {
		b = append(b, `{"specversion":"`+specVersion+`","id":`...)
		b = append(b, e.id...)
		b = append(b, `,"source":`...)
		b = append(b, e.producer...)
		b = append(b, `,"type":`...)
		b = append(b, e.name...)
		b = append(b, `,"time":`...)
		b = append(b, e.time...)
		b = append(b, `,"datacontenttype":"`+jsonContentType+`","`+extVersion+`":`...)
		b = append(b, e.version...)
		b = append(b, `,"`+extCorrelation+`":`...)
		b = append(b, e.correlation...)
		b = append(b, `,"data":`...)
		b = append(b, e.data...)
		return append(b, '}')
	}
	b = append(b, `{"specversion":"`+specVersion+`","id":`...)
	b = appendString(b, m.ID)
	b = append(b, `,"source":"`+genericSource+`","type":`...)
	b = appendString(b, m.Topic)
	b = append(b, `,"time":"`...)
	b = now.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	switch {
	case len(m.Body) == 0:
	case isSpace(m.Body[0]) || isSpace(m.Body[len(m.Body)-1]) || !validJSON(m.Body):
		// Not JSON, or JSON whose surrounding white space data would not keep.
		b = append(b, `,"datacontenttype":"application/octet-stream","data_base64":"`...)
		b = base64.StdEncoding.AppendEncode(b, m.Body)
		b = append(b, '"')
	default:
		b = append(b, `,"datacontenttype":"`+jsonContentType+`","data":`...)
		b = append(b, m.Body...)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string as encoding/json writes it: ids and names need no
// escapes and are copied; anything else goes through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// batchElement is one element of a CloudEvents batch: its message, or why it cannot be read
// (then the message carries the element's bytes as they are).
type batchElement struct {
	msg bus.Message
	err error
}

// unbatch reads a CloudEvents batch that came with the routing key topic. An error means the
// body is no batch at all (not a JSON array, or an empty one). An element that cannot be read
// is returned with its error and its raw bytes as the message body, so that it alone is
// refused (and dead-lettered) by the consumer while the others are handled.
func unbatch(topic string, body []byte) ([]batchElement, error) {
	if !validJSON(body) {
		return nil, errors.New("a CloudEvents batch that is not JSON")
	}
	var out []batchElement
	isArray := elements(body, func(raw []byte) {
		m, err := messageOf(raw)
		if err != nil {
			m = bus.Message{ID: m.ID, Topic: topic, Body: raw}
			err = fmt.Errorf("element %d of the batch: %w", len(out)+1, err)
		}
		out = append(out, batchElement{msg: m, err: err})
	})
	switch {
	case !isArray:
		return nil, errors.New("a CloudEvents batch that is not a JSON array")
	case len(out) == 0:
		return nil, errors.New("an empty CloudEvents batch")
	}
	return out, nil
}

// cloudEvent is a structured-mode CloudEvent's attributes that this transport reads, as they
// are written (strings with their quotes).
type cloudEvent struct {
	specVersion, id, source, typ, time, contentType, data, dataBase64, version, correlation []byte
}

// messageOf is the bus message of one structured-mode CloudEvent (valid JSON): the aTES
// envelope it maps back to, or, without the eventversion extension, its data. On an error the
// message holds the event's id if it could be read.
func messageOf(raw []byte) (bus.Message, error) {
	var ce cloudEvent
	var bad error
	isObject := members(raw, func(key, val []byte) bool {
		var dst *[]byte
		valid := isString(val)
		switch string(key) {
		case "specversion":
			dst = &ce.specVersion
		case "id":
			dst, valid = &ce.id, isNonEmptyString(val)
		case "source":
			dst, valid = &ce.source, isNonEmptyString(val)
		case "type":
			dst, valid = &ce.typ, isNonEmptyString(val)
		case "time":
			dst, valid = &ce.time, isNonEmptyString(val)
		case "datacontenttype":
			dst = &ce.contentType
		case "data":
			dst, valid = &ce.data, true
		case "data_base64":
			dst = &ce.dataBase64
		case extVersion:
			dst, valid = &ce.version, isInteger(val)
		case extCorrelation:
			dst = &ce.correlation
		default:
			return true // an extension of someone else's
		}
		switch {
		case *dst != nil:
			bad = fmt.Errorf("attribute %s twice", key)
		case !valid:
			bad = fmt.Errorf("attribute %s of the wrong type: %.40s", key, val)
		default:
			*dst = val
		}
		return bad == nil
	})
	var m bus.Message
	if ce.id != nil && isNonEmptyString(ce.id) {
		m.ID = unquote(ce.id)
	}
	switch {
	case !isObject && bad == nil:
		return m, errors.New("not a JSON object")
	case bad != nil:
		return m, bad
	case string(ce.specVersion) != `"`+specVersion+`"`:
		return m, fmt.Errorf(`specversion %s, want "%s"`, ce.specVersion, specVersion)
	case ce.id == nil:
		return m, errors.New("no id")
	case ce.source == nil:
		return m, errors.New("no source")
	case ce.typ == nil:
		return m, errors.New("no type")
	case ce.data != nil && ce.dataBase64 != nil:
		return m, errors.New("both data and data_base64")
	}
	m.Topic = unquote(ce.typ)
	if ce.version == nil {
		switch {
		case ce.dataBase64 != nil:
			body, err := base64.StdEncoding.DecodeString(unquote(ce.dataBase64))
			if err != nil {
				return m, fmt.Errorf("data_base64: %w", err)
			}
			m.Body = body
		case ce.data != nil:
			m.Body = ce.data
		}
		return m, nil
	}
	// An aTES event: its envelope, member by member.
	switch {
	case ce.time == nil:
		return m, errors.New("an aTES event without time")
	case ce.correlation == nil:
		return m, errors.New("an aTES event without " + extCorrelation)
	case ce.data == nil:
		return m, errors.New("an aTES event without data")
	case ce.contentType != nil && string(ce.contentType) != `"`+jsonContentType+`"`:
		return m, fmt.Errorf("an aTES event with datacontenttype %s", ce.contentType)
	}
	b := make([]byte, 0, len(raw))
	b = append(b, `{"eventId":`...)
	b = append(b, ce.id...)
	b = append(b, `,"eventName":`...)
	b = append(b, ce.typ...)
	b = append(b, `,"eventVersion":`...)
	b = append(b, ce.version...)
	b = append(b, `,"eventTime":`...)
	b = append(b, ce.time...)
	b = append(b, `,"producer":`...)
	b = append(b, ce.source...)
	b = append(b, `,"correlationId":`...)
	b = append(b, ce.correlation...)
	b = append(b, `,"data":`...)
	b = append(b, ce.data...)
	m.Body = append(b, '}')
	return m, nil
}

// The functions below walk JSON that validJSON accepted, without building values: a batch is
// read and written by copying its members' bytes.

// members calls fn with each member of the JSON object v — the key as written between its
// quotes, the value's bytes — until fn returns false; it reports whether v is an object whose
// every member fn accepted.
func members(v []byte, fn func(key, val []byte) bool) bool {
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '{' {
		return false
	}
	i = skipSpace(v, i+1)
	if i < len(v) && v[i] == '}' {
		return true
	}
	for i < len(v) {
		end := skipString(v, i)
		key := v[i+1 : end-1]
		i = skipSpace(v, end)
		i = skipSpace(v, i+1) // ':'
		end = skipValue(v, i)
		if !fn(key, v[i:end]) {
			return false
		}
		i = skipSpace(v, end)
		if i >= len(v) || v[i] == '}' {
			return true
		}
		i = skipSpace(v, i+1) // ','
	}
	return true
}

// elements calls fn with each element of the JSON array v and reports whether v is an array.
func elements(v []byte, fn func(elem []byte)) bool {
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '[' {
		return false
	}
	i = skipSpace(v, i+1)
	if i < len(v) && v[i] == ']' {
		return true
	}
	for i < len(v) {
		end := skipValue(v, i)
		fn(v[i:end])
		i = skipSpace(v, end)
		if i >= len(v) || v[i] == ']' {
			return true
		}
		i = skipSpace(v, i+1) // ','
	}
	return true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(v []byte, i int) int {
	for i < len(v) && isSpace(v[i]) {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at v[i] (its opening quote).
func skipString(v []byte, i int) int {
	for i++; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(v)
}

// skipValue returns the index after the value that starts at v[i].
func skipValue(v []byte, i int) int {
	if i >= len(v) {
		return i
	}
	switch v[i] {
	case '"':
		return skipString(v, i)
	case '{', '[':
		depth := 0
		for ; i < len(v); i++ {
			switch v[i] {
			case '"':
				i = skipString(v, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(v)
	default: // a number, true, false or null
		for i < len(v) && v[i] != ',' && v[i] != '}' && v[i] != ']' && !isSpace(v[i]) {
			i++
		}
		return i
	}
}

func isString(val []byte) bool { return len(val) >= 2 && val[0] == '"' }

func isNonEmptyString(val []byte) bool { return len(val) > 2 && val[0] == '"' }

// isInteger reports whether a JSON number has neither a fraction nor an exponent.
func isInteger(val []byte) bool {
	if len(val) > 0 && val[0] == '-' {
		val = val[1:]
	}
	if len(val) == 0 {
		return false
	}
	for _, c := range val {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// unquote returns the text of a JSON string as written (valid JSON), as encoding/json reads it.
func unquote(val []byte) string {
	if bytes.IndexByte(val, '\\') < 0 && utf8.Valid(val) {
		return string(val[1 : len(val)-1])
	}
	var s string
	_ = json.Unmarshal(val, &s) // valid JSON: validJSON checked the whole body
	return s
}
