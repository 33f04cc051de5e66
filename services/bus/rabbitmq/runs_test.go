package rabbitmq

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/uberpopug/ates/services/bus"
)

func TestBatchRuns(t *testing.T) {
	t.Parallel()
	a, b := testMessages("task.assigned", 70), testMessages("task.completed", 3)
	big := testMessage("task.assigned")
	big.Body = bytes.Repeat([]byte("x"), 5000)
	for _, tc := range []struct {
		name      string
		msgs      []bus.Message
		size, max int
		want      []int // run lengths
	}{
		{"one topic, cut at the batch size", a, 32, DefaultBatchBytes, []int{32, 32, 6}},
		{"a topic change starts a run", slices.Concat(a[:5], b, a[5:7]), 32, DefaultBatchBytes, []int{5, 3, 2}},
		{"size 1 sends every message alone", a[:3], 1, DefaultBatchBytes, []int{1, 1, 1}},
		{"cut at the byte bound", a[:10], 32, 3 * batchedLen(a[0]), []int{3, 3, 3, 1}},
		{"a message above the byte bound travels alone", slices.Concat(a[:2], []bus.Message{big}, a[2:4]), 32, 1000, []int{2, 1, 2}},
		{"nothing", nil, 32, DefaultBatchBytes, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs := batchRuns(tc.msgs, tc.size, tc.max)
			var lens []int
			var joined []bus.Message
			for _, r := range runs {
				lens = append(lens, len(r))
				joined = append(joined, r...)
				for _, m := range r {
					if m.Topic != r[0].Topic {
						t.Errorf("a run mixes topics %s and %s", r[0].Topic, m.Topic)
					}
				}
			}
			if !slices.Equal(lens, tc.want) {
				t.Errorf("run lengths %v, want %v", lens, tc.want)
			}
			if !slices.EqualFunc(joined, tc.msgs, func(x, y bus.Message) bool { return x.ID == y.ID }) {
				t.Error("the runs do not hold the messages in their order")
			}
		})
	}
}

// TestBatchRunsGroupTopicsPerAggregate: a relay batch of interleaved topics — task.completed and
// task.updated of each task, one after the other — travels as one batch per topic, and every
// aggregate's (Key's) messages keep their order; a message without a key keeps its place.
func TestBatchRunsGroupTopicsPerAggregate(t *testing.T) {
	t.Parallel()
	keyed := func(topic, key string) bus.Message {
		m := testMessage(topic)
		m.Key = key
		return m
	}
	interleaved := func(tasks int) []bus.Message {
		var msgs []bus.Message
		for i := range tasks {
			k := fmt.Sprint("task-", i)
			msgs = append(msgs, keyed("task.completed", k), keyed("task.updated", k))
		}
		return msgs
	}
	for _, tc := range []struct {
		name string
		msgs []bus.Message
		want []string // the runs' topics and lengths
	}{
		{"interleaved topics of distinct tasks", interleaved(20), []string{"task.completed×20", "task.updated×20"}},
		{"cut at the batch size", interleaved(22), []string{"task.completed×20", "task.updated×20", "task.completed×2", "task.updated×2"}},
		{"an aggregate's later message waits for its earlier one",
			[]bus.Message{keyed("a", "1"), keyed("b", "1"), keyed("a", "1"), keyed("a", "2")}, []string{"a×1", "b×1", "a×2"}},
		{"a message without a key keeps its place",
			[]bus.Message{keyed("a", "1"), keyed("b", ""), keyed("a", "2"), keyed("b", "3")}, []string{"a×1", "b×2", "a×1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs := batchRuns(tc.msgs, 20, DefaultBatchBytes)
			var got []string
			for _, r := range runs {
				got = append(got, fmt.Sprintf("%s×%d", r[0].Topic, len(r)))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("runs %v, want %v", got, tc.want)
			}
			assertRunsKeepOrder(t, tc.msgs, runs, 20)
		})
	}
	// Random batches: 3 topics, 6 keys and messages without one, random bounds.
	rng := rand.New(rand.NewPCG(7, 11))
	for range 500 {
		msgs := make([]bus.Message, rng.IntN(80))
		for i := range msgs {
			key := ""
			if rng.IntN(8) > 0 {
				key = fmt.Sprint(rng.IntN(6))
			}
			msgs[i] = keyed(fmt.Sprint("t", rng.IntN(3)), key)
		}
		size := 1 + rng.IntN(40)
		assertRunsKeepOrder(t, msgs, batchRuns(msgs, size, DefaultBatchBytes), size)
	}
}

// assertRunsKeepOrder checks batchRuns' promises: every message once, runs of one topic and at
// most size, each key's messages in their order, and every message without a key preceded by
// exactly the messages that preceded it.
func assertRunsKeepOrder(tb testing.TB, msgs []bus.Message, runs [][]bus.Message, size int) {
	tb.Helper()
	var out []bus.Message
	for _, r := range runs {
		if len(r) == 0 || len(r) > size {
			tb.Fatalf("a run of %d messages, want 1 to %d", len(r), size)
		}
		for _, m := range r {
			if m.Topic != r[0].Topic {
				tb.Fatalf("a run mixes topics %s and %s", r[0].Topic, m.Topic)
			}
		}
		out = append(out, r...)
	}
	if len(out) != len(msgs) {
		tb.Fatalf("%d messages in the runs, want %d", len(out), len(msgs))
	}
	pos := map[string]int{}
	for i, m := range out {
		pos[m.ID] = i
	}
	last := map[string]int{}
	for i, m := range msgs {
		p, ok := pos[m.ID]
		if !ok {
			tb.Fatalf("message %d (%s) is in no run", i, m.ID)
		}
		if m.Key == "" {
			for j, before := range msgs {
				if (j < i) != (pos[before.ID] < p) {
					tb.Fatalf("message %d has no key, yet message %d moved across it", i, j)
				}
			}
			continue
		}
		if q, ok := last[m.Key]; ok && q > p {
			tb.Fatalf("key %s: message %d went before an earlier one of its key", m.Key, i)
		}
		last[m.Key] = p
	}
}
