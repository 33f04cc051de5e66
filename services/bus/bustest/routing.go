package bustest

import (
	"testing"

	"github.com/uberpopug/ates/services/bus"
)

// testTopicRouting: a subscription gets exactly the messages its patterns match, '*' being one
// word and '#' zero or more.
func testTopicRouting(t *testing.T, tr bus.Transport) {
	ctx := testContext(t)
	s := newScope(t)
	r := newRecorder()
	mustSubscribe(ctx, t, tr, bus.Subscription{Topics: []string{
		s.topic("account", "*"),
		s.topic("task", "#"),
		s.topic("payment", "made"),
	}}, r.handler())

	match := []bus.Message{
		message(s.topic("account", "created")),
		message(s.topic("task")), // '#' matches zero words
		message(s.topic("task", "added")),
		message(s.topic("task", "added", "v2")),
		message(s.topic("payment", "made")),
	}
	noMatch := []bus.Message{
		message(s.topic("account")),                      // '*' needs a word
		message(s.topic("account", "created", "v2")),     // '*' is one word only
		message(s.topic("payment")),                      // shorter than the pattern
		message(s.topic("payment", "made", "v2")),        // longer than the pattern
		message(s.topic("billing", "cycle", "closed")),   // nothing bound
		message(newScope(t).topic("account", "created")), // another test's topic
	}
	sentinel := message(s.topic("account", "sentinel"))

	var all []bus.Message
	for i := range max(len(match), len(noMatch)) {
		if i < len(noMatch) {
			all = append(all, noMatch[i])
		}
		if i < len(match) {
			all = append(all, match[i])
		}
	}
	mustPublish(ctx, t, tr, append(all, sentinel)...)

	// One queue, one handler: once the last message is in, every earlier one is too.
	got := r.waitIDs(ctx, t, sentinel.ID)
	assertExactlyOnce(t, "private subscription", got, append(match, sentinel))
}

// testMessageToSeveralQueues: a message goes to every queue bound with a matching pattern, durable
// and private alike.
func testMessageToSeveralQueues(t *testing.T, tr bus.Transport) {
	ctx := testContext(t)
	s := newScope(t)
	accounts, everything, private := newRecorder(), newRecorder(), newRecorder()
	mustSubscribe(ctx, t, tr, bus.Subscription{Queue: s.queue("accounts"), Topics: []string{s.topic("account", "*")}}, accounts.handler())
	mustSubscribe(ctx, t, tr, bus.Subscription{Queue: s.queue("everything"), Topics: []string{s.topic("#")}}, everything.handler())
	mustSubscribe(ctx, t, tr, bus.Subscription{Topics: []string{s.topic("account", "created"), s.topic("account", "end")}}, private.handler())

	created := message(s.topic("account", "created"))
	done := message(s.topic("task", "done"))
	end := message(s.topic("account", "end"))
	mustPublish(ctx, t, tr, created, done, end)

	assertExactlyOnce(t, "queue bound to account.*", accounts.waitIDs(ctx, t, end.ID), []bus.Message{created, end})
	assertExactlyOnce(t, "queue bound to #", everything.waitIDs(ctx, t, end.ID), []bus.Message{created, done, end})
	assertExactlyOnce(t, "private subscription", private.waitIDs(ctx, t, end.ID), []bus.Message{created, end})
}

// testPrivateSubscriptionsEachGetAll: private subscriptions do not compete; each sees every message.
func testPrivateSubscriptionsEachGetAll(t *testing.T, tr bus.Transport) {
	ctx := testContext(t)
	s := newScope(t)
	first, second := newRecorder(), newRecorder()
	sub := bus.Subscription{Topics: []string{s.topic("#")}, Concurrency: 2}
	mustSubscribe(ctx, t, tr, sub, first.handler())
	mustSubscribe(ctx, t, tr, sub, second.handler())

	msgs := messages(s.topic("hub", "event"), 50)
	mustPublish(ctx, t, tr, msgs...)

	assertExactlyOnce(t, "first private subscription", first.waitIDs(ctx, t, ids(msgs)...), msgs)
	assertExactlyOnce(t, "second private subscription", second.waitIDs(ctx, t, ids(msgs)...), msgs)
}
