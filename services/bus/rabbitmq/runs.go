package rabbitmq

import "github.com/uberpopug/ates/services/bus"

// Default batch bounds (Config.BatchSize, Config.BatchBytes).
const (
	DefaultBatchSize  = 32
	DefaultBatchBytes = 256 << 10
)

// batchRuns cuts msgs into the runs that travel as one AMQP message each (a CloudEvents batch,
// or a lone message as itself), in the order returned: messages of one topic (the routing key,
// so that every binding — per event name or per pattern — gets exactly the events it got when
// each travelled alone), at most size of them, and no more than about maxBytes unless a single
// message is larger.
//
// A message joins the newest run of its topic, even past runs of other topics, unless one of
// its aggregate's messages (same Key) went into a later run: so a relay batch of interleaved
// task.completed and task.updated events travels as two batches, not as one message per event,
// while the order of every aggregate's messages is kept. A message without a key keeps its
// place among all messages: it joins only the last run, and nothing after it moves before it.
func batchRuns(msgs []bus.Message, size, maxBytes int) [][]bus.Message {
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
		n := batchedLen(m)
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
