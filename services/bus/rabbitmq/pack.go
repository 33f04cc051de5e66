package rabbitmq

import (
	"encoding/binary"
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/uberpopug/ates/services/bus"
)

// A pack is one AMQP message carrying several bus messages of one topic, published together in
// one Publish call and consecutive there. The broker's cost is per AMQP message (~90–130 µs of
// its CPU for a persistent message published, confirmed, delivered and acknowledged), so
// packing the outbox relay's batches multiplies the events a broker on two cores carries.
//
// Body: for each message, in order, its id and its body, each preceded by its length as an
// unsigned varint (encoding/binary). The content type tells a pack from a single message, which
// is sent as itself (content type application/json, message id = the event id), so a consumer
// without packs reads every single message as before.
const packContentType = "application/vnd.ates.pack"

// Default pack bounds (Config.PackSize, Config.PackBytes).
const (
	DefaultPackSize  = 32
	DefaultPackBytes = 256 << 10
)

// packRuns cuts msgs into the runs that travel as one AMQP message each, in the order
// returned: messages of one topic (the routing key), at most size of them, and no more than
// maxBytes of ids and bodies unless a single message is larger.
//
// A message joins the newest run of its topic, even past runs of other topics, unless one of
// its aggregate's messages (same Key) went into a later run: so a relay batch of interleaved
// task.completed and task.updated events travels as two packs, not as one message per event,
// while the order of every aggregate's messages is kept. A message without a key keeps its
// place among all messages: it joins only the last run, and nothing after it moves before it.
func packRuns(msgs []bus.Message, size, maxBytes int) [][]bus.Message {
	type run struct {
		msgs  []bus.Message
		bytes int
	}
	var (
		runs    []*run
		byTopic = map[string]int{} // topic → index of its newest run
		byKey   = map[string]int{} // key → index of the newest run holding one of its messages
		barrier = -1               // index of the newest run holding a message without a key
	)
	for _, m := range msgs {
		n := packedLen(m)
		// floor is the earliest run m may join without passing a message it must follow.
		floor := barrier
		if m.Key == "" {
			floor = len(runs) - 1
		} else if k, ok := byKey[m.Key]; ok && k > floor {
			floor = k
		}
		i, ok := byTopic[m.Topic]
		if !ok || i < floor || len(runs[i].msgs) >= size || (len(runs[i].msgs) > 0 && runs[i].bytes+n > maxBytes) {
			runs = append(runs, &run{})
			i = len(runs) - 1
			byTopic[m.Topic] = i
		}
		runs[i].msgs = append(runs[i].msgs, m)
		runs[i].bytes += n
		if m.Key == "" {
			barrier = i
		} else {
			byKey[m.Key] = i
		}
	}
	out := make([][]bus.Message, len(runs))
	for i, r := range runs {
		out[i] = r.msgs
	}
	return out
}

func packedLen(m bus.Message) int {
	return 2*binary.MaxVarintLen64 + len(m.ID) + len(m.Body)
}

// packPublishing is the AMQP message of a run: the message itself when it is alone, else a pack.
func packPublishing(run []bus.Message) amqp.Publishing {
	if len(run) == 1 {
		return amqp.Publishing{
			ContentType:  "application/json",
			DeliveryMode: amqp.Persistent,
			MessageId:    run[0].ID,
			Body:         run[0].Body,
		}
	}
	size := 0
	for _, m := range run {
		size += packedLen(m)
	}
	body := make([]byte, 0, size)
	for _, m := range run {
		body = binary.AppendUvarint(body, uint64(len(m.ID)))
		body = append(body, m.ID...)
		body = binary.AppendUvarint(body, uint64(len(m.Body)))
		body = append(body, m.Body...)
	}
	return amqp.Publishing{ContentType: packContentType, DeliveryMode: amqp.Persistent, Body: body}
}

// Messages returns the events an AMQP delivery of this transport carries: the events of a
// pack, or the delivery itself — for tools that read the exchange directly (a tap).
func Messages(d amqp.Delivery) ([]bus.Message, error) {
	if d.ContentType == packContentType {
		return unpack(d.RoutingKey, d.Body)
	}
	return []bus.Message{{ID: d.MessageId, Topic: d.RoutingKey, Body: d.Body}}, nil
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
