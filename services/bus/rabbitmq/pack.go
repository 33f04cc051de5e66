package rabbitmq

import (
	"encoding/binary"
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/uberpopug/ates/services/bus"
)

// A pack is how earlier versions of this transport sent several events of one topic as one AMQP
// message: a private framing that only aTES could read. Producers now send CloudEvents batches
// (cloudevents.go); consumers still read packs, so that packs queued before the upgrade, or sent
// by a producer not yet upgraded, are handled as before (docs/events.md, rollout).
//
// Body: for each message, in order, its id and its body, each preceded by its length as an
// unsigned varint (encoding/binary).
const packContentType = "application/vnd.ates.pack"

// Messages returns the events an AMQP delivery of this transport carries: the events of a
// CloudEvents batch or of a pack, or the delivery itself — for tools that read the exchange
// directly (a tap). A batch element that cannot be read is returned as its raw bytes.
func Messages(d amqp.Delivery) ([]bus.Message, error) {
	elems, err := carried(d)
	if err != nil {
		return nil, err
	}
	msgs := make([]bus.Message, len(elems))
	for i, e := range elems {
		msgs[i] = e.msg
	}
	return msgs, nil
}

// carried reads what an AMQP delivery carries: the elements of a CloudEvents batch, the
// messages of a pack, or the delivery itself. An error means a batch or pack that cannot be
// read at all.
func carried(d amqp.Delivery) ([]batchElement, error) {
	switch d.ContentType {
	case batchContentType:
		return unbatch(d.RoutingKey, d.Body)
	case packContentType:
		msgs, err := unpack(d.RoutingKey, d.Body)
		if err != nil {
			return nil, err
		}
		elems := make([]batchElement, len(msgs))
		for i, m := range msgs {
			elems[i] = batchElement{msg: m}
		}
		return elems, nil
	}
	return []batchElement{{msg: bus.Message{ID: d.MessageId, Topic: d.RoutingKey, Body: d.Body}}}, nil
}

// unpack returns the bus messages of a pack's body, all of the given topic.
func unpack(topic string, body []byte) ([]bus.Message, error) {
	var msgs []bus.Message
	for len(body) > 0 {
		id, rest, err := field(body)
		if err != nil {
			return nil, fmt.Errorf("message %d's id: %w", len(msgs)+1, err)
		}
		b, rest, err := field(rest)
		if err != nil {
			return nil, fmt.Errorf("message %d's body: %w", len(msgs)+1, err)
		}
		msgs = append(msgs, bus.Message{ID: string(id), Topic: topic, Body: b})
		body = rest
	}
	if len(msgs) == 0 {
		return nil, errors.New("an empty pack")
	}
	return msgs, nil
}

// field reads one length-prefixed field.
func field(b []byte) (value, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, nil, errors.New("a bad length")
	}
	b = b[k:]
	if n > uint64(len(b)) {
		return nil, nil, fmt.Errorf("a length of %d with %d bytes left", n, len(b))
	}
	return b[:n:n], b[n:], nil
}
